//! The forwarder on loopback: fake intakes check the header it sends and answer (for L4
//! connections with a verdict, then read the forwarder's reports), callers check what arrives,
//! and the binary is run for its exit codes and its handling of SIGTERM.

// A test panics to report its failure; helpers here are not `#[test]` functions.
#![allow(clippy::unwrap_used)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use sandbox_forwarder::config::{Config, Intake};
use sandbox_forwarder::forward::{Forwarder, Limits};
use sandbox_forwarder::sniff::Sniffed;
use sandbox_forwarder::wire::{
    Dial, Dialed, Ended, Ending, Failure, Header, Message, DIAL_CONNECTED, DIAL_REFUSED,
};

const TOKEN: &[u8] = b"0123456789abcdef";
const WAIT: Duration = Duration::from_secs(5);

fn config(intake: SocketAddr) -> Config {
    Config {
        service: "item".to_string(),
        ports: vec![0],
        intake: Intake {
            host: intake.ip().to_string(),
            port: intake.port(),
        },
        token: TOKEN.to_vec(),
        dial_port: Some(0),
        handoff: None,
    }
}

/// Starts a forwarder; returns its IPv4 loopback service and dial addresses.
fn start(config: Config, limits: Limits) -> (SocketAddr, SocketAddr) {
    let forwarder = Forwarder::bind(config, limits).unwrap();
    let loopback =
        |addresses: Vec<SocketAddr>| -> SocketAddr { ([127, 0, 0, 1], addresses[0].port()).into() };
    let service = loopback(forwarder.service_addresses());
    let dial = loopback(forwarder.dial_addresses());
    thread::spawn(move || forwarder.serve());
    (service, dial)
}

/// Reads a header from `stream`; returns it and the bytes that came after it.
fn read_header(stream: &mut TcpStream) -> (Header, Vec<u8>) {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 256];
    loop {
        let read = stream.read(&mut chunk).unwrap();
        assert!(read > 0, "the connection ended before a header");
        bytes.extend_from_slice(&chunk[..read]);
        if let Some((header, used)) = Header::decode(&bytes).unwrap() {
            return (header, bytes.split_off(used));
        }
    }
}

/// An intake that accepts connections, reports each header and echoes the rest (half-close
/// included).
fn echoing_intake() -> (SocketAddr, mpsc::Receiver<Header>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let (headers, received) = mpsc::channel();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let headers = headers.clone();
            thread::spawn(move || {
                let (header, early) = read_header(&mut stream);
                let _ = headers.send(header);
                stream.write_all(&early).unwrap();
                let mut reader = stream.try_clone().unwrap();
                std::io::copy(&mut reader, &mut stream).unwrap();
                stream.shutdown(Shutdown::Write).unwrap();
            });
        }
    });
    (address, received)
}

/// Waits up to [`WAIT`] for the connection to end; returns how long that took.
fn ends_within(mut stream: TcpStream) -> Duration {
    let started = Instant::now();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut rest = Vec::new();
    match stream.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "unexpected bytes {rest:?}"),
        Err(error) => assert!(
            matches!(
                error.kind(),
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
            ),
            "the connection was not ended: {error}"
        ),
    }
    started.elapsed()
}

/// An HTTP request's first bytes: the forwarder hands such a connection to the intake.
const REQUEST: &[u8] = b"GET /ping HTTP/1.1\r\nHost: item\r\n\r\n";

/// Limits with a short sniff window, so that silent callers are taken for L4 quickly.
fn quick() -> Limits {
    Limits {
        sniff_window: Duration::from_millis(50),
        ..Limits::default()
    }
}

