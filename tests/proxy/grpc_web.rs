//! gRPC-Web at the gateway (`grpc_web:` on a route): a browser's binary and text calls, sent by
//! hand over HTTP/1.1 (and HTTP/2), reach the real grpcio server as gRPC and come back as
//! gRPC-Web, trailers in the body; CORS preflights are answered and origins checked.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::grpc_peers::{frames, message, GrpcServer};
use crate::util::{http2, start, Running};

const PAGE: &str = "http://localhost:3000";

/// The route `/test.Echo/` with `grpc_web` (`setting`), to a service without `http2: true`: a
/// gRPC-Web call goes over h2c anyway. `/test.Down/` goes to a service with no replica.
async fn web_gateway(server: &GrpcServer, setting: &str) -> Running {
    start(&format!(
        "services:\n  echo:\n    external: {}\n  down:\n    image: down:1\n\
         gateway:\n  routes:\n    - match: {{prefix: /test.Echo/}}\n      service: echo\n      grpc_web: {setting}\n\
         \x20   - match: {{prefix: /test.Down/}}\n      service: down\n      grpc_web: {setting}\n",
        server.url()
    ))
    .await
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }
}

/// A browser-like request over HTTP/1.1 (`http2`: over h2c instead).
async fn send(request: Request<Full<Bytes>>, http2: bool) -> Answer {
    let client = Client::builder(TokioExecutor::new())
        .http2_only(http2)
        .build_http();
    let response = client.request(request).await.expect("response");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Answer {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

fn call(running: &Running, method: &str, content_type: &str, body: Bytes) -> Request<Full<Bytes>> {
    Request::post(running.url(&format!("/test.Echo/{method}")))
        .header("content-type", content_type)
        .header("x-grpc-web", "1")
        .header("origin", PAGE)
        .body(Full::new(body))
        .expect("request")
}

/// A text body: base64 whose chunks may each be padded; every 4-character quantum decodes on
/// its own.
fn decode_text(body: &[u8]) -> Vec<u8> {
    assert_eq!(body.len() % 4, 0, "whole base64 quanta");
    body.chunks(4)
        .flat_map(|quantum| STANDARD.decode(quantum).expect("base64"))
        .collect()
}

/// The trailer frame's lines as `name:value`.
fn trailer_lines(payload: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(payload)
        .split("\r\n")
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect()
}

both_paths!(grpc_web_binary_calls_get_trailers_in_the_body);
async fn grpc_web_binary_calls_get_trailers_in_the_body() {
    let server = GrpcServer::start("echo", false);
    let running = web_gateway(&server, "true").await;
    for http2 in [false, true] {
        let answer = send(
            call(
                &running,
                "Unary",
                "application/grpc-web+proto",
                message(b"hello"),
            ),
            http2,
        )
        .await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("content-type"), "application/grpc-web+proto");
        assert_eq!(answer.header("access-control-allow-origin"), PAGE);
        assert!(answer
            .header("access-control-expose-headers")
            .contains("grpc-status, grpc-message"));
        let frames = frames(&answer.body);
        assert_eq!(frames.len(), 2, "a message and the trailers: {frames:?}");
        assert_eq!(frames[0], (0, b"hello".to_vec()));
        assert_eq!(frames[1].0, 0x80, "the trailer frame's flag");
        let trailers = trailer_lines(&frames[1].1);
        assert!(
            trailers.contains(&"grpc-status:0".to_string()),
            "{trailers:?}"
        );
        assert!(
            trailers.contains(&"x-replica:echo".to_string()),
            "{trailers:?}"
        );
    }
}

both_paths!(grpc_web_text_calls_are_base64_both_ways);
async fn grpc_web_text_calls_are_base64_both_ways() {
    let server = GrpcServer::start("echo", false);
    let running = web_gateway(&server, "true").await;
    let body = Bytes::from(STANDARD.encode(message(b"3")));
    let answer = send(
        call(&running, "ServerStream", "application/grpc-web-text", body),
        http2(),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), "application/grpc-web-text");
    let received = frames(&decode_text(&answer.body));
    let messages: Vec<&[u8]> = received
        .iter()
        .filter(|(flag, _)| *flag == 0)
        .map(|(_, payload)| payload.as_slice())
        .collect();
    assert_eq!(
        messages,
        [&b"message 1"[..], &b"message 2"[..], &b"message 3"[..]]
    );
    let last = received.last().expect("frames");
    assert_eq!(last.0, 0x80);
    assert!(trailer_lines(&last.1).contains(&"grpc-status:0".to_string()));
    // A non-OK status with its message, in the trailer frame.
    let body = Bytes::from(STANDARD.encode(message(b"NOT_FOUND gone away")));
    let answer = send(
        call(&running, "Fail", "application/grpc-web-text+proto", body),
        http2(),
    )
    .await;
    let received = frames(&decode_text(&answer.body));
    let trailers = trailer_lines(&received.last().expect("frames").1);
    assert!(
        trailers.contains(&"grpc-status:5".to_string()),
        "{trailers:?}"
    );
    assert!(
        trailers.contains(&"grpc-message:gone away".to_string()),
        "{trailers:?}"
    );
}

