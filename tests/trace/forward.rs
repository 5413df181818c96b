//! Forwarding every ingested span to another Zipkin collector.

use std::time::Duration;

use http::StatusCode;
use sandbox::trace::{serve, Store, TraceConfig, TraceError};
use tokio_util::sync::CancellationToken;

use crate::util::{seed_one, span, start, start_with, TestServer};

async fn eventually(server: &TestServer, path: &str, done: impl Fn(&str) -> bool) -> String {
    for _ in 0..100 {
        let text = server.get(path).await.text();
        if done(&text) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{path} never got there; last: {}",
        server.get(path).await.text()
    );
}

#[tokio::test]
async fn spans_from_http_and_from_the_store_api_are_forwarded() {
    let collector = start().await;
    let config = TraceConfig {
        forward: Some(collector.url("")),
        ..TraceConfig::default()
    };
    let sandbox = start_with(config).await;
    seed_one(&sandbox).await;
    sandbox
        .store
        .ingest(vec![span(2, 1, None, "proxy", "get", 1)]);
    eventually(&collector, "/api/v2/services", |t| {
        t.contains("proxy") && t.contains("svc")
    })
    .await;
    assert_eq!(
        collector.get("/api/v2/trace/0000000000000001").await.status,
        StatusCode::OK
    );
    eventually(&sandbox, "/prometheus", |t| {
        t.contains("zipkin_forward_spans_total 2")
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_collector_is_counted_and_never_blocks_ingest() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let config = TraceConfig {
        forward: Some(format!("http://{closed}/api/v2/spans")),
        ..TraceConfig::default()
    };
    let sandbox = start_with(config).await;
    seed_one(&sandbox).await;
    eventually(&sandbox, "/prometheus", |t| {
        t.contains("zipkin_forward_spans_failed_total 1")
    })
    .await;
    assert_eq!(
        sandbox.get("/api/v2/trace/0000000000000001").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_invalid_forward_url_is_a_startup_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = TraceConfig {
        forward: Some("https://zipkin.example.com".into()),
        ..TraceConfig::default()
    };
    let error = serve(
        vec![listener],
        Store::new(10),
        config,
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, TraceError::InvalidForwardUrl { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("only http://"), "{error}");
}
