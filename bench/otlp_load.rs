//! Load generator for `bench/otlp.sh`: OTLP/HTTP protobuf ingest of batches of 100 spans (several
//! connections) against the same spans sent as Zipkin JSON v2, the server's RSS with them stored,
//! and `/api/v2/trace/{id}` latency over them.
//!
//! `cargo run --release --example otlp_load -- {otlp|zipkin} ZIPKIN_ADDRESS OTLP_ADDRESS SERVER_PID [SPANS] [--ingest-only]`
//!
//! `--ingest-only` stops after the ingest (no RSS, no queries): what `bench/otlp_instructions.sh`
//! counts the server's instructions over.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use prost::Message;
use sandbox::trace::codec::json;
use sandbox::trace::otlp::map;
use sandbox::trace::otlp::proto::{
    AnyValue, ExportTraceServiceRequest, InstrumentationScope, KeyValue, OtlpSpan, Resource,
    ResourceSpans, ScopeSpans, Value,
};

const BATCH: usize = 100;
const CONNECTIONS: usize = 8;
const SPANS_PER_TRACE: usize = 10;
const SERVICES: [&str; 5] = ["gateway", "checkout", "cart", "inventory", "payments"];
const NAMES: [&str; 8] = [
    "GET /api/items/{id}",
    "POST /api/cart",
    "SELECT items",
    "GET /api/stock",
    "charge card",
    "publish order",
    "GET /health",
    "PUT /api/cart/{id}",
];

/// A deterministic pseudo-random source (xorshift), so runs are comparable.
struct Random(u64);
impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn attribute(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
    }
}

fn text(value: impl Into<String>) -> Value {
    Value::String(value.into())
}

/// A typical SDK span: six attributes, kind, a parent; its resource and scope as an SDK sends them.
fn typical_span(
    random: &mut Random,
    trace: u128,
    index: usize,
    start: u64,
    first: usize,
) -> OtlpSpan {
    let service = SERVICES[(first + index / 4) % SERVICES.len()];
    OtlpSpan {
        trace_id: trace.to_be_bytes().to_vec(),
        span_id: (0x1000 + index as u64).to_be_bytes().to_vec(),
        parent_span_id: if index > 0 {
            (0x1000 + index as u64 - 1).to_be_bytes().to_vec()
        } else {
            Vec::new()
        },
        name: NAMES[(first + index) % NAMES.len()].to_owned(),
        kind: if index % 2 == 0 { 2 } else { 3 },
        start_time_unix_nano: (start + index as u64 * 1_000) * 1_000,
        end_time_unix_nano: (start + index as u64 * 1_000 + 50 + random.next() % 200_000) * 1_000,
        attributes: vec![
            attribute(
                "http.method",
                text(if index % 3 == 0 { "POST" } else { "GET" }),
            ),
            attribute(
                "http.path",
                text(format!("/api/items/{}", random.next() % 100_000)),
            ),
            attribute("http.status_code", Value::Int(200)),
            attribute(
                "net.peer.name",
                text(format!("{service}-{}.internal", random.next() % 8)),
            ),
            attribute(
                "thread.name",
                text(format!("worker-{}", random.next() % 16)),
            ),
            attribute(
                "peer.service",
                text(SERVICES[(first + index / 4 + 1) % SERVICES.len()]),
            ),
        ],
        ..OtlpSpan::default()
    }
}

/// Export requests of `BATCH` spans each, one resource (service) per request.
fn requests(spans: usize, salt: u64) -> Vec<ExportTraceServiceRequest> {
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let mut random = Random(0x9E37_79B9_7F4A_7C15 ^ salt);
    let all: Vec<OtlpSpan> = (0..(spans / SPANS_PER_TRACE) as u64)
        .flat_map(|t| {
            let trace = (u128::from(random.next() | 1) << 64) | u128::from((t + 1) ^ salt);
            let start = now_us - random.next() % 3_600_000_000;
            let first = random.next() as usize;
            (0..SPANS_PER_TRACE)
                .map(|index| typical_span(&mut random, trace, index, start, first))
                .collect::<Vec<_>>()
        })
        .collect();
    all.chunks(BATCH)
        .enumerate()
        .map(|(index, chunk)| ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        attribute("service.name", text(SERVICES[index % SERVICES.len()])),
                        attribute("telemetry.sdk.name", text("opentelemetry")),
                        attribute("telemetry.sdk.language", text("java")),
                    ],
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "io.opentelemetry.http".into(),
                        version: "2.0.0".into(),
                    }),
                    spans: chunk.to_vec(),
                }],
            }],
        })
        .collect()
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

