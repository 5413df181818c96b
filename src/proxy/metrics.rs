//! Counters and histograms for `/__sandbox/metrics` (Prometheus text format 0.0.4). One lock per
//! finished request; series are keyed by route and service.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::fasthash::FastMap;

/// Latency buckets in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default)]
struct Series {
    by_status: BTreeMap<u16, u64>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
    retries: u64,
    /// gRPC calls by the status they ended with.
    by_grpc_status: BTreeMap<u8, u64>,
}

/// One service's L4 connections.
#[derive(Debug, Default)]
struct L4Series {
    /// By how they ended (`client`, `upstream`, `refused`, …).
    by_close: BTreeMap<&'static str, u64>,
    /// Bytes from the callers to the service.
    sent: u64,
    /// Bytes from the service to the callers.
    received: u64,
}

/// The proxy's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// route → service → series.
    series: Mutex<FastMap<String, FastMap<String, Series>>>,
    pub(crate) ejections: Mutex<BTreeMap<String, u64>>,
    pub(crate) faults: AtomicU64,
    pub(crate) open_gateway: AtomicI64,
    pub(crate) open_mesh: AtomicI64,
    pub(crate) open_intake: AtomicI64,
    /// Intake connections refused before any byte went upstream, by reason.
    intake_refusals: Mutex<BTreeMap<&'static str, u64>>,
    /// Callers' connections handed over whole on the handoff socket (`proxy::handoff`).
    pub(crate) intake_handoffs: AtomicU64,
    /// L4 connections through the intake, by service.
    l4: Mutex<BTreeMap<String, L4Series>>,
    pub(crate) refused_connections: AtomicU64,
    /// TLS handshakes on the gateway that failed or timed out.
    pub(crate) failed_handshakes: AtomicU64,
    /// Connections accepted by each data-plane worker, in the order the workers started.
    workers: Mutex<Vec<Arc<AtomicU64>>>,
}