#[test]
fn an_http_caller_is_handed_on_with_its_header_and_bytes_pass_both_ways() {
    let (intake, headers) = echoing_intake();
    let (service, _) = start(config(intake), Limits::default());
    let mut caller = TcpStream::connect(service).unwrap();
    caller.write_all(REQUEST).unwrap();
    let mut answer = vec![0u8; REQUEST.len()];
    caller.read_exact(&mut answer).unwrap();
    assert_eq!(answer, REQUEST);
    let header = headers.recv_timeout(WAIT).unwrap();
    assert_eq!(header.source, caller.local_addr().unwrap(), "the caller");
    assert_eq!(header.destination, service, "the address the caller called");
    assert_eq!(header.service, "item");
    assert_eq!(header.token, TOKEN);
    assert!(!header.dial);
    assert_eq!(header.sniffed, Some(Sniffed::Http));
    // The caller's half-close travels on; the echo's end comes back.
    caller.shutdown(Shutdown::Write).unwrap();
    assert!(ends_within(caller) < WAIT);
}

#[test]
fn an_http_caller_is_relayed_through_the_intake_when_the_handoff_socket_is_not_there() {
    let (intake, headers) = echoing_intake();
    let folder = std::env::temp_dir().join(format!("forwarder-handoff-{}", std::process::id()));
    let config = Config {
        handoff: Some(folder.join("missing.sock")),
        ..config(intake)
    };
    let (service, _) = start(config, Limits::default());
    let mut caller = TcpStream::connect(service).unwrap();
    caller.write_all(REQUEST).unwrap();
    let mut answer = vec![0u8; REQUEST.len()];
    caller.read_exact(&mut answer).unwrap();
    assert_eq!(answer, REQUEST, "the intake's echo");
    assert_eq!(
        headers.recv_timeout(WAIT).unwrap().sniffed,
        Some(Sniffed::Http)
    );
}

/// What an L4 intake saw: the header and the forwarder's reports.
struct Seen {
    header: Header,
    reports: Vec<Message>,
}

/// An intake for one L4 connection: reads the header, answers `verdict`, then reads reports
/// until the forwarder closes the control connection (or `hang_up`: closes it after the
/// verdict).
fn l4_intake(verdict: Message, hang_up: bool) -> (SocketAddr, mpsc::Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let (seen, received) = mpsc::channel();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let (header, early) = read_header(&mut stream);
        assert!(
            early.is_empty(),
            "an L4 caller's bytes do not come to the intake"
        );
        stream.write_all(&verdict.encode()).unwrap();
        let mut reports = Vec::new();
        if !hang_up {
            while let Ok(message) = Message::read_from(&mut stream) {
                reports.push(message);
            }
        }
        let _ = seen.send(Seen { header, reports });
    });
    (address, received)
}

/// A replica that greets, half-closes, and reports what it then received.
fn server_first_replica() -> (SocketAddr, mpsc::Receiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let (report, reported) = mpsc::channel();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.write_all(b"220 greeting\r\n").unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut received = Vec::new();
        stream.read_to_end(&mut received).unwrap();
        report.send(received).unwrap();
    });
    (address, reported)
}

/// A replica echoing every connection (half-close included).
fn echo_replica() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            thread::spawn(move || {
                let mut reader = stream.try_clone().unwrap();
                let _ = std::io::copy(&mut reader, &mut stream);
                let _ = stream.shutdown(Shutdown::Write);
            });
        }
    });
    address
}

/// A loopback address nothing listens on.
fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn dial(candidates: Vec<SocketAddr>, backoffs: Vec<Duration>) -> Message {
    Message::Dial(Dial {
        candidates,
        backoffs,
        connect_timeout: Duration::from_secs(1),
    })
}

