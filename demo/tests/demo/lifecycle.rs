//! Process behaviour: signals, `--exit`, `/exit/{code}`, `--listen-after`, `probe`, request logs.

use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{free_port, get, Service, BINARY};

#[test]
fn sigterm_exits_promptly_with_zero() {
    let service = Service::start(&[("SERVICE_NAME", "svc")]);
    assert_eq!(get(service.port, "/health").status, 200);
    std::thread::sleep(Duration::from_millis(200)); // the request line is logged just after the response
    let (output, took) = service.terminate();
    assert_eq!(output.status.code(), Some(0));
    assert!(took < Duration::from_secs(1), "took {took:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut lines = stdout.lines();
    let startup = lines.next().expect("startup line");
    assert!(
        startup.starts_with("svc listening on 0.0.0.0:"),
        "{startup}"
    );
    let logged = lines.next().expect("request line");
    assert!(
        logged.starts_with("GET /health 200 ") && logged.ends_with("ms"),
        "{logged}"
    );
    assert!(
        stdout.contains("svc exiting with code 0: received SIGTERM"),
        "{stdout}"
    );
}

#[test]
fn exit_flag_exits_at_once_with_the_code() {
    let output = Command::new(BINARY)
        .args(["--exit", "3"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&output.stderr).contains("exiting with code 3"));
}

#[test]
fn exit_endpoint_answers_then_exits() {
    let service = Service::start(&[("SERVICE_NAME", "svc")]);
    let reply = get(service.port, "/exit/7");
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (200, r#"{"service":"svc","exiting":7}"#)
    );
    let (output, _) = service.wait_exit(Duration::from_secs(5));
    assert_eq!(output.status.code(), Some(7));
}

#[test]
fn listen_after_delays_the_listener() {
    let service = Service::spawn(&[], &["--listen-after", "800"]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        TcpStream::connect(("127.0.0.1", service.port)).is_err(),
        "listening too early"
    );
    let started = Instant::now();
    service.wait_listening(Duration::from_secs(10));
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "listened after {:?}",
        started.elapsed()
    );
    assert_eq!(get(service.port, "/health").status, 200);
}

#[test]
fn probe_exit_code_follows_the_status() {
    let service = Service::start(&[]);
    let probe = |path: &str| {
        Command::new(BINARY)
            .args(["probe", &format!("http://127.0.0.1:{}{path}", service.port)])
            .output()
            .expect("run probe")
            .status
            .code()
    };
    assert_eq!(probe("/health"), Some(0));
    assert_eq!(probe("/status/302"), Some(0));
    assert_eq!(probe("/status/500"), Some(1));
    let closed = Command::new(BINARY)
        .args([
            "probe",
            &format!("http://127.0.0.1:{}/health", free_port()),
            "--timeout-ms",
            "500",
        ])
        .output()
        .expect("run probe");
    assert_eq!(closed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&closed.stderr).contains("connecting to"));
}

#[test]
fn help_and_bad_arguments() {
    let help = Command::new(BINARY).arg("--help").output().expect("run");
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("sandbox-demo probe URL"));
    let bad = Command::new(BINARY).arg("--bogus").output().expect("run");
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unexpected argument `--bogus`"));
}
