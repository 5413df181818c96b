//! The mesh intake: a forwarder's connection opens with a PROXY v2 header (token, service, the
//! caller's address, the port dialed). HTTP goes through the mesh's request phases to the
//! service's replica at the dialed port; anything else is L4, one span per connection: spliced
//! here for a forwarder that did not sniff, or decided here and spliced by a forwarder that did
//! (a verdict on the connection, then the forwarder's reports).
//! The forwarder here is faked: it writes the header, then speaks as the caller, or for an L4
//! connection it sniffed reads the verdict and writes reports as a forwarder would.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use sandbox::proxy::{Caller, Endpoint, ProxySpan, SpanKind};
use sandbox_forwarder::sniff::Sniffed;
use sandbox_forwarder::wire::{
    Dial, Dialed, Ended, Ending, Failure, Header, Message, MESSAGE_HEAD,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::util::{self, start_recorded, AccessLog, Answer, Running, Spans, TestUpstream};

/// `l4_only!(name)`: one run, for a test of L4 connections (the HTTP transports and the
/// client's protocol play no part in them).
macro_rules! l4_only {
    ($name:ident) => {
        variants!($name, tokio::test, l4(true, false));
    };
}

const TOKEN: &[u8] = b"0123456789abcdef";
/// The caller's address as the forwarder saw it.
const CALLER: &str = "127.0.0.1:40000";

/// A proxy from `yaml` with its intake listening, the token set, `127.0.0.1` known as
/// `user-1`, and `item`'s replicas at these IPs (port 0: reached at the port dialed).
async fn start_intake(
    yaml: &str,
    replicas: &[(&str, [u8; 4])],
) -> (Running, std::sync::Arc<Spans>, SocketAddr) {
    let (running, spans) = start_recorded(yaml).await;
    running.proxy.set_mesh_token(TOKEN.to_vec());
    running.proxy.set_callers(HashMap::from([(
        "127.0.0.1".parse().expect("ip"),
        Caller {
            service: "user".into(),
            replica: "user-1".into(),
        },
    )]));
    set_replicas(&running, replicas);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind intake");
    let intake = listener.local_addr().expect("address");
    tokio::spawn(
        running
            .proxy
            .clone()
            .serve_intake(listener, running.shutdown.clone()),
    );
    (running, spans, intake)
}

fn set_replicas(running: &Running, replicas: &[(&str, [u8; 4])]) {
    let endpoints = replicas
        .iter()
        .map(|(name, ip)| Endpoint {
            name: (*name).into(),
            address: SocketAddr::from((*ip, 0)),
            healthy: true,
        })
        .collect();
    running.proxy.set_endpoints("item", endpoints);
}

const ITEM: &str = "services:\n  item:\n    image: demo:1\n";

/// What a forwarder that does not sniff does: connects to the intake and writes the header for
/// a caller that dialed `service` on `port`.
async fn forward(intake: SocketAddr, service: &str, port: u16, token: &[u8]) -> TcpStream {
    forward_sniffed(intake, service, port, token, None).await
}

/// [`forward`] with what the forwarder's sniff found.
async fn forward_sniffed(
    intake: SocketAddr,
    service: &str,
    port: u16,
    token: &[u8],
    sniffed: Option<Sniffed>,
) -> TcpStream {
    let mut stream = TcpStream::connect(intake).await.expect("connect intake");
    let header = header(service, port, token, sniffed);
    stream.write_all(&header.encode()).await.expect("header");
    stream
}

/// A forwarder's header for the caller [`CALLER`] that dialed `service` on `port`.
fn header(service: &str, port: u16, token: &[u8], sniffed: Option<Sniffed>) -> Header {
    Header {
        source: CALLER.parse().expect("address"),
        destination: SocketAddr::from(([127, 0, 0, 1], port)),
        token: token.to_vec(),
        service: service.into(),
        dial: false,
        sniffed,
    }
}

/// One request over a forwarded connection, in this run's protocol, with `Host: item:<port>`
/// as the caller addressed it.
async fn request(stream: TcpStream, port: u16, path: &str) -> Answer {
    let host = format!("item:{port}");
    let response = if util::http2() {
        let request = Request::builder()
            .uri(format!("http://{host}{path}"))
            .body(Full::new(Bytes::new()))
            .expect("request");
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .expect("HTTP/2 handshake");
        tokio::spawn(connection);
        sender.send_request(request).await.expect("response")
    } else {
        let request = Request::builder()
            .uri(path)
            .header("host", &host)
            .body(Full::new(Bytes::new()))
            .expect("request");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("HTTP/1.1 handshake");
        tokio::spawn(connection);
        sender.send_request(request).await.expect("response")
    };
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Answer {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn span(spans: &[ProxySpan], kind: SpanKind) -> &ProxySpan {
    spans
        .iter()
        .find(|span| span.kind == kind)
        .unwrap_or_else(|| panic!("a {kind:?} span in {spans:?}"))
}

both_paths!(http_reaches_the_replica_at_the_dialed_port_with_the_caller_known);
async fn http_reaches_the_replica_at_the_dialed_port_with_the_caller_known() {
    let log = AccessLog::capture();
    let one = TestUpstream::start("one").await;
    let (_running, spans, intake) = start_intake(ITEM, &[("item-1", [127, 0, 0, 1])]).await;
    let port = one.address.port();
    let stream = forward(intake, "item", port, TOKEN).await;
    let answer = request(stream, port, "/items/7").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["upstream"], "one");
    assert_eq!(answer.json()["path"], "/items/7");
    let host = format!("item:{port}");
    assert_eq!(answer.sent("host").as_deref(), Some(host.as_str()));
    assert_eq!(answer.header("x-sandbox-upstream"), "item-1");
    let recorded = spans.take();
    let client = span(&recorded, SpanKind::Client);
    assert_eq!(
        (
            client.local_service.as_str(),
            client.remote_service.as_str()
        ),
        ("user", "item")
    );
    assert_eq!(client.remote_address, Some(one.address));
    let server = span(&recorded, SpanKind::Server);
    assert_eq!(server.remote_replica.as_deref(), Some("user-1"));
    assert_eq!(
        server.remote_address,
        Some(CALLER.parse().expect("address"))
    );
    let text = log.text();
    for expected in ["caller=user", "service=\"item\"", "status=200"] {
        assert!(text.contains(expected), "missing {expected}: {text}");
    }
}

both_paths!(the_services_fault_applies);
async fn the_services_fault_applies() {
    let one = TestUpstream::start("one").await;
    let yaml = format!("{ITEM}    faults:\n      abort: {{status: 418, percent: 100}}\n");
    let (_running, _spans, intake) = start_intake(&yaml, &[("item-1", [127, 0, 0, 1])]).await;
    let port = one.address.port();
    let answer = request(forward(intake, "item", port, TOKEN).await, port, "/").await;
    assert_eq!(answer.status, 418);
    assert!(answer.body.contains("`item`"), "{}", answer.body);
    assert_eq!(one.hits(), 0);
}

both_paths!(retries_go_to_another_replica);
async fn retries_go_to_another_replica() {
    let one = TestUpstream::start("one").await;
    let yaml = format!(
        "{ITEM}    retries: {{attempts: 2, on: [connect-failure], backoff: {{base: 1ms, max: 2ms}}}}\n"
    );
    // `item-2` is on 127.0.0.2, where nothing listens on the port.
    let replicas = [("item-1", [127, 0, 0, 1]), ("item-2", [127, 0, 0, 2])];
    let (_running, _spans, intake) = start_intake(&yaml, &replicas).await;
    let port = one.address.port();
    for _ in 0..4 {
        let answer = request(forward(intake, "item", port, TOKEN).await, port, "/").await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.header("x-sandbox-upstream"), "item-1");
    }
    assert_eq!(one.hits(), 4);
}

both_paths!(a_callee_with_no_replica_gets_the_friendly_503);
async fn a_callee_with_no_replica_gets_the_friendly_503() {
    let (_running, _spans, intake) = start_intake(ITEM, &[]).await;
    let answer = request(forward(intake, "item", 8080, TOKEN).await, 8080, "/").await;
    assert_eq!(answer.status, 503);
    assert!(answer.body.contains("`item`"), "{}", answer.body);
}

/// A proxy from `yaml` as [`start_intake`] makes it, serving a handoff socket (in a folder the
/// caller keeps) instead of the intake's port.
async fn start_handoff(
    yaml: &str,
    replicas: &[(&str, [u8; 4])],
) -> (Running, std::sync::Arc<Spans>, tempfile::TempDir) {
    let (running, spans, _intake) = start_intake(yaml, replicas).await;
    let folder = tempfile::tempdir().expect("folder");
    let socket = folder.path().join(sandbox::proxy::handoff::SOCKET_NAME);
    let listener = sandbox::proxy::handoff::bind(&socket).expect("bind the handoff socket");
    let listener = tokio::net::UnixListener::from_std(listener).expect("tokio");
    tokio::spawn(
        running
            .proxy
            .clone()
            .serve_handoff(listener, running.shutdown.clone()),
    );
    (running, spans, folder)
}

/// What a forwarder with a handoff socket does with an HTTP caller: accepts the caller's
/// connection and hands it to the socket in `folder` with a header for `service` on `port`.
/// Returns the caller's end.
async fn hand_over(folder: &std::path::Path, service: &str, port: u16, token: &[u8]) -> TcpStream {
    let forwarder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let caller =
        std::net::TcpStream::connect(forwarder.local_addr().expect("address")).expect("connect");
    let (accepted, _) = forwarder.accept().expect("accept");
    let header = header(service, port, token, Some(Sniffed::Http));
    let socket =
        std::os::unix::net::UnixStream::connect(folder.join(sandbox::proxy::handoff::SOCKET_NAME))
            .expect("connect the handoff socket");
    sandbox_forwarder::os::send_connection(&socket, &header.encode(), &accepted)
        .expect("hand over");
    // The forwarder's handles go: the control plane's is the connection's only one now.
    drop((socket, accepted));
    caller.set_nonblocking(true).expect("non-blocking");
    TcpStream::from_std(caller).expect("tokio")
}

both_paths!(a_handed_over_connection_reaches_the_replica_with_the_caller_known);
async fn a_handed_over_connection_reaches_the_replica_with_the_caller_known() {
    let one = TestUpstream::start("one").await;
    let (running, spans, folder) = start_handoff(ITEM, &[("item-1", [127, 0, 0, 1])]).await;
    let port = one.address.port();
    let stream = hand_over(folder.path(), "item", port, TOKEN).await;
    let answer = request(stream, port, "/items/7").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["upstream"], "one");
    assert_eq!(answer.json()["path"], "/items/7");
    assert_eq!(answer.header("x-sandbox-upstream"), "item-1");
    let recorded = spans.take();
    let server = span(&recorded, SpanKind::Server);
    assert_eq!(server.remote_replica.as_deref(), Some("user-1"));
    assert_eq!(
        server.remote_address,
        Some(CALLER.parse().expect("address"))
    );
    let client = span(&recorded, SpanKind::Client);
    assert_eq!(client.remote_address, Some(one.address));
    let metrics = running.proxy.metrics().render();
    assert!(
        metrics.contains("sandbox_proxy_intake_handoffs_total 1\n"),
        "{metrics}"
    );
}

