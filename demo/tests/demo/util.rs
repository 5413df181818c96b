//! Helpers: start the binary on a free port, speak raw HTTP to it, and capture spans POSTed to a fake Zipkin.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

pub const BINARY: &str = env!("CARGO_BIN_EXE_sandbox-demo");

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// A running `sandbox-demo`; killed when dropped.
pub struct Service {
    child: Option<Child>,
    pub port: u16,
}

impl Service {
    /// Starts the binary with `env` (PORT is added) and waits until it accepts connections.
    pub fn start(env: &[(&str, &str)]) -> Self {
        Self::start_with_args(env, &[])
    }

    pub fn start_with_args(env: &[(&str, &str)], args: &[&str]) -> Self {
        let service = Self::spawn(env, args);
        service.wait_listening(Duration::from_secs(10));
        service
    }

    /// Starts the binary without waiting for it to listen.
    pub fn spawn(env: &[(&str, &str)], args: &[&str]) -> Self {
        let port = free_port();
        let child = Command::new(BINARY)
            .args(args)
            .env_clear()
            .envs(env.iter().copied())
            .env("PORT", port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sandbox-demo");
        Self {
            child: Some(child),
            port,
        }
    }

    pub fn wait_listening(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sandbox-demo did not listen on {} in time",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.port)
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    /// Waits for the process to exit on its own (at most `timeout`) and returns its output.
    pub fn wait_exit(mut self, timeout: Duration) -> (Output, Duration) {
        let mut child = self.child.take().expect("running");
        let started = Instant::now();
        while child.try_wait().expect("poll child").is_none() {
            if started.elapsed() > timeout {
                let _ = child.kill();
                panic!("sandbox-demo did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        (
            child.wait_with_output().expect("collect output"),
            started.elapsed(),
        )
    }

    /// Sends SIGTERM and returns the output and how long the exit took.
    pub fn terminate(self) -> (Output, Duration) {
        // SAFETY: kill(2) on the pid of a child we own.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        self.wait_exit(Duration::from_secs(5))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A parsed response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }
}

/// Sends `raw` (which should ask for `Connection: close`) and reads the reply until the server closes.
pub fn exchange(port: u16, raw: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(raw).expect("send");
    let mut reader = BufReader::new(stream);
    read_reply(&mut reader)
}

/// Reads one response (Content-Length, chunked or until close) from `reader`.
pub fn read_reply(reader: &mut impl BufRead) -> Reply {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("read head");
        if line == "\r\n" || line.is_empty() {
            break;
        }
        head.push_str(&line);
    }
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let mut reply = Reply {
        status,
        head,
        body: Vec::new(),
    };
    if reply.header("transfer-encoding").as_deref() == Some("chunked") {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).expect("chunk size");
            let size = usize::from_str_radix(size.trim(), 16).expect("hex size");
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).expect("chunk");
            if size == 0 {
                break;
            }
            reply.body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(length) = reply.header("content-length") {
        reply.body = vec![0; length.parse().expect("length")];
        reader.read_exact(&mut reply.body).expect("body");
    } else if status >= 200 {
        reader.read_to_end(&mut reply.body).expect("body");
    }
    reply
}

/// `METHOD path` with extra header lines and a body; `Connection: close`.
pub fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    exchange(port, raw.as_bytes())
}

pub fn get(port: u16, path: &str) -> Reply {
    request(port, "GET", path, &[], "")
}

/// A fake Zipkin: every POST body arrives on the returned channel.
pub fn span_collector() -> (String, Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind collector");
    let endpoint = format!(
        "http://127.0.0.1:{}/api/v2/spans",
        listener.local_addr().expect("addr").port()
    );
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let reply = read_reply_as_request(&mut reader);
            let _ = (&stream).write_all(
                b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            if sender.send(reply).is_err() {
                return;
            }
        }
    });
    (endpoint, receiver)
}

fn read_reply_as_request(reader: &mut impl BufRead) -> String {
    let mut length = 0;
    let mut request_line = String::new();
    reader.read_line(&mut request_line).expect("request line");
    assert!(
        request_line.starts_with("POST /api/v2/spans "),
        "{request_line}"
    );
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("header");
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().expect("length");
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("body");
    String::from_utf8(body).expect("utf-8 spans")
}

/// Splits a Zipkin JSON v2 array into span objects (each starts with `{"traceId"`).
pub fn spans(batch: &str) -> Vec<String> {
    batch
        .split("{\"traceId\"")
        .skip(1)
        .map(|rest| format!("{{\"traceId\"{rest}"))
        .collect()
}

/// The string value of `"key":"…"` in `json` (first occurrence).
pub fn field(json: &str, key: &str) -> Option<String> {
    let start = json.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let end = json[start..].find('"')?;
    Some(json[start..start + end].to_string())
}
