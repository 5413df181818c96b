//! OTLP in: real OpenTelemetry exporters (the Python SDK's OTLP/HTTP protobuf and OTLP/gRPC span,
//! log and metric exporters, each run in its own process) report to the OTLP port; their spans
//! join Zipkin spans of the same trace, their logs are searchable by trace id; bad bodies, wrong
//! content types, gzip bombs and oversized batches are refused with a reason while the server keeps
//! serving. Needs `tests/peers/otel/setup.sh` to have run (or `SANDBOX_OTEL_PYTHON` pointing at
//! an interpreter with the packages); otherwise the tests that run exporters fail and say so.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sandbox::trace::TraceConfig;
use serde_json::Value;

use crate::util::{start_with_otlp, Reply, TestServer};

const SETUP_HINT: &str = "run `tests/peers/otel/setup.sh` (or set SANDBOX_OTEL_PYTHON to a python with \
opentelemetry-sdk, opentelemetry-exporter-otlp-proto-http and opentelemetry-exporter-otlp-proto-grpc)";

fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("SANDBOX_OTEL_PYTHON") {
        return PathBuf::from(python);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/otel/.venv/bin/python");
    assert!(
        venv.exists(),
        "no Python for the OpenTelemetry exporters at {}: {SETUP_HINT}",
        venv.display()
    );
    venv
}

/// Runs the exporter peer in its own process and returns what it printed.
async fn run_peer(args: Vec<String>) -> Value {
    let python = python();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/otel/otlp_peer.py");
    let shown = args.join(" ");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(&python).arg(&script).args(&args).output()
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("cannot run the OTLP peer: {e}; {SETUP_HINT}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "the OTLP peer is missing packages: {SETUP_HINT}\n{stderr}"
    );
    assert!(
        output.status.success(),
        "otlp_peer.py {shown} failed:\n{stderr}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|e| {
        panic!("the OTLP peer printed nothing usable ({e}):\n{stdout}\n{stderr}")
    })
}

/// A gRPC call over h2c: the response headers (trailers merged in) and the body.
async fn grpc_call(address: SocketAddr, method: &str, message: &[u8]) -> (http::HeaderMap, Bytes) {
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(message);
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{address}{method}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from(framed)))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let collected = body.collect().await.unwrap();
    let mut headers = parts.headers;
    if let Some(trailers) = collected.trailers() {
        headers.extend(trailers.clone());
    }
    (headers, collected.to_bytes())
}

const TRACE_SERVICE: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

fn spans_of(reply: &Reply) -> Vec<Value> {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json().as_array().unwrap().clone()
}

fn find<'a>(spans: &'a [Value], id: &Value) -> &'a Value {
    spans
        .iter()
        .find(|span| span["id"] == *id)
        .unwrap_or_else(|| panic!("span {id} in {spans:#?}"))
}