#[test]
fn a_silent_caller_is_spliced_to_the_replica_the_intake_names_and_reported() {
    let (replica, reported) = server_first_replica();
    let (intake, seen) = l4_intake(dial(vec![replica], Vec::new()), false);
    let (service, _) = start(config(intake), quick());
    let mut caller = TcpStream::connect(service).unwrap();
    let mut greeting = Vec::new();
    caller.read_to_end(&mut greeting).unwrap();
    assert_eq!(greeting, b"220 greeting\r\n");
    caller.write_all(b"QUIT after the half-close").unwrap();
    caller.shutdown(Shutdown::Write).unwrap();
    assert_eq!(
        reported.recv_timeout(WAIT).unwrap(),
        b"QUIT after the half-close"
    );
    let seen = seen.recv_timeout(WAIT).unwrap();
    assert_eq!(seen.header.sniffed, Some(Sniffed::Other));
    assert_eq!(seen.header.source, caller.local_addr().unwrap());
    assert_eq!(
        seen.reports,
        [
            Message::Dialed(Dialed {
                connected: Some(0),
                failures: Vec::new(),
            }),
            Message::Ended(Ended {
                close: Ending::Upstream,
                sent: 25,
                received: 14,
            }),
        ]
    );
}

#[test]
fn candidates_are_tried_in_order_after_their_back_off_and_the_bytes_pass_intact() {
    let replica = echo_replica();
    let closed = closed_port();
    let backoff = Duration::from_millis(100);
    let (intake, seen) = l4_intake(dial(vec![closed, replica], vec![backoff]), false);
    let (service, _) = start(config(intake), quick());
    // Binary data that starts like nothing HTTP: L4 at once.
    let data: Vec<u8> = (0..4u32 << 20)
        .map(|i| (i * 7 + i / 4099) as u8 | 1)
        .collect();
    let started = Instant::now();
    let mut caller = TcpStream::connect(service).unwrap();
    let writer = {
        let mut caller = caller.try_clone().unwrap();
        let data = data.clone();
        thread::spawn(move || {
            caller.write_all(&data).unwrap();
            caller.shutdown(Shutdown::Write).unwrap();
        })
    };
    let mut echoed = Vec::new();
    caller.read_to_end(&mut echoed).unwrap();
    writer.join().unwrap();
    let elapsed = started.elapsed();
    assert!(
        echoed == data,
        "{} bytes came back of {}",
        echoed.len(),
        data.len()
    );
    let seen = seen.recv_timeout(WAIT).unwrap();
    assert_eq!(seen.header.sniffed, Some(Sniffed::Other));
    let [Message::Dialed(dialed), Message::Ended(ended)] = seen.reports.as_slice() else {
        panic!("reports: {:?}", seen.reports);
    };
    assert_eq!(dialed.connected, Some(1), "{dialed:?}");
    assert!(elapsed >= backoff, "the back-off was kept: {elapsed:?}");
    let [Failure {
        candidate: 0,
        error,
    }] = dialed.failures.as_slice()
    else {
        panic!("failures: {:?}", dialed.failures);
    };
    assert!(error.contains("refused"), "{error}");
    assert_eq!(
        *ended,
        Ended {
            close: Ending::Client,
            sent: data.len() as u64,
            received: data.len() as u64,
        }
    );
}

#[test]
fn a_refusal_or_no_candidate_connecting_resets_the_caller_at_once() {
    let (intake, seen) = l4_intake(Message::Refuse, false);
    let (service, _) = start(config(intake), quick());
    let mut caller = TcpStream::connect(service).unwrap();
    caller.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
    assert!(ends_within(caller) < Duration::from_secs(1));
    assert!(seen.recv_timeout(WAIT).unwrap().reports.is_empty());

    let (closed, also_closed) = (closed_port(), closed_port());
    let (intake, seen) = l4_intake(dial(vec![closed, also_closed], Vec::new()), false);
    let (service, _) = start(config(intake), quick());
    let mut caller = TcpStream::connect(service).unwrap();
    caller.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
    assert!(ends_within(caller) < Duration::from_secs(1));
    let seen = seen.recv_timeout(WAIT).unwrap();
    let [Message::Dialed(dialed)] = seen.reports.as_slice() else {
        panic!("reports: {:?}", seen.reports);
    };
    assert_eq!(dialed.connected, None);
    let tried: Vec<u8> = dialed
        .failures
        .iter()
        .map(|failure| failure.candidate)
        .collect();
    assert_eq!(tried, [0, 1]);
}

