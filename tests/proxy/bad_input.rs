//! Bad input never panics or buffers without bound: malformed heads (400), huge heads (431), slow
//! clients (cut off), garbage from an upstream (502 with the reason), oversized bodies (413).

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::util::{get, manifest, raw, send, start, start_with, Setup, TestUpstream};

// HTTP/1.1 only: a malformed HTTP/1.1 request line, sent as raw bytes.
h1_only!(malformed_request_line_is_400);
async fn malformed_request_line_is_400() {
    let a = TestUpstream::start("a").await;
    let running = start(&manifest(&[&a], "")).await;
    let answer = raw(
        running.gateway,
        b"GET /a/x HTTP/1.1 extra\r\nHost: x\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let answer = raw(running.gateway, b"GET /a/x HTTP/1.1\r\nBad Header\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(a.hits(), 0);
}

// HTTP/1.1 only: a raw HTTP/1.1 head (the same limit for every protocol: the next test).
h1_only!(headers_over_64_kib_are_431);
async fn headers_over_64_kib_are_431() {
    let a = TestUpstream::start("a").await;
    let running = start(&manifest(&[&a], "")).await;
    let mut request = b"GET /a/x HTTP/1.1\r\nHost: x\r\n".to_vec();
    for index in 0..80 {
        request.extend_from_slice(format!("x-filler-{index}: {}\r\n", "y".repeat(1000)).as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    let answer = raw(running.gateway, &request).await;
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "{}",
        &answer[..answer.len().min(200)]
    );
}

// The same limit for a client's request, in HTTP/2 a header list: the proxy's 431, not a
// connection error.
both_paths!(header_lists_over_64_kib_are_431);
async fn header_lists_over_64_kib_are_431() {
    let a = TestUpstream::start("a").await;
    let running = start(&manifest(&[&a], "")).await;
    let names: Vec<String> = (0..80).map(|index| format!("x-filler-{index}")).collect();
    let value = "y".repeat(1000);
    let headers: Vec<(&str, &str)> = names
        .iter()
        .map(|name| (name.as_str(), value.as_str()))
        .collect();
    let answer = get(&running.url("/a/x"), &headers).await;
    assert_eq!(answer.status, 431, "{}", answer.body);
    assert_eq!(answer.header("x-sandbox-error-source"), "downstream");
    assert_eq!(a.hits(), 0);
}

// HTTP/1.1 only: a half-written HTTP/1.1 head, raw bytes.
h1_only!(slow_headers_are_cut_off);
async fn slow_headers_are_cut_off() {
    let a = TestUpstream::start("a").await;
    let setup = Setup {
        tweak: Some(Box::new(|config| {
            config.limits.header_read_timeout = Duration::from_millis(300);
        })),
        ..Setup::default()
    };
    let running = start_with(&manifest(&[&a], ""), setup).await;
    let mut stream = TcpStream::connect(running.gateway).await.expect("connect");
    stream
        .write_all(b"GET /a/x HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the connection was not closed");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(a.hits(), 0);
}

both_paths!(garbage_from_upstream_is_502_with_the_reason);
async fn garbage_from_upstream_is_502_with_the_reason() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buffer = [0u8; 1024];
            let _ = stream.read(&mut buffer).await;
            let _ = stream.write_all(b"SMTP READY\r\n\r\nnot http at all").await;
        }
    });
    let running = start(&format!(
        "services:\n  junk:\n    external: http://{address}\n"
    ))
    .await;
    let answer = get(&running.url("/junk/x"), &[("accept", "application/json")]).await;
    assert_eq!(answer.status, 502);
    let error = answer.json()["error"].as_str().unwrap_or("").to_string();
    assert!(
        error.starts_with("`junk` (junk-external) sent an invalid response"),
        "{error}"
    );
}

both_paths!(oversized_body_is_413);
async fn oversized_body_is_413() {
    let a = TestUpstream::start("a").await;
    let setup = Setup {
        tweak: Some(Box::new(|config| config.limits.max_request_body = 1024)),
        ..Setup::default()
    };
    let running = start_with(&manifest(&[&a], ""), setup).await;
    let answer = send("POST", &running.url("/a/x"), &[], &"z".repeat(4096)).await;
    assert_eq!(answer.status, 413);
    assert_eq!(a.hits(), 0);
    assert_eq!(
        send("POST", &running.url("/a/x"), &[], "small")
            .await
            .status,
        200
    );
}

// HTTP/1.1 only: the extra connection speaks raw HTTP/1.1 bytes.
h1_only!(connection_cap_closes_extra_connections);
async fn connection_cap_closes_extra_connections() {
    let a = TestUpstream::start("a").await;
    let setup = Setup {
        tweak: Some(Box::new(|config| config.limits.max_connections = 1)),
        ..Setup::default()
    };
    let running = start_with(&manifest(&[&a], ""), setup).await;
    let _held = TcpStream::connect(running.gateway).await.expect("first");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let answer = raw(running.gateway, b"GET /a/x HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(
        answer, "",
        "the second connection is closed without an answer"
    );
}
