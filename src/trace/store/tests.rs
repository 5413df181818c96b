use super::*;
use crate::trace::model::{Annotation, Endpoint, SpanId};
use crate::trace::query::Params;

const NOW_US: u64 = 1_700_000_000_000_000;

fn span(trace: u128, id: u64, parent: Option<u64>, service: &str, name: &str) -> Span {
    let mut span = Span::new(TraceId(trace), SpanId(id));
    span.parent_id = parent.map(SpanId);
    span.name = Some(name.into());
    span.timestamp = Some(NOW_US + trace as u64);
    span.duration = Some(100 * id);
    span.local_endpoint = Some(Endpoint::service(service));
    span
}

fn search(store: &Store, query: &str) -> Vec<u128> {
    let request =
        QueryRequest::from_params(&Params::parse(Some(query)), NOW_US / 1000 + 1000).unwrap();
    store
        .search(&request)
        .iter()
        .map(|t| t[0].trace_id.0)
        .collect()
}

#[test]
fn evicts_whole_traces_oldest_first_at_the_bound() {
    let store = Store::new(5);
    store.ingest(vec![
        span(1, 1, None, "a", "x"),
        span(1, 2, Some(1), "a", "y"),
    ]);
    store.ingest(vec![
        span(2, 1, None, "a", "x"),
        span(2, 2, Some(1), "b", "y"),
    ]);
    assert_eq!(store.span_count(), 4);
    store.ingest(vec![
        span(3, 1, None, "c", "x"),
        span(3, 2, Some(1), "c", "y"),
    ]);
    assert_eq!(store.span_count(), 4);
    assert!(store.trace(TraceId(1)).is_none());
    assert_eq!(store.trace(TraceId(2)).unwrap().len(), 2);
    assert_eq!(store.evicted_span_count(), 2);
    // a late span of a kept trace does not make it younger
    store.ingest(vec![
        span(2, 3, Some(1), "a", "z"),
        span(2, 4, Some(1), "a", "z"),
    ]);
    assert!(store.trace(TraceId(2)).is_none());
    assert_eq!(store.service_names(), vec!["c".to_string()]);
}

#[test]
fn names_indexes_follow_ingest_and_eviction() {
    let store = Store::new(100);
    let mut client = span(1, 2, Some(1), "Front", "GET /A");
    client.kind = Some(Kind::Client);
    client.remote_endpoint = Some(Endpoint::service("back"));
    store.ingest(vec![span(1, 1, None, "front", "root"), client]);
    assert_eq!(store.service_names(), vec!["front"]);
    assert_eq!(store.span_names("FRONT", None), vec!["get /a", "root"]);
    assert_eq!(
        store.span_names("front", Some(Kind::Client)),
        vec!["get /a"]
    );
    assert_eq!(store.remote_service_names("front"), vec!["back"]);
    assert!(store.span_names("nobody", None).is_empty());
}

#[test]
fn search_filters_like_the_server() {
    let store = Store::new(100);
    let mut tagged = span(1, 1, None, "front", "get");
    tagged.tags.insert("http.method".into(), "GET".into());
    tagged.tags.insert("error".into(), "".into());
    let mut annotated = span(2, 1, None, "front", "post");
    annotated.annotations.push(Annotation {
        timestamp: NOW_US,
        value: "retried".into(),
    });
    let mut remote = span(3, 1, None, "back", "query");
    remote.remote_endpoint = Some(Endpoint::service("mysql"));
    store.ingest(vec![tagged, annotated, remote]);

    assert_eq!(search(&store, ""), vec![3, 2, 1], "newest first");
    assert_eq!(search(&store, "limit=1"), vec![3]);
    assert_eq!(search(&store, "serviceName=front"), vec![2, 1]);
    assert_eq!(search(&store, "serviceName=front&spanName=post"), vec![2]);
    assert_eq!(
        search(&store, "serviceName=back&spanName=post"),
        Vec::<u128>::new()
    );
    assert_eq!(search(&store, "remoteServiceName=mysql"), vec![3]);
    assert_eq!(
        search(&store, "annotationQuery=error+and+http.method%3DGET"),
        vec![1]
    );
    assert_eq!(
        search(&store, "annotationQuery=http.method%3DPOST"),
        Vec::<u128>::new()
    );
    assert_eq!(search(&store, "annotationQuery=retried"), vec![2]);
    assert_eq!(
        search(&store, "minDuration=100&maxDuration=100"),
        vec![3, 2, 1]
    );
    assert_eq!(search(&store, "minDuration=101"), Vec::<u128>::new());
    assert_eq!(search(&store, "serviceName=unknown"), Vec::<u128>::new());
    let end_ms = NOW_US / 1000;
    assert_eq!(
        search(&store, &format!("endTs={end_ms}&lookback=1")),
        Vec::<u128>::new()
    );
    assert_eq!(
        search(&store, &format!("endTs={}&lookback=1", end_ms + 1)),
        vec![3, 2, 1]
    );
}

#[test]
fn a_128_bit_trace_is_not_the_64_bit_one() {
    let store = Store::new(100);
    store.ingest(vec![
        span(7, 1, None, "a", "x"),
        span((1 << 64) | 7, 1, None, "a", "x"),
    ]);
    assert_eq!(store.trace(TraceId(7)).unwrap().len(), 1);
    assert_eq!(store.trace(TraceId((1 << 64) | 7)).unwrap().len(), 1);
}

#[test]
fn concurrent_ingest_and_queries() {
    let store = Store::new(10_000);
    std::thread::scope(|scope| {
        for writer in 0..4u128 {
            let store = store.clone();
            scope.spawn(move || {
                for trace in 0..500u128 {
                    let id = writer * 1000 + trace + 1;
                    store.ingest(vec![
                        span(id, 1, None, "a", "x"),
                        span(id, 2, Some(1), "b", "y"),
                    ]);
                }
            });
        }
        let store = store.clone();
        scope.spawn(move || {
            for _ in 0..50 {
                let _ = store.service_names();
                let _ = search(&store, "serviceName=a&limit=5");
            }
        });
    });
    assert_eq!(store.span_count(), 4000);
}

#[test]
fn tag_values_are_distinct_and_sorted() {
    let store = Store::new(100);
    let mut one = span(1, 1, None, "a", "x");
    one.tags.insert("env".into(), "prod".into());
    let mut two = span(2, 1, None, "a", "x");
    two.tags.insert("env".into(), "dev".into());
    let mut three = span(3, 1, None, "a", "x");
    three.tags.insert("env".into(), "prod".into());
    store.ingest(vec![one, two, three]);
    assert_eq!(store.tag_values("env"), vec!["dev", "prod"]);
    assert!(store.tag_values("other").is_empty());
}
