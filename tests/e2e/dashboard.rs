//! The dashboard in a real browser: Debian's `chromium` driven through `chromedriver` (WebDriver,
//! plain HTTP/1.1 from this file) against the demo chain brought up for real. Screenshots of each
//! page go to `target/dashboard-screenshots/`. Fails loudly when chromium or its driver is missing
//! (`.ci/setup` installs them).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::util::{demo_chain, free_port, wait_until, Project};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// One HTTP/1.1 exchange on a fresh connection; the status and the body.
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
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
    (status, body)
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
struct Browser {
    driver: Child,
    port: u16,
    session: String,
}

impl Browser {
    fn start() -> Browser {
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

    fn open(&self, url: &str) {
        self.session_call("POST", "/url", json!({ "url": url }));
    }

    fn script(&self, script: &str) -> Value {
        self.session_call(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
    }

    /// Clicks the element `selector` finds; found again if the page replaced it meanwhile.
    fn click(&self, selector: &str) {
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

    fn screenshot(&self, name: &str) {
        let encoded = self.session_call("GET", "/screenshot", Value::Null);
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().expect("base64"))
            .expect("a PNG");
        let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/dashboard-screenshots");
        std::fs::create_dir_all(&folder).expect("mkdir");
        std::fs::write(folder.join(format!("{name}.png")), png).expect("write screenshot");
    }

    /// The browser console's errors since the last call.
    fn console_errors(&self) -> Vec<String> {
        let entries = self.session_call("POST", "/se/log", json!({"type": "browser"}));
        entries
            .as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Replica name → (state, health) as the Resources page shows them.
    fn replicas(&self) -> Vec<(String, String, String)> {
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

    fn replica(&self, name: &str) -> Option<(String, String)> {
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

/// The state of `replica` in `/dashboard/api/resources`.
fn api_state(port: u16, replica: &str) -> Option<String> {
    let (_, body) = http(port, "GET", "/dashboard/api/resources", &[], "");
    let resources: Value = serde_json::from_str(&body).ok()?;
    resources["services"]
        .as_array()?
        .iter()
        .flat_map(|service| service["replicas"].as_array().cloned().unwrap_or_default())
        .find(|entry| entry["name"] == replica)
        .and_then(|entry| entry["state"].as_str().map(str::to_string))
}

#[test]
fn the_dashboard_shows_and_drives_the_running_sandbox() {
    let project = Project::new("dashboard");
    project.manifest(&demo_chain(&project));
    let up = project.run(&["up", "--wait"]);
    up.success();
    let output = format!("{}{}", up.stdout, up.stderr);
    let url = output
        .split_whitespace()
        .find(|word| word.starts_with("http://127.0.0.1:") && word.contains("/?token="))
        .unwrap_or_else(|| panic!("`up` prints the dashboard URL with its token:\n{output}"))
        .to_string();
    let port: u16 = url["http://127.0.0.1:".len()..]
        .split('/')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("a port in the dashboard URL");
    let token = url.split("token=").nth(1).expect("a token").to_string();

    // A web page elsewhere cannot drive it, even with the cookie; nor a request without the token.
    let cookie = format!("sandbox_token={token}");
    let (status, _) = http(
        port,
        "POST",
        "/dashboard/api/services/item/stop",
        &[
            ("Origin", "http://evil.example"),
            ("Cookie", &cookie),
            ("Content-Type", "text/plain"),
        ],
        "",
    );
    assert_eq!(status, 403, "a cross-origin POST is refused");
    let (status, _) = http(
        port,
        "POST",
        "/dashboard/api/services/item/stop",
        &[("Origin", &format!("http://127.0.0.1:{port}"))],
        "",
    );
    assert_eq!(status, 403, "a POST without the token is refused");
    let (status, body) = http(port, "GET", "/dashboard/api/resources", &[], "");
    assert_eq!(status, 200);
    let resources: Value = serde_json::from_str(&body).expect("resources are JSON");
    assert_eq!(resources["project"], project.name.as_str());

    let browser = Browser::start();
    browser.open(&url);
    let page = browser.script("return location.href;");
    assert_eq!(
        page.as_str(),
        Some(format!("http://127.0.0.1:{port}/").as_str()),
        "the token leaves the address bar"
    );
    wait_until(
        "the page lists user and item as healthy",
        Duration::from_secs(30),
        || {
            let replicas = browser.replicas();
            let healthy = |name: &str| {
                replicas.iter().any(|(replica, state, health)| {
                    replica == name && state == "running" && health == "healthy"
                })
            };
            (healthy("user-1") && healthy("item-1")).then_some(())
        },
    );
    browser.screenshot("resources");

    // The engine's event shows without a reload.
    let item = project
        .containers()
        .into_iter()
        .find(|(name, _)| name.ends_with("-item-1"))
        .expect("an item container");
    let status = project
        .docker()
        .args(["kill", &item.1])
        .status()
        .expect("docker kill");
    assert!(status.success(), "docker kill item");
    let killed = Instant::now();
    // Timed on both sides, so a failure says whether the server or the page was late.
    let (mut served, mut shown) = (None, None);
    while killed.elapsed() < Duration::from_secs(15) && (served.is_none() || shown.is_none()) {
        if served.is_none() && api_state(port, "item-1").as_deref() == Some("exited") {
            served = Some(killed.elapsed());
        }
        if shown.is_none()
            && browser
                .replica("item-1")
                .is_some_and(|(state, _)| state == "exited")
        {
            shown = Some(killed.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("after docker kill: the API said exited after {served:?}, the page after {shown:?}");
    assert!(
        shown.is_some_and(|shown| shown <= Duration::from_secs(2)),
        "the page shows item exited within 2 s of docker kill (API: {served:?}, page: {shown:?})"
    );
    browser.screenshot("resources-item-exited");

    // Restart from the page brings it back.
    browser.click("button[data-action=restart][data-service=item]");
    wait_until(
        "item is running and healthy again",
        Duration::from_secs(30),
        || (browser.replica("item-1")? == ("running".into(), "healthy".into())).then_some(()),
    );
    let restarts = browser.script(
        "return document.querySelector('tr[data-replica=\"item-1\"] td[data-started]').nextElementSibling.textContent;",
    );
    assert_eq!(restarts.as_str(), Some("1"), "the restart is counted");

    // A fault toggled live on item: the gateway answers its requests with the injected status.
    browser.script(
        "const select = document.querySelector('select[data-fault=item]'); select.value = 'abort:503'; select.dispatchEvent(new Event('change')); return null;",
    );
    let status_json: Value = {
        let run = project.run(&["--json", "ps"]);
        run.success();
        serde_json::from_str(&run.stdout).expect("ps --json")
    };
    let gateway = status_json["gateway"]
        .as_str()
        .map(str::to_string)
        .or_else(|| {
            output
                .split_whitespace()
                .find(|word| {
                    word.starts_with("http://127.0.0.1:") && !word.contains(&format!(":{port}"))
                })
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("the gateway's address: {status_json}\n{output}"));
    let gateway_port: u16 = gateway
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("gateway port");
    wait_until(
        "the gateway answers item with the injected 503",
        Duration::from_secs(5),
        || (http(gateway_port, "GET", "/item/items/1", &[], "").0 == 503).then_some(()),
    );
    browser.script(
        "const select = document.querySelector('select[data-fault=item]'); select.value = ''; select.dispatchEvent(new Event('change')); return null;",
    );
    wait_until("the fault is cleared", Duration::from_secs(5), || {
        (http(gateway_port, "GET", "/user/users/1", &[], "").0 == 200).then_some(())
    });

    for page in ["logs", "traces", "graph"] {
        browser.open(&format!("http://127.0.0.1:{port}/#{page}"));
        std::thread::sleep(Duration::from_millis(1500));
        browser.screenshot(page);
    }
    let errors = browser.console_errors();
    assert!(
        errors.is_empty(),
        "the browser console has errors: {errors:#?}"
    );
}
