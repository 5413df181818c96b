//! What passes through untouched: WebSocket upgrades, streamed bodies both ways, h2c upstreams.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::util::{get, respond, send, start, start_demo};

async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let read = stream.read(&mut byte).await.expect("read head");
        assert!(
            read > 0,
            "closed during head: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

// HTTP/1.1 only: an HTTP/1.1 `Upgrade: websocket` (HTTP/2 has no upgrade).
h1_only!(websocket_upgrade_passes_through);
async fn websocket_upgrade_passes_through() {
    let demo = start_demo().await;
    let running = start(&format!(
        "services:\n  demo:\n    external: http://{}\n",
        demo.address
    ))
    .await;
    let mut stream = TcpStream::connect(running.gateway).await.expect("connect");
    stream
        .write_all(
            b"GET /demo/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .expect("handshake");
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | 5];
    frame.extend_from_slice(&mask);
    frame.extend(
        b"hello"
            .iter()
            .enumerate()
            .map(|(index, byte)| byte ^ mask[index % 4]),
    );
    stream.write_all(&frame).await.expect("frame");
    let mut echo = [0u8; 7];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut echo))
        .await
        .expect("echo in time")
        .expect("echo");
    assert_eq!(&echo[..2], &[0x81, 5]);
    assert_eq!(&echo[2..], b"hello");
}

both_paths!(streamed_response_arrives_chunk_by_chunk);
async fn streamed_response_arrives_chunk_by_chunk() {
    let demo = start_demo().await;
    let running = start(&format!(
        "services:\n  demo:\n    external: http://{}\n",
        demo.address
    ))
    .await;
    let started = Instant::now();
    let response = respond(
        Request::get(running.url("/demo/stream?chunks=4&interval_ms=250"))
            .body(Full::default())
            .expect("request"),
    )
    .await;
    assert_eq!(response.status(), 200);
    let mut body: Incoming = response.into_body();
    let first = body.frame().await.expect("a frame").expect("data");
    let first_at = started.elapsed();
    assert!(first.data_ref().is_some_and(|data| !data.is_empty()));
    let rest = body.collect().await.expect("rest").to_bytes();
    let total = started.elapsed();
    assert!(
        first_at < Duration::from_millis(500),
        "first chunk after {first_at:?}"
    );
    assert!(
        total >= Duration::from_millis(700),
        "whole stream after {total:?}"
    );
    assert!(!rest.is_empty());
}

both_paths!(large_request_body_streams_upstream);
async fn large_request_body_streams_upstream() {
    let demo = start_demo().await;
    let running = start(&format!(
        "services:\n  demo:\n    external: http://{}\n",
        demo.address
    ))
    .await;
    let body = "x".repeat(300 * 1024);
    let answer = send("POST", &running.url("/demo/echo"), &[], &body).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.json()["body"].as_str().map(str::len),
        Some(body.len())
    );
}

both_paths!(h2c_upstreams_when_asked);
async fn h2c_upstreams_when_asked() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(|request: http::Request<Incoming>| async move {
                        let version = format!("{:?}", request.version());
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            Bytes::from(version),
                        )))
                    });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let running = start(&format!(
        "services:\n  grpc:\n    external: http://{address}\n    http2: true\n"
    ))
    .await;
    let answer = get(&running.url("/grpc/x"), &[]).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "HTTP/2.0"));
}
