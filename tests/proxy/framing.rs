//! HTTP/1.1 framing through the gateway, the same on the fast path and on hyper: responses that
//! carry no body (HEAD, 204, 304), a chunked upstream response, `Connection: close` from either
//! side, keep-alive reuse, and client framing errors answered 400 (the client's fault). HEAD, 204
//! and 304 also go through a client, so an HTTP/2 client gets them right too.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::util::{get, manifest, raw, send, start, TestUpstream};

/// An upstream that answers every request head with `response`, counting connections; it closes
/// the connection after answering when `response` says `connection: close`.
struct CannedUpstream {
    address: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl CannedUpstream {
    async fn start(response: &'static [u8]) -> CannedUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        let close = String::from_utf8_lossy(response)
            .to_ascii_lowercase()
            .contains("connection: close");
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        while let Some(end) = find(&buffer, b"\r\n\r\n") {
                            buffer.drain(..end + 4);
                            if stream.write_all(response).await.is_err() || close {
                                return;
                            }
                        }
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(count) => buffer.extend_from_slice(&chunk[..count]),
                        }
                    }
                });
            }
        });
        CannedUpstream {
            address,
            connections,
        }
    }

    fn manifest(&self) -> String {
        format!(
            "services:\n  canned:\n    external: http://{}\n",
            self.address
        )
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Reads one response head (through the blank line) from `stream`, leaving nothing unread
/// behind it only if the server sent nothing more.
async fn read_head(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> String {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find(buffer, b"\r\n\r\n") {
            let head: Vec<u8> = buffer.drain(..end + 4).collect();
            return String::from_utf8_lossy(&head).to_ascii_lowercase();
        }
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .expect("a response in time")
            .expect("read");
        assert!(read > 0, "closed before a whole head: {buffer:?}");
        buffer.extend_from_slice(&chunk[..read]);
    }
}

/// `content-length` of a lowercased head.
fn length(head: &str) -> Option<usize> {
    head.lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
}

/// Sends `first` on a kept-alive connection, reads its head, then a plain GET: the second
/// response must start right after the first one's head (`first` had no body on the wire).
async fn head_then_next(gateway: SocketAddr, first: &[u8]) -> String {
    let mut stream = TcpStream::connect(gateway).await.expect("connect");
    let mut buffer = Vec::new();
    stream.write_all(first).await.expect("write");
    let head = read_head(&mut stream, &mut buffer).await;
    stream
        .write_all(b"GET /a/next HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let next = read_head(&mut stream, &mut buffer).await;
    assert!(
        next.starts_with("http/1.1 200"),
        "bytes after a bodiless response: {next}"
    );
    head
}

// HTTP/1.1 only: no bytes after a HEAD answer on a raw kept-alive connection.
h1_only!(head_keeps_content_length_and_sends_no_body);
async fn head_keeps_content_length_and_sends_no_body() {
    let a = TestUpstream::start("a").await;
    let running = start(&manifest(&[&a], "")).await;
    let head = head_then_next(running.gateway, b"HEAD /a/x HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(length(&head).is_some_and(|length| length > 0), "{head}");
}

// HTTP/1.1 only: no body bytes after 204/304 on a raw kept-alive connection.
h1_only!(no_content_and_not_modified_have_no_body);
async fn no_content_and_not_modified_have_no_body() {
    let a = TestUpstream::start("a").await;
    let running = start(&manifest(&[&a], "")).await;
    for status in [204, 304] {
        let request = format!("GET /a/status/{status} HTTP/1.1\r\nHost: x\r\n\r\n");
        let head = head_then_next(running.gateway, request.as_bytes()).await;
        assert!(head.starts_with(&format!("http/1.1 {status}")), "{head}");
        assert!(!head.contains("transfer-encoding"), "{head}");
    }
}

// The same answers through a client, in every protocol: HEAD keeps the length and has no body,
// 204 and 304 have neither.
both_paths!(bodiless_answers_through_a_client);
async fn bodiless_answers_through_a_client() {
    let a = TestUpstream::start("a").await;
    let running = start(&manifest(&[&a], "")).await;
    let head = send("HEAD", &running.url("/a/x"), &[], "").await;
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    let length: usize = head.header("content-length").parse().unwrap_or(0);
    assert!(length > 0, "{:?}", head.headers);
    for status in [204, 304] {
        let answer = get(&running.url(&format!("/a/status/{status}")), &[]).await;
        assert_eq!((answer.status, answer.body.as_str()), (status, ""));
        assert_eq!(answer.header("transfer-encoding"), "");
    }
    assert_eq!(get(&running.url("/a/next"), &[]).await.status, 200);
}

both_paths!(chunked_upstream_response_arrives_whole);
async fn chunked_upstream_response_arrives_whole() {
    let upstream = CannedUpstream::start(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
    .await;
    let running = start(&upstream.manifest()).await;
    for _ in 0..2 {
        let answer = get(&running.url("/canned/x"), &[]).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, "hello world");
    }
    assert_eq!(upstream.connections.load(Ordering::SeqCst), 1);
}

both_paths!(upstream_connection_close_is_not_reused);
async fn upstream_connection_close_is_not_reused() {
    let upstream = CannedUpstream::start(
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
    )
    .await;
    let running = start(&upstream.manifest()).await;
    for _ in 0..3 {
        let answer = get(&running.url("/canned/x"), &[]).await;
        assert_eq!((answer.status, answer.body.as_str()), (200, "ok"));
    }
    assert_eq!(upstream.connections.load(Ordering::SeqCst), 3);
}

// HTTP/1.1 only: `Connection: close` (connection headers are illegal in HTTP/2).
h1_only!(client_connection_close_is_honoured);
async fn client_connection_close_is_honoured() {
    let a = TestUpstream::start("a").await;
    let running = start(&manifest(&[&a], "")).await;
    let started = Instant::now();
    let answer = raw(
        running.gateway,
        b"GET /a/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the proxy kept the connection open"
    );
}

// HTTP/1.1 only: a client that shuts its sending side after the request (`nc`, HTTP/1.0
// clients) still gets the answer.
h1_only!(a_client_that_stops_sending_after_its_request_gets_the_answer);
async fn a_client_that_stops_sending_after_its_request_gets_the_answer() {
    let a = TestUpstream::start("a").await;
    let running = start(&manifest(&[&a], "")).await;
    for request in [
        &b"GET /a/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"[..],
        b"GET /a/x HTTP/1.0\r\nHost: x\r\n\r\n",
    ] {
        let mut stream = TcpStream::connect(running.gateway).await.unwrap();
        stream.write_all(request).await.unwrap();
        stream.shutdown().await.unwrap();
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut answer))
            .await
            .expect("the proxy answered in time")
            .unwrap();
        assert!(
            answer.starts_with("HTTP/1."),
            "no answer to {request:?}: {answer:?}"
        );
        assert!(answer.contains(" 200 "), "{answer}");
    }
}

// HTTP/1.1 only: HTTP/1.1 keep-alive on a raw connection.
h1_only!(keep_alive_reuses_both_connections);
async fn keep_alive_reuses_both_connections() {
    let upstream = CannedUpstream::start(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
    let running = start(&upstream.manifest()).await;
    let mut stream = TcpStream::connect(running.gateway).await.expect("connect");
    let mut buffer = Vec::new();
    for _ in 0..3 {
        stream
            .write_all(b"GET /canned/x HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let head = read_head(&mut stream, &mut buffer).await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert_eq!(length(&head), Some(2), "{head}");
        while buffer.len() < 2 {
            let mut chunk = [0u8; 64];
            let read = stream.read(&mut chunk).await.expect("read");
            assert!(read > 0, "closed mid-body");
            buffer.extend_from_slice(&chunk[..read]);
        }
        assert_eq!(buffer.drain(..2).collect::<Vec<u8>>(), b"ok");
    }
    assert_eq!(upstream.connections.load(Ordering::SeqCst), 1);
}

// HTTP/1.1 only: a malformed chunk size (HTTP/2 has no chunked framing).
h1_only!(malformed_chunk_size_is_400);
async fn malformed_chunk_size_is_400() {
    let a = TestUpstream::start("a").await;
    let running = start(&manifest(&[&a], "")).await;
    let answer = raw(
        running.gateway,
        b"POST /a/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.contains("x-sandbox-error-source: downstream"),
        "{answer}"
    );
}

// HTTP/1.1 only: line ends are HTTP/1.1 text framing; HTTP/2 heads are binary.
h1_only!(bare_line_feeds_are_400);
async fn bare_line_feeds_are_400() {
    let a = TestUpstream::start("a").await;
    let running = start(&manifest(&[&a], "")).await;
    let answer = raw(running.gateway, b"GET /a/x HTTP/1.1\nHost: x\n\n").await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(a.hits(), 0);
    // The second request on a kept-alive connection too.
    let answer = raw(
        running.gateway,
        b"GET /a/x HTTP/1.1\r\nHost: x\r\n\r\nGET /a/y HTTP/1.1\r\nHost: x\n\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("HTTP/1.1 400"), "{answer}");
    assert_eq!(a.hits(), 1);
}