l4_only!(a_handoff_with_a_wrong_token_or_a_bad_header_is_refused_and_counted);
async fn a_handoff_with_a_wrong_token_or_a_bad_header_is_refused_and_counted() {
    let one = TestUpstream::start("one").await;
    let (running, spans, folder) = start_handoff(ITEM, &[("item-1", [127, 0, 0, 1])]).await;
    let port = one.address.port();
    let stream = hand_over(folder.path(), "item", port, b"fedcba9876543210").await;
    closed_within(stream).await;
    // Bytes without a connection.
    let mut socket =
        tokio::net::UnixStream::connect(folder.path().join(sandbox::proxy::handoff::SOCKET_NAME))
            .await
            .expect("connect");
    socket
        .write_all(b"GET / HTTP/1.1\r\n\r\n")
        .await
        .expect("write");
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut rest)).await;
    let metrics = running.proxy.metrics().render();
    for reason in ["token", "header"] {
        let expected = format!("sandbox_proxy_intake_refusals_total{{reason=\"{reason}\"}} 1");
        assert!(metrics.contains(&expected), "missing {expected}: {metrics}");
    }
    assert!(
        metrics.contains("sandbox_proxy_intake_handoffs_total 0\n"),
        "{metrics}"
    );
    assert_eq!(one.hits(), 0);
    assert!(spans.take().is_empty());
}

