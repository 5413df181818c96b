use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use super::*;

fn span(trace: u64, kind: SpanKind) -> ProxySpan {
    ProxySpan {
        trace_id: format!("{trace:032x}"),
        id: format!("{trace:016x}"),
        parent_id: None,
        kind,
        shared: kind == SpanKind::Server,
        name: "get".into(),
        local_service: "gateway".into(),
        remote_service: "item".into(),
        remote_replica: None,
        remote_address: None,
        start_micros: 1_700_000_000_000_000,
        duration_micros: 10,
        tags: BTreeMap::from([("http.status_code", "200".to_string())]),
        annotations: Vec::new(),
    }
}

fn record_traces(recorder: &StoreRecorder, traces: std::ops::Range<u64>) {
    for trace in traces {
        recorder.record(span(trace, SpanKind::Client));
        recorder.record(span(trace, SpanKind::Server));
    }
}

fn counters(store: &Store) -> [u64; 3] {
    let counters = store.in_process();
    [
        counters.messages.load(Ordering::Relaxed),
        counters.spans.load(Ordering::Relaxed),
        counters.spans_dropped.load(Ordering::Relaxed),
    ]
}

/// Lets the drain task run (time stands still: only yields) until `store` holds `spans`.
async fn until_stored(store: &Store, spans: usize) {
    for _ in 0..1000 {
        if store.span_count() == spans {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("{} spans stored, not {spans}", store.span_count());
}

#[tokio::test(start_paused = true)]
async fn queued_spans_are_ingested_in_batches() {
    let store = Store::new(10_000);
    let (recorder, _drain) = StoreRecorder::start(store.clone(), 4096);
    record_traces(&recorder, 1..151);
    until_stored(&store, 300).await;
    assert_eq!(counters(&store), [1, 300, 0], "one batch of 300");
    tokio::time::sleep(REST * 2).await;
    record_traces(&recorder, 151..651);
    until_stored(&store, 1300).await;
    assert_eq!(
        counters(&store),
        [3, 1300, 0],
        "1000 spans in batches of at most {BATCH_SPANS}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_first_spans_after_a_quiet_moment_are_stored_at_once() {
    let store = Store::new(100);
    let (recorder, _drain) = StoreRecorder::start(store.clone(), 100);
    for trace in 1..4 {
        let start = tokio::time::Instant::now();
        record_traces(&recorder, trace..trace + 1);
        until_stored(&store, 2 * trace as usize).await;
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "no wait after a quiet moment"
        );
        // Quiet longer than the rest: the task sleeps on the queue again.
        tokio::time::sleep(REST * 2).await;
    }
    assert_eq!(counters(&store), [3, 6, 0]);
}

#[tokio::test(start_paused = true)]
async fn after_a_batch_later_spans_wait_for_the_rest_without_waking_the_task() {
    let store = Store::new(1000);
    let (recorder, _drain) = StoreRecorder::start(store.clone(), 1000);
    record_traces(&recorder, 1..2);
    until_stored(&store, 2).await;
    // The task now rests: spans recorded meanwhile wait for the next batch, however many.
    for trace in 100..110 {
        record_traces(&recorder, trace..trace + 1);
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
    }
    assert_eq!(store.span_count(), 2);
    tokio::time::sleep(REST * 2).await;
    assert_eq!(store.span_count(), 22);
    assert_eq!(counters(&store), [2, 22, 0], "one batch for the ten traces");
}

#[tokio::test(start_paused = true)]
async fn a_read_settles_the_queue_without_waiting_for_the_rest() {
    let store = Store::new(1000);
    let (recorder, _drain) = StoreRecorder::start(store.clone(), 1000);
    record_traces(&recorder, 1..2);
    until_stored(&store, 2).await;
    // The task rests now; a reader does not wait for it.
    record_traces(&recorder, 2..4);
    let start = tokio::time::Instant::now();
    store.settle().await;
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(store.span_count(), 6);
    // With nothing queued it answers at once too.
    store.settle().await;
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_drops_spans_and_counts_them() {
    let store = Store::new(100);
    let (recorder, _drain) = StoreRecorder::start(store.clone(), 8);
    record_traces(&recorder, 1..6); // 10 spans before the task runs
    until_stored(&store, 8).await;
    assert_eq!(counters(&store), [1, 8, 2]);
    let metrics = crate::trace::metrics::Metrics::default().render(&store);
    assert!(
        metrics.contains("zipkin_collector_spans_dropped_total{transport=\"proxy\"} 2"),
        "{metrics}"
    );
}

#[tokio::test(start_paused = true)]
async fn finish_ingests_what_is_queued_and_later_spans_are_dropped() {
    let store = Store::new(100);
    let (recorder, drain) = StoreRecorder::start(store.clone(), 100);
    record_traces(&recorder, 1..11);
    drain.finish().await;
    assert_eq!(store.span_count(), 20);
    record_traces(&recorder, 11..12);
    assert_eq!(store.span_count(), 20);
    assert_eq!(counters(&store)[1..], [20, 2]);
}

#[tokio::test(start_paused = true)]
async fn spans_with_bad_ids_are_counted_as_dropped() {
    let store = Store::new(100);
    let (recorder, drain) = StoreRecorder::start(store.clone(), 100);
    recorder.record(ProxySpan {
        trace_id: "not-hex".into(),
        ..span(1, SpanKind::Client)
    });
    recorder.record(span(2, SpanKind::Client));
    drain.finish().await;
    assert_eq!(store.span_count(), 1);
    assert_eq!(counters(&store), [1, 1, 1]);
}

#[test]
fn a_proxy_span_becomes_a_zipkin_span() {
    let span = ProxySpan {
        trace_id: "463ac35c9f6413ad48485a3953bb6124".into(),
        id: "a2fb4a1d1a96d312".into(),
        parent_id: Some("0020000000000001".into()),
        kind: SpanKind::Server,
        shared: true,
        name: "GET".into(),
        local_service: "Item".into(),
        remote_service: "user".into(),
        remote_replica: Some("item-1".into()),
        remote_address: Some("172.18.0.5:8080".parse().unwrap()),
        start_micros: 1_700_000_000_000_000,
        duration_micros: 1500,
        tags: BTreeMap::from([
            ("http.status_code", "503".to_string()),
            ("error", "503".to_string()),
        ]),
        annotations: vec![
            (1_700_000_000_000_200, "retry 2: 503 from item-2".into()),
            (1_700_000_000_000_100, "retry 1: 503 from item-1".into()),
        ],
    };
    let converted = convert(span).unwrap();
    assert_eq!(
        converted.trace_id.to_string(),
        "463ac35c9f6413ad48485a3953bb6124"
    );
    assert_eq!(converted.kind, Some(Kind::Server));
    assert!(converted.shared);
    let remote = converted.remote_endpoint.as_ref().unwrap();
    assert_eq!(remote.ipv4, Some("172.18.0.5".parse().unwrap()));
    assert_eq!(remote.port, Some(8080));
    assert_eq!(converted.tags["error"], "503");
    assert_eq!(converted.tags["sandbox.replica"], "item-1");
    // The store lower-cases names and sorts annotations, as for every span.
    let store = Store::new(10);
    store.ingest(vec![converted.clone()]);
    let stored = &store.trace(converted.trace_id).unwrap()[0];
    assert_eq!(stored.name.as_deref(), Some("get"));
    assert_eq!(stored.local_service_name(), Some("item"));
    assert_eq!(stored.annotations[0].value, "retry 1: 503 from item-1");
    assert_eq!(stored.annotations[1].value, "retry 2: 503 from item-2");
}

#[test]
fn bad_ids_are_dropped_not_stored() {
    let span = ProxySpan {
        trace_id: "not-hex".into(),
        ..span(1, SpanKind::Client)
    };
    assert!(convert(span).is_none());
}