async fn assert_exported_trace(server: &TestServer, ids: &Value, service: &str) {
    let trace_id = ids["traceId"].as_str().unwrap();
    let spans = spans_of(&server.get(&format!("/api/v2/trace/{trace_id}")).await);
    let root = find(&spans, &ids["rootId"]);
    let child = find(&spans, &ids["childId"]);
    assert_eq!(root["kind"], "SERVER");
    assert_eq!(root["name"], "get /checkout");
    assert_eq!(root["localEndpoint"]["serviceName"], service);
    assert_eq!(root["tags"]["http.status_code"], "500");
    assert_eq!(root["tags"]["otel.scope.name"], "sandbox-otlp-peer");
    assert_eq!(root["tags"]["otel.scope.version"], "1.2.3");
    assert_eq!(root["tags"]["deployment.environment"], "test");
    assert!(
        root["tags"]["otlp.link.0"]
            .as_str()
            .unwrap()
            .starts_with("00000000000000000000000000001234|0000000000005678|"),
        "{root}"
    );
    assert_eq!(child["parentId"], ids["rootId"]);
    assert_eq!(child["kind"], "CLIENT");
    assert_eq!(child["remoteEndpoint"]["serviceName"], "cart");
    assert_eq!(child["tags"]["error"], "cart unavailable");
    assert_eq!(child["tags"]["tags"], r#"["a","b"]"#);
    assert_eq!(
        child["annotations"][0]["value"],
        r#"cache.miss|{"key":"cart:1"}|0"#
    );
    // The caller alone names the dependency.
    let links = server
        .get(&format!(
            "/api/v2/dependencies?endTs={}",
            crate::util::now_micros() / 1000 + 60_000
        ))
        .await
        .json();
    assert!(
        links
            .as_array()
            .unwrap()
            .iter()
            .any(|link| link["parent"] == service && link["child"] == "cart"),
        "{links}"
    );
}

#[tokio::test]
async fn the_sdks_otlp_http_span_exporter_reports_a_trace() {
    let (server, otlp) = start_with_otlp(TraceConfig::default()).await;
    let ids = run_peer(vec![
        "traces".into(),
        "http".into(),
        format!("http://{otlp}"),
    ])
    .await;
    assert_exported_trace(&server, &ids, "otel-http").await;
}

#[tokio::test]
async fn the_sdks_otlp_grpc_span_exporter_reports_a_trace() {
    let (server, otlp) = start_with_otlp(TraceConfig::default()).await;
    let ids = run_peer(vec![
        "traces".into(),
        "grpc".into(),
        format!("http://{otlp}"),
    ])
    .await;
    assert_exported_trace(&server, &ids, "otel-grpc").await;
}

#[tokio::test]
async fn the_sdks_log_exporters_report_records_joined_to_their_trace() {
    let (server, otlp) = start_with_otlp(TraceConfig::default()).await;
    for transport in ["http", "grpc"] {
        let ids = run_peer(vec![
            "logs".into(),
            transport.into(),
            format!("http://{otlp}"),
        ])
        .await;
        let trace_id = ids["traceId"].as_str().unwrap();
        let joined = server
            .get(&format!("/api/v2/logs?traceId={trace_id}"))
            .await;
        assert_eq!(joined.status, StatusCode::OK, "{}", joined.text());
        let joined = joined.json();
        assert_eq!(joined.as_array().unwrap().len(), 1, "{joined}");
        assert_eq!(joined[0]["body"], "payment declined");
        assert_eq!(joined[0]["severityNumber"], 17);
        assert_eq!(joined[0]["spanId"], ids["spanId"]);
        assert_eq!(joined[0]["serviceName"], format!("otel-{transport}"));
        assert_eq!(joined[0]["scope"], "shop.checkout");
        let warnings = server
            .get(&format!(
                "/api/v2/logs?serviceName=otel-{transport}&severity=warn&q=STOCK"
            ))
            .await
            .json();
        assert_eq!(warnings.as_array().unwrap().len(), 1, "{warnings}");
        assert_eq!(warnings[0]["body"], "stock low for sku-1");
        assert_eq!(warnings[0]["attributes"]["sku"], "sku-1");
    }
}

#[tokio::test]
async fn the_sdks_metric_exporters_are_answered_and_counted() {
    let (server, otlp) = start_with_otlp(TraceConfig::default()).await;
    for transport in ["http", "grpc"] {
        run_peer(vec![
            "metrics".into(),
            transport.into(),
            format!("http://{otlp}"),
        ])
        .await;
    }
    let metrics = server.get("/prometheus").await.text();
    assert!(
        metrics.contains("otlp_receiver_requests_total{signal=\"metrics\",transport=\"http\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("otlp_receiver_requests_total{signal=\"metrics\",transport=\"grpc\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("otlp_receiver_accepted_total{signal=\"metrics\"} 4"),
        "{metrics}"
    );
}

/// A Zipkin root span, an OTLP child reported by the SDK continuing it, and the SDK's own child:
/// one trace, every parent present.
#[tokio::test]
async fn otlp_and_zipkin_spans_of_one_trace_come_back_as_one_trace() {
    let (server, otlp) = start_with_otlp(TraceConfig::default()).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let zipkin_root = format!(
        r#"[{{"traceId":"{trace_id}","id":"00f067aa0ba902b7","kind":"SERVER","name":"get /","timestamp":{},"duration":50000,"localEndpoint":{{"serviceName":"gateway"}}}}]"#,
        crate::util::now_micros() - 10_000
    );
    assert_eq!(
        server.post_json(&zipkin_root).await.status,
        StatusCode::ACCEPTED
    );
    let ids = run_peer(vec![
        "traces".into(),
        "http".into(),
        format!("http://{otlp}"),
        trace_id.into(),
        "00f067aa0ba902b7".into(),
    ])
    .await;
    assert_eq!(ids["traceId"], trace_id);
    let spans = spans_of(&server.get(&format!("/api/v2/trace/{trace_id}")).await);
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let ids_in_trace: Vec<&Value> = spans.iter().map(|span| &span["id"]).collect();
    for span in &spans {
        if let Some(parent) = span.get("parentId") {
            assert!(
                ids_in_trace.contains(&parent),
                "parent {parent} missing: {spans:#?}"
            );
        }
    }
    assert_eq!(find(&spans, &ids["rootId"])["parentId"], "00f067aa0ba902b7");
    let services = server.get("/api/v2/services").await.json();
    assert_eq!(services, serde_json::json!(["gateway", "otel-http"]));
}

#[tokio::test]
async fn hand_written_json_bodies_are_taken_with_partial_success() {
    let (server, otlp) = start_with_otlp(TraceConfig::default()).await;
    let body = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"js-web"}}]},
      "scopeSpans":[{"scope":{"name":"fetch"},"spans":[
        {"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","name":"fetch /api",
         "kind":3,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712660100000000",
         "attributes":[{"key":"http.status_code","value":{"intValue":"200"}}]},
        {"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B","name":"broken"}]}]}]}"#;
    let reply = server
        .send_to(
            otlp,
            Method::POST,
            "/v1/traces",
            &[("content-type", "application/json")],
            body,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.headers["content-type"], "application/json");
    let answer = reply.json();
    assert_eq!(answer["partialSuccess"]["rejectedSpans"], "1");
    assert!(
        answer["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("span 1: span_id must be 8 bytes, was 3"),
        "{answer}"
    );
    let spans = spans_of(
        &server
            .get("/api/v2/trace/5b8efff798038103d269b633813fc60c")
            .await,
    );
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0]["tags"]["http.status_code"], "200");
    assert_eq!(spans[0]["duration"], 100_000);
    // The Zipkin port takes OTLP/HTTP too.
    let logs = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"js-web"}}]},
      "scopeLogs":[{"logRecords":[{"timeUnixNano":"1544712660300000000","severityNumber":17,
      "body":{"stringValue":"render failed"},"traceId":"5b8efff798038103d269b633813fc60c"}]}]}]}"#;
    let reply = server
        .post("/v1/logs", "application/json", logs.to_owned())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "{}");
    let found = server
        .get("/api/v2/logs?traceId=5B8EFFF798038103D269B633813FC60C&since=1544712660000&until=1544712661000")
        .await
        .json();
    assert_eq!(found[0]["body"], "render failed");
}