/// A TCP server on 127.0.0.1: for each connection, `greeting` first, then every byte echoed
/// back; the end of the input ends the output.
async fn echo_server(greeting: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = stream.split();
                if write.write_all(greeting).await.is_ok() {
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                    let _ = write.shutdown().await;
                }
            });
        }
    });
    address
}

/// FNV-1a, enough to compare what went with what came back.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x100_0000_01b3)
    })
}

l4_only!(ten_mebibytes_each_way_at_l4);
async fn ten_mebibytes_each_way_at_l4() {
    let echo = echo_server(b"").await;
    let (running, spans, intake) = start_intake(ITEM, &[("item-1", [127, 0, 0, 1])]).await;
    let stream = forward(intake, "item", echo.port(), TOKEN).await;
    // Binary from its first byte: neither HTTP nor TLS.
    let data: Vec<u8> = (0..10 * 1024 * 1024u32)
        .map(|index| (index.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let expected = (data.len(), checksum(&data));
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        write.write_all(&data).await.expect("write");
        write.shutdown().await.expect("half-close");
    });
    let mut back = Vec::with_capacity(expected.0);
    tokio::time::timeout(Duration::from_secs(60), read.read_to_end(&mut back))
        .await
        .expect("in time")
        .expect("read");
    writer.await.expect("writer");
    assert_eq!((back.len(), checksum(&back)), expected);
    let recorded = wait_for_spans(&spans).await;
    let client = span(&recorded, SpanKind::Client);
    assert_eq!(client.name, format!("tcp {}", echo.port()));
    assert_eq!(
        (
            client.local_service.as_str(),
            client.remote_service.as_str()
        ),
        ("user", "item")
    );
    let size = expected.0.to_string();
    assert_eq!(client.tags["sandbox.bytes_sent"], size);
    assert_eq!(client.tags["sandbox.bytes_received"], size);
    assert_eq!(client.tags["sandbox.close"], "client");
    assert!(!client.tags.contains_key("error"));
    let server = span(&recorded, SpanKind::Server);
    assert_eq!(
        (server.id.as_str(), server.shared),
        (client.id.as_str(), true)
    );
    assert_eq!(
        server.remote_address,
        Some(CALLER.parse().expect("address"))
    );
    let metrics = running.proxy.metrics().render();
    for expected in [
        "sandbox_proxy_l4_connections_total{service=\"item\",close=\"client\"} 1".to_string(),
        format!("sandbox_proxy_l4_bytes_total{{service=\"item\",direction=\"sent\"}} {size}"),
    ] {
        assert!(metrics.contains(&expected), "missing {expected}: {metrics}");
    }
}

