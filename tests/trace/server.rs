//! HTTP behaviour: CORS, the `/zipkin/` prefix, UI, health, info, unknown routes, h2c, shutdown.

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};

use crate::util::{seed_one, start, strings};

#[tokio::test]
async fn cors_preflight_and_header() {
    let server = start().await;
    let reply = server
        .send(
            Method::OPTIONS,
            "/api/v2/spans",
            &[
                ("origin", "http://localhost:3000"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
            ],
            Bytes::new(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(reply.headers["access-control-allow-origin"], "*");
    assert!(reply.headers["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    assert_eq!(
        reply.headers["access-control-allow-headers"],
        "content-type"
    );
    let reply = server
        .send(
            Method::GET,
            "/api/v2/services",
            &[("origin", "http://x")],
            Bytes::new(),
        )
        .await;
    assert_eq!(reply.headers["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn the_api_and_ui_are_also_served_under_zipkin() {
    let server = start().await;
    seed_one(&server).await;
    assert_eq!(
        strings(&server.get("/zipkin/api/v2/services").await),
        vec!["svc"]
    );
    assert_eq!(
        server
            .get("/zipkin/api/v2/trace/0000000000000001")
            .await
            .status,
        StatusCode::OK
    );
    let reply = server
        .post("/zipkin/api/v2/spans", "application/json", "[]")
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    for path in ["/", "/zipkin/", "/zipkin"] {
        let reply = server.get(path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert!(reply.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let page = reply.text();
        assert!(
            page.contains("api/v2/traces") && page.contains("dependencies"),
            "the UI uses the JSON API"
        );
        assert!(
            !page.contains("src=\"http") && !page.contains("href=\"http"),
            "no external assets"
        );
    }
}

#[tokio::test]
async fn health_info_and_unknown_routes() {
    let server = start().await;
    let health = server.get("/health").await.json();
    assert_eq!(health["status"], "UP");
    assert_eq!(health["zipkin"]["status"], "UP");
    assert!(server.get("/info").await.json()["zipkin"]["version"].is_string());
    assert_eq!(
        server.get("/api/v2/nothing").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(server.get("/nothing").await.status, StatusCode::NOT_FOUND);
    let reply = server
        .send(Method::PUT, "/api/v2/spans", &[], Bytes::new())
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers["allow"], "GET, HEAD, POST, OPTIONS");
    assert_eq!(
        server
            .send(Method::DELETE, "/api/v2/services", &[], Bytes::new())
            .await
            .status,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn h2c_prior_knowledge_works() {
    let server = start().await;
    let client: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .http2_only(true)
            .build_http();
    let response = client
        .get(server.url("/health").parse().unwrap())
        .await
        .unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::OK);
    let _ = response.into_body().collect().await.unwrap();
}

#[tokio::test]
async fn shutdown_stops_the_server_promptly() {
    let server = start().await;
    seed_one(&server).await;
    server.shutdown.cancel();
    tokio::time::timeout(std::time::Duration::from_secs(10), server.task)
        .await
        .expect("stops within the grace period")
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(server.address)
            .await
            .is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn standalone_reports_a_bind_error() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = sandbox::trace::run_standalone(
        taken.local_addr().unwrap(),
        10,
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(error.to_string().starts_with("cannot listen on"), "{error}");
}

#[tokio::test]
async fn an_in_flight_request_finishes_during_shutdown() {
    let server = start().await;
    let (sender, receiver) =
        tokio::sync::mpsc::channel::<Result<hyper::body::Frame<Bytes>, std::io::Error>>(4);
    let body = http_body_util::StreamBody::new(tokio_stream_from(receiver));
    let client: hyper_util::client::legacy::Client<_, _> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let request = http::Request::post(server.url("/api/v2/spans"))
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    let in_flight = tokio::spawn(client.request(request));
    sender
        .send(Ok(hyper::body::Frame::data(Bytes::from_static(
            b"[{\"traceId\":\"a\",",
        ))))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    server.shutdown.cancel();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    sender
        .send(Ok(hyper::body::Frame::data(Bytes::from_static(
            b"\"id\":\"b\"}]",
        ))))
        .await
        .unwrap();
    drop(sender);
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(server.store.span_count(), 1);
}

fn tokio_stream_from<T: Send + 'static>(
    mut receiver: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}
