//! Trace propagation (B3 in, B3 + W3C out) and Zipkin span reporting.

use std::time::{Duration, Instant};

use crate::util::{field, request, span_collector, spans, Service};

const TRACE: &str = "463ac35c9f6413ad48485a3953bb6124";
const SPAN: &str = "a2fb4a1d1a96d312";
const PARENT: &str = "0020000000000001";

/// The value of header `name` as the downstream `/echo` saw it, from the caller's embedded JSON.
fn seen(text: &str, name: &str) -> String {
    field(text, name).unwrap_or_else(|| panic!("no `{name}` in {text}"))
}

#[test]
fn b3_context_is_propagated_to_downstream_calls_in_all_forms() {
    let echo = Service::start(&[("SERVICE_NAME", "echo")]);
    let user = Service::start(&[
        ("SERVICE_NAME", "user"),
        ("ECHO_URL", &echo.url("")),
        (
            "ROUTES",
            "GET /users/{id} => call ${ECHO_URL}/echo/{id} as downstream",
        ),
    ]);
    let headers = [
        ("X-B3-TraceId", TRACE),
        ("X-B3-SpanId", SPAN),
        ("X-B3-ParentSpanId", PARENT),
        ("X-B3-Sampled", "1"),
    ];
    let reply = request(user.port, "GET", "/users/1", &headers, "");
    assert_eq!(reply.status, 200);
    let text = reply.text();
    assert_eq!(seen(&text, "x-b3-traceid"), TRACE);
    assert_eq!(
        seen(&text, "x-b3-parentspanid"),
        SPAN,
        "the child's parent is the shared server span"
    );
    assert_eq!(seen(&text, "x-b3-sampled"), "1");
    let child = seen(&text, "x-b3-spanid");
    assert_eq!(child.len(), 16);
    assert_ne!(child, SPAN);
    assert_eq!(seen(&text, "b3"), format!("{TRACE}-{child}-1-{SPAN}"));
    assert_eq!(seen(&text, "traceparent"), format!("00-{TRACE}-{child}-01"));
}

#[test]
fn traceparent_in_is_propagated_with_tracestate() {
    let echo = Service::start(&[]);
    let user = Service::start(&[
        ("ECHO_URL", &echo.url("")),
        ("ROUTES", "GET /u => call ${ECHO_URL}/echo as downstream"),
    ]);
    let headers = [
        ("traceparent", &*format!("00-{TRACE}-{SPAN}-01")),
        ("tracestate", "vendor=abc"),
    ];
    let text = request(user.port, "GET", "/u", &headers, "").text();
    assert_eq!(seen(&text, "x-b3-traceid"), TRACE);
    assert_eq!(seen(&text, "x-b3-parentspanid"), SPAN);
    assert_eq!(seen(&text, "tracestate"), "vendor=abc");
}

#[test]
fn no_context_and_no_zipkin_sends_no_trace_headers() {
    let echo = Service::start(&[]);
    let user = Service::start(&[
        ("ECHO_URL", &echo.url("")),
        ("ROUTES", "GET /u => call ${ECHO_URL}/echo as downstream"),
    ]);
    let text = request(user.port, "GET", "/u", &[], "").text();
    assert!(
        !text.contains("x-b3-traceid") && !text.contains("traceparent"),
        "{text}"
    );
}

/// Collects spans until `count` arrived or 5 s passed.
fn collect(receiver: &std::sync::mpsc::Receiver<String>, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut collected = Vec::new();
    while collected.len() < count {
        let wait = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(wait) {
            Ok(batch) => collected.extend(spans(&batch)),
            Err(_) => break,
        }
    }
    collected
}

fn find<'a>(spans: &'a [String], service: &str, kind: &str) -> &'a str {
    spans
        .iter()
        .find(|span| {
            span.contains(&format!("\"kind\":\"{kind}\""))
                && span.contains(&format!(
                    "\"localEndpoint\":{{\"serviceName\":\"{service}\"}}"
                ))
        })
        .unwrap_or_else(|| panic!("no {kind} span of {service} in {spans:#?}"))
}

