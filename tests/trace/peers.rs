//! Real clients from PyPI report to the server, each in its own Python process: the OpenTelemetry
//! Zipkin exporters (JSON v2, JSON v1, protobuf) and py-zipkin through its HTTP transport (JSON v1,
//! JSON v2, proto3). Needs `tests/trace/peers/setup.sh` to have run (or `SANDBOX_PEERS_PYTHON`
//! pointing at an interpreter with the packages); otherwise these tests fail and say so.

use std::path::PathBuf;
use std::process::Command;

use crate::util::{start, TestServer};

const SETUP_HINT: &str = "run `tests/trace/peers/setup.sh` (or set SANDBOX_PEERS_PYTHON to a python with \
py-zipkin, opentelemetry-sdk, opentelemetry-exporter-zipkin-json and opentelemetry-exporter-zipkin-proto-http)";

fn peers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/trace/peers")
}

fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("SANDBOX_PEERS_PYTHON") {
        return PathBuf::from(python);
    }
    let venv = peers_dir().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "no Python for the client peers at {}: {SETUP_HINT}",
        venv.display()
    );
    venv
}

/// Runs a peer script and returns the ids it printed.
async fn run_peer(script: &str, args: Vec<String>) -> serde_json::Value {
    let python = python();
    let path = peers_dir().join(script);
    let output =
        tokio::task::spawn_blocking(move || Command::new(&python).arg(&path).args(&args).output())
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("cannot run the peer {script}: {e}; {SETUP_HINT}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "the peer {script} is missing packages: {SETUP_HINT}\n{stderr}"
    );
    assert!(output.status.success(), "peer {script} failed:\n{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("peer {script} printed no ids ({e}):\n{stdout}\n{stderr}"))
}

/// Checks the reported two-span trace: names, service, ids and the parent link.
async fn assert_trace(
    server: &TestServer,
    ids: &serde_json::Value,
    service: &str,
    root_name: &str,
    child_name: &str,
    kinds: bool,
) {
    let trace_id = ids["traceId"].as_str().unwrap();
    let reply = server.get(&format!("/api/v2/trace/{trace_id}")).await;
    assert_eq!(
        reply.status,
        http::StatusCode::OK,
        "trace {trace_id}: {}",
        reply.text()
    );
    let spans = reply.json();
    let spans = spans.as_array().unwrap();
    let root = spans
        .iter()
        .find(|s| s["id"] == ids["rootId"])
        .unwrap_or_else(|| panic!("root span in {spans:?}"));
    let child = spans
        .iter()
        .find(|s| s["id"] == ids["childId"])
        .unwrap_or_else(|| panic!("child span in {spans:?}"));
    assert_eq!(root["name"], root_name);
    assert_eq!(child["name"], child_name);
    assert_eq!(child["parentId"], ids["rootId"]);
    assert!(root.get("parentId").is_none());
    assert_eq!(root["localEndpoint"]["serviceName"], service);
    if kinds {
        assert_eq!(root["kind"], "SERVER");
    }
    assert_eq!(root["tags"]["http.method"], "GET");
    let services: Vec<String> =
        serde_json::from_slice(&server.get("/api/v2/services").await.body).unwrap();
    assert!(services.contains(&service.to_owned()), "{services:?}");
}

async fn otel(format: &str) {
    let server = start().await;
    let ids = run_peer("otel_peer.py", vec![format.into(), server.url("")]).await;
    let service = format!("otel-{format}");
    // The exporter's v1 encoding carries no span kind (no core annotations).
    let kinds = format != "json-v1";
    assert_trace(&server, &ids, &service, "get /checkout", "load-cart", kinds).await;
    let child = server
        .get(&format!(
            "/api/v2/trace/{}",
            ids["traceId"].as_str().unwrap()
        ))
        .await
        .json();
    let child = child
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == ids["childId"])
        .unwrap()
        .clone();
    if kinds {
        assert_eq!(child["kind"], "CLIENT");
    }
    // OpenTelemetry writes an event as `{"name": {attributes}}`.
    assert!(
        child["annotations"][0]["value"]
            .as_str()
            .unwrap()
            .contains("cache.miss"),
        "{child}"
    );
}

async fn py_zipkin(format: &str) {
    let server = start().await;
    let ids = run_peer(
        "py_zipkin_peer.py",
        vec![
            format.into(),
            "127.0.0.1".into(),
            server.address.port().to_string(),
        ],
    )
    .await;
    assert_trace(
        &server,
        &ids,
        &format!("py-zipkin-{format}"),
        "get /orders",
        "load-order",
        true,
    )
    .await;
}

#[tokio::test]
async fn opentelemetry_zipkin_json_v2_exporter() {
    otel("json-v2").await;
}

#[tokio::test]
async fn opentelemetry_zipkin_json_v1_exporter() {
    otel("json-v1").await;
}

#[tokio::test]
async fn opentelemetry_zipkin_protobuf_exporter() {
    otel("proto").await;
}

#[tokio::test]
async fn py_zipkin_json_v2_transport() {
    py_zipkin("json-v2").await;
}

#[tokio::test]
async fn py_zipkin_json_v1_transport() {
    py_zipkin("json-v1").await;
}

#[tokio::test]
async fn py_zipkin_proto3_transport() {
    py_zipkin("proto").await;
}