both_paths!(grpc_web_preflights_and_origins);
async fn grpc_web_preflights_and_origins() {
    let server = GrpcServer::start("echo", false);
    let running = web_gateway(&server, "true").await;
    let preflight = |origin: &str| {
        Request::options(running.url("/test.Echo/Unary"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,x-grpc-web,x-user-agent",
            )
            .body(Full::new(Bytes::new()))
            .expect("request")
    };
    let answer = send(preflight(PAGE), http2()).await;
    assert_eq!(answer.status, 204);
    assert_eq!(answer.header("access-control-allow-origin"), PAGE);
    assert!(answer
        .header("access-control-allow-methods")
        .contains("POST"));
    assert_eq!(
        answer.header("access-control-allow-headers"),
        "content-type,x-grpc-web,x-user-agent"
    );
    assert!(answer
        .header("access-control-expose-headers")
        .contains("grpc-status"));
    // Another site's page: refused, and told which key allows it.
    let answer = send(preflight("http://shop.example"), http2()).await;
    assert_eq!(answer.status, 403);
    assert!(answer.header("access-control-allow-origin").is_empty());
    let mut refused = call(
        &running,
        "Unary",
        "application/grpc-web+proto",
        message(b"x"),
    );
    refused
        .headers_mut()
        .insert("origin", "http://shop.example".parse().expect("value"));
    let answer = send(refused, http2()).await;
    assert_eq!(answer.header("grpc-status"), "7", "PERMISSION_DENIED");
    assert!(answer.header("grpc-message").contains("allow_origins"));

    // A listed origin is allowed, the loopback default no longer.
    let listed = web_gateway(&server, "{allow_origins: [\"http://shop.example\"]}").await;
    let ask = |origin: &str| {
        Request::options(listed.url("/test.Echo/Unary"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .body(Full::new(Bytes::new()))
            .expect("request")
    };
    assert_eq!(send(ask("http://shop.example"), http2()).await.status, 204);
    assert_eq!(send(ask(PAGE), http2()).await.status, 403);
}

both_paths!(grpc_web_failures_are_readable_statuses);
async fn grpc_web_failures_are_readable_statuses() {
    let server = GrpcServer::start("echo", false);
    let running = web_gateway(&server, "true").await;
    let request = Request::post(running.url("/test.Down/Call"))
        .header("content-type", "application/grpc-web+proto")
        .header("origin", PAGE)
        .body(Full::new(message(b"x")))
        .expect("request");
    let answer = send(request, http2()).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), "application/grpc-web+proto");
    assert_eq!(answer.header("grpc-status"), "14", "UNAVAILABLE");
    assert!(answer.header("grpc-message").contains("sandbox logs down"));
    assert_eq!(
        answer.header("access-control-allow-origin"),
        PAGE,
        "the page can read it"
    );
}
