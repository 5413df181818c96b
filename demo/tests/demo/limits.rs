//! Connection handling: keep-alive, `Connection: close`, body and header limits, `100 Continue`.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::util::{exchange, read_reply, Service};

fn connect(service: &Service) -> (TcpStream, BufReader<TcpStream>) {
    let stream = TcpStream::connect(("127.0.0.1", service.port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let reader = BufReader::new(stream.try_clone().expect("clone"));
    (stream, reader)
}

#[test]
fn keep_alive_serves_several_requests_until_connection_close() {
    let service = Service::start(&[]);
    let (mut stream, mut reader) = connect(&service);
    stream
        .write_all(b"GET /status/201 HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("first");
    assert_eq!(read_reply(&mut reader).status, 201);
    stream
        .write_all(b"GET /status/202 HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("second");
    assert_eq!(read_reply(&mut reader).status, 202);
    stream
        .write_all(b"GET /status/203 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("third");
    let last = read_reply(&mut reader);
    assert_eq!(
        (last.status, last.header("connection").as_deref()),
        (203, Some("close"))
    );
    let mut rest = Vec::new();
    assert_eq!(
        reader.read_to_end(&mut rest).expect("eof"),
        0,
        "closed after `Connection: close`"
    );
}

#[test]
fn oversized_body_is_413() {
    let service = Service::start(&[]);
    let body = vec![b'x'; 1024 * 1024 + 1];
    let mut raw = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    assert_eq!(exchange(service.port, &raw).status, 413);
    let chunk = format!("{:x}\r\n{}\r\n", 700 * 1024, "y".repeat(700 * 1024));
    let chunked = format!("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}{chunk}0\r\n\r\n");
    assert_eq!(exchange(service.port, chunked.as_bytes()).status, 413);
}

#[test]
fn body_of_exactly_one_mebibyte_is_accepted() {
    let service = Service::start(&[]);
    let body = "z".repeat(1024 * 1024);
    let raw = format!("POST /status/200 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    assert_eq!(exchange(service.port, raw.as_bytes()).status, 200);
}

#[test]
fn oversized_headers_are_431_and_garbage_is_400() {
    let service = Service::start(&[]);
    let raw = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    assert_eq!(exchange(service.port, raw.as_bytes()).status, 431);
    assert_eq!(exchange(service.port, b"NOT HTTP\r\n\r\n").status, 400);
}

#[test]
fn expect_continue_gets_an_interim_response() {
    let service = Service::start(&[]);
    let (mut stream, mut reader) = connect(&service);
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
        .expect("head");
    let interim = read_reply(&mut reader);
    assert_eq!(interim.status, 100);
    stream.write_all(b"ping").expect("body");
    let reply = read_reply(&mut reader);
    assert_eq!(reply.status, 200);
    assert!(reply.text().contains(r#""body":"ping""#));
}

#[test]
fn connections_over_the_cap_get_503() {
    let service = Service::start(&[("MAX_CONNECTIONS", "2")]);
    std::thread::sleep(Duration::from_millis(300)); // let the readiness probe's connection end
    let mut held = Vec::new();
    for _ in 0..2 {
        let (mut stream, mut reader) = connect(&service);
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("request");
        assert_eq!(
            read_reply(&mut reader).status,
            200,
            "kept-alive connection is served"
        );
        held.push((stream, reader));
    }
    let (_third, mut reader) = connect(&service);
    let reply = read_reply(&mut reader);
    assert_eq!(reply.status, 503);
    assert!(reply.text().contains("too many connections"));
    drop(held);
}
