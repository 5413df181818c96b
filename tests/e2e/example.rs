//! The shipped example: the demo chain from `sandbox.yaml.example`, built from this repository,
//! through the gateway and the mesh, traced end to end.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::proxy::has_span;
use crate::util::{demo_context, ps_json, Project};

/// `GET path` on 127.0.0.1:port; the whole answer (head and body).
pub fn get(port: u16, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// The port of a `http://127.0.0.1:PORT` URL in `ps --json`.
pub fn port_of(status: &serde_json::Value, key: &str) -> u16 {
    let url = status[key]
        .as_str()
        .unwrap_or_else(|| panic!("ps --json names the {key}: {status}"));
    url.rsplit(':').next().unwrap().parse().unwrap()
}

/// The trace id the gateway names in an answer (`x-sandbox-trace-id`).
pub fn trace_id_of(answer: &str) -> String {
    answer
        .lines()
        .find_map(|line| {
            line.to_lowercase()
                .strip_prefix("x-sandbox-trace-id: ")
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("the gateway names the trace: {answer}"))
}

/// The spans of trace `id` on the trace server at 127.0.0.1:`zipkin` (`None` until it is JSON).
pub fn trace_spans(zipkin: u16, id: &str) -> Option<Vec<serde_json::Value>> {
    let answer = get(zipkin, &format!("/api/v2/trace/{id}"));
    serde_json::from_str(answer.split("\r\n\r\n").nth(1)?).ok()
}

/// The example manifest as this test's own project (its own image tag, a free gateway port).
pub fn example_manifest(project: &Project) -> String {
    demo_context(project);
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("sandbox.yaml.example"))
            .unwrap();
    example
        .replace("name: example\n", "")
        .replace(
            "sandbox-demo:latest",
            &format!("sandbox-demo:{}", project.name),
        )
        .replace(
            "  port: 8080                 #",
            "  port: 0                 #",
        )
}

#[test]
fn the_example_chain_answers_through_the_gateway_and_is_traced_end_to_end() {
    let project = Project::new("example");
    project.manifest(&example_manifest(&project));
    project.run(&["up", "--wait"]).success();
    let status = ps_json(&project);
    let gateway = port_of(&status, "gateway");
    let zipkin = port_of(&status, "zipkin");

    let answer = get(gateway, "/users/7");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains(r#"{"service":"user","id":"7","item":{"id": "7", "name": "item 7"}}"#),
        "{answer}"
    );
    assert!(
        answer.to_lowercase().contains("x-sandbox-upstream: user-1"),
        "{answer}"
    );
    let trace_id = trace_id_of(&answer);
    let logs = project.run(&["logs", "item"]);
    assert!(logs.stdout.contains("GET /items/7 200"), "{}", logs.stdout);

    // The proxy's spans are stored at once; the demo services report theirs in the background.
    let deadline = Instant::now() + Duration::from_secs(15);
    let trace = loop {
        let answer = get(zipkin, &format!("/api/v2/trace/{trace_id}"));
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        if body.contains(r#""name":"get /items/{id}""#) || Instant::now() > deadline {
            break body;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let spans: Vec<serde_json::Value> =
        serde_json::from_str(&trace).unwrap_or_else(|error| panic!("{error}: {trace}"));
    let has = |kind: &str, local: &str, remote: &str| has_span(&spans, kind, local, remote);
    assert!(
        has("CLIENT", "gateway", "user"),
        "the gateway's client span: {trace}"
    );
    assert!(
        has("SERVER", "user", "gateway"),
        "user's server span (proxy): {trace}"
    );
    assert!(
        has("CLIENT", "user", "item"),
        "the mesh's client span for user → item: {trace}"
    );
    assert!(has("SERVER", "item", "user"), "item's server span: {trace}");
    assert!(
        spans.iter().any(|span| span["name"] == "get /items/{id}"),
        "the demo's own spans join the trace: {trace}"
    );
    // Every span but the root has its parent in the trace.
    let ids: Vec<&str> = spans
        .iter()
        .filter_map(|span| span["id"].as_str())
        .collect();
    for span in &spans {
        if let Some(parent) = span["parentId"].as_str() {
            assert!(ids.contains(&parent), "parent {parent} missing: {trace}");
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let dependencies = get(zipkin, &format!("/api/v2/dependencies?endTs={now}"));
    assert!(
        dependencies.contains(r#""parent":"gateway","child":"user""#),
        "{dependencies}"
    );
    assert!(
        dependencies.contains(r#""parent":"user","child":"item""#),
        "{dependencies}"
    );

    // The example's smoke checks pass against it, trace expectations included.
    let test = project.run(&["test"]);
    test.success();
    assert!(
        test.stdout.contains("✔ pass  user answers with its item"),
        "{}",
        test.stdout
    );

    project.run(&["down"]).success();
    assert!(project.leftovers().is_empty());
}

#[test]
fn init_writes_a_template_that_validates_and_refuses_to_overwrite() {
    let project = Project::new("init");
    project.run(&["init", "--template", "basic"]).success();
    assert!(project.path("sandbox.yaml").exists());
    project.run(&["validate"]).success();
    let again = project.run(&["init"]);
    again.expect_code(1);
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
    project
        .run(&["init", "--force", "--template", "basic"])
        .success();
    let list = project.run(&["init", "--list"]);
    assert!(
        list.stdout.contains("basic") && list.stdout.contains("chain"),
        "{}",
        list.stdout
    );
}
