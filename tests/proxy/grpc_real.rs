//! gRPC through the proxy with real peers: Python grpcio clients calling a grpcio server through
//! the gateway and the mesh. The four call kinds stream both ways; statuses, messages and
//! trailers arrive as sent; 50 MiB messages pass; `grpc-timeout` is the call's deadline;
//! UNAVAILABLE is retried on another replica; the proxy's own failures are gRPC statuses; spans
//! name the method.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use sandbox::proxy::{Caller, Endpoint, SpanKind};
use serde_json::Value;

use crate::grpc_peers::{grpc_call, message, texts, GrpcServer};
use crate::util::{start, start_recorded, AccessLog, Running};

/// The gateway routes `/test.Echo/` to `echo`, the grpcio server (h2c).
fn echo_manifest(server: &GrpcServer, route_extra: &str) -> String {
    format!(
        "services:\n  echo:\n    external: {}\n    http2: true\n\
         gateway:\n  routes:\n    - match: {{prefix: /test.Echo/}}\n      service: echo\n{route_extra}",
        server.url()
    )
}

/// The mesh knows 127.0.0.1 as `caller`.
fn mesh_caller(running: &Running) {
    running.proxy.set_callers(HashMap::from([(
        "127.0.0.1".parse().expect("ip"),
        Caller {
            service: "caller".into(),
            replica: "caller-1".into(),
        },
    )]));
}

fn code(outcome: &Value) -> &str {
    outcome["code"].as_str().unwrap_or_default()
}

fn details(outcome: &Value) -> &str {
    outcome["details"].as_str().unwrap_or_default()
}