/// The spans of a connection, recorded once the proxy has seen both sides end.
async fn wait_for_spans(spans: &Spans) -> Vec<ProxySpan> {
    for _ in 0..100 {
        let recorded = spans.take();
        if !recorded.is_empty() {
            return recorded;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no span recorded");
}

l4_only!(a_server_first_protocol_works_after_the_sniff_window);
async fn a_server_first_protocol_works_after_the_sniff_window() {
    let server = echo_server(b"220 ready\r\n").await;
    let (_running, _spans, intake) = start_intake(ITEM, &[("item-1", [127, 0, 0, 1])]).await;
    let started = Instant::now();
    let mut stream = forward(intake, "item", server.port(), TOKEN).await;
    let mut greeting = [0u8; 11];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut greeting))
        .await
        .expect("greeted in time")
        .expect("greeting");
    assert_eq!(&greeting, b"220 ready\r\n");
    assert!(started.elapsed() < Duration::from_secs(2));
    stream.write_all(b"HELO me\r\n").await.expect("write");
    let mut reply = [0u8; 9];
    stream.read_exact(&mut reply).await.expect("echo");
    assert_eq!(&reply, b"HELO me\r\n");
}

/// A TLS 1.2-style ClientHello record asking for `db.internal` (a cipher suite, no compression,
/// one extension: `server_name`).
fn client_hello() -> Vec<u8> {
    let name = b"db.internal";
    let server_name = [
        &[0x00, 0x00][..],                      // extension: server_name
        &(5 + name.len() as u16).to_be_bytes(), // its length
        &(3 + name.len() as u16).to_be_bytes(), // the list's length
        &[0x00],                                // host_name
        &(name.len() as u16).to_be_bytes(),     // the name's length
        name,
    ]
    .concat();
    let body = [
        &[0x03, 0x03][..],
        &[0x42; 32],
        &[0x00],                   // no session id
        &[0x00, 0x02, 0xc0, 0x2f], // one cipher suite
        &[0x01, 0x00],             // null compression
        &(server_name.len() as u16).to_be_bytes(),
        &server_name,
    ]
    .concat();
    let handshake = [&[0x01, 0x00][..], &(body.len() as u16).to_be_bytes(), &body].concat();
    [
        &[0x16, 0x03, 0x01][..],
        &(handshake.len() as u16).to_be_bytes(),
        &handshake,
    ]
    .concat()
}

