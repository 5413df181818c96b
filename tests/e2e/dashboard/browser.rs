//! The browser side: plain HTTP/1.1 to chromedriver (WebDriver) and to the sandbox, one headless
//! chromium session, screenshots under `target/dashboard-screenshots/`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::util::{free_port, wait_until};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// One HTTP/1.1 exchange on a fresh connection; the status and the body.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let (status, _, body) = exchange(port, method, path, headers, body);
    (status, body)
}

/// One HTTP/1.1 exchange on a fresh connection; the status, the head and the body.
pub fn exchange(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).expect("send");
    // Read to the end of the message, not of the connection: chromedriver keeps it open.
    let mut response = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        if message_complete(&response) {
            break;
        }
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => response.extend_from_slice(&buffer[..read]),
        }
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, head.to_string(), body)
}

/// Whether `response` holds a whole HTTP/1.1 message (by its length or its last chunk).
fn message_complete(response: &[u8]) -> bool {
    let Some(end) = response.windows(4).position(|window| window == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
    let body = &response[end + 4..];
    if head.contains("transfer-encoding: chunked") {
        return body.ends_with(b"0\r\n\r\n");
    }
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse::<usize>().ok());
    match length {
        Some(length) => body.len() >= length,
        None => false,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// A chromedriver process and one headless chromium session.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
}

impl Browser {
    pub fn start() -> Browser {
        for program in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                std::path::Path::new(program).exists(),
                "the dashboard tests need Debian's chromium and chromium-driver ({program} is missing); run .ci/setup"
            );
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        wait_until("chromedriver listens", Duration::from_secs(20), || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1500,900"]
            },
            "goog:loggingPrefs": {"browser": "ALL"}
        }}});
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
        };
        let created = browser.call("POST", "/session", capabilities);
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_string();
        browser
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let body = if method == "GET" {
            String::new()
        } else {
            body.to_string()
        };
        let (status, text) = http(
            self.port,
            method,
            path,
            &[("Content-Type", "application/json")],
            &body,
        );
        let value: Value = serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("WebDriver {method} {path}: {status} {error}: {text}"));
        assert!(status == 200, "WebDriver {method} {path}: {status} {value}");
        value["value"].clone()
    }

    fn session_call(&self, method: &str, path: &str, body: Value) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    pub fn open(&self, url: &str) {
        self.session_call("POST", "/url", json!({ "url": url }));
    }

    pub fn script(&self, script: &str) -> Value {
        self.session_call(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
    }

    /// Runs `script` as an asynchronous script: it ends by calling `done(value)`.
    pub fn script_async(&self, script: &str) -> Value {
        self.session_call(
            "POST",
            "/execute/async",
            json!({"script": format!("const done = arguments[arguments.length - 1]; {script}"), "args": []}),
        )
    }

    /// Clicks the element `selector` finds; found again if the page replaced it meanwhile.
    pub fn click(&self, selector: &str) {
        for _ in 0..5 {
            let found = self.session_call(
                "POST",
                "/element",
                json!({"using": "css selector", "value": selector}),
            );
            let id = found
                .as_object()
                .and_then(|object| object.values().next())
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("no element {selector}: {found}"))
                .to_string();
            let path = format!("/session/{}/element/{id}/click", self.session);
            let (status, text) = http(
                self.port,
                "POST",
                &path,
                &[("Content-Type", "application/json")],
                "{}",
            );
            if status == 200 {
                return;
            }
            assert!(
                text.contains("stale element"),
                "clicking {selector}: {status} {text}"
            );
        }
        panic!("{selector} kept being replaced while clicking it");
    }

    pub fn screenshot(&self, name: &str) {
        let encoded = self.session_call("GET", "/screenshot", Value::Null);
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().expect("base64"))
            .expect("a PNG");
        let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/dashboard-screenshots");
        std::fs::create_dir_all(&folder).expect("mkdir");
        std::fs::write(folder.join(format!("{name}.png")), png).expect("write screenshot");
    }

    /// The browser console's errors since the last call.
    pub fn console_errors(&self) -> Vec<String> {
        let entries = self.session_call("POST", "/se/log", json!({"type": "browser"}));
        entries
            .as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Runs `script` every 20 ms until it returns something other than null, false or 0;
    /// that value and how long it took.
    pub fn wait_for(&self, what: &str, timeout: Duration, script: &str) -> (Value, Duration) {
        let started = Instant::now();
        loop {
            let value = self.script(script);
            let empty = value.is_null()
                || value == Value::Bool(false)
                || value.as_f64() == Some(0.0)
                || value.as_array().is_some_and(Vec::is_empty);
            if !empty {
                return (value, started.elapsed());
            }
            assert!(
                started.elapsed() < timeout,
                "timed out after {timeout:?} waiting until {what}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Opens `page` of the dashboard (`#logs`…), waits for it to show, prints its first paint
    /// and checks the console stayed clean.
    pub fn visit(&self, port: u16, page: &str) {
        // From elsewhere, so each page is a fresh load with its own paint timings.
        self.open("about:blank");
        self.open(&format!("http://127.0.0.1:{port}/#{page}"));
        self.wait_for(
            &format!("the {page} page shows"),
            Duration::from_secs(10),
            &format!("return document.readyState === 'complete' && !document.getElementById('page-{page}').hidden;"),
        );
        let paint = self.paint_timings();
        eprintln!("first paint of #{page}: {paint}");
    }

    /// The page's paint timings (`first-paint 96.0 ms, first-contentful-paint 96.0 ms`) and when
    /// its HTML arrived, once the browser has them.
    pub fn paint_timings(&self) -> String {
        let (paint, _) = self.wait_for(
            "the page is painted",
            Duration::from_secs(5),
            "const paint = performance.getEntriesByType('paint').map(entry => entry.name + ' ' + entry.startTime.toFixed(1) + ' ms').join(', '); const [nav] = performance.getEntriesByType('navigation'); return paint && nav ? paint + ' (redirects ' + (nav.redirectEnd - nav.redirectStart).toFixed(1) + ' ms, page received at ' + nav.responseEnd.toFixed(1) + ' ms)' : null;",
        );
        paint.as_str().unwrap_or_default().to_string()
    }

    /// Asserts the browser console holds no errors (since the last look).
    pub fn assert_console_clean(&self, when: &str) {
        let errors = self.console_errors();
        assert!(
            errors.is_empty(),
            "the browser console has errors {when}: {errors:#?}"
        );
    }

    /// Replica name → (state, health) as the Resources page shows them.
    pub fn replicas(&self) -> Vec<(String, String, String)> {
        let rows = self.script(
            "return Array.from(document.querySelectorAll('tr[data-replica]')).filter(r => r.dataset.replica).map(r => [r.dataset.replica, r.querySelector('[data-state]').dataset.state, r.querySelector('[data-health]').dataset.health]);",
        );
        rows.as_array()
            .into_iter()
            .flatten()
            .map(|row| {
                let text = |index: usize| row[index].as_str().unwrap_or_default().to_string();
                (text(0), text(1), text(2))
            })
            .collect()
    }

    pub fn replica(&self, name: &str) -> Option<(String, String)> {
        self.replicas()
            .into_iter()
            .find(|(replica, _, _)| replica == name)
            .map(|(_, state, health)| (state, health))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = http(
                self.port,
                "DELETE",
                &format!("/session/{}", self.session),
                &[],
                "",
            );
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