#[test]
fn a_chain_reports_server_and_client_spans_of_one_trace() {
    let (endpoint, receiver) = span_collector();
    let item = Service::start(&[
        ("SERVICE_NAME", "item"),
        ("ZIPKIN_ENDPOINT", &endpoint),
        ("ROUTES", r#"GET /items/{id} => json {"id": "{id}"}"#),
    ]);
    let user = Service::start(&[
        ("SERVICE_NAME", "user"),
        ("ZIPKIN_ENDPOINT", &endpoint),
        ("ITEM_URL", &item.url("")),
        (
            "ROUTES",
            "GET /users/{id} => call ${ITEM_URL}/items/{id} as item",
        ),
    ]);
    assert_eq!(request(user.port, "GET", "/users/42", &[], "").status, 200);
    let spans = collect(&receiver, 3);
    let user_server = find(&spans, "user", "SERVER");
    let user_client = find(&spans, "user", "CLIENT");
    let item_server = find(&spans, "item", "SERVER");

    let trace = field(user_server, "traceId").expect("trace id");
    assert_eq!(trace.len(), 32, "a new trace gets a 128-bit id");
    assert_eq!(field(user_client, "traceId"), Some(trace.clone()));
    assert_eq!(field(item_server, "traceId"), Some(trace));
    assert_eq!(
        field(user_server, "parentId"),
        None,
        "the root span has no parent"
    );
    assert_eq!(field(user_client, "parentId"), field(user_server, "id"));
    assert_eq!(
        field(item_server, "id"),
        field(user_client, "id"),
        "B3 shares the span id"
    );
    assert!(item_server.contains("\"shared\":true"), "{item_server}");

    assert_eq!(
        field(user_server, "name").as_deref(),
        Some("get /users/{id}")
    );
    assert_eq!(
        field(item_server, "name").as_deref(),
        Some("get /items/{id}")
    );
    assert_eq!(
        field(user_client, "name").as_deref(),
        Some("get /items/{id}")
    );
    assert!(
        user_client.contains("\"remoteEndpoint\":{\"serviceName\":\"localhost\"}"),
        "{user_client}"
    );
    assert_eq!(
        field(user_server, "http.path").as_deref(),
        Some("/users/42")
    );
    assert_eq!(
        field(user_server, "http.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(field(item_server, "http.method").as_deref(), Some("GET"));
    for span in [user_server, user_client, item_server] {
        assert!(
            span.contains("\"timestamp\":1") && span.contains("\"duration\":"),
            "{span}"
        );
    }
}

#[test]
fn server_errors_are_tagged_and_unsampled_requests_are_not_reported() {
    let (endpoint, receiver) = span_collector();
    let service = Service::start(&[("SERVICE_NAME", "s"), ("ZIPKIN_ENDPOINT", &endpoint)]);
    let sampled_out = format!("{TRACE}-{SPAN}-0");
    assert_eq!(
        request(
            service.port,
            "GET",
            "/status/200",
            &[("b3", &sampled_out)],
            ""
        )
        .status,
        200
    );
    assert_eq!(
        request(
            service.port,
            "GET",
            "/status/503",
            &[("b3", &format!("{TRACE}-{SPAN}-1"))],
            ""
        )
        .status,
        503
    );
    let spans = collect(&receiver, 1);
    assert_eq!(
        spans.len(),
        1,
        "only the sampled request is reported: {spans:#?}"
    );
    let span = &spans[0];
    assert_eq!(field(span, "id").as_deref(), Some(SPAN));
    assert_eq!(field(span, "name").as_deref(), Some("get /status/{code}"));
    assert_eq!(field(span, "error").as_deref(), Some("503"));
    assert!(
        receiver.recv_timeout(Duration::from_millis(400)).is_err(),
        "nothing else is reported"
    );
}

#[test]
fn health_probes_are_not_traced() {
    let (endpoint, receiver) = crate::util::span_collector();
    let service = Service::start(&[("SERVICE_NAME", "s"), ("ZIPKIN_ENDPOINT", &endpoint)]);
    assert_eq!(request(service.port, "GET", "/health", &[], "").status, 200);
    assert_eq!(request(service.port, "GET", "/echo", &[], "").status, 200);
    let spans = collect(&receiver, 1);
    assert_eq!(
        field(&spans[0], "name").as_deref(),
        Some("get /echo"),
        "{spans:#?}"
    );
    assert!(
        receiver.recv_timeout(Duration::from_millis(400)).is_err(),
        "/health is not reported"
    );
}

#[test]
fn an_unreachable_zipkin_never_delays_responses_and_is_logged_once() {
    let closed = crate::util::free_port();
    let endpoint = format!("http://127.0.0.1:{closed}/api/v2/spans");
    let service = Service::start(&[("SERVICE_NAME", "s"), ("ZIPKIN_ENDPOINT", &endpoint)]);
    for _ in 0..3 {
        // `/health` is not traced; `/echo` is.
        assert_eq!(request(service.port, "GET", "/echo", &[], "").status, 200);
        std::thread::sleep(Duration::from_millis(250)); // separate batches
    }
    let (output, _) = service.terminate();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.matches("zipkin: sending").count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("to {endpoint} failed")),
        "{stderr}"
    );
}