/// Unary, server-, client- and bidirectional streaming calls to `target`.
async fn four_call_kinds(target: std::net::SocketAddr, authority: &[&str]) {
    let with = |extra: &[&'static str]| -> Vec<&str> {
        authority
            .iter()
            .copied()
            .chain(extra.iter().copied())
            .collect()
    };
    let unary = grpc_call(target, "unary", &with(&["--message", "hello"])).await;
    assert_eq!(code(&unary), "OK", "{unary}");
    assert_eq!(texts(&unary), ["hello"]);
    assert_eq!(unary["trailing"]["x-replica"], "echo", "trailers: {unary}");

    let server = grpc_call(target, "server-stream", &with(&["--message", "3"])).await;
    assert_eq!(code(&server), "OK", "{server}");
    assert_eq!(texts(&server), ["message 1", "message 2", "message 3"]);

    let client = grpc_call(
        target,
        "client-stream",
        &with(&["--chunks", "4", "--chunk-size", "1000"]),
    )
    .await;
    assert_eq!(code(&client), "OK", "{client}");
    assert_eq!(texts(&client), [r#"{"messages": 4, "bytes": 4000}"#]);

    // Each message goes only after the answer to the one before came back.
    let bidi = grpc_call(
        target,
        "bidi",
        &with(&["--count", "3", "--message", "ping"]),
    )
    .await;
    assert_eq!(code(&bidi), "OK", "{bidi}");
    assert_eq!(
        texts(&bidi),
        ["echo: ping 1", "echo: ping 2", "echo: ping 3"]
    );
}

both_paths!(grpc_call_kinds_through_the_gateway);
async fn grpc_call_kinds_through_the_gateway() {
    let server = GrpcServer::start("echo", false);
    let running = start(&echo_manifest(&server, "")).await;
    four_call_kinds(running.gateway, &[]).await;
}

both_paths!(grpc_call_kinds_through_the_mesh);
async fn grpc_call_kinds_through_the_mesh() {
    let server = GrpcServer::start("echo", false);
    let running = start(&echo_manifest(&server, "")).await;
    mesh_caller(&running);
    four_call_kinds(running.mesh, &["--authority", "echo.sandbox:15001"]).await;
}

both_paths!(grpc_statuses_messages_and_trailers_arrive_as_sent);
async fn grpc_statuses_messages_and_trailers_arrive_as_sent() {
    let server = GrpcServer::start("echo", false);
    let running = start(&echo_manifest(&server, "")).await;
    let message = "no such item: 100% é, \"quoted\"";
    let outcome = grpc_call(
        running.gateway,
        "fail",
        &["--message", &format!("NOT_FOUND {message}")],
    )
    .await;
    assert_eq!(code(&outcome), "NOT_FOUND", "{outcome}");
    assert_eq!(details(&outcome), message);
    assert_eq!(texts(&outcome), ["before the failure"]);
    assert_eq!(outcome["trailing"]["x-trailer"], "kept");
    let outcome = grpc_call(
        running.gateway,
        "fail",
        &["--message", "FAILED_PRECONDITION stock is locked"],
    )
    .await;
    assert_eq!(code(&outcome), "FAILED_PRECONDITION", "{outcome}");
    assert_eq!(details(&outcome), "stock is locked");
}

both_paths!(grpc_messages_of_50_mib_pass, flavor = "multi_thread");
async fn grpc_messages_of_50_mib_pass() {
    let server = GrpcServer::start("echo", false);
    // With retries on, a body is kept only while it fits the retry buffer, then streams on.
    let retries = "      retries: {attempts: 2, on: [unavailable]}\n";
    let running = start(&echo_manifest(&server, retries)).await;
    // 800 messages of 64 KiB: 50 MiB streamed from the client.
    let streamed = grpc_call(
        running.gateway,
        "client-stream",
        &["--chunks", "800", "--chunk-size", "65536"],
    )
    .await;
    assert_eq!(code(&streamed), "OK", "{streamed}");
    assert_eq!(
        texts(&streamed),
        [r#"{"messages": 800, "bytes": 52428800}"#]
    );
    // One 50 MiB message, echoed back whole.
    let size = (50 * 1024 * 1024).to_string();
    let unary = grpc_call(running.gateway, "unary", &["--size", &size]).await;
    assert_eq!(code(&unary), "OK", "{}", details(&unary));
    let response = &unary["responses"][0];
    assert_eq!(response["len"], 50 * 1024 * 1024);
    assert_eq!(response["sha256"], unary["expected_sha256"]);
}

both_paths!(grpc_unavailable_is_retried_on_another_replica);
async fn grpc_unavailable_is_retried_on_another_replica() {
    let down = GrpcServer::start("echo-1", true);
    let up = GrpcServer::start("echo-2", false);
    // echo-1 is never ejected (outlier detection), so calls keep landing on it.
    let yaml = "services:\n  echo:\n    image: echo:1\n    http2: true\n\
                \x20   outlier_detection: {consecutive_errors: 1000}\n\
                \x20   retries: {attempts: 2, retriable_status: [UNAVAILABLE], backoff: {base: 1ms, max: 2ms}}\n\
                gateway:\n  routes:\n    - match: {prefix: /test.Echo/}\n      service: echo\n\
                \x20     retries: {attempts: 2, on: [unavailable], backoff: {base: 1ms, max: 2ms}}\n";
    let (running, spans) = start_recorded(yaml).await;
    running.proxy.set_endpoints(
        "echo",
        vec![
            Endpoint {
                name: "echo-1".into(),
                address: down.address,
                healthy: true,
            },
            Endpoint {
                name: "echo-2".into(),
                address: up.address,
                healthy: true,
            },
        ],
    );
    mesh_caller(&running);
    for _ in 0..3 {
        let gateway = grpc_call(running.gateway, "unary", &["--message", "again"]).await;
        assert_eq!(code(&gateway), "OK", "the gateway retried: {gateway}");
        assert_eq!(gateway["initial"]["x-sandbox-upstream"], "echo-2");
        let mesh = grpc_call(
            running.mesh,
            "unary",
            &["--message", "again", "--authority", "echo.sandbox:15001"],
        )
        .await;
        assert_eq!(code(&mesh), "OK", "the mesh retried: {mesh}");
    }
    // A bidirectional call whose client waits for each answer: retried too, its first message
    // replayed to the other replica and the rest streamed on (round robin: one of two calls
    // starts on echo-1).
    let before = running.proxy.metrics().retries("prefix:/test.Echo/");
    for _ in 0..2 {
        let bidi = grpc_call(
            running.gateway,
            "bidi",
            &["--count", "3", "--message", "ping"],
        )
        .await;
        assert_eq!(code(&bidi), "OK", "{bidi}");
        assert_eq!(
            texts(&bidi),
            ["echo: ping 1", "echo: ping 2", "echo: ping 3"]
        );
    }
    assert!(running.proxy.metrics().retries("prefix:/test.Echo/") > before);
    let recorded = spans.take();
    let retried = recorded
        .iter()
        .filter(|span| span.kind == SpanKind::Client)
        .find(|span| span.tags.contains_key("sandbox.retries"))
        .expect("a span of a retried call");
    let annotation = &retried.annotations.first().expect("an annotation").1;
    assert_eq!(annotation, "retry 1: gRPC UNAVAILABLE from echo-1");
    assert_eq!(retried.tags["rpc.grpc.status_code"], "0");
}

both_paths!(grpc_timeout_is_the_calls_deadline);
async fn grpc_timeout_is_the_calls_deadline() {
    let server = GrpcServer::start("echo", false);
    let running = start(&echo_manifest(&server, "      timeout: 20s\n")).await;
    // A real client's deadline: DEADLINE_EXCEEDED, quickly.
    let outcome = grpc_call(
        running.gateway,
        "slow",
        &["--message", "10", "--deadline", "0.2"],
    )
    .await;
    assert_eq!(code(&outcome), "DEADLINE_EXCEEDED", "{outcome}");
    assert!(
        outcome["elapsed"].as_f64().expect("elapsed") < 2.0,
        "{outcome}"
    );
    // The service gets what is left of it.
    let outcome = grpc_call(running.gateway, "deadline", &["--deadline", "5"]).await;
    let seen: f64 = texts(&outcome)[0].parse().expect("seconds left");
    assert!(seen > 3.0 && seen <= 5.0, "the server saw {seen} s left");
    // The proxy itself ends the call at the deadline, though the client would wait.
    let stream = tokio::net::TcpStream::connect(running.gateway)
        .await
        .expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("HTTP/2 handshake");
    tokio::spawn(connection);
    let request = http::Request::post(running.url("/test.Echo/Slow"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", "200m")
        .body(Full::new(message(b"10")))
        .expect("request");
    let started = Instant::now();
    let response = sender.send_request(request).await.expect("response");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["grpc-status"], "4", "DEADLINE_EXCEEDED");
    let text = response.headers()["grpc-message"].to_str().expect("text");
    assert!(text.contains("grpc-timeout"), "{text}");
    let body = response.into_body().collect().await.expect("body");
    assert!(body.to_bytes().is_empty());
}

both_paths!(proxy_failures_are_grpc_statuses);
async fn proxy_failures_are_grpc_statuses() {
    let server = GrpcServer::start("echo", false);
    let yaml = format!(
        "services:\n  echo:\n    external: {}\n    http2: true\n\
         \x20   circuit_breaker: {{max_requests: 1, max_pending: 0}}\n\
         \x20 down:\n    image: down:1\n    http2: true\n\
         gateway:\n  routes:\n\
         \x20   - match: {{prefix: /test.Echo/, headers: {{x-small: {{present: true}}}}}}\n      service: echo\n      max_request_body: 1k\n\
         \x20   - match: {{prefix: /test.Echo/}}\n      service: echo\n\
         \x20   - match: {{prefix: /test.Down/}}\n      service: down\n",
        server.url()
    );
    let running = start(&yaml).await;
    let target = running.gateway;

    let no_route = grpc_call(target, "method", &["--method", "/other.Nothing/Call"]).await;
    assert_eq!(code(&no_route), "UNIMPLEMENTED", "{no_route}");
    assert!(details(&no_route).contains("no route matches `/other.Nothing/Call`"));
    assert!(details(&no_route).contains("/__sandbox/routes"));

    let down = grpc_call(target, "method", &["--method", "/test.Down/Call"]).await;
    assert_eq!(code(&down), "UNAVAILABLE", "{down}");
    assert!(details(&down).contains("`down` has no running replica"));
    assert!(details(&down).contains("next: sandbox logs down"));

    let abort = grpc_call(
        target,
        "unary",
        &["--metadata", "x-sandbox-fault-abort=503"],
    )
    .await;
    assert_eq!(code(&abort), "UNAVAILABLE", "{abort}");
    assert!(details(&abort).contains("fault injected by sandbox: abort with 503"));
    let abort = grpc_call(
        target,
        "unary",
        &["--metadata", "x-sandbox-fault-abort=403"],
    )
    .await;
    assert_eq!(code(&abort), "PERMISSION_DENIED", "{abort}");
    let abort = grpc_call(
        target,
        "unary",
        &["--metadata", "x-sandbox-fault-abort=RESOURCE_EXHAUSTED"],
    )
    .await;
    assert_eq!(code(&abort), "RESOURCE_EXHAUSTED", "{abort}");

    let large = grpc_call(
        target,
        "unary",
        &["--size", "4096", "--metadata", "x-small=1"],
    )
    .await;
    assert_eq!(code(&large), "RESOURCE_EXHAUSTED", "{large}");
    assert!(details(&large).contains("max_request_body"), "{large}");

    // One call in flight fills the circuit breaker: the next is refused.
    let slow = tokio::spawn(async move { grpc_call(target, "slow", &["--message", "1.5"]).await });
    tokio::time::sleep(Duration::from_millis(700)).await;
    let open = grpc_call(target, "unary", &[]).await;
    assert_eq!(code(&open), "UNAVAILABLE", "{open}");
    assert!(details(&open).contains("circuit breaker"), "{open}");
    assert_eq!(code(&slow.await.expect("slow call")), "OK");
}

both_paths!(grpc_spans_name_the_method_and_carry_its_status);
async fn grpc_spans_name_the_method_and_carry_its_status() {
    let log = AccessLog::capture();
    let server = GrpcServer::start("echo", false);
    let (running, spans) = start_recorded(&echo_manifest(&server, "")).await;
    let outcome = grpc_call(running.gateway, "unary", &[]).await;
    assert_eq!(code(&outcome), "OK");
    let outcome = grpc_call(running.gateway, "fail", &["--message", "NOT_FOUND gone"]).await;
    assert_eq!(code(&outcome), "NOT_FOUND");
    let recorded = spans.take();
    let span = |name: &str| {
        recorded
            .iter()
            .find(|span| span.kind == SpanKind::Client && span.name == name)
            .unwrap_or_else(|| panic!("a client span named {name}: {recorded:?}"))
    };
    let unary = span("/test.Echo/Unary");
    assert_eq!(unary.tags["rpc.system"], "grpc");
    assert_eq!(unary.tags["rpc.service"], "test.Echo");
    assert_eq!(unary.tags["rpc.method"], "Unary");
    assert_eq!(unary.tags["rpc.grpc.status_code"], "0");
    assert!(!unary.tags.contains_key("error"));
    let failed = span("/test.Echo/Fail");
    assert_eq!(failed.tags["rpc.grpc.status_code"], "5");
    assert_eq!(failed.tags["error"], "NOT_FOUND: gone");
    let text = log.text();
    let failed_line = text
        .lines()
        .find(|line| line.contains("/test.Echo/Fail"))
        .unwrap_or_else(|| panic!("an access-log line for the failed call:\n{text}"));
    assert!(
        failed_line.contains("grpc_status=\"NOT_FOUND\"")
            && failed_line.contains("NOT_FOUND: gone"),
        "{failed_line}"
    );
    let metrics = running.proxy.metrics().render();
    assert!(
        metrics.contains(r#"sandbox_proxy_grpc_calls_total{route="prefix:/test.Echo/",service="echo",grpc_status="NOT_FOUND"} 1"#),
        "{metrics}"
    );
}