#[test]
fn the_splice_lives_on_when_the_control_connection_ends() {
    let replica = echo_replica();
    let (intake, seen) = l4_intake(dial(vec![replica], Vec::new()), true);
    let (service, _) = start(config(intake), quick());
    let mut caller = TcpStream::connect(service).unwrap();
    caller.write_all(b"\x00\x00\x00\x08first").unwrap();
    let mut answer = [0u8; 9];
    caller.read_exact(&mut answer).unwrap();
    seen.recv_timeout(WAIT).unwrap();
    thread::sleep(Duration::from_millis(50));
    caller.write_all(b"second").unwrap();
    let mut answer = [0u8; 6];
    caller.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"second");
}

#[test]
fn a_tls_caller_is_l4_with_its_server_name_in_the_header() {
    let replica = echo_replica();
    let (intake, seen) = l4_intake(dial(vec![replica], Vec::new()), false);
    let (service, _) = start(config(intake), quick());
    let mut caller = TcpStream::connect(service).unwrap();
    let hello = client_hello("DB.internal");
    caller.write_all(&hello).unwrap();
    let mut answer = vec![0u8; hello.len()];
    caller.read_exact(&mut answer).unwrap();
    assert_eq!(answer, hello, "the ClientHello passed untouched");
    caller.shutdown(Shutdown::Write).unwrap();
    ends_within(caller);
    let seen = seen.recv_timeout(WAIT).unwrap();
    assert_eq!(
        seen.header.sniffed,
        Some(Sniffed::Tls {
            sni: Some("db.internal".into())
        })
    );
}

/// A minimal TLS ClientHello record naming `name`.
fn client_hello(name: &str) -> Vec<u8> {
    let mut server_name = Vec::new();
    server_name.extend_from_slice(&((3 + name.len()) as u16).to_be_bytes());
    server_name.push(0);
    server_name.extend_from_slice(&(name.len() as u16).to_be_bytes());
    server_name.extend_from_slice(name.as_bytes());
    let mut extensions = vec![0x00, 0x00];
    extensions.extend_from_slice(&(server_name.len() as u16).to_be_bytes());
    extensions.extend_from_slice(&server_name);
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[7; 32]);
    body.push(0);
    body.extend_from_slice(&[0x00, 0x02, 0x13, 0x01, 0x01, 0x00]);
    body.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
    body.extend_from_slice(&extensions);
    let mut handshake = vec![0x01];
    handshake.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

#[test]
fn with_the_intake_down_a_caller_is_refused_at_once() {
    let gone = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (service, _) = start(config(gone), Limits::default());
    let caller = TcpStream::connect(service).unwrap();
    assert!(ends_within(caller) < Duration::from_secs(1));
}