l4_only!(tls_passes_untouched_with_its_server_name_on_the_span);
async fn tls_passes_untouched_with_its_server_name_on_the_span() {
    let echo = echo_server(b"").await;
    let (_running, spans, intake) = start_intake(ITEM, &[("item-1", [127, 0, 0, 1])]).await;
    let mut stream = forward(intake, "item", echo.port(), TOKEN).await;
    let hello = client_hello();
    stream.write_all(&hello).await.expect("write");
    stream.shutdown().await.expect("half-close");
    let mut back = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut back))
        .await
        .expect("in time")
        .expect("read");
    assert_eq!(back, hello, "the bytes pass unchanged");
    let recorded = wait_for_spans(&spans).await;
    let client = span(&recorded, SpanKind::Client);
    assert_eq!(client.name, "tls db.internal");
    assert_eq!(client.tags["tls.sni"], "db.internal");
    assert_eq!(client.tags["sandbox.protocol"], "tls");
}

/// Reads until the intake closes the connection; how long that took (fails after 2 s).
async fn closed_within(mut stream: TcpStream) -> Duration {
    let started = Instant::now();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the connection was left open");
    assert!(rest.is_empty(), "nothing comes back: {rest:?}");
    started.elapsed()
}

l4_only!(a_wrong_token_is_refused_and_counted);
async fn a_wrong_token_is_refused_and_counted() {
    let echo = echo_server(b"hello").await;
    let (running, spans, intake) = start_intake(ITEM, &[("item-1", [127, 0, 0, 1])]).await;
    let stream = forward(intake, "item", echo.port(), b"fedcba9876543210").await;
    closed_within(stream).await;
    let mut stream = TcpStream::connect(intake).await.expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\n\r\n")
        .await
        .expect("write");
    closed_within(stream).await;
    let metrics = running.proxy.metrics().render();
    for reason in ["token", "header"] {
        let expected = format!("sandbox_proxy_intake_refusals_total{{reason=\"{reason}\"}} 1");
        assert!(metrics.contains(&expected), "missing {expected}: {metrics}");
    }
    assert!(spans.take().is_empty());
}

