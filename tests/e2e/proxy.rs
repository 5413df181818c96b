//! The proxy against real containers: the manifest's `gateway:` routes and per-service policies,
//! the demo service in containers, the mesh between them and the monitor feeding replicas. The
//! in-process tests (`tests/proxy/`) prove each feature on its own; these prove they are wired.
//!
//! Every test brings up its own sandbox with the gateway on a free port and talks plain HTTP/1.1
//! to it (one connection per request, `Connection: close`).

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
struct Answer {
    status: u16,
    /// Lower-case names.
    headers: Vec<(String, String)>,
    body: String,
    elapsed: Duration,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The replica that answered (`x-sandbox-upstream`), `none` when no replica was reached.
    fn upstream(&self) -> &str {
        self.header("x-sandbox-upstream").unwrap_or("-")
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {self:?}"))
    }
}

/// Sends `raw` on a fresh connection to 127.0.0.1:`port` and reads the answer to its end.
fn exchange(port: u16, raw: &[u8]) -> Result<Answer, String> {
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

fn parse(bytes: &[u8], elapsed: Duration) -> Result<Answer, String> {
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

fn dechunk(mut body: &str) -> String {
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
fn send(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
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
struct Sandbox {
    project: Project,
    status: Value,
    gateway: u16,
    zipkin: u16,
}

impl Sandbox {
    /// Writes `manifest` (after `name:`) and brings it up; `environment` goes to `up`.
    fn up(project: Project, manifest: &str, environment: &[(&str, &str)]) -> Sandbox {
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

    fn get(&self, path: &str) -> Answer {
        send(self.gateway, "GET", path, &[])
    }

    fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
        send(self.gateway, method, path, headers)
    }

    /// The host port of one replica (to talk to it without the proxy).
    fn replica_port(&self, service: &str, replica: u64) -> u16 {
        replica_port(&self.status, service, replica)
    }

    /// Sets the demo's `/health` status on one replica, straight to its published port.
    fn set_health(&self, service: &str, replica: u64, status: u16) {
        let port = self.replica_port(service, replica);
        let answer = send(port, "POST", &format!("/admin/health?status={status}"), &[]);
        assert_eq!(answer.status, 200, "{answer:?}");
    }

    /// `/__sandbox/upstreams`: the replica `name` of `service`.
    fn replica_view(&self, service: &str, name: &str) -> Value {
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

    fn metrics(&self) -> String {
        self.get("/__sandbox/metrics").body
    }

    /// The spans of `trace_id` once `complete` holds for them (at most 10 s).
    fn trace(&self, trace_id: &str, complete: impl Fn(&[Value]) -> bool) -> Vec<Value> {
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
fn demo(image: &str, name: &str, routes: &str, extra: &str) -> String {
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
const HEALTH: &str = "    healthcheck: {http: /health, interval: 1s}\n";
/// Health-checked on `/echo`, so flipping `/health` makes a replica fail requests while the
/// monitor still sees it healthy (what retries and outlier detection are for).
const ALWAYS_HEALTHY: &str = "    healthcheck: {http: /echo, interval: 1s}\n";

fn has_span(spans: &[Value], kind: &str, local: &str, remote: &str) -> bool {
    spans.iter().any(|span| {
        span["kind"] == kind
            && span["localEndpoint"]["serviceName"] == local
            && span["remoteEndpoint"]["serviceName"] == remote
    })
}

/// Removes ANSI colour sequences (log files written by a terminal-minded logger).
fn plain(text: &str) -> String {
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

// ---------------------------------------------------------------------------------------------
// Routing

#[test]
fn gateway_routes_match_by_path_method_header_and_query_first_match_wins_and_edit_headers() {
    let project = Project::new("proxy-routing");
    let image = demo_context(&project);
    let manifest = format!(
        r#"gateway:
  port: 0
  routes:
    - match: {{exact: /exact}}
      service: cart
      rewrite: /echo/exact
    - match: {{prefix: /api/, method: POST}}
      service: cart
      rewrite: /echo/
    - match: {{prefix: /api/, headers: {{x-canary: {{exact: "yes"}}}}}}
      service: cart
      rewrite: /echo/
    - match: {{prefix: /api/, query: {{v: "2"}}}}
      service: cart
      rewrite: /echo/
    - match: {{exact: /items/0}}
      service: cart
    - match: {{regex: "/items/[0-9]+"}}
      service: item
    - match: {{prefix: /api/}}
      service: item
      rewrite: /echo/
      request_headers: {{add: {{x-from: gateway}}, remove: [cookie]}}
      response_headers: {{add: {{x-served-by: sandbox}}, remove: [content-type]}}
services:
{cart}{item}"#,
        cart = demo(
            &image,
            "cart",
            r#"GET /items/{id} => json {"cart": "{id}"}"#,
            HEALTH
        ),
        item = demo(
            &image,
            "item",
            r#"GET /items/{id} => json {"item": "{id}"}"#,
            HEALTH
        ),
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);

    // exact: only the very path, rewritten whole.
    let exact = sandbox.get("/exact");
    assert_eq!(
        (exact.status, exact.upstream()),
        (200, "cart-1"),
        "{exact:?}"
    );
    assert_eq!(exact.json()["path"], "/echo/exact");
    let not_exact = sandbox.send("GET", "/exact/more", &[("accept", "application/json")]);
    assert_eq!(not_exact.status, 404, "{not_exact:?}");
    assert_eq!(not_exact.json()["error"], "no route matches `/exact/more`");

    // method, header and query conditions pick `cart`; without them the catch-all picks `item`.
    let post = sandbox.send("POST", "/api/orders", &[]);
    assert_eq!((post.status, post.upstream()), (200, "cart-1"), "{post:?}");
    assert_eq!(post.json()["method"], "POST");
    assert_eq!(post.json()["path"], "/echo/orders");
    let canary = sandbox.send("GET", "/api/orders", &[("x-canary", "yes")]);
    assert_eq!(canary.upstream(), "cart-1", "{canary:?}");
    let not_canary = sandbox.send("GET", "/api/orders", &[("x-canary", "no")]);
    assert_eq!(not_canary.upstream(), "item-1", "{not_canary:?}");
    let query = sandbox.get("/api/orders?v=2");
    assert_eq!(query.upstream(), "cart-1", "{query:?}");
    assert_eq!(
        query.json()["query"],
        "v=2",
        "the query survives the rewrite"
    );
    assert_eq!(sandbox.get("/api/orders?v=3").upstream(), "item-1");

    // regex matches the whole path; an earlier exact route wins over it.
    let first = sandbox.get("/items/0");
    assert_eq!(first.upstream(), "cart-1", "{first:?}");
    assert_eq!(first.json()["cart"], "0");
    let regex = sandbox.get("/items/42");
    assert_eq!(regex.upstream(), "item-1", "{regex:?}");
    assert_eq!(regex.json()["item"], "42");
    assert_eq!(sandbox.get("/items/42x").status, 404, "anchored regex");

    // Header edits: added and removed on the way in and on the way out.
    let edited = sandbox.send(
        "GET",
        "/api/anything",
        &[("cookie", "session=1"), ("x-keep", "kept")],
    );
    assert_eq!(edited.status, 200, "{edited:?}");
    let seen = &edited.json()["headers"];
    assert_eq!(seen["x-from"], "gateway", "{seen}");
    assert_eq!(seen["x-keep"], "kept", "{seen}");
    assert!(seen.get("cookie").is_none(), "cookie removed: {seen}");
    assert_eq!(edited.header("x-served-by"), Some("sandbox"), "{edited:?}");
    assert_eq!(edited.header("content-type"), None, "{edited:?}");
    assert!(
        post.header("x-served-by").is_none(),
        "edits belong to their route"
    );
}

#[test]
fn without_gateway_routes_every_service_is_served_under_its_name() {
    let project = Project::new("proxy-default-routes");
    let image = demo_context(&project);
    let manifest = format!(
        "gateway: {{port: 0}}\nservices:\n{}{}",
        demo(&image, "cart", "", HEALTH),
        demo(&image, "item", "", HEALTH)
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);

    let item = sandbox.get("/item/echo/deeper?x=1");
    assert_eq!((item.status, item.upstream()), (200, "item-1"), "{item:?}");
    assert_eq!(item.json()["path"], "/echo/deeper", "prefix replaced by /");
    assert_eq!(item.json()["query"], "x=1");
    let cart = sandbox.get("/cart/echo");
    assert_eq!((cart.status, cart.upstream()), (200, "cart-1"), "{cart:?}");
    let bare = sandbox.get("/cart");
    assert_eq!(bare.upstream(), "cart-1", "{bare:?}");
    assert!(
        bare.json()["builtin"].is_array(),
        "`/cart` is the service's `/`"
    );
    let unknown = sandbox.send("GET", "/nothing/here", &[("accept", "application/json")]);
    assert_eq!(unknown.status, 404, "{unknown:?}");
    assert!(
        unknown.json()["next"]
            .as_str()
            .is_some_and(|next| next.contains("/__sandbox/routes")),
        "{unknown:?}"
    );
    let routes = sandbox.get("/__sandbox/routes").body;
    assert!(
        routes.contains("prefix:/cart/") && routes.contains("prefix:/item/"),
        "{routes}"
    );
}

// ---------------------------------------------------------------------------------------------
// Resilience

#[test]
fn retries_turn_a_failing_replica_into_success_and_are_counted_and_traced() {
    let project = Project::new("proxy-retries");
    let image = demo_context(&project);
    let manifest = format!(
        r#"gateway:
  port: 0
  routes:
    - match: {{exact: /retried}}
      service: item
      rewrite: /health
      retries: {{attempts: 1, on: [5xx], backoff: {{base: 10ms, max: 20ms}}}}
    - match: {{exact: /once}}
      service: item
      rewrite: /health
services:
{}"#,
        demo(
            &image,
            "item",
            "",
            &format!(
                "{ALWAYS_HEALTHY}    replicas: 2\n    outlier_detection: {{consecutive_errors: 1000, base_ejection: 1s}}\n"
            )
        ),
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);
    sandbox.set_health("item", 1, 503);

    // Without retries, round robin sends every other request to the failing replica.
    let once: Vec<u16> = (0..4).map(|_| sandbox.get("/once").status).collect();
    assert!(once.contains(&503) && once.contains(&200), "{once:?}");

    // With one retry, every request succeeds: the retry goes to the other replica.
    let answers: Vec<Answer> = (0..6).map(|_| sandbox.get("/retried")).collect();
    for answer in &answers {
        assert_eq!(
            (answer.status, answer.upstream()),
            (200, "item-2"),
            "{answer:?}"
        );
    }
    let metrics = sandbox.metrics();
    let retries: u64 = metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix(
                r#"sandbox_proxy_retries_total{route="exact:/retried",service="item"} "#,
            )
        })
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("retries of exact:/retried in metrics:\n{metrics}"));
    assert!((1..=6).contains(&retries), "{retries} retries\n{metrics}");

    // The retried request's trace says why it was retried, and where.
    let retried = answers
        .iter()
        .filter_map(|answer| answer.header("x-sandbox-trace-id"))
        .find_map(|trace_id| {
            let spans = sandbox.trace(trace_id, |spans| !spans.is_empty());
            spans
                .into_iter()
                .find(|span| span["tags"]["sandbox.retries"] == "1")
        })
        .unwrap_or_else(|| panic!("no trace of the {retries} retried requests is tagged"));
    let annotations = retried["annotations"].to_string();
    assert!(
        annotations.contains("retry 1: 503 from item-1"),
        "{retried}"
    );
}

#[test]
fn route_timeout_and_per_try_timeout_answer_504_naming_the_service() {
    let project = Project::new("proxy-timeouts");
    let image = demo_context(&project);
    let manifest = format!(
        r#"gateway:
  port: 0
  routes:
    - match: {{prefix: /slow/}}
      service: item
      rewrite: /delay/
      timeout: 300ms
    - match: {{prefix: /tries/}}
      service: item
      rewrite: /delay/
      timeout: 10s
      retries: {{attempts: 1, on: [5xx], per_try_timeout: 200ms, backoff: {{base: 10ms, max: 20ms}}}}
services:
{}"#,
        demo(&image, "item", "", HEALTH),
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);
    let json = [("accept", "application/json")];

    let fast = sandbox.get("/slow/10");
    assert_eq!(fast.status, 200, "{fast:?}");
    let slow = sandbox.send("GET", "/slow/3000", &json);
    assert_eq!(slow.status, 504, "{slow:?}");
    assert!(slow.elapsed < Duration::from_millis(2000), "{slow:?}");
    assert_eq!(slow.json()["error"], "`item` did not answer within 300ms");
    assert_eq!(slow.json()["service"], "item");
    assert_eq!(slow.json()["next"], "sandbox logs item");

    // Two tries of 200 ms each, then the last try's timeout is the answer.
    let tries = sandbox.send("GET", "/tries/3000", &json);
    assert_eq!(tries.status, 504, "{tries:?}");
    assert!(tries.elapsed < Duration::from_millis(2000), "{tries:?}");
    assert_eq!(tries.json()["error"], "`item` did not answer within 200ms");
    let metrics = sandbox.metrics();
    assert!(
        metrics.contains(r#"sandbox_proxy_retries_total{route="prefix:/tries/",service="item"} 1"#),
        "{metrics}"
    );
}

#[test]
fn weighted_split_sends_about_80_percent_to_item_and_20_to_item_v2() {
    let project = Project::new("proxy-split");
    let image = demo_context(&project);
    let manifest = format!(
        r#"gateway:
  port: 0
  routes:
    - match: {{prefix: /}}
      split:
        - {{service: item, weight: 80}}
        - {{service: item-v2, weight: 20}}
services:
{}{}"#,
        demo(&image, "item", "", HEALTH),
        demo(&image, "item-v2", "", HEALTH),
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);
    let (mut item, mut item_v2) = (0, 0);
    for _ in 0..200 {
        let answer = sandbox.get("/echo");
        assert_eq!(answer.status, 200, "{answer:?}");
        match answer.upstream() {
            "item-1" => item += 1,
            "item-v2-1" => item_v2 += 1,
            other => panic!("unexpected upstream {other}: {answer:?}"),
        }
        assert_eq!(
            answer.json()["service"],
            answer.upstream().trim_end_matches("-1")
        );
    }
    // Expected 40 of 200 (σ ≈ 5.7); ±4σ.
    assert!(
        (17..=63).contains(&item_v2),
        "item {item}, item-v2 {item_v2}"
    );
}

#[test]
fn outlier_detection_ejects_a_failing_replica_and_the_other_serves() {
    let project = Project::new("proxy-outlier");
    let image = demo_context(&project);
    let manifest = format!(
        r#"gateway:
  port: 0
  routes:
    - match: {{exact: /probe}}
      service: item
      rewrite: /health
services:
{}"#,
        demo(
            &image,
            "item",
            "",
            &format!(
                "{ALWAYS_HEALTHY}    replicas: 2\n    outlier_detection: {{consecutive_errors: 3, base_ejection: 30s}}\n"
            )
        ),
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);
    sandbox.set_health("item", 1, 500);

    let mut failures = 0;
    wait_until("item-1 is ejected", Duration::from_secs(10), || {
        let answer = sandbox.get("/probe");
        if answer.status == 500 {
            assert_eq!(answer.upstream(), "item-1", "{answer:?}");
            failures += 1;
        }
        (sandbox.replica_view("item", "item-1")["ejected"] == true).then_some(())
    });
    assert_eq!(failures, 3, "ejected after exactly `consecutive_errors`");
    let ejected = sandbox.replica_view("item", "item-1");
    assert_eq!(ejected["ejections"], 1, "{ejected}");
    assert_eq!(
        ejected["healthy"], true,
        "the monitor still sees it healthy"
    );
    for _ in 0..10 {
        let answer = sandbox.get("/probe");
        assert_eq!(
            (answer.status, answer.upstream()),
            (200, "item-2"),
            "{answer:?}"
        );
    }
    let metrics = sandbox.metrics();
    assert!(
        metrics.contains(r#"sandbox_proxy_ejections_total{service="item"} 1"#),
        "{metrics}"
    );
}

#[test]
fn the_monitor_takes_an_unhealthy_replica_out_of_rotation_and_back() {
    let project = Project::new("proxy-monitor");
    let image = demo_context(&project);
    let manifest = format!(
        "gateway: {{port: 0}}\nservices:\n{}",
        demo(&image, "item", "", &format!("{HEALTH}    replicas: 2\n")),
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);
    sandbox.set_health("item", 1, 500);
    wait_until(
        "the monitor sees item-1 unhealthy",
        Duration::from_secs(10),
        || (sandbox.replica_view("item", "item-1")["healthy"] == false).then_some(()),
    );
    for _ in 0..6 {
        let answer = sandbox.get("/item/echo");
        assert_eq!(
            (answer.status, answer.upstream()),
            (200, "item-2"),
            "{answer:?}"
        );
    }

    // Healthy again: back in rotation.
    let port = sandbox.replica_port("item", 1);
    assert_eq!(send(port, "POST", "/admin/health", &[]).status, 200);
    wait_until(
        "the monitor sees item-1 healthy again",
        Duration::from_secs(10),
        || (sandbox.replica_view("item", "item-1")["healthy"] == true).then_some(()),
    );
    let upstreams: Vec<String> = (0..4)
        .map(|_| sandbox.get("/item/echo").upstream().to_string())
        .collect();
    assert!(
        upstreams.iter().any(|name| name == "item-1")
            && upstreams.iter().any(|name| name == "item-2"),
        "{upstreams:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Faults

#[test]
fn manifest_faults_and_fault_headers_abort_and_delay_requests() {
    let project = Project::new("proxy-faults");
    let image = demo_context(&project);
    let manifest = format!(
        "gateway: {{port: 0}}\nservices:\n{}{}",
        demo(&image, "item", "", HEALTH),
        demo(
            &image,
            "broken",
            "",
            &format!("{HEALTH}    faults: {{abort: {{status: 503, percent: 100}}}}\n")
        ),
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);

    for _ in 0..3 {
        let aborted = sandbox.get("/broken/echo");
        assert_eq!(aborted.status, 503, "{aborted:?}");
        assert_eq!(aborted.header("x-sandbox-fault"), Some("abort"));
        assert_eq!(aborted.upstream(), "none", "never reaches a replica");
        assert_eq!(
            aborted.body,
            "fault injected by sandbox: abort with 503 for `broken`\n"
        );
    }

    let by_header = sandbox.send("GET", "/item/echo", &[("x-sandbox-fault-abort", "418")]);
    assert_eq!(by_header.status, 418, "{by_header:?}");
    assert_eq!(by_header.header("x-sandbox-fault"), Some("abort"));

    let delayed = sandbox.send("GET", "/item/echo", &[("x-sandbox-fault-delay", "300ms")]);
    assert_eq!(delayed.status, 200, "{delayed:?}");
    assert!(delayed.elapsed >= Duration::from_millis(300), "{delayed:?}");
    assert!(
        delayed.json()["headers"]
            .get("x-sandbox-fault-delay")
            .is_none(),
        "fault headers are not passed on: {}",
        delayed.body
    );
    let metrics = sandbox.metrics();
    assert!(
        metrics.contains("sandbox_proxy_faults_total 5"),
        "{metrics}"
    );
}

#[test]
fn fault_headers_do_nothing_when_the_gateway_disallows_them() {
    let project = Project::new("proxy-no-fault-headers");
    let image = demo_context(&project);
    let manifest = format!(
        "gateway: {{port: 0, allow_fault_headers: false}}\nservices:\n{}",
        demo(&image, "item", "", HEALTH),
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);
    let answer = sandbox.send(
        "GET",
        "/item/echo",
        &[
            ("x-sandbox-fault-abort", "503"),
            ("x-sandbox-fault-delay", "3s"),
        ],
    );
    assert_eq!(
        (answer.status, answer.upstream()),
        (200, "item-1"),
        "{answer:?}"
    );
    assert!(answer.elapsed < Duration::from_secs(2), "{answer:?}");
    assert_eq!(answer.header("x-sandbox-fault"), None);
    assert!(
        sandbox.metrics().contains("sandbox_proxy_faults_total 0"),
        "no fault counted"
    );
}

// ---------------------------------------------------------------------------------------------
// The mesh

#[test]
fn mesh_calls_are_attributed_to_the_calling_service() {
    let project = Project::new("proxy-mesh-caller");
    let image = demo_context(&project);
    let manifest = format!(
        "gateway: {{port: 0}}\nservices:\n{}{}",
        demo(
            &image,
            "user",
            "GET /users/{id} => call $${ITEM_URL}/items/{id} as item; GET /slow => call $${ITEM_URL}/delay/3000 as item",
            &format!("{HEALTH}    depends_on: {{item: {{condition: healthy}}}}\n")
        ),
        demo(
            &image,
            "item",
            r#"GET /items/{id} => json {"id": "{id}"}"#,
            &format!("{HEALTH}    timeout: 300ms\n")
        ),
    );
    let sandbox = Sandbox::up(project, &manifest, &[("SANDBOX_LOG", "sandbox=info")]);

    let answer = sandbox.get("/user/users/5");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["item"]["id"], "5", "{answer:?}");
    let trace_id = answer.header("x-sandbox-trace-id").expect("a trace id");
    let spans = sandbox.trace(trace_id, |spans| has_span(spans, "CLIENT", "user", "item"));
    let trace = serde_json::to_string(&spans).unwrap();
    let mesh = spans
        .iter()
        .find(|span| {
            span["kind"] == "CLIENT"
                && span["localEndpoint"]["serviceName"] == "user"
                && span["tags"]["sandbox.route"] == "mesh"
        })
        .unwrap_or_else(|| panic!("the mesh's client span for user → item: {trace}"));
    assert_eq!(mesh["remoteEndpoint"]["serviceName"], "item", "{trace}");
    assert!(has_span(&spans, "SERVER", "item", "user"), "{trace}");
    assert!(has_span(&spans, "CLIENT", "gateway", "user"), "{trace}");

    let metrics = sandbox.metrics();
    assert!(
        metrics.contains(
            r#"sandbox_proxy_requests_total{route="mesh",service="item",status="200"} 1"#
        ),
        "{metrics}"
    );
    // The access log (the control plane's log file) names the caller of the mesh request.
    let log = sandbox
        .project
        .state
        .path()
        .join(format!("{}.log", sandbox.project.name));
    let access = wait_until(
        "the access log has the mesh call",
        Duration::from_secs(5),
        || {
            let log = plain(&std::fs::read_to_string(&log).ok()?);
            log.lines()
                .find(|line| line.contains("route=mesh") && line.contains("path=/items/5"))
                .map(str::to_string)
        },
    );
    assert!(access.contains("caller=user"), "{access}");
    assert!(access.contains("status=200"), "{access}");

    // The service's own policy applies to mesh calls: `item` answers within 300 ms or `user`
    // gets the proxy's 504 (and passes it on).
    let slow = sandbox.get("/user/slow");
    assert_eq!(slow.status, 504, "{slow:?}");
    assert!(slow.elapsed < Duration::from_secs(2), "{slow:?}");
    assert!(
        slow.body.contains("`item` did not answer within 300ms"),
        "{slow:?}"
    );
}

/// The demo binary running on the host (killed on drop).
struct HostProcess(Child);

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn external_services_are_reached_from_the_gateway_and_through_the_mesh() {
    let project = Project::new("proxy-external");
    let image = demo_context(&project);
    // The very binary the images run (static), here on the host.
    let port = free_port();
    let _legacy = HostProcess(
        Command::new(project.path("demo/image/sandbox-demo"))
            .env("PORT", port.to_string())
            .env("SERVICE_NAME", "legacy")
            .env(
                "ROUTES",
                r#"GET /things/{id} => json {"id": "{id}", "from": "host"}"#,
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the demo on the host"),
    );
    wait_until("the host demo listens", Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    });
    let manifest = format!(
        "gateway: {{port: 0}}\nservices:\n  legacy:\n    external: http://127.0.0.1:{port}\n{}",
        demo(
            &image,
            "user",
            "GET /users/{id} => call $${LEGACY_URL}/things/{id} as legacy",
            &format!("{HEALTH}    depends_on: [legacy]\n")
        ),
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);

    let direct = sandbox.get("/legacy/things/7");
    assert_eq!(
        (direct.status, direct.upstream()),
        (200, "legacy-external"),
        "{direct:?}"
    );
    assert_eq!(direct.json()["from"], "host");

    let through_mesh = sandbox.get("/user/users/8");
    assert_eq!(through_mesh.status, 200, "{through_mesh:?}");
    assert_eq!(
        through_mesh.json()["legacy"]["from"],
        "host",
        "{through_mesh:?}"
    );
    assert_eq!(through_mesh.json()["legacy"]["id"], "8");
    let metrics = sandbox.metrics();
    assert!(
        metrics.contains(
            r#"sandbox_proxy_requests_total{route="mesh",service="legacy",status="200"} 1"#
        ),
        "{metrics}"
    );
}

// ---------------------------------------------------------------------------------------------
// Errors a developer can act on

#[test]
fn a_crashed_service_gets_an_error_page_with_its_state_and_last_logs() {
    let project = Project::new("proxy-crashed");
    let image = demo_context(&project);
    let manifest = format!(
        "gateway: {{port: 0}}\nservices:\n{}",
        demo(
            &image,
            "item",
            "",
            &format!("{HEALTH}    restart: \"no\"\n")
        ),
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);
    let port = sandbox.replica_port("item", 1);
    let exit = send(port, "GET", "/exit/3", &[]);
    assert_eq!(exit.status, 200, "{exit:?}");

    let json = [("accept", "application/json")];
    // Right after the exit a request may still find the replica (502, cannot connect); once the
    // monitor has looked, the service has no running replica (503) and its state says why.
    let page = wait_until(
        "the gateway reports the exit",
        Duration::from_secs(15),
        || {
            let answer = sandbox.send("GET", "/item/echo", &json);
            let state = answer.json()["state"].as_str().unwrap_or("").to_string();
            (answer.status == 503 && state.starts_with("exited with code 3")).then_some(answer)
        },
    );
    assert_eq!(page.header("content-type"), Some("application/json"));
    let body = page.json();
    assert_eq!(body["error"], "`item` has no running replica", "{body}");
    assert_eq!(body["service"], "item", "{body}");
    assert_eq!(body["status"], 503, "{body}");
    assert_eq!(body["next"], "sandbox logs item", "{body}");
    let logs = body["logs"].to_string();
    assert!(
        logs.contains("item exiting with code 3"),
        "the last log lines: {body}"
    );

    let html = sandbox.send("GET", "/item/echo", &[("accept", "text/html")]);
    assert_eq!(html.status, 503, "{html:?}");
    assert_eq!(
        html.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    for expected in [
        "<!doctype html>",
        "<h1>503 Service Unavailable</h1>",
        "`item` has no running replica",
        "<b>State:</b> exited with code 3",
        "item exiting with code 3",
        "<code>sandbox logs item</code>",
    ] {
        assert!(html.body.contains(expected), "{expected}: {}", html.body);
    }
}

/// A busybox service whose every connection runs `script` (`nc -ll -e`: stdin and stdout are the
/// connection), built from the project's `bb/` context; never ejected, so every request reaches it.
fn nc_service(project: &Project, name: &str, script: &str) -> String {
    let image = busybox_context(&project.path("bb"));
    format!(
        "  {name}:\n    image: {image}\n    build: ./bb\n    command: [\"nc\", \"-ll\", \"-p\", \"8080\", \"-e\", \"sh\", \"-c\", \"{script}\"]\n    port: 8080\n    healthcheck: {{tcp: true}}\n    outlier_detection: {{consecutive_errors: 1000, base_ejection: 1s}}\n"
    )
}

#[test]
fn the_gateway_rejects_bad_requests_and_names_an_upstream_that_sends_garbage() {
    let project = Project::new("proxy-bad-input");
    let manifest = format!(
        "gateway: {{port: 0}}\nservices:\n{}",
        nc_service(&project, "junk", "read line; echo garbage")
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);

    let malformed = exchange(sandbox.gateway, b"THIS IS NOT HTTP\r\n\r\n").expect("an answer");
    assert_eq!(malformed.status, 400, "{malformed:?}");

    let big = "x".repeat(70 * 1024);
    let raw = format!("GET /junk/ HTTP/1.1\r\nHost: localhost\r\nX-Big: {big}\r\n\r\n");
    let too_large = exchange(sandbox.gateway, raw.as_bytes()).expect("an answer");
    assert_eq!(too_large.status, 431, "{too_large:?}");
    assert_eq!(
        too_large.header("x-sandbox-error-source"),
        Some("downstream")
    );

    for _ in 0..3 {
        let garbage = sandbox.send("GET", "/junk/", &[("accept", "application/json")]);
        assert_eq!(garbage.status, 502, "{garbage:?}");
        assert_eq!(garbage.header("x-sandbox-error-source"), Some("upstream"));
        let body = garbage.json();
        let error = body["error"].as_str().unwrap_or("");
        assert!(
            error.starts_with("`junk` (junk-1) sent an invalid response"),
            "{body}"
        );
        assert_eq!(body["next"], "sandbox logs junk", "{body}");
    }
}

#[test]
fn an_upstream_that_sends_garbage_at_once_is_an_invalid_response() {
    let project = Project::new("proxy-early-garbage");
    let manifest = format!(
        "gateway: {{port: 0}}\nservices:\n{}",
        nc_service(&project, "junk", "echo garbage; sleep 1")
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);
    // Whether the garbage arrives before or after the proxy has written the request is a race;
    // either way the upstream did not answer with HTTP.
    for _ in 0..20 {
        let garbage = sandbox.send("GET", "/junk/", &[("accept", "application/json")]);
        assert_eq!(garbage.status, 502, "{garbage:?}");
        let body = garbage.json();
        let error = body["error"].as_str().unwrap_or("");
        assert!(
            error.starts_with("`junk` (junk-1) sent an invalid response"),
            "{body}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Reloading

#[test]
fn up_with_changed_routes_swaps_them_without_failing_a_request() {
    let project = Project::new("proxy-hot-swap");
    let image = demo_context(&project);
    // A fixed port: the gateway must stay where clients already connect.
    let gateway = free_port();
    let services = demo(
        &image,
        "item",
        r#"GET /items/{id} => json {"id": "{id}"}"#,
        HEALTH,
    );
    let before = format!(
        "gateway:\n  port: {gateway}\n  routes:\n    - match: {{prefix: /items/}}\n      service: item\nservices:\n{services}"
    );
    let sandbox = Sandbox::up(project, &before, &[]);
    assert_eq!(sandbox.gateway, gateway);
    assert_eq!(sandbox.get("/new/1").status, 404);

    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(25);
            let (mut answered, mut failures) = (0u32, Vec::new());
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && answered < 5000 {
                let raw = "GET /items/1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
                match exchange(gateway, raw.as_bytes()) {
                    Ok(answer) if answer.status == 200 => answered += 1,
                    Ok(answer) => failures.push(format!("{} {}", answer.status, answer.body)),
                    Err(error) => failures.push(error),
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            (answered, failures)
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let after = before.replace(
        "services:\n",
        "    - match: {prefix: /new/}\n      service: item\n      rewrite: /items/\nservices:\n",
    );
    sandbox.project.manifest(&after);
    sandbox.project.run(&["up", "-d"]).success();
    let new = sandbox.get("/new/5");
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let (answered, failures) = client.join().expect("client thread");

    assert_eq!(new.status, 200, "the new route works: {new:?}");
    assert_eq!(new.json()["id"], "5");
    assert!(
        answered > 20,
        "the client kept sending ({answered} answered)"
    );
    assert!(
        failures.is_empty(),
        "{} of {} requests failed during the re-up: {:?}",
        failures.len(),
        answered as usize + failures.len(),
        &failures[..failures.len().min(5)]
    );
}
