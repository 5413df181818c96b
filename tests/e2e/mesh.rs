//! The transparent mesh end to end (issue 10): services call each other the way compose taught
//! them (`http://item:8080`, `echo:7000`, a network alias), with no `<DEP>_URL`, and every call
//! passes through the control plane's proxy by way of the callee's forwarder: L7 spans, faults and
//! retries on direct calls; L4 connections spliced byte for byte with a span each; aliases on a
//! second network; WebSockets and idle connections that live on; the opt-out; and the bad cases
//! (a stopped callee, a port nobody listens on), which fail at once, never hang.
//!
//! Callers that are not the demo are busybox containers (`sleep`) the test runs commands in with
//! `docker exec`; busybox `nc` half-closes on its input's end, so `nc host port < file` gets the
//! whole answer. (busybox `wget` crashes on this machine: `nc` speaks HTTP instead.)

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::proxy::{demo, has_span, send, Sandbox, HEALTH};
use crate::util::{busybox_context, demo_context, wait_until, Project};

// ---------------------------------------------------------------------------------------------
// Helpers

/// The container of `replica` of `service`.
pub(crate) fn container(sandbox: &Sandbox, service: &str, replica: u32) -> String {
    format!("{}-{service}-{replica}", sandbox.project.name)
}

/// Runs `sh -c script` in `container`; (exit success, stdout, stderr).
pub(crate) fn exec(container: &str, script: &str) -> (bool, String, String) {
    let output = Command::new("docker")
        .args(["exec", container, "sh", "-c", script])
        .output()
        .expect("docker exec");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs the docker CLI; panics with its output unless it succeeds; returns stdout.
pub(crate) fn docker(args: &[&str]) -> String {
    let output = Command::new("docker").args(args).output().expect("docker");
    assert!(
        output.status.success(),
        "docker {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A busybox service block that only sleeps (a caller to `docker exec` in), built from `bb/`.
pub(crate) fn sleeper(project: &Project, name: &str, extra: &str) -> String {
    let image = busybox_context(&project.path("bb"));
    format!(
        "  {name}:\n    image: {image}\n    build: ./bb\n    command: [\"sleep\", \"3600\"]\n{extra}"
    )
}

/// A busybox TCP echo on 7000 (`nc -ll -e cat`: one `cat` per connection).
pub(crate) fn echo(project: &Project, name: &str) -> String {
    let image = busybox_context(&project.path("bb"));
    format!(
        "  {name}:\n    image: {image}\n    build: ./bb\n    command: [\"nc\", \"-ll\", \"-p\", \"7000\", \"-e\", \"cat\"]\n    expose: [\"7000\"]\n"
    )
}

/// `(parent, child)` pairs of `/api/v2/dependencies` up to now.
pub(crate) fn dependencies(sandbox: &Sandbox) -> Vec<(String, String)> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let answer = send(
        sandbox.zipkin,
        "GET",
        &format!("/api/v2/dependencies?endTs={now}"),
        &[],
    );
    let links: Vec<Value> = serde_json::from_str(&answer.body)
        .unwrap_or_else(|error| panic!("dependencies are not JSON ({error}): {answer:?}"));
    links
        .iter()
        .map(|link| {
            (
                link["parent"].as_str().unwrap_or("").to_string(),
                link["child"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The spans of every stored trace of `service` with a span named `name`.
pub(crate) fn traces(sandbox: &Sandbox, service: &str, name: &str) -> Vec<Value> {
    let answer = send(
        sandbox.zipkin,
        "GET",
        &format!(
            "/api/v2/traces?serviceName={service}&spanName={}&limit=100",
            name.replace(' ', "%20")
        ),
        &[],
    );
    let traces: Vec<Vec<Value>> = serde_json::from_str(&answer.body)
        .unwrap_or_else(|error| panic!("traces are not JSON ({error}): {answer:?}"));
    traces.into_iter().flatten().collect()
}

/// `GET /user/users/7` through the gateway (`user` calls `http://item:8080` by name): the
/// answer, then its trace once it has the mesh's hops (and `also`), checked with
/// [`assert_mesh_spans_and_links`].
pub(crate) fn user_calls_item_directly(
    sandbox: &Sandbox,
    also: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let answer = sandbox.get("/user/users/7");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["item"]["name"], "item 7", "{answer:?}");
    let trace_id = answer.header("x-sandbox-trace-id").expect("a trace id");
    let spans = sandbox.trace(trace_id, |spans| {
        has_span(spans, "CLIENT", "gateway", "user")
            && has_span(spans, "CLIENT", "user", "item")
            && has_span(spans, "SERVER", "item", "user")
            && also(spans)
    });
    assert_mesh_spans_and_links(sandbox, &spans);
    spans
}

/// `user`'s call to `item` went through the mesh (its client span from `user`, its server span
/// at `item`), and the dependency links gateway → user → item are there.
pub(crate) fn assert_mesh_spans_and_links(sandbox: &Sandbox, spans: &[Value]) {
    let trace = serde_json::to_string(spans).unwrap();
    let mesh = |kind: &str, local: &str| {
        spans.iter().any(|span| {
            span["kind"] == kind
                && span["localEndpoint"]["serviceName"] == local
                && span["tags"]["sandbox.route"] == "mesh"
        })
    };
    assert!(mesh("CLIENT", "user"), "the mesh's client span: {trace}");
    assert!(mesh("SERVER", "item"), "the mesh's server span: {trace}");
    let links = dependencies(sandbox);
    for (parent, child) in [("gateway", "user"), ("user", "item")] {
        assert!(
            links.contains(&(parent.to_string(), child.to_string())),
            "the link {parent} → {child}: {links:?}"
        );
    }
}

pub(crate) fn tag_number(span: &Value, key: &str) -> u64 {
    span["tags"][key]
        .as_str()
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no number tag {key}: {span}"))
}

/// A TCP connection from inside a container: `docker exec -i CONTAINER nc HOST PORT`, its input
/// written by the test, its output read with a deadline.
struct Pipe {
    child: Child,
    input: Option<ChildStdin>,
    output: mpsc::Receiver<Vec<u8>>,
    buffered: Vec<u8>,
}

impl Pipe {
    fn open(container: &str, host: &str, port: u16) -> Pipe {
        let mut child = Command::new("docker")
            .args(["exec", "-i", container, "nc", host, &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker exec nc");
        let input = child.stdin.take();
        let mut stdout = child.stdout.take().expect("stdout");
        let (sender, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 16 * 1024];
            while let Ok(read @ 1..) = stdout.read(&mut chunk) {
                if sender.send(chunk[..read].to_vec()).is_err() {
                    return;
                }
            }
        });
        Pipe {
            child,
            input,
            output,
            buffered: Vec::new(),
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        let input = self.input.as_mut().expect("the input is open");
        input.write_all(bytes).expect("write to nc");
        input.flush().expect("flush nc's input");
    }

    /// Reads until `complete` says how many of the buffered bytes make the answer; panics naming
    /// `what` when they do not come within 10 s.
    fn read(&mut self, what: &str, complete: impl Fn(&[u8]) -> Option<usize>) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(used) = complete(&self.buffered) {
                return self.buffered.drain(..used).collect();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(chunk) => self.buffered.extend_from_slice(&chunk),
                Err(error) => panic!(
                    "{what}: {error}; got so far {:?}",
                    String::from_utf8_lossy(&self.buffered)
                ),
            }
        }
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        self.input.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A masked WebSocket text frame (clients mask theirs, RFC 6455 §5.3); payload < 126 bytes.
fn ws_text(text: &str) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x81, 0x80 | u8::try_from(text.len()).expect("a short text")];
    frame.extend_from_slice(&mask);
    frame.extend(
        text.bytes()
            .enumerate()
            .map(|(index, byte)| byte ^ mask[index % 4]),
    );
    frame
}

/// An unmasked short server frame at the start of `bytes`: its length when complete.
fn ws_frame_length(bytes: &[u8]) -> Option<usize> {
    let length = usize::from(*bytes.get(1)? & 0x7f);
    assert!(length < 126, "a short frame: {bytes:?}");
    (bytes.len() >= 2 + length).then_some(2 + length)
}

fn line_length(bytes: &[u8]) -> Option<usize> {
    bytes
        .iter()
        .position(|byte| *byte == b'\n')
        .map(|index| index + 1)
}

// ---------------------------------------------------------------------------------------------
// L7: the demo chain calling `http://item:8080` directly

/// `user` calling `http://item:8080/items/{id}` by name, `item` with `extra`.
pub fn direct_chain(project: &Project, item_extra: &str, item_replicas: &str) -> String {
    let image = demo_context(project);
    format!(
        "gateway: {{port: 0}}\nservices:\n{}{}",
        demo(
            &image,
            "user",
            "GET /users/{id} => call http://item:8080/items/{id} as item",
            &format!("{HEALTH}    depends_on: {{item: {{condition: healthy}}}}\n")
        ),
        demo(
            &image,
            "item",
            r#"GET /items/{id} => json {"id": "{id}", "name": "item {id}"}"#,
            &format!("{HEALTH}{item_replicas}{item_extra}")
        ),
    )
}

#[test]
fn a_direct_call_by_service_name_is_traced_through_the_mesh() {
    let project = Project::new("mesh-direct");
    let manifest = direct_chain(&project, "", "");
    let sandbox = Sandbox::up(project, &manifest, &[]);

    // The proxy's spans are stored at once, the demo's own (the parents of the mesh's) come in
    // the background: one trace is whole when every span's parent is in it.
    let spans = user_calls_item_directly(&sandbox, |spans| {
        spans.iter().any(|span| span["name"] == "get /items/{id}")
            && spans.iter().all(|span| {
                span["parentId"]
                    .as_str()
                    .is_none_or(|parent| spans.iter().any(|other| other["id"] == parent))
            })
    });
    let trace = serde_json::to_string(&spans).unwrap();
    assert!(has_span(&spans, "SERVER", "user", "gateway"), "{trace}");
    let metrics = sandbox.metrics();
    assert!(
        metrics.contains(
            r#"sandbox_proxy_requests_total{route="mesh",service="item",status="200"} 1"#
        ),
        "{metrics}"
    );
    // On a Linux engine the forwarder hands the caller's connection to the control plane whole
    // (`proxy::handoff`) rather than relaying it through the intake's port.
    assert!(handoffs(&sandbox) >= 1, "{metrics}");
}

/// How many callers' connections forwarders handed over whole (`sandbox_proxy_intake_handoffs_total`).
pub(crate) fn handoffs(sandbox: &Sandbox) -> u64 {
    let metrics = sandbox.metrics();
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("sandbox_proxy_intake_handoffs_total "))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or_else(|| panic!("no handoff counter in {metrics}"))
}

#[test]
fn a_fault_on_the_callee_hits_the_direct_call() {
    let project = Project::new("mesh-fault");
    let manifest = direct_chain(
        &project,
        "    faults: {abort: {status: 418, percent: 100}}\n",
        "",
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);
    for id in 1..=3 {
        let answer = sandbox.get(&format!("/user/users/{id}"));
        assert_eq!(
            answer.status, 418,
            "user passes the injected status on: {answer:?}"
        );
        assert_eq!(answer.upstream(), "user-1", "{answer:?}");
        assert!(
            answer
                .body
                .contains("fault injected by sandbox: abort with 418 for `item`"),
            "{answer:?}"
        );
    }
    let logs = sandbox.project.run(&["logs", "item"]);
    assert!(
        !logs.stdout.contains("GET /items/1"),
        "the fault kept the calls from item: {}",
        logs.stdout
    );
}

#[test]
fn retries_on_the_callee_hide_a_killed_replica_from_direct_calls() {
    retries_hide_a_killed_replica("mesh-retries", &[]);
}

/// The direct chain with two `item` replicas and retries, brought up with `environment`: a
/// replica killed under load costs no request.
pub(crate) fn retries_hide_a_killed_replica(name: &str, environment: &[(&str, &str)]) {
    let project = Project::new(name);
    let manifest = direct_chain(
        &project,
        "    retries: {attempts: 2, on: [connect-failure, 5xx], backoff: {base: 10ms, max: 50ms}}\n    restart: \"no\"\n",
        "    replicas: 2\n",
    );
    let sandbox = Sandbox::up(project, &manifest, environment);
    let warm: Vec<u16> = (0..4)
        .map(|id| sandbox.get(&format!("/user/users/{id}")).status)
        .collect();
    assert_eq!(warm, [200; 4]);

    // Requests keep coming while a replica dies, and for a while after: the ones that meet the
    // dead replica before the monitor has seen its end are retried on the other.
    let gateway = sandbox.gateway;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut answers = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let answer = send(gateway, "GET", "/user/users/5", &[]);
                answers.push((answer.status, answer.body));
            }
            answers
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    docker(&["kill", &container(&sandbox, "item", 1)]);
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let answers = load.join().expect("the load thread");
    assert!(answers.len() >= 10, "{} requests", answers.len());
    for (status, body) in &answers {
        assert_eq!(*status, 200, "a request failed around the kill: {body}");
    }
    let retries: u64 = sandbox
        .metrics()
        .lines()
        .filter(|line| {
            line.starts_with("sandbox_proxy_retries_total{") && line.contains(r#"service="item""#)
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    eprintln!(
        "{} requests around the kill, all 200; {retries} retried",
        answers.len()
    );
}

// ---------------------------------------------------------------------------------------------
// L4

#[test]
fn ten_mebibytes_pass_intact_through_an_l4_connection_with_its_span() {
    let project = Project::new("mesh-l4");
    let manifest = format!(
        "gateway: {{port: 0}}\nservices:\n{}{}",
        echo(&project, "echo"),
        sleeper(&project, "client", ""),
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);
    let client = container(&sandbox, "client", 1);
    // A fixed first byte: random data that began like a TLS record would be named `tls 7000`.
    let started = Instant::now();
    let (ok, out, err) = exec(
        &client,
        "mkdir -p /tmp; (printf x; head -c 10485759 /dev/urandom) > /tmp/in; sha256sum < /tmp/in; \
         timeout 60 nc echo 7000 < /tmp/in | sha256sum; rm /tmp/in",
    );
    let elapsed = started.elapsed();
    assert!(ok, "{out}{err}");
    let sums: Vec<&str> = out
        .lines()
        .map(|line| line.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(sums.len(), 2, "{out}{err}");
    assert_eq!(sums[0], sums[1], "the bytes came back intact: {out}{err}");
    assert_ne!(
        sums[1], "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "something came back"
    );
    eprintln!("10 MiB each way through the mesh in {elapsed:?}");

    let spans = wait_until(
        "the connection's span is stored",
        Duration::from_secs(10),
        || {
            let spans = traces(&sandbox, "client", "tcp 7000");
            has_span(&spans, "CLIENT", "client", "echo").then_some(spans)
        },
    );
    let all = serde_json::to_string(&spans).unwrap();
    let span = spans
        .iter()
        .find(|span| span["kind"] == "CLIENT" && span["localEndpoint"]["serviceName"] == "client")
        .unwrap_or_else(|| panic!("{all}"));
    assert_eq!(span["name"], "tcp 7000", "{all}");
    assert_eq!(span["remoteEndpoint"]["serviceName"], "echo", "{all}");
    assert_eq!(
        tag_number(span, "sandbox.bytes_sent"),
        10 * 1024 * 1024,
        "{all}"
    );
    assert_eq!(
        tag_number(span, "sandbox.bytes_received"),
        10 * 1024 * 1024,
        "{all}"
    );
    assert!(span["tags"]["sandbox.close"].is_string(), "{all}");
    assert!(span["tags"].get("error").is_none(), "{all}");
    assert!(has_span(&spans, "SERVER", "echo", "client"), "{all}");
    let links = dependencies(&sandbox);
    assert!(
        links.contains(&("client".to_string(), "echo".to_string())),
        "the link client → echo: {links:?}"
    );
}

#[test]
fn l4_faults_refuse_or_delay_the_connection_the_forwarder_would_splice() {
    let project = Project::new("mesh-l4-fault");
    let manifest = format!(
        "gateway: {{port: 0}}\nservices:\n{}    faults: {{abort: {{status: 503, percent: 100}}}}\n{}    faults: {{delay: {{fixed: 1s}}}}\n{}",
        echo(&project, "shut"),
        echo(&project, "slow"),
        sleeper(&project, "client", ""),
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);
    let client = container(&sandbox, "client", 1);
    // Abort: the connection is refused at once, never a hang.
    let started = Instant::now();
    let (_, out, err) = exec(
        &client,
        "echo hello | timeout 10 nc shut 7000; echo exit=$?",
    );
    let elapsed = started.elapsed();
    assert!(!out.contains("exit=124"), "nc hung: {out}{err}");
    assert!(!out.contains("hello"), "{out}{err}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    // Delay: the connect waits, then the bytes pass.
    let started = Instant::now();
    let (ok, out, err) = exec(&client, "echo hello | timeout 10 nc slow 7000");
    let elapsed = started.elapsed();
    assert!(ok, "{out}{err}");
    assert!(out.contains("hello"), "{out}{err}");
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    let spans = wait_until("both connections' spans", Duration::from_secs(10), || {
        let spans = traces(&sandbox, "client", "tcp 7000");
        (has_span(&spans, "CLIENT", "client", "shut")
            && has_span(&spans, "CLIENT", "client", "slow"))
        .then_some(spans)
    });
    let all = serde_json::to_string(&spans).unwrap();
    let close = |callee: &str| {
        spans
            .iter()
            .find(|span| {
                span["kind"] == "CLIENT" && span["remoteEndpoint"]["serviceName"] == callee
            })
            .map(|span| span["tags"]["sandbox.close"].clone())
    };
    assert_eq!(close("shut"), Some("fault".into()), "{all}");
    assert_ne!(close("slow"), Some("fault".into()), "{all}");
}

// ---------------------------------------------------------------------------------------------
// Several networks and aliases

#[test]
fn a_call_through_an_alias_on_a_second_network_is_seen() {
    let project = Project::new("mesh-alias");
    let image = demo_context(&project);
    let manifest = format!(
        "gateway: {{port: 0}}\nnetworks:\n  back: {{}}\nservices:\n{}{}",
        demo(
            &image,
            "user",
            "GET /users/{id} => call http://store:8080/items/{id} as item",
            &format!("{HEALTH}    networks: [default, back]\n    depends_on: {{item: {{condition: healthy}}}}\n")
        ),
        demo(
            &image,
            "item",
            r#"GET /items/{id} => json {"id": "{id}"}"#,
            &format!("{HEALTH}    networks:\n      default: {{}}\n      back:\n        aliases: [store]\n")
        ),
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);
    let answer = sandbox.get("/user/users/3");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["item"]["id"], "3", "{answer:?}");
    let trace_id = answer.header("x-sandbox-trace-id").expect("a trace id");
    let spans = sandbox.trace(trace_id, |spans| {
        has_span(spans, "CLIENT", "user", "item") && has_span(spans, "SERVER", "item", "user")
    });
    assert!(
        spans
            .iter()
            .any(|span| span["tags"]["sandbox.route"] == "mesh"),
        "{}",
        serde_json::to_string(&spans).unwrap()
    );
}

// ---------------------------------------------------------------------------------------------
// Long-lived connections

#[test]
fn a_websocket_and_an_idle_tcp_connection_live_on_through_the_mesh() {
    let project = Project::new("mesh-long");
    let image = demo_context(&project);
    let manifest = format!(
        "gateway: {{port: 0}}\nservices:\n{}{}{}",
        demo(&image, "item", "", HEALTH),
        echo(&project, "echo"),
        sleeper(&project, "client", ""),
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);
    let client = container(&sandbox, "client", 1);

    let mut socket = Pipe::open(&client, "item", 8080);
    socket.write(
        b"GET /ws HTTP/1.1\r\nHost: item:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    let head = socket.read("the upgrade's answer", |bytes| {
        bytes
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .map(|index| index + 4)
    });
    let head = String::from_utf8_lossy(&head).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "the demo's accept key came through: {head}"
    );
    let mut tcp = Pipe::open(&client, "echo", 7000);

    let started = Instant::now();
    for round in ["before", "after"] {
        let text = format!("hello {round} the pause");
        socket.write(&ws_text(&text));
        let frame = socket.read("the echoed message", ws_frame_length);
        assert_eq!(frame[0], 0x81, "a final text frame: {frame:?}");
        assert_eq!(&frame[2..], text.as_bytes());

        tcp.write(format!("{text}\n").as_bytes());
        let line = tcp.read("the echoed line", line_length);
        assert_eq!(line, format!("{text}\n").as_bytes());
        if round == "before" {
            std::thread::sleep(Duration::from_secs(60));
        }
    }
    assert!(started.elapsed() >= Duration::from_secs(60));
}

// ---------------------------------------------------------------------------------------------
// Opt-out

#[test]
fn an_opted_out_service_sees_its_callers_address_and_no_span() {
    let project = Project::new("mesh-optout");
    let manifest = format!(
        "gateway: {{port: 0}}\nservices:\n{}{}{}",
        crate::util::httpd_service(&project, "item", "    mesh: false\n"),
        crate::util::httpd_service(&project, "meshed", ""),
        sleeper(&project, "client", ""),
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);
    let name = &sandbox.project.name;
    let client = container(&sandbox, "client", 1);
    let (_, address, _) = exec(&client, "hostname -i");
    let address = address
        .split_whitespace()
        .next()
        .expect("an address")
        .to_string();

    let forwarders = docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=dev.sandbox.project={name}"),
        "--format",
        "{{.Names}}",
    ]);
    assert!(
        !forwarders.contains(&format!("{name}-item-mesh")),
        "no forwarder for an opted-out service: {forwarders}"
    );
    assert!(
        forwarders.contains(&format!("{name}-meshed-mesh")),
        "the meshed one has its forwarder: {forwarders}"
    );

    // HTTP/1.1 without `Connection: close`: nc half-closes after the request, and the proxy's
    // hyper path (HTTP/1.0, `Connection: close`) drops a request whose client half-closed first
    // (hyper's `half_close` is off), while its fast path answers it.
    for service in ["item", "meshed"] {
        let (ok, out, err) = exec(
            &client,
            &format!(
                "printf 'GET /health HTTP/1.1\\r\\nHost: {service}\\r\\n\\r\\n' | timeout 10 nc {service} 8080"
            ),
        );
        assert!(
            ok && out.starts_with("HTTP/1.") && out.contains("ok"),
            "{service}: {out}{err}"
        );
    }
    // busybox httpd -vv logs each request's peer as `[::ffff:address]:port: url:/health`.
    let access = |service: &str| {
        String::from_utf8_lossy(
            &Command::new("docker")
                .args(["logs", &container(&sandbox, service, 1)])
                .output()
                .expect("docker logs")
                .stderr,
        )
        .into_owned()
    };
    let item_log = access("item");
    assert!(
        item_log.contains(&format!("{address}]:")),
        "the opted-out callee sees the caller's address {address}: {item_log}"
    );
    let meshed_log = wait_until(
        "the meshed callee logs the call",
        Duration::from_secs(5),
        || {
            let log = access("meshed");
            log.contains("url:/health").then_some(log)
        },
    );
    assert!(
        !meshed_log.contains(&format!("{address}]:")),
        "a meshed callee sees the proxy instead (the contrast): {meshed_log}"
    );

    let spans = wait_until("the meshed call's span", Duration::from_secs(10), || {
        let spans = traces(&sandbox, "meshed", "all");
        has_span(&spans, "SERVER", "meshed", "client").then_some(spans)
    });
    assert!(!spans.is_empty());
    let unmeshed = traces(&sandbox, "item", "all");
    assert!(
        unmeshed.is_empty(),
        "no span for the opted-out call: {}",
        serde_json::to_string(&unmeshed).unwrap()
    );
}

// ---------------------------------------------------------------------------------------------
// Bad cases

#[test]
fn a_stopped_callee_and_a_closed_port_fail_at_once() {
    stopped_callee_and_closed_ports_fail_at_once("mesh-down", &[]);
}

/// A port the forwarder does not know, one the service does not listen on, then the service
/// stopped (L7 and L4), brought up with `environment`: each fails at once.
pub(crate) fn stopped_callee_and_closed_ports_fail_at_once(
    name: &str,
    environment: &[(&str, &str)],
) {
    let project = Project::new(name);
    let image = demo_context(&project);
    let manifest = format!(
        "gateway: {{port: 0}}\nservices:\n{}{}{}",
        demo(
            &image,
            "user",
            "GET /users/{id} => call http://item:8080/items/{id} as item",
            HEALTH
        ),
        demo(
            &image,
            "item",
            "",
            &format!("{HEALTH}    expose: [\"9090\"]\n    restart: \"no\"\n")
        ),
        sleeper(&project, "client", ""),
    );
    let sandbox = Sandbox::up(project, &manifest, environment);
    let client = container(&sandbox, "client", 1);

    // A port the service's forwarder does not know: refused, as without sandbox. A port it knows
    // but the service does not listen on: the connection ends at once.
    for (port, what) in [
        (9999, "an unknown port"),
        (9090, "a port item does not listen on"),
    ] {
        let started = Instant::now();
        let (_, out, err) = exec(
            &client,
            &format!("echo hello | timeout 10 nc item {port}; echo exit=$?"),
        );
        let elapsed = started.elapsed();
        assert!(!out.contains("exit=124"), "{what}: nc hung: {out}{err}");
        assert!(!out.contains("hello"), "{what}: {out}{err}");
        assert!(elapsed < Duration::from_secs(5), "{what}: {elapsed:?}");
        if port == 9999 {
            assert!(err.contains("refused"), "{what}: {out}{err}");
        }
    }

    docker(&["stop", "-t", "1", &container(&sandbox, "item", 1)]);
    // L7: user's direct call gets the proxy's 503 naming item and its state, passed on (while
    // item shuts down its probes fail first: "no healthy replica", then "no running replica").
    let answer = wait_until(
        "user passes on the 503 for the stopped item",
        Duration::from_secs(15),
        || {
            let answer = sandbox.get("/user/users/1");
            (answer.status == 503 && answer.body.contains("no running replica")).then_some(answer)
        },
    );
    assert!(
        answer.body.contains("`item` has no running replica"),
        "{answer:?}"
    );
    assert!(
        answer.body.contains("exited with code"),
        "its state: {answer:?}"
    );

    // L4: the connection ends at once (reset), never a hang.
    let started = Instant::now();
    let (_, out, err) = exec(
        &client,
        "printf 'not http\\n' | timeout 10 nc item 8080; echo exit=$?",
    );
    let elapsed = started.elapsed();
    assert!(!out.contains("exit=124"), "nc hung: {out}{err}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}: {out}{err}");
    assert!(!out.contains("not http"), "{out}{err}");
}
