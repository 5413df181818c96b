//! Built-in endpoints: health, admin, echo, status, delay, bytes, stream, listing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::util::{exchange, get, request, Service};

#[test]
fn health_is_up_and_can_be_flipped_at_runtime() {
    let service = Service::start(&[("SERVICE_NAME", "inventory")]);
    let reply = get(service.port, "/health");
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (200, r#"{"status":"UP","service":"inventory"}"#)
    );
    let flip = request(service.port, "POST", "/admin/health?status=503", &[], "");
    assert_eq!(
        (flip.status, flip.text().as_str()),
        (200, r#"{"service":"inventory","health_status":503}"#)
    );
    let reply = get(service.port, "/health");
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (503, r#"{"status":"DOWN","service":"inventory"}"#)
    );
    assert_eq!(
        request(service.port, "POST", "/admin/health", &[], "").status,
        200
    );
    assert_eq!(
        get(service.port, "/health").status,
        200,
        "no status restores the configured one"
    );
    assert_eq!(
        request(service.port, "POST", "/admin/health?status=abc", &[], "").status,
        400
    );
}

#[test]
fn health_status_comes_from_the_environment() {
    let service = Service::start(&[("HEALTH_STATUS", "500"), ("OTEL_SERVICE_NAME", "otel-name")]);
    let reply = get(service.port, "/health");
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (500, r#"{"status":"DOWN","service":"otel-name"}"#)
    );
}

#[test]
fn echo_returns_the_request() {
    let service = Service::start(&[("SERVICE_NAME", "echoer")]);
    let reply = request(
        service.port,
        "PUT",
        "/echo/some/path?a=1&b=two",
        &[("X-Custom", "v1"), ("x-custom", "v2")],
        "héllo",
    );
    assert_eq!(reply.status, 200);
    let text = reply.text();
    for expected in [
        r#""service":"echoer""#,
        r#""method":"PUT""#,
        r#""path":"/echo/some/path""#,
        r#""query":"a=1&b=two""#,
        r#""x-custom":"v1, v2""#,
        r#""body":"héllo""#,
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
}

#[test]
fn echo_decodes_a_chunked_request_body() {
    let service = Service::start(&[]);
    let raw = b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    let reply = exchange(service.port, raw);
    assert_eq!(reply.status, 200);
    assert!(
        reply.text().contains(r#""body":"hello world""#),
        "{}",
        reply.text()
    );
}

#[test]
fn status_delay_and_bytes() {
    let service = Service::start(&[("SERVICE_NAME", "s")]);
    let teapot = get(service.port, "/status/418");
    assert_eq!(
        (teapot.status, teapot.text().as_str()),
        (418, r#"{"service":"s","status":418}"#)
    );
    assert_eq!(
        request(service.port, "DELETE", "/status/503", &[], "").status,
        503
    );
    assert_eq!(get(service.port, "/status/99").status, 400);
    let started = Instant::now();
    let delayed = get(service.port, "/delay/300");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(delayed.text(), r#"{"service":"s","delayed_ms":300}"#);
    let bytes = get(service.port, "/bytes/100000");
    assert_eq!((bytes.status, bytes.body.len()), (200, 100_000));
    assert!(bytes.body.starts_with(b"abcdefghijklmnopqrstuvwxyzabc"));
    assert_eq!(get(service.port, "/bytes/0").body.len(), 0);
}

#[test]
fn stream_sends_one_flushed_chunk_per_line() {
    let service = Service::start(&[("SERVICE_NAME", "s")]);
    let mut stream = TcpStream::connect(("127.0.0.1", service.port)).expect("connect");
    stream
        .write_all(b"GET /stream?chunks=3&interval_ms=300 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        reader.read_line(&mut head).expect("head");
    }
    assert!(head.contains("Transfer-Encoding: chunked"), "{head}");
    let mut size = String::new();
    reader.read_line(&mut size).expect("first chunk size");
    let first_chunk_at = Instant::now();
    let mut rest = String::new();
    reader.read_to_string(&mut rest).expect("rest");
    assert!(
        first_chunk_at.elapsed() >= Duration::from_millis(500),
        "the first chunk arrived before the later ones were due (not flushed per chunk?)"
    );
    let line = r#"{"service":"s","chunk":1,"of":3}"#;
    assert_eq!(
        usize::from_str_radix(size.trim(), 16).ok(),
        Some(line.len() + 1)
    );
    assert!(rest.starts_with(&format!("{line}\n\r\n")), "{rest}");
    assert!(
        rest.contains(r#"{"service":"s","chunk":3,"of":3}"#),
        "{rest}"
    );
    assert!(rest.ends_with("0\r\n\r\n"), "{rest}");
}

#[test]
fn root_lists_own_and_builtin_routes() {
    let service = Service::start(&[("ROUTES", "GET /ping => text pong")]);
    let reply = get(service.port, "/");
    let text = reply.text();
    assert!(
        text.contains(r#""routes":["GET /ping => text 200 pong"]"#),
        "{text}"
    );
    assert!(
        text.contains(r#""GET /health""#) && text.contains(r#""GET /ws""#),
        "{text}"
    );
    let pong = get(service.port, "/ping");
    assert_eq!((pong.status, pong.text().as_str()), (200, "pong"));
    assert_eq!(
        pong.header("content-type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(get(service.port, "/missing").status, 404);
}
