//! The proxy against real containers: the manifest's `gateway:` routes and per-service policies,
//! the demo service in containers, the mesh between them and the monitor feeding replicas. The
//! in-process tests (`tests/proxy/`) prove each feature on its own; these prove they are wired.
//!
//! Every test brings up its own sandbox with the gateway on a free port and talks plain HTTP/1.1
//! to it (one connection per request, `Connection: close`).

mod errors;
mod faults;
mod mesh;
mod reload;
mod resilience;
mod routing;
mod tls;
mod workers;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{
    busybox_context, demo_context, free_port, ps_json, replica_port, wait_until, Project,
};

// ---------------------------------------------------------------------------------------------
// Helpers: a sandbox that is up, one HTTP exchange, manifest snippets.

/// A response as the client saw it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub elapsed: Duration,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The replica that answered (`x-sandbox-upstream`), `none` when no replica was reached.
    pub fn upstream(&self) -> &str {
        self.header("x-sandbox-upstream").unwrap_or("-")
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {self:?}"))
    }
}

/// Sends `raw` on a fresh connection to 127.0.0.1:`port` and reads the answer to its end.
pub fn exchange(port: u16, raw: &[u8]) -> Result<Answer, String> {
    let started = Instant::now();
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).map_err(|error| format!("connect: {error}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|error| error.to_string())?;
    stream
        .write_all(raw)
        .map_err(|error| format!("write: {error}"))?;
    let mut bytes = Vec::new();
    stream
        .read_to_end(&mut bytes)
        .map_err(|error| format!("read: {error}"))?;
    parse(&bytes, started.elapsed())
}

pub fn parse(bytes: &[u8], elapsed: Duration) -> Result<Answer, String> {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no complete response head: {text:?}"))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no status line: {text:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_lowercase(), value.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok(Answer {
        status,
        headers,
        body,
        elapsed,
    })
}

pub fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// `METHOD path` with extra headers on 127.0.0.1:`port`.
pub fn send(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if method != "GET" {
        raw.push_str("Content-Length: 0\r\n");
    }
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("\r\n");
    exchange(port, raw.as_bytes()).unwrap_or_else(|error| panic!("{method} {path}: {error}"))
}

/// A sandbox brought up with `up --wait`; dropping it tears everything down (through `Project`).
pub struct Sandbox {
    pub project: Project,
    pub status: Value,
    pub gateway: u16,
    pub zipkin: u16,
}

impl Sandbox {
    /// Writes `manifest` (after `name:`) and brings it up; `environment` goes to `up`.
    pub fn up(project: Project, manifest: &str, environment: &[(&str, &str)]) -> Sandbox {
        project.manifest(manifest);
        let mut command = project.command(&["up", "--wait", "--timeout", "30"]);
        command.envs(environment.iter().copied());
        project.run_with(command).success();
        let status = ps_json(&project);
        let port = |key: &str| -> u16 {
            let url = status[key]
                .as_str()
                .unwrap_or_else(|| panic!("ps --json names the {key}: {status}"));
            url.rsplit(':')
                .next()
                .and_then(|port| port.parse().ok())
                .unwrap()
        };
        let (gateway, zipkin) = (port("gateway"), port("zipkin"));
        Sandbox {
            project,
            status,
            gateway,
            zipkin,
        }
    }

    pub fn get(&self, path: &str) -> Answer {
        send(self.gateway, "GET", path, &[])
    }

    pub fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
        send(self.gateway, method, path, headers)
    }

    /// The host port of one replica (to talk to it without the proxy).
    pub fn replica_port(&self, service: &str, replica: u64) -> u16 {
        replica_port(&self.status, service, replica)
    }

    /// Sets the demo's `/health` status on one replica, straight to its published port.
    pub fn set_health(&self, service: &str, replica: u64, status: u16) {
        let port = self.replica_port(service, replica);
        let answer = send(port, "POST", &format!("/admin/health?status={status}"), &[]);
        assert_eq!(answer.status, 200, "{answer:?}");
    }

    /// `/__sandbox/upstreams`: the replica `name` of `service`.
    pub fn replica_view(&self, service: &str, name: &str) -> Value {
        let upstreams = self.get("/__sandbox/upstreams").json();
        upstreams
            .as_array()
            .into_iter()
            .flatten()
            .filter(|upstream| upstream["service"] == service)
            .flat_map(|upstream| upstream["replicas"].as_array().cloned().unwrap_or_default())
            .find(|replica| replica["name"] == name)
            .unwrap_or_else(|| panic!("no replica {name} of {service}: {upstreams}"))
    }

    pub fn metrics(&self) -> String {
        self.get("/__sandbox/metrics").body
    }

    /// The spans of `trace_id` once `complete` holds for them (at most 10 s).
    pub fn trace(&self, trace_id: &str, complete: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        wait_until(
            &format!("trace {trace_id} is complete"),
            Duration::from_secs(10),
            || {
                let answer = send(
                    self.zipkin,
                    "GET",
                    &format!("/api/v2/trace/{trace_id}"),
                    &[],
                );
                let spans: Vec<Value> = serde_json::from_str(&answer.body).ok()?;
                complete(&spans).then_some(spans)
            },
        )
    }
}

/// A demo service block (indented for `services:`), built from the project's `demo/image`.
pub fn demo(image: &str, name: &str, routes: &str, extra: &str) -> String {
    let mut yaml = format!(
        "  {name}:\n    image: {image}\n    build: ./demo/image\n    port: 8080\n    environment:\n      SERVICE_NAME: {name}\n"
    );
    if !routes.is_empty() {
        yaml.push_str(&format!("      ROUTES: '{routes}'\n"));
    }
    yaml.push_str(extra);
    yaml
}

/// Health-checked on the demo's `/health` (the monitor takes failing replicas out of rotation).
pub const HEALTH: &str = "    healthcheck: {http: /health, interval: 1s}\n";
/// Health-checked on `/echo`, so flipping `/health` makes a replica fail requests while the
/// monitor still sees it healthy (what retries and outlier detection are for).
pub const ALWAYS_HEALTHY: &str = "    healthcheck: {http: /echo, interval: 1s}\n";

pub fn has_span(spans: &[Value], kind: &str, local: &str, remote: &str) -> bool {
    spans.iter().any(|span| {
        span["kind"] == kind
            && span["localEndpoint"]["serviceName"] == local
            && span["remoteEndpoint"]["serviceName"] == remote
    })
}

/// Removes ANSI colour sequences (log files written by a terminal-minded logger).
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
