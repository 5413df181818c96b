//! `sandbox zipkin`: the trace server alone, as users run it.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

use crate::util::BINARY;

fn request(port: u16, head: &str, body: &str) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "{head}\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn the_standalone_trace_server_stores_and_answers_without_docker() {
    let mut child = Command::new(BINARY)
        .args(["zipkin", "--port", "0"])
        .env("DOCKER_HOST", "unix:///nonexistent.sock")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    let address = first_line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split([' ', ')']).next())
        .unwrap()
        .to_string();
    assert!(
        address.starts_with("127.0.0.1:"),
        "listens on loopback by default: {first_line}"
    );
    let port: u16 = address.rsplit(':').next().unwrap().parse().unwrap();

    let span = r#"[{"traceId":"463ac35c9f6413ad48485a3953bb6124","id":"a2fb4a1d1a96d312","kind":"SERVER","name":"GET /Orders","timestamp":1700000000000000,"duration":1500,"localEndpoint":{"serviceName":"Checkout"}}]"#;
    let posted = request(
        port,
        "POST /api/v2/spans HTTP/1.1\r\nContent-Type: application/json",
        span,
    );
    assert!(posted.starts_with("HTTP/1.1 202"), "{posted}");
    // Queryable as soon as the POST returned; names are lower-cased as the Zipkin server does.
    let services = request(port, "GET /api/v2/services HTTP/1.1", "");
    assert!(services.ends_with(r#"["checkout"]"#), "{services}");
    let trace = request(
        port,
        "GET /api/v2/trace/463ac35c9f6413ad48485a3953bb6124 HTTP/1.1",
        "",
    );
    assert!(trace.contains(r#""name":"get /orders""#), "{trace}");
    let ui = request(port, "GET /zipkin/ HTTP/1.1", "");
    assert!(
        ui.starts_with("HTTP/1.1 200") && ui.contains("<html"),
        "the UI is served"
    );

    // SAFETY: stopping our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert!(status.success(), "Ctrl-C stops it cleanly: {status}");
}

#[test]
fn the_standalone_server_prints_its_otlp_ports_and_moves_off_taken_defaults() {
    // The default OTLP ports held here (unless something else holds them already): both move.
    let held: Vec<std::net::TcpListener> = [4318u16, 4317]
        .iter()
        .filter_map(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).ok())
        .collect();
    let mut child = Command::new(BINARY)
        .args(["zipkin", "--port", "0"])
        .env("DOCKER_HOST", "unix:///nonexistent.sock")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let (mut first, mut second) = (String::new(), String::new());
    reader.read_line(&mut first).unwrap();
    reader.read_line(&mut second).unwrap();
    let port_after = |marker: &str| -> u16 {
        second
            .split(marker)
            .nth(1)
            .and_then(|rest| rest.split([' ', ';', ')']).next())
            .and_then(|address| address.strip_prefix("127.0.0.1:"))
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("`{marker}` and a loopback address: {first}{second}"))
    };
    let (http, grpc) = (
        port_after("OTLP/HTTP on http://"),
        port_after("OTLP/gRPC on http://"),
    );
    assert!(http != 4318 && grpc != 4317 && http != grpc, "{second}");

    let body = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"billing"}}]},"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"charge","kind":2,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000"}]}]}]}"#;
    let posted = request(
        http,
        "POST /v1/traces HTTP/1.1\r\nContent-Type: application/json",
        body,
    );
    assert!(posted.starts_with("HTTP/1.1 200"), "{posted}");
    let zipkin: u16 = first
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split([' ', ')']).next())
        .and_then(|address| address.rsplit(':').next())
        .and_then(|port| port.parse().ok())
        .unwrap();
    let services = request(zipkin, "GET /api/v2/services HTTP/1.1", "");
    assert!(services.ends_with(r#"["billing"]"#), "{services}");

    // SAFETY: stopping our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert!(child.wait().unwrap().success());
    drop(held);
}
