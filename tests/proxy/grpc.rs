//! HTTP/2 from clients (h2c, prior knowledge) and gRPC through the gateway: unary and
//! server-streaming calls to an h2c upstream, trailers end to end, messages streamed as they come,
//! HTTP/1.1 still served on the same listener.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::grpc_peers::message;
use crate::util::{get, manifest, start, Running, TestUpstream};

type Frames = StreamBody<frames::Receiver>;

fn ok_trailers() -> HeaderMap {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    trailers.insert("grpc-message", HeaderValue::from_static("done"));
    trailers
}

/// An h2c gRPC server: `/demo.Echo/Unary` echoes the request's message; `/demo.Echo/Stream`
/// sends `one`, waits for `next` (so a proxy that buffered would never deliver it), then `two`,
/// `three` and the trailers; any other path answers `plain` (for HTTP/1.1 clients through the
/// gateway).
async fn grpc_upstream(next: Arc<Notify>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let next = next.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    answer(next.clone(), request)
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    address
}

async fn answer(
    next: Arc<Notify>,
    request: Request<Incoming>,
) -> Result<Response<Frames>, Infallible> {
    let (sender, receiver) = frames::channel();
    let path = request.uri().path().to_string();
    let te = request.headers().get("te").cloned();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|body| body.to_bytes());
    tokio::spawn(async move {
        match path.as_str() {
            "/demo.Echo/Unary" => {
                let body = body.unwrap_or_default();
                let _ = sender.send(Frame::data(body)).await;
                let _ = sender.send(Frame::trailers(ok_trailers())).await;
            }
            "/demo.Echo/Stream" => {
                let _ = sender.send(Frame::data(message(b"one"))).await;
                next.notified().await;
                let _ = sender.send(Frame::data(message(b"two"))).await;
                let _ = sender.send(Frame::data(message(b"three"))).await;
                let _ = sender.send(Frame::trailers(ok_trailers())).await;
            }
            _ => {
                let _ = sender.send(Frame::data(Bytes::from("plain"))).await;
            }
        }
    });
    let mut response = Response::new(StreamBody::new(receiver));
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/grpc"));
    if let Some(te) = te {
        response.headers_mut().insert("x-te-received", te);
    }
    Ok(response)
}

/// A prior-knowledge HTTP/2 client connected to the gateway.
async fn h2_client(running: &Running) -> hyper::client::conn::http2::SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(running.gateway).await.expect("connect");
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("HTTP/2 handshake with the gateway");
    tokio::spawn(connection);
    sender
}

fn call(running: &Running, method: &str, payload: &[u8]) -> Request<Full<Bytes>> {
    Request::post(running.url(&format!("/demo.Echo/{method}")))
        .version(http::Version::HTTP_2)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(message(payload)))
        .expect("request")
}

async fn grpc_gateway(next: Arc<Notify>) -> Running {
    let address = grpc_upstream(next).await;
    start(&format!(
        "services:\n  grpc:\n    external: http://{address}\n    http2: true\n\
         gateway:\n  routes:\n    - match: {{prefix: /demo.Echo/}}\n      service: grpc\n\
         \x20   - match: {{prefix: /grpc}}\n      service: grpc\n"
    ))
    .await
}

/// Reads the next frame, failing the test if none comes within a few seconds.
async fn next_frame(body: &mut Incoming) -> Frame<Bytes> {
    tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("a frame within 5 s: the gateway must not buffer the stream")
        .expect("a frame before the end")
        .expect("a frame, not an error")
}

both_paths!(grpc_unary_over_h2c_carries_trailers);
async fn grpc_unary_over_h2c_carries_trailers() {
    let running = grpc_gateway(Arc::new(Notify::new())).await;
    let mut client = h2_client(&running).await;
    let response = client
        .send_request(call(&running, "Unary", b"hello"))
        .await
        .expect("response");
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.headers()["content-type"], "application/grpc");
    assert_eq!(
        response.headers()["x-te-received"],
        "trailers",
        "`te: trailers` reaches the upstream"
    );
    assert_eq!(response.headers()["x-sandbox-upstream"], "grpc-external");
    let mut body = response.into_body();
    let data = next_frame(&mut body).await.into_data().expect("data");
    assert_eq!(data, message(b"hello"));
    let trailers = next_frame(&mut body)
        .await
        .into_trailers()
        .expect("trailers");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["grpc-message"], "done");

    // The same listener still serves HTTP/1.1.
    let answer = get(&running.url("/grpc/plain"), &[]).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "plain"));
}

both_paths!(grpc_server_streaming_is_streamed);
async fn grpc_server_streaming_is_streamed() {
    let next = Arc::new(Notify::new());
    let running = grpc_gateway(next.clone()).await;
    let mut client = h2_client(&running).await;
    let response = client
        .send_request(call(&running, "Stream", b""))
        .await
        .expect("response");
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    // The first message arrives while the upstream is still waiting to send the next.
    let first = next_frame(&mut body).await.into_data().expect("data");
    assert_eq!(first, message(b"one"));
    next.notify_one();
    let mut rest = Vec::new();
    let trailers = loop {
        let frame = next_frame(&mut body).await;
        match frame.into_data() {
            Ok(data) => rest.extend_from_slice(&data),
            Err(frame) => break frame.into_trailers().expect("trailers"),
        }
    };
    let expected: Vec<u8> = [message(b"two"), message(b"three")].concat();
    assert_eq!(rest, expected);
    assert_eq!(trailers["grpc-status"], "0");
}