impl Metrics {
    /// Records one finished request.
    pub fn record(&self, route: &str, service: &str, status: u16, elapsed: Duration, retries: u32) {
        let mut series = self
            .series
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let by_route = match series.get_mut(route) {
            Some(by_route) => by_route,
            None => series.entry(route.to_string()).or_default(),
        };
        let entry = match by_route.get_mut(service) {
            Some(entry) => entry,
            None => by_route.entry(service.to_string()).or_default(),
        };
        *entry.by_status.entry(status).or_default() += 1;
        let seconds = elapsed.as_secs_f64();
        for (index, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                entry.buckets[index] += 1;
            }
        }
        entry.count += 1;
        entry.sum += seconds;
        entry.retries += u64::from(retries);
    }

    /// Records the status a gRPC call ended with (beside [`Metrics::record`]'s HTTP status, which
    /// is 200 for most failed calls).
    pub fn record_grpc_status(
        &self,
        route: &str,
        service: &str,
        status: crate::manifest::GrpcStatus,
    ) {
        let mut series = self
            .series
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let entry = series
            .entry(route.to_string())
            .or_default()
            .entry(service.to_string())
            .or_default();
        *entry.by_grpc_status.entry(status.0).or_default() += 1;
    }

    /// Records an intake connection refused before anything went upstream (`reason`:
    /// `header`, `token`, `timeout`).
    pub(crate) fn record_intake_refusal(&self, reason: &'static str) {
        let mut refusals = self
            .intake_refusals
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        *refusals.entry(reason).or_default() += 1;
    }

    /// Records one finished L4 connection to `service`: how it ended and the bytes each way.
    pub(crate) fn record_l4(&self, service: &str, close: &'static str, sent: u64, received: u64) {
        let mut l4 = self.l4.lock().unwrap_or_else(|poison| poison.into_inner());
        let entry = match l4.get_mut(service) {
            Some(entry) => entry,
            None => l4.entry(service.to_string()).or_default(),
        };
        *entry.by_close.entry(close).or_default() += 1;
        entry.sent += sent;
        entry.received += received;
    }

    pub fn record_ejection(&self, service: &str) {
        let mut ejections = self
            .ejections
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        *ejections.entry(service.to_string()).or_default() += 1;
    }

    /// A counter of accepted connections for one more data-plane worker.
    pub(crate) fn add_worker(&self) -> Arc<AtomicU64> {
        let counter = Arc::new(AtomicU64::new(0));
        self.workers
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .push(counter.clone());
        counter
    }

    /// Connections accepted so far by each data-plane worker (empty when the listeners are not
    /// served by workers).
    pub fn accepted_by_worker(&self) -> Vec<u64> {
        self.workers
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .iter()
            .map(|counter| counter.load(Ordering::Relaxed))
            .collect()
    }

    /// Retries counted so far for `route` (all services), for tests and the admin page.
    pub fn retries(&self, route: &str) -> u64 {
        let series = self
            .series
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        series.get(route).map_or(0, |by_route| {
            by_route.values().map(|entry| entry.retries).sum()
        })
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let series = self
            .series
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let mut rows: Vec<(&String, &String, &Series)> = series
            .iter()
            .flat_map(|(route, by_route)| {
                by_route
                    .iter()
                    .map(move |(service, entry)| (route, service, entry))
            })
            .collect();
        rows.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        out.push_str("# HELP sandbox_proxy_requests_total Requests answered, by route, service and status.\n# TYPE sandbox_proxy_requests_total counter\n");
        for (route, service, entry) in &rows {
            for (status, count) in &entry.by_status {
                let _ = writeln!(out, "sandbox_proxy_requests_total{{route=\"{}\",service=\"{}\",status=\"{status}\"}} {count}", escape(route), escape(service));
            }
        }
        out.push_str("# HELP sandbox_proxy_grpc_calls_total gRPC calls answered, by route, service and gRPC status.\n# TYPE sandbox_proxy_grpc_calls_total counter\n");
        for (route, service, entry) in &rows {
            for (status, count) in &entry.by_grpc_status {
                let name = crate::manifest::GrpcStatus(*status).name();
                let _ = writeln!(out, "sandbox_proxy_grpc_calls_total{{route=\"{}\",service=\"{}\",grpc_status=\"{name}\"}} {count}", escape(route), escape(service));
            }
        }
        out.push_str("# HELP sandbox_proxy_request_duration_seconds Time to the end of the response.\n# TYPE sandbox_proxy_request_duration_seconds histogram\n");
        for (route, service, entry) in &rows {
            let labels = format!(
                "route=\"{}\",service=\"{}\"",
                escape(route),
                escape(service)
            );
            for (bound, count) in BUCKETS.iter().zip(entry.buckets) {
                let _ = writeln!(out, "sandbox_proxy_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}");
            }
            let _ = writeln!(
                out,
                "sandbox_proxy_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                entry.count
            );
            let _ = writeln!(
                out,
                "sandbox_proxy_request_duration_seconds_sum{{{labels}}} {}",
                entry.sum
            );
            let _ = writeln!(
                out,
                "sandbox_proxy_request_duration_seconds_count{{{labels}}} {}",
                entry.count
            );
        }
        out.push_str("# HELP sandbox_proxy_retries_total Retries made.\n# TYPE sandbox_proxy_retries_total counter\n");
        for (route, service, entry) in &rows {
            let _ = writeln!(
                out,
                "sandbox_proxy_retries_total{{route=\"{}\",service=\"{}\"}} {}",
                escape(route),
                escape(service),
                entry.retries
            );
        }
        drop(series);
        out.push_str("# HELP sandbox_proxy_ejections_total Replicas ejected by outlier detection.\n# TYPE sandbox_proxy_ejections_total counter\n");
        for (service, count) in self
            .ejections
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "sandbox_proxy_ejections_total{{service=\"{}\"}} {count}",
                escape(service)
            );
        }
        out.push_str("# HELP sandbox_proxy_faults_total Faults injected.\n# TYPE sandbox_proxy_faults_total counter\n");
        let _ = writeln!(
            out,
            "sandbox_proxy_faults_total {}",
            self.faults.load(Ordering::Relaxed)
        );
        out.push_str("# HELP sandbox_proxy_open_connections Client connections open now.\n# TYPE sandbox_proxy_open_connections gauge\n");
        let _ = writeln!(
            out,
            "sandbox_proxy_open_connections{{listener=\"gateway\"}} {}",
            self.open_gateway.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "sandbox_proxy_open_connections{{listener=\"mesh\"}} {}",
            self.open_mesh.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "sandbox_proxy_open_connections{{listener=\"intake\"}} {}",
            self.open_intake.load(Ordering::Relaxed)
        );
        self.render_intake(&mut out);
        out.push_str("# HELP sandbox_proxy_refused_connections_total Connections closed at once because the cap was reached.\n# TYPE sandbox_proxy_refused_connections_total counter\n");
        let _ = writeln!(
            out,
            "sandbox_proxy_refused_connections_total {}",
            self.refused_connections.load(Ordering::Relaxed)
        );
        out.push_str("# HELP sandbox_proxy_tls_handshake_failures_total TLS handshakes on the gateway that failed or timed out.\n# TYPE sandbox_proxy_tls_handshake_failures_total counter\n");
        let _ = writeln!(
            out,
            "sandbox_proxy_tls_handshake_failures_total {}",
            self.failed_handshakes.load(Ordering::Relaxed)
        );
        out.push_str("# HELP sandbox_proxy_worker_accepted_connections_total Client connections accepted, by data-plane worker.\n# TYPE sandbox_proxy_worker_accepted_connections_total counter\n");
        for (worker, accepted) in self.accepted_by_worker().iter().enumerate() {
            let _ = writeln!(
                out,
                "sandbox_proxy_worker_accepted_connections_total{{worker=\"{worker}\"}} {accepted}"
            );
        }
        out
    }
}