l4_only!(a_callee_down_closes_the_callers_connection_at_once);
async fn a_callee_down_closes_the_callers_connection_at_once() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let (running, spans, intake) = start_intake(ITEM, &[]).await;
    // No replica: a server-first client (sending nothing) waits only for the sniff window.
    let waited = closed_within(forward(intake, "item", closed, TOKEN).await).await;
    assert!(waited < Duration::from_secs(1), "{waited:?}");
    // A replica whose port is closed.
    set_replicas(&running, &[("item-1", [127, 0, 0, 1])]);
    let mut stream = forward(intake, "item", closed, TOKEN).await;
    stream.write_all(b"\x00binary").await.expect("write");
    let waited = closed_within(stream).await;
    assert!(waited < Duration::from_secs(1), "{waited:?}");
    let recorded = wait_for_spans(&spans).await;
    let client = span(&recorded, SpanKind::Client);
    assert_eq!(client.tags["sandbox.close"], "refused");
    assert!(client.tags.contains_key("error"));
}

l4_only!(an_l4_abort_fault_refuses_the_connection);
async fn an_l4_abort_fault_refuses_the_connection() {
    let echo = echo_server(b"hello").await;
    let yaml = format!("{ITEM}    faults:\n      abort: {{status: 503, percent: 100}}\n");
    let (_running, spans, intake) = start_intake(&yaml, &[("item-1", [127, 0, 0, 1])]).await;
    let mut stream = forward(intake, "item", echo.port(), TOKEN).await;
    stream.write_all(b"\x00binary").await.expect("write");
    closed_within(stream).await;
    let recorded = wait_for_spans(&spans).await;
    assert_eq!(
        span(&recorded, SpanKind::Client).tags["sandbox.close"],
        "fault"
    );
}

l4_only!(half_close_passes_the_end_of_input_on);
async fn half_close_passes_the_end_of_input_on() {
    // The service answers once the caller has finished sending: how many bytes came.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut input = Vec::new();
        stream.read_to_end(&mut input).await.expect("read");
        let answer = format!("got {} bytes", input.len());
        stream.write_all(answer.as_bytes()).await.expect("answer");
    });
    let (_running, _spans, intake) = start_intake(ITEM, &[("item-1", [127, 0, 0, 1])]).await;
    let mut stream = forward(intake, "item", port, TOKEN).await;
    stream.write_all(b"\x00\x01\x02 five").await.expect("write");
    stream.shutdown().await.expect("half-close");
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut answer))
        .await
        .expect("in time")
        .expect("read");
    assert_eq!(answer, "got 8 bytes");
}

// L4 decided by the intake, spliced by the forwarder.

/// Reads one control message from the intake (within 5 s).
async fn verdict(control: &mut TcpStream) -> Message {
    let mut bytes = vec![0u8; MESSAGE_HEAD];
    tokio::time::timeout(Duration::from_secs(5), control.read_exact(&mut bytes))
        .await
        .expect("a verdict in time")
        .expect("a verdict");
    let length = Message::length([bytes[0], bytes[1], bytes[2], bytes[3]]).expect("a head");
    bytes.resize(length, 0);
    control
        .read_exact(&mut bytes[MESSAGE_HEAD..])
        .await
        .expect("the body");
    Message::decode(&bytes)
        .expect("a message")
        .expect("whole")
        .0
}

async fn report(control: &mut TcpStream, message: Message) {
    control.write_all(&message.encode()).await.expect("report");
}