both_paths!(a_stream_past_its_grpc_timeout_is_ended_by_the_proxy);
async fn a_stream_past_its_grpc_timeout_is_ended_by_the_proxy() {
    // The upstream sends `one` and then waits (it never looks at `grpc-timeout`): the proxy ends
    // the call at the caller's deadline, with DEADLINE_EXCEEDED in the trailers.
    let running = grpc_gateway(Arc::new(Notify::new())).await;
    let mut client = h2_client(&running).await;
    let mut request = call(&running, "Stream", b"");
    request
        .headers_mut()
        .insert("grpc-timeout", http::HeaderValue::from_static("300m"));
    let started = std::time::Instant::now();
    let response = client.send_request(request).await.expect("response");
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let first = next_frame(&mut body).await.into_data().expect("data");
    assert_eq!(first, message(b"one"));
    let trailers = next_frame(&mut body)
        .await
        .into_trailers()
        .expect("trailers at the deadline");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(3),
        "ended at the deadline: {elapsed:?}"
    );
    assert_eq!(trailers["grpc-status"], "4", "DEADLINE_EXCEEDED");
    let text = trailers["grpc-message"].to_str().expect("text");
    assert!(text.contains("grpc-timeout"), "{text}");
}

/// Frames from a channel, so the upstream sends data and trailers when it likes.
mod frames {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use bytes::Bytes;
    use hyper::body::Frame;

    pub struct Receiver(tokio::sync::mpsc::Receiver<Frame<Bytes>>);

    pub fn channel() -> (tokio::sync::mpsc::Sender<Frame<Bytes>>, Receiver) {
        let (sender, receiver) = tokio::sync::mpsc::channel(8);
        (sender, Receiver(receiver))
    }

    impl futures_util::Stream for Receiver {
        type Item = Result<Frame<Bytes>, std::convert::Infallible>;

        fn poll_next(
            mut self: Pin<&mut Self>,
            context: &mut Context<'_>,
        ) -> Poll<Option<Self::Item>> {
            self.0.poll_recv(context).map(|frame| frame.map(Ok))
        }
    }
}

/// The status of a call answered trailers-only (the proxy's own gRPC errors): the status and
/// message are in the headers and the body is empty.
async fn failed_call(running: &Running, path: &str) -> (String, String) {
    let mut client = h2_client(running).await;
    let mut request = call(running, "Unary", b"hello");
    *request.uri_mut() = running.url(path).parse().expect("uri");
    let response = client.send_request(request).await.expect("response");
    assert_eq!(response.status(), 200, "gRPC errors travel as HTTP 200");
    assert_eq!(response.headers()["content-type"], "application/grpc");
    let header = |name: &str| response.headers()[name].to_str().expect("text").to_string();
    let status = (header("grpc-status"), header("grpc-message"));
    let body = response.into_body().collect().await.expect("body");
    assert!(body.to_bytes().is_empty(), "no HTML page, no body");
    status
}

both_paths!(grpc_calls_get_grpc_errors_from_the_proxy);
async fn grpc_calls_get_grpc_errors_from_the_proxy() {
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = closed.local_addr().expect("address");
    drop(closed);
    let running = start(&format!(
        "services:\n  gone:\n    external: http://{address}\n    http2: true\n\
         gateway:\n  routes:\n    - match: {{prefix: /gone.Svc/}}\n      service: gone\n"
    ))
    .await;

    let (status, message) = failed_call(&running, "/other.Svc/Call").await;
    assert_eq!(status, "12", "UNIMPLEMENTED for no route: {message}");
    assert!(
        message.contains("no route matches `/other.Svc/Call`"),
        "{message}"
    );
    assert!(message.contains("next: see the routes"), "{message}");

    let (status, message) = failed_call(&running, "/gone.Svc/Call").await;
    assert_eq!(
        status, "14",
        "UNAVAILABLE when the service cannot answer: {message}"
    );
    assert!(message.contains("`gone`"), "{message}");
    assert!(message.contains("next: sandbox logs gone"), "{message}");
}

both_paths!(curl_with_http2_prior_knowledge);
async fn curl_with_http2_prior_knowledge() {
    let running = grpc_gateway(Arc::new(Notify::new())).await;
    let url = running.url("/grpc/plain");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["-sS", "--http2-prior-knowledge", "--max-time", "10"])
            .args(["-w", "\n%{http_version} %{http_code}", &url])
            .output()
            .expect("curl must be installed (`.ci/setup` installs it)")
    })
    .await
    .expect("curl ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout, "plain\n2 200");
}

both_paths!(http2_clients_reach_http1_upstreams);
async fn http2_clients_reach_http1_upstreams() {
    let a = TestUpstream::start("a").await;
    let running = start(&manifest(&[&a], "")).await;
    let mut client = h2_client(&running).await;
    let request = Request::post(running.url("/a/items?page=2"))
        .version(http::Version::HTTP_2)
        .header("x-custom", "kept")
        .body(Full::new(Bytes::from("posted")))
        .expect("request");
    let response = client.send_request(request).await.expect("response");
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), http::Version::HTTP_2);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let echo: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(echo["upstream"], "a");
    assert_eq!(echo["query"], "page=2");
    assert_eq!(echo["body"], "posted");
    assert_eq!(echo["headers"]["x-custom"], "kept");
    assert!(
        echo["headers"]["host"].is_string(),
        "a `Host` for HTTP/1.1: {echo}"
    );
}