impl Metrics {
    /// The intake's refusals and its L4 connections.
    fn render_intake(&self, out: &mut String) {
        out.push_str("# HELP sandbox_proxy_intake_refusals_total Mesh intake connections refused (bad PROXY header, wrong token, no header in time).\n# TYPE sandbox_proxy_intake_refusals_total counter\n");
        for (reason, count) in self
            .intake_refusals
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "sandbox_proxy_intake_refusals_total{{reason=\"{reason}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP sandbox_proxy_intake_handoffs_total Callers' HTTP connections forwarders handed over whole (not relayed through the intake port).\n# TYPE sandbox_proxy_intake_handoffs_total counter\nsandbox_proxy_intake_handoffs_total {}",
            self.intake_handoffs.load(Ordering::Relaxed)
        );
        let l4 = self.l4.lock().unwrap_or_else(|poison| poison.into_inner());
        out.push_str("# HELP sandbox_proxy_l4_connections_total L4 (TCP) connections through the mesh, by service and how they ended.\n# TYPE sandbox_proxy_l4_connections_total counter\n");
        for (service, entry) in l4.iter() {
            for (close, count) in &entry.by_close {
                let _ = writeln!(
                    out,
                    "sandbox_proxy_l4_connections_total{{service=\"{}\",close=\"{close}\"}} {count}",
                    escape(service)
                );
            }
        }
        out.push_str("# HELP sandbox_proxy_l4_bytes_total Bytes through the mesh's L4 connections, by service and direction (sent: caller to service).\n# TYPE sandbox_proxy_l4_bytes_total counter\n");
        for (service, entry) in l4.iter() {
            let service = escape(service);
            let _ = writeln!(
                out,
                "sandbox_proxy_l4_bytes_total{{service=\"{service}\",direction=\"sent\"}} {}",
                entry.sent
            );
            let _ = writeln!(
                out,
                "sandbox_proxy_l4_bytes_total{{service=\"{service}\",direction=\"received\"}} {}",
                entry.received
            );
        }
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