l4_only!(a_sniffing_forwarder_gets_the_replicas_and_its_report_becomes_the_span);
async fn a_sniffing_forwarder_gets_the_replicas_and_its_report_becomes_the_span() {
    let yaml = format!(
        "{ITEM}    retries: {{attempts: 2, on: [connect-failure], backoff: {{base: 10ms, max: 20ms}}}}\n"
    );
    let replicas = [("item-1", [127, 0, 0, 1]), ("item-2", [127, 0, 0, 2])];
    let (running, spans, intake) = start_intake(&yaml, &replicas).await;
    let mut control = forward_sniffed(intake, "item", 6379, TOKEN, Some(Sniffed::Other)).await;
    let Message::Dial(Dial {
        candidates,
        backoffs,
        connect_timeout,
    }) = verdict(&mut control).await
    else {
        panic!("not a dial");
    };
    // The try and its two retries, each avoiding the one before, at the port dialed.
    assert_eq!(candidates.len(), 3, "{candidates:?}");
    assert!(candidates.iter().all(|candidate| candidate.port() == 6379));
    assert_ne!(candidates[0], candidates[1]);
    assert_ne!(candidates[1], candidates[2]);
    assert_eq!(backoffs.len(), 2);
    assert!(backoffs
        .iter()
        .all(|pause| *pause >= Duration::from_millis(5) && *pause <= Duration::from_millis(20)));
    assert!(connect_timeout > Duration::ZERO);
    let failed = if candidates[0].ip() == std::net::Ipv4Addr::new(127, 0, 0, 1) {
        "item-1"
    } else {
        "item-2"
    };
    let dialed = Dialed {
        connected: Some(1),
        failures: vec![Failure {
            candidate: 0,
            error: "Connection refused (os error 111)".into(),
        }],
    };
    report(&mut control, Message::Dialed(dialed)).await;
    // The slot is held while the forwarder splices.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        spans.take().is_empty(),
        "no span before the connection ends"
    );
    let ended = Ended {
        close: Ending::Upstream,
        sent: 1000,
        received: 2_000_000,
    };
    report(&mut control, Message::Ended(ended)).await;
    let recorded = wait_for_spans(&spans).await;
    let client = span(&recorded, SpanKind::Client);
    assert_eq!(client.name, "tcp 6379");
    assert_eq!(
        (
            client.local_service.as_str(),
            client.remote_service.as_str()
        ),
        ("user", "item")
    );
    assert_eq!(client.tags["sandbox.bytes_sent"], "1000");
    assert_eq!(client.tags["sandbox.bytes_received"], "2000000");
    assert_eq!(client.tags["sandbox.close"], "upstream");
    assert_eq!(client.tags["sandbox.retries"], "1");
    assert!(!client.tags.contains_key("error"), "{:?}", client.tags);
    assert_eq!(client.remote_address, Some(candidates[1]));
    assert_ne!(client.remote_replica.as_deref(), Some(failed));
    assert!(
        client
            .annotations
            .iter()
            .any(|(_, text)| text.starts_with("retry 1:") && text.contains(failed)),
        "{:?}",
        client.annotations
    );
    let server = span(&recorded, SpanKind::Server);
    assert_eq!(
        server.remote_address,
        Some(CALLER.parse().expect("address"))
    );
    let metrics = running.proxy.metrics().render();
    for expected in [
        "sandbox_proxy_l4_connections_total{service=\"item\",close=\"upstream\"} 1",
        "sandbox_proxy_l4_bytes_total{service=\"item\",direction=\"received\"} 2000000",
    ] {
        assert!(metrics.contains(expected), "missing {expected}: {metrics}");
    }
}

l4_only!(a_sniffing_forwarder_is_refused_by_verdict);
async fn a_sniffing_forwarder_is_refused_by_verdict() {
    // No replica.
    let (running, spans, intake) = start_intake(ITEM, &[]).await;
    let mut control = forward_sniffed(intake, "item", 6379, TOKEN, Some(Sniffed::Other)).await;
    assert_eq!(verdict(&mut control).await, Message::Refuse);
    let recorded = wait_for_spans(&spans).await;
    let client = span(&recorded, SpanKind::Client);
    assert_eq!(client.tags["sandbox.close"], "refused");
    assert!(client.tags["error"].contains("item"), "{:?}", client.tags);
    // Every candidate failed: refused, each failure counted.
    set_replicas(&running, &[("item-1", [127, 0, 0, 1])]);
    let mut control = forward_sniffed(intake, "item", 6379, TOKEN, Some(Sniffed::Other)).await;
    let Message::Dial(dial) = verdict(&mut control).await else {
        panic!("not a dial");
    };
    assert_eq!(dial.candidates.len(), 1, "no retries configured");
    let dialed = Dialed {
        connected: None,
        failures: vec![Failure {
            candidate: 0,
            error: "Connection refused (os error 111)".into(),
        }],
    };
    report(&mut control, Message::Dialed(dialed)).await;
    let recorded = wait_for_spans(&spans).await;
    let client = span(&recorded, SpanKind::Client);
    assert_eq!(client.tags["sandbox.close"], "refused");
    assert!(
        client.tags["error"].contains("Connection refused"),
        "{:?}",
        client.tags
    );
    assert!(!client.tags.contains_key("sandbox.retries"));
}

