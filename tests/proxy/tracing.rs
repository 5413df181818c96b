//! Trace propagation: an incoming B3 context is continued, a missing one is started, and the
//! context is forwarded in B3 multi, B3 single and W3C forms; the recorder gets both spans. Without
//! a recorder the proxy leaves trace headers as they came.

use sandbox::proxy::SpanKind;

use crate::util::{get, manifest, start, start_recorded, TestUpstream};

const TRACE: &str = "463ac35c9f6413ad48485a3953bb6124";
const SPAN: &str = "a2fb4a1d1a96d312";

both_paths!(b3_in_same_trace_out);
async fn b3_in_same_trace_out() {
    let a = TestUpstream::start("a").await;
    let (running, spans) = start_recorded(&manifest(&[&a], "")).await;
    let answer = get(
        &running.url("/a/x"),
        &[
            ("x-b3-traceid", TRACE),
            ("x-b3-spanid", SPAN),
            ("x-b3-sampled", "1"),
        ],
    )
    .await;
    assert_eq!(answer.sent("x-b3-traceid").as_deref(), Some(TRACE));
    assert_eq!(answer.sent("x-b3-parentspanid").as_deref(), Some(SPAN));
    let forwarded = answer.sent("x-b3-spanid").expect("span id");
    assert_ne!(forwarded, SPAN);
    assert_eq!(
        answer.sent("traceparent"),
        Some(format!("00-{TRACE}-{forwarded}-01"))
    );
    assert_eq!(answer.header("x-sandbox-trace-id"), TRACE);
    let recorded = spans.take();
    assert_eq!(recorded.len(), 2);
    let client = recorded
        .iter()
        .find(|span| span.kind == SpanKind::Client)
        .expect("client");
    let server = recorded
        .iter()
        .find(|span| span.kind == SpanKind::Server)
        .expect("server");
    assert_eq!(
        (client.trace_id.as_str(), client.id.as_str()),
        (TRACE, forwarded.as_str())
    );
    assert_eq!(client.parent_id.as_deref(), Some(SPAN));
    assert_eq!(
        (
            client.local_service.as_str(),
            client.remote_service.as_str()
        ),
        ("gateway", "a")
    );
    assert_eq!(client.remote_replica.as_deref(), Some("a-external"));
    assert_eq!(client.tags["http.status_code"], "200");
    assert_eq!(client.tags["http.path"], "/a/x");
    assert_eq!(server.id, client.id);
    assert!(server.shared);
    assert_eq!(server.local_service, "a");
}

both_paths!(without_a_recorder_trace_headers_pass_through);
async fn without_a_recorder_trace_headers_pass_through() {
    let a = TestUpstream::start("a").await;
    let running = start(&manifest(&[&a], "")).await;
    let answer = get(&running.url("/a/x"), &[]).await;
    for name in ["x-b3-traceid", "x-b3-spanid", "b3", "traceparent"] {
        assert_eq!(answer.sent(name), None, "{name} added without a recorder");
    }
    assert_eq!(answer.header("x-sandbox-trace-id"), "");
    let answer = get(
        &running.url("/a/x"),
        &[
            ("x-b3-traceid", TRACE),
            ("x-b3-spanid", SPAN),
            ("x-b3-sampled", "1"),
        ],
    )
    .await;
    assert_eq!(answer.sent("x-b3-traceid").as_deref(), Some(TRACE));
    assert_eq!(answer.sent("x-b3-spanid").as_deref(), Some(SPAN));
    assert_eq!(answer.sent("x-b3-sampled").as_deref(), Some("1"));
    assert_eq!(answer.sent("b3"), None);
    assert_eq!(answer.sent("x-b3-parentspanid"), None);
}

both_paths!(none_in_new_context_in_all_three_forms);
async fn none_in_new_context_in_all_three_forms() {
    let a = TestUpstream::start("a").await;
    let (running, spans) = start_recorded(&manifest(&[&a], "")).await;
    let answer = get(&running.url("/a/x"), &[]).await;
    let trace = answer.sent("x-b3-traceid").expect("trace id");
    let span = answer.sent("x-b3-spanid").expect("span id");
    assert_eq!(trace.len(), 32);
    assert_eq!(answer.sent("x-b3-sampled").as_deref(), Some("1"));
    assert_eq!(answer.sent("b3"), Some(format!("{trace}-{span}-1")));
    assert_eq!(
        answer.sent("traceparent"),
        Some(format!("00-{trace}-{span}-01"))
    );
    assert_eq!(answer.header("x-sandbox-trace-id"), trace);
    let recorded = spans.take();
    assert_eq!(recorded.len(), 2);
    assert!(recorded.iter().all(|recorded| recorded.trace_id == trace));
}

both_paths!(unsampled_requests_record_nothing_and_retries_are_annotated);
async fn unsampled_requests_record_nothing_and_retries_are_annotated() {
    let a = TestUpstream::start("a").await;
    let routes = "gateway:\n  routes:\n    - match: {prefix: /}\n      service: a\n      retries: {attempts: 2, on: [5xx], backoff: {base: 1ms, max: 2ms}}\n";
    let (running, spans) = start_recorded(&manifest(&[&a], routes)).await;
    get(&running.url("/x"), &[("b3", &format!("{TRACE}-{SPAN}-0"))]).await;
    assert!(spans.take().is_empty());
    get(
        &running.url("/flaky/1"),
        &[("x-sandbox-fault-delay", "1ms")],
    )
    .await;
    let recorded = spans.take();
    let client = recorded
        .iter()
        .find(|span| span.kind == SpanKind::Client)
        .expect("client");
    let notes: Vec<&str> = client
        .annotations
        .iter()
        .map(|(_, text)| text.as_str())
        .collect();
    assert_eq!(notes, ["fault: delay 1ms", "retry 1: 503 from a-external"]);
}