/// A gzipped protobuf batch (what SDKs send with `OTEL_EXPORTER_OTLP_COMPRESSION=gzip`) on the
/// OTLP/HTTP port: taken whole, and stored as the same batch unzipped would be.
#[tokio::test]
async fn gzipped_protobuf_batches_are_taken() {
    use prost::Message;
    use sandbox::trace::otlp::proto::{
        AnyValue, ExportTraceServiceRequest, KeyValue, OtlpSpan, Resource, ResourceSpans,
        ScopeSpans, Value as OtlpValue,
    };
    let (server, otlp) = start_with_otlp(TraceConfig::default()).await;
    let spans = (1..=3u64)
        .map(|id| OtlpSpan {
            trace_id: 0x5b8e_fff7_9803_8103_d269_b633_813f_c60d_u128
                .to_be_bytes()
                .to_vec(),
            span_id: id.to_be_bytes().to_vec(),
            parent_span_id: if id > 1 {
                (id - 1).to_be_bytes().to_vec()
            } else {
                Vec::new()
            },
            name: format!("step {id}"),
            kind: 2,
            start_time_unix_nano: 1_544_712_660_000_000_000 + id * 1000,
            end_time_unix_nano: 1_544_712_660_000_000_000 + id * 1000 + 5000,
            ..OtlpSpan::default()
        })
        .collect();
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(OtlpValue::String("zipped".into())),
                    }),
                }],
            }),
            scope_spans: vec![ScopeSpans { scope: None, spans }],
        }],
    };
    let reply = server
        .send_to(
            otlp,
            Method::POST,
            "/v1/traces",
            &[
                ("content-type", "application/x-protobuf"),
                ("content-encoding", "gzip"),
            ],
            gzip(&request.encode_to_vec()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(
        reply.body.is_empty(),
        "no partial success: {:?}",
        reply.body
    );
    let spans = spans_of(
        &server
            .get("/api/v2/trace/5b8efff798038103d269b633813fc60d")
            .await,
    );
    assert_eq!(spans.len(), 3);
    assert!(spans
        .iter()
        .all(|span| span["localEndpoint"]["serviceName"] == "zipped"));
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// `google.rpc.Status.message` (field 2) out of an error body.
fn status_message(body: &[u8]) -> String {
    #[derive(prost::Message)]
    struct RpcStatus {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(string, tag = "2")]
        message: String,
    }
    let status = <RpcStatus as prost::Message>::decode(body).expect("a google.rpc.Status body");
    assert_eq!(status.code, 3);
    status.message
}

#[tokio::test]
async fn bad_requests_get_clear_errors_and_the_server_keeps_serving() {
    let config = TraceConfig {
        max_body_bytes: 64 * 1024,
        ..TraceConfig::default()
    };
    let (server, otlp) = start_with_otlp(config).await;
    let protobuf = [("content-type", "application/x-protobuf")];

    let reply = server
        .send_to(
            otlp,
            Method::POST,
            "/v1/traces",
            &protobuf,
            &b"\x0a\xff\xff\x01"[..],
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.headers["content-type"], "application/x-protobuf");
    let message = status_message(&reply.body);
    assert!(
        message.starts_with("malformed OTLP protobuf traces request:"),
        "{message}"
    );

    let reply = server
        .send_to(
            otlp,
            Method::POST,
            "/v1/logs",
            &[("content-type", "application/json")],
            "{\"resourceLogs\":7}",
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["code"], 3);
    assert!(reply.json()["message"]
        .as_str()
        .unwrap()
        .contains("malformed OTLP JSON logs request"));

    let reply = server
        .send_to(
            otlp,
            Method::POST,
            "/v1/traces",
            &[("content-type", "text/plain")],
            "hello",
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        reply
            .text()
            .contains("unsupported Content-Type `text/plain`"),
        "{}",
        reply.text()
    );

    let bomb = gzip(&vec![0u8; 64 << 20]);
    let reply = server
        .send_to(
            otlp,
            Method::POST,
            "/v1/traces",
            &[
                ("content-type", "application/x-protobuf"),
                ("content-encoding", "gzip"),
            ],
            bomb,
        )
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);

    let reply = server
        .send_to(
            otlp,
            Method::POST,
            "/v1/traces",
            &protobuf,
            vec![0u8; 100 * 1024],
        )
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);

    let reply = server
        .send_to(
            otlp,
            Method::POST,
            "/api/v2/spans",
            &[("content-type", "application/json")],
            "[]",
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(
        reply.text().contains("this OTLP port takes"),
        "{}",
        reply.text()
    );

    let (headers, _) = grpc_call(otlp, TRACE_SERVICE, b"\x0a\xff\xff").await;
    assert_eq!(headers["grpc-status"], "3");
    assert!(headers["grpc-message"]
        .to_str()
        .unwrap()
        .contains("malformed OTLP protobuf"));
    let (headers, _) = grpc_call(
        otlp,
        "/opentelemetry.proto.collector.trace.v1.TraceService/Nope",
        b"",
    )
    .await;
    assert_eq!(headers["grpc-status"], "12");
    let (headers, _) = grpc_call(otlp, TRACE_SERVICE, &vec![0u8; 100 * 1024]).await;
    assert_eq!(headers["grpc-status"], "8");

    // Still serving: an empty export succeeds on both transports.
    let reply = server
        .send_to(otlp, Method::POST, "/v1/traces", &protobuf, Bytes::new())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let (headers, body) = grpc_call(otlp, TRACE_SERVICE, b"").await;
    assert_eq!(headers["grpc-status"], "0");
    assert_eq!(&body[..], &[0, 0, 0, 0, 0]);
    let metrics = server.get("/prometheus").await.text();
    assert!(
        metrics.contains(
            "otlp_receiver_requests_failed_total{signal=\"traces\",transport=\"http\"} 4"
        ),
        "{metrics}"
    );
}