l4_only!(an_abort_fault_is_a_refusal_and_a_delay_comes_before_the_verdict);
async fn an_abort_fault_is_a_refusal_and_a_delay_comes_before_the_verdict() {
    let yaml = format!("{ITEM}    faults:\n      abort: {{status: 503, percent: 100}}\n");
    let (_running, spans, intake) = start_intake(&yaml, &[("item-1", [127, 0, 0, 1])]).await;
    let mut control = forward_sniffed(intake, "item", 6379, TOKEN, Some(Sniffed::Other)).await;
    assert_eq!(verdict(&mut control).await, Message::Refuse);
    let recorded = wait_for_spans(&spans).await;
    assert_eq!(
        span(&recorded, SpanKind::Client).tags["sandbox.close"],
        "fault"
    );

    let yaml = format!("{ITEM}    faults:\n      delay: {{fixed: 300ms}}\n");
    let (_running, _spans, intake) = start_intake(&yaml, &[("item-1", [127, 0, 0, 1])]).await;
    let started = Instant::now();
    let mut control = forward_sniffed(intake, "item", 6379, TOKEN, Some(Sniffed::Other)).await;
    assert!(matches!(verdict(&mut control).await, Message::Dial(_)));
    assert!(started.elapsed() >= Duration::from_millis(300));
}

l4_only!(a_control_connection_that_ends_early_is_a_reset_and_frees_the_slot);
async fn a_control_connection_that_ends_early_is_a_reset_and_frees_the_slot() {
    let yaml = format!("{ITEM}    circuit_breaker: {{max_requests: 1, max_pending: 0}}\n");
    let (_running, spans, intake) = start_intake(&yaml, &[("item-1", [127, 0, 0, 1])]).await;
    let tls = Some(Sniffed::Tls {
        sni: Some("db.internal".into()),
    });
    let mut first = forward_sniffed(intake, "item", 6379, TOKEN, tls.clone()).await;
    assert!(matches!(verdict(&mut first).await, Message::Dial(_)));
    let dialed = Dialed {
        connected: Some(0),
        failures: Vec::new(),
    };
    report(&mut first, Message::Dialed(dialed)).await;
    // The first connection holds the circuit breaker's only slot while it lives.
    let mut second = forward_sniffed(intake, "item", 6379, TOKEN, tls.clone()).await;
    assert_eq!(verdict(&mut second).await, Message::Refuse);
    let recorded = wait_for_spans(&spans).await;
    assert_eq!(
        span(&recorded, SpanKind::Client).tags["sandbox.close"],
        "refused"
    );
    drop(first);
    let recorded = wait_for_spans(&spans).await;
    let client = span(&recorded, SpanKind::Client);
    assert_eq!(client.name, "tls db.internal");
    assert_eq!(client.tags["sandbox.close"], "reset");
    assert!(
        client.tags["error"].contains("control connection"),
        "{:?}",
        client.tags
    );
    // The slot is free again.
    let mut third = forward_sniffed(intake, "item", 6379, TOKEN, tls).await;
    assert!(matches!(verdict(&mut third).await, Message::Dial(_)));
}

l4_only!(a_forwarders_http_verdict_is_served_at_l7);
async fn a_forwarders_http_verdict_is_served_at_l7() {
    let one = TestUpstream::start("one").await;
    let (_running, spans, intake) = start_intake(ITEM, &[("item-1", [127, 0, 0, 1])]).await;
    let port = one.address.port();
    let stream = forward_sniffed(intake, "item", port, TOKEN, Some(Sniffed::Http)).await;
    let answer = request(stream, port, "/").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(one.hits(), 1);
    let recorded = wait_for_spans(&spans).await;
    assert!(recorded.iter().all(|span| !span.name.starts_with("tcp ")));
}
