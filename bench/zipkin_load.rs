//! Load generator for `bench/zipkin.sh`: ingest rate over HTTP (JSON v2 and proto3, batches of 100,
//! several connections), server RSS with the store full, and `/api/v2/traces` latency.
//!
//! `cargo run --release --example zipkin_load -- ADDRESS SERVER_PID [SPANS]`

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sandbox::trace::codec::{json, proto};
use sandbox::trace::{Endpoint, Kind, Span, SpanId, TraceId};

const BATCH: usize = 100;
const CONNECTIONS: usize = 8;
const SPANS_PER_TRACE: usize = 10;
const SERVICES: [&str; 5] = ["gateway", "checkout", "cart", "inventory", "payments"];
const NAMES: [&str; 8] = [
    "get /api/items/{id}",
    "post /api/cart",
    "select items",
    "get /api/stock",
    "charge card",
    "publish order",
    "get /health",
    "put /api/cart/{id}",
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

/// A typical instrumented span: 128-bit trace id, kind, endpoints with IPs, six tags.
fn typical_trace(random: &mut Random, trace_index: u64, now_us: u64, salt: u64) -> Vec<Span> {
    let trace_id = TraceId((u128::from(random.next() | 1) << 64) | u128::from(trace_index ^ salt));
    let start = now_us - (random.next() % 3_600_000_000);
    let first = random.next() as usize;
    (0..SPANS_PER_TRACE)
        .map(|index| {
            let mut span = Span::new(trace_id, SpanId(random.next() | 1));
            if index > 0 {
                span.parent_id = Some(SpanId(0x1000 + index as u64 - 1));
            }
            span.id = SpanId(0x1000 + index as u64);
            let service = SERVICES[(first + index / 4) % SERVICES.len()];
            span.kind = Some(if index % 2 == 0 {
                Kind::Server
            } else {
                Kind::Client
            });
            span.name = Some(NAMES[(first + index) % NAMES.len()].to_owned());
            span.timestamp = Some(start + index as u64 * 1_000);
            span.duration = Some(50 + random.next() % 200_000);
            span.local_endpoint = Some(Endpoint {
                service_name: Some(service.to_owned()),
                ipv4: Some([10, 0, (index % 4) as u8, 7].into()),
                port: Some(8080),
                ..Endpoint::default()
            });
            span.remote_endpoint = Some(Endpoint {
                service_name: Some(SERVICES[(first + index / 4 + 1) % SERVICES.len()].to_owned()),
                ipv4: Some([10, 0, 9, (index % 200) as u8].into()),
                port: Some(40_000 + (random.next() % 20_000) as u16),
                ..Endpoint::default()
            });
            let mut tags = BTreeMap::new();
            tags.insert(
                "http.method".to_owned(),
                if index % 3 == 0 { "POST" } else { "GET" }.to_owned(),
            );
            tags.insert(
                "http.path".to_owned(),
                format!("/api/items/{}", random.next() % 100_000),
            );
            tags.insert("http.status_code".to_owned(), "200".to_owned());
            tags.insert(
                "otel.library.name".to_owned(),
                "io.opentelemetry.http".to_owned(),
            );
            tags.insert(
                "net.peer.name".to_owned(),
                format!("{service}-{}.internal", random.next() % 8),
            );
            tags.insert(
                "thread.name".to_owned(),
                format!("worker-{}", random.next() % 16),
            );
            span.tags = tags;
            span
        })
        .collect()
}

fn batches(spans: usize, salt: u64, encode: fn(&[Span]) -> Vec<u8>) -> Vec<Bytes> {
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let mut random = Random(0x9E37_79B9_7F4A_7C15 ^ salt);
    let traces = spans / SPANS_PER_TRACE;
    let all: Vec<Span> = (0..traces as u64)
        .flat_map(|t| typical_trace(&mut random, t + 1, now_us, salt))
        .collect();
    all.chunks(BATCH)
        .map(|chunk| Bytes::from(encode(chunk)))
        .collect()
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

async fn ingest(
    client: &HttpClient,
    address: &str,
    content_type: &'static str,
    batches: Vec<Bytes>,
) -> f64 {
    let spans = batches.len() * BATCH;
    let bytes: usize = batches.iter().map(Bytes::len).sum();
    let queue = Arc::new(std::sync::Mutex::new(batches));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (client, queue) = (client.clone(), queue.clone());
        let url = format!("http://{address}/api/v2/spans");
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
                assert_eq!(response.status(), 202, "ingest refused");
                let _ = response.into_body().collect().await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    let rate = spans as f64 / seconds;
    println!(
        "ingest {content_type:<24} {spans} spans in {seconds:.2}s = {rate:>9.0} spans/s ({:.0} MB/s, {CONNECTIONS} connections, batches of {BATCH})",
        bytes as f64 / seconds / 1e6
    );
    rate
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

async fn latency(client: &HttpClient, address: &str, query: &str, rounds: usize) {
    let url = format!("http://{address}/api/v2/traces?{query}");
    let mut samples = Vec::with_capacity(rounds);
    let mut traces = 0;
    for _ in 0..rounds {
        let started = Instant::now();
        let response = client.get(url.parse().unwrap()).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        samples.push(started.elapsed());
        traces = serde_json::from_slice::<serde_json::Value>(&body)
            .unwrap()
            .as_array()
            .unwrap()
            .len();
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "query  /api/v2/traces?{query:<52} p50 {:>6.2} ms  p99 {:>6.2} ms  ({traces} traces, {rounds} requests)",
        ms(at(0.50)),
        ms(at(0.99))
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "127.0.0.1:9411".into());
    let pid = args.next().unwrap_or_default();
    let spans: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(500_000);
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(CONNECTIONS)
        .build_http();

    println!("server RSS before ingest: {:.1} MB", rss_mb(&pid));
    let json_batches = batches(spans, 1, json::encode);
    ingest(&client, &address, "application/json", json_batches).await;
    let proto_batches = batches(spans, 2, proto::encode);
    ingest(&client, &address, "application/x-protobuf", proto_batches).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let metrics = client
        .get(format!("http://{address}/prometheus").parse().unwrap())
        .await
        .unwrap();
    let metrics = String::from_utf8_lossy(&metrics.into_body().collect().await.unwrap().to_bytes())
        .into_owned();
    let stored = metrics
        .lines()
        .find(|l| l.starts_with("zipkin_storage_spans "))
        .unwrap_or("")
        .to_owned();
    println!(
        "server RSS with the store full: {:.1} MB ({stored})",
        rss_mb(&pid)
    );

    latency(&client, &address, "serviceName=checkout&limit=10", 200).await;
    latency(&client, &address, "limit=10", 100).await;
    latency(
        &client,
        &address,
        "serviceName=cart&spanName=select%20items&limit=10",
        100,
    )
    .await;
    latency(
        &client,
        &address,
        "annotationQuery=http.method%3DPOST&minDuration=150000&limit=10",
        100,
    )
    .await;
    latency(&client, &address, "serviceName=nobody&limit=10", 100).await;
    println!("server RSS after queries: {:.1} MB", rss_mb(&pid));
}