#[test]
fn connections_beyond_the_cap_are_refused_and_slots_come_back() {
    let (intake, headers) = echoing_intake();
    let limits = Limits {
        max_connections: 1,
        ..Limits::default()
    };
    let (service, _) = start(config(intake), limits);
    let mut first = TcpStream::connect(service).unwrap();
    first.write_all(REQUEST).unwrap();
    first.read_exact(&mut vec![0u8; REQUEST.len()]).unwrap();
    headers.recv_timeout(WAIT).unwrap();
    let second = TcpStream::connect(service).unwrap();
    assert!(ends_within(second) < Duration::from_secs(1));
    first.shutdown(Shutdown::Write).unwrap();
    ends_within(first);
    // The first one's slot is given back once its threads end.
    let deadline = Instant::now() + WAIT;
    loop {
        let mut next = TcpStream::connect(service).unwrap();
        next.set_read_timeout(Some(WAIT)).unwrap();
        // While the slot is still taken, the forwarder resets the connection: the write or the
        // read fails, and the loop tries again.
        let mut answer = vec![0u8; REQUEST.len()];
        if next.write_all(REQUEST).is_ok() && next.read_exact(&mut answer).is_ok() {
            assert_eq!(answer, REQUEST);
            break;
        }
        assert!(Instant::now() < deadline, "the slot never came back");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_dial_request_with_the_token_is_connected_and_spliced() {
    let echo = TcpListener::bind("127.0.0.1:0").unwrap();
    let destination = echo.local_addr().unwrap();
    thread::spawn(move || {
        for stream in echo.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = stream.try_clone().unwrap();
            std::io::copy(&mut reader, &mut stream).unwrap();
            stream.shutdown(Shutdown::Write).unwrap();
        }
    });
    let (intake, _) = echoing_intake();
    let (_, dial) = start(config(intake), Limits::default());
    let request = |token: &[u8], dial_flag: bool, destination: SocketAddr| {
        let mut control = TcpStream::connect(dial).unwrap();
        let mut bytes = Header {
            source: control.local_addr().unwrap(),
            destination,
            token: token.to_vec(),
            service: "item".to_string(),
            dial: dial_flag,
            sniffed: None,
        }
        .encode();
        bytes.extend_from_slice(b"hello"); // data in the header's packet reaches the target
        control.write_all(&bytes).unwrap();
        control
    };
    let mut control = request(TOKEN, true, destination);
    let mut answer = [0u8; 6];
    control.read_exact(&mut answer).unwrap();
    assert_eq!(answer[0], DIAL_CONNECTED, "the answer comes first");
    assert_eq!(&answer[1..], b"hello");
    control.shutdown(Shutdown::Write).unwrap();
    assert!(ends_within(control) < WAIT);
    // Without the token, or without the dial flag: reset with no answer.
    for refused in [
        request(b"0123456789abcdeX", true, destination),
        request(TOKEN, false, destination),
    ] {
        let mut refused = refused;
        refused
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let mut byte = [0u8; 1];
        match refused.read(&mut byte) {
            Ok(0) => {}
            Ok(_) => panic!("an answer to a refused request: {byte:?}"),
            Err(error) => assert_ne!(error.kind(), ErrorKind::WouldBlock, "no hang"),
        }
    }
}

#[test]
fn a_dial_to_a_closed_port_is_answered_refused() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let destination = closed.local_addr().unwrap();
    drop(closed);
    let (intake, _) = echoing_intake();
    let (_, dial) = start(config(intake), Limits::default());
    let mut control = TcpStream::connect(dial).unwrap();
    let header = Header {
        source: control.local_addr().unwrap(),
        destination,
        token: TOKEN.to_vec(),
        service: "item".to_string(),
        dial: true,
        sniffed: None,
    };
    control.write_all(&header.encode()).unwrap();
    control.set_read_timeout(Some(WAIT)).unwrap();
    let mut answer = Vec::new();
    control.read_to_end(&mut answer).unwrap();
    assert_eq!(answer, [DIAL_REFUSED], "one byte, then an orderly close");
}

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sandbox-forwarder"));
    command
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

#[test]
fn the_binary_names_a_bad_variable_and_exits_2() {
    let output = binary()
        .env("SANDBOX_MESH_SERVICE", "item")
        .env("SANDBOX_MESH_PORTS", "8080,http")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("SANDBOX_MESH_PORTS: `http` is not a TCP port"),
        "{stderr}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn the_binary_logs_without_the_token_and_exits_at_once_on_sigterm() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = binary()
        .env("SANDBOX_MESH_SERVICE", "item")
        .env("SANDBOX_MESH_PORTS", port.to_string())
        .env("SANDBOX_MESH_INTAKE", "127.0.0.1:9")
        .env("SANDBOX_MESH_TOKEN", "secret-token-value")
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the forwarder never listened");
        thread::sleep(Duration::from_millis(20));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < WAIT,
            "SIGTERM did not end the forwarder"
        );
        thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0));
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("service `item`: listening on"), "{stderr}");
    assert!(stderr.contains("127.0.0.1:9"), "{stderr}");
    assert!(!stderr.contains("secret-token-value"), "{stderr}");
}