async fn ingest(client: &HttpClient, url: String, content_type: &'static str, batches: Vec<Bytes>) {
    let spans = batches.len() * BATCH;
    let bytes: usize = batches.iter().map(Bytes::len).sum();
    let queue = Arc::new(std::sync::Mutex::new(batches));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (client, queue, url) = (client.clone(), queue.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(body) = queue.lock().unwrap().pop() else {
                    break;
                };
                let request = http::Request::post(&url)
                    .header("content-type", content_type)
                    .body(Full::new(body))
                    .unwrap();
                let response = client.request(request).await.expect("POST spans");
                assert!(
                    response.status().is_success(),
                    "ingest refused: {}",
                    response.status()
                );
                let _ = response.into_body().collect().await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "ingest {url:<40} {content_type:<24} {spans} spans in {seconds:.2}s = {:>9.0} spans/s ({:.0} MB/s, {CONNECTIONS} connections, batches of {BATCH})",
        spans as f64 / seconds,
        bytes as f64 / seconds / 1e6
    );
}

fn rss_mb(pid: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

async fn trace_latency(client: &HttpClient, zipkin: &str, trace_ids: &[String]) {
    let mut samples = Vec::with_capacity(trace_ids.len());
    for id in trace_ids {
        let started = Instant::now();
        let response = client
            .get(
                format!("http://{zipkin}/api/v2/trace/{id}")
                    .parse()
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "trace {id}");
        let _ = response.into_body().collect().await.unwrap();
        samples.push(started.elapsed());
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "query  /api/v2/trace/{{id}} p50 {:.3} ms  p99 {:.3} ms  ({} requests)",
        ms(at(0.50)),
        ms(at(0.99)),
        samples.len()
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "otlp".into());
    let zipkin = args.next().unwrap_or_else(|| "127.0.0.1:9411".into());
    let otlp = args.next().unwrap_or_else(|| "127.0.0.1:4318".into());
    let pid = args.next().unwrap_or_default();
    let spans: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(500_000);
    let ingest_only = args.next().as_deref() == Some("--ingest-only");
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(CONNECTIONS)
        .build_http();
    let requests = requests(spans, 1);
    let trace_ids: Vec<String> = requests
        .iter()
        .step_by((requests.len() / 200).max(1))
        .map(|r| {
            let id = &r.resource_spans[0].scope_spans[0].spans[0].trace_id;
            id.iter().map(|b| format!("{b:02x}")).collect()
        })
        .collect();
    if !ingest_only {
        println!("server RSS before ingest: {:.1} MB", rss_mb(&pid));
    }
    match mode.as_str() {
        "otlp" => {
            let batches = requests
                .iter()
                .map(|r| Bytes::from(r.encode_to_vec()))
                .collect();
            ingest(
                &client,
                format!("http://{otlp}/v1/traces"),
                "application/x-protobuf",
                batches,
            )
            .await;
        }
        _ => {
            // The same spans as Zipkin JSON, mapped as the server maps them.
            let batches = requests
                .into_iter()
                .map(|r| Bytes::from(json::encode(&map::spans(r).items)))
                .collect();
            ingest(
                &client,
                format!("http://{zipkin}/api/v2/spans"),
                "application/json",
                batches,
            )
            .await;
        }
    }
    if ingest_only {
        return;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!("server RSS with the spans stored: {:.1} MB", rss_mb(&pid));
    trace_latency(&client, &zipkin, &trace_ids).await;
}
