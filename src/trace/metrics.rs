//! Collector counters, named as the Zipkin server names them, plus the forwarder's, rendered in the
//! Prometheus text format at `/prometheus`. The HTTP collector's are `transport="http"`; the proxy's
//! spans, handed to the store in process, are `transport="proxy"` ([`InProcess`]). The OTLP
//! receiver's are `otlp_receiver_*` ([`OtlpCounters`]); the log store's `logs_*`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::trace::Store;

/// Counters shared by the HTTP collector and the forwarder.
#[derive(Debug, Default)]
pub struct Metrics {
    /// POSTs of spans received.
    pub messages: AtomicU64,
    /// POSTs refused (unreadable or too large).
    pub messages_dropped: AtomicU64,
    /// Request body bytes received (as sent, before gunzip).
    pub bytes: AtomicU64,
    /// Spans accepted.
    pub spans: AtomicU64,
    /// Spans lost after being read (none today: the in-memory store always accepts).
    pub spans_dropped: AtomicU64,
    /// Spans sent to the forward collector.
    pub forwarded_spans: AtomicU64,
    /// Spans not forwarded because the queue was full.
    pub forward_dropped_spans: AtomicU64,
    /// Spans whose forward POST failed.
    pub forward_failed_spans: AtomicU64,
    /// The OTLP receiver's.
    pub otlp: OtlpCounters,
}

/// The OTLP receiver's counters, per signal (traces, logs, metrics: [`crate::trace::otlp::Signal`]
/// order) and, for requests, per transport (0 HTTP, 1 gRPC).
#[derive(Debug, Default)]
pub struct OtlpCounters {
    /// Export requests received.
    pub requests: [[AtomicU64; 2]; 3],
    /// Export requests refused whole (bad body, too large, wrong content type).
    pub failed: [[AtomicU64; 2]; 3],
    /// Spans, log records and metric data points accepted.
    pub accepted: [AtomicU64; 3],
    /// Spans and log records rejected one by one (partial success).
    pub rejected: [AtomicU64; 3],
    /// Request bytes received, as sent.
    pub bytes: AtomicU64,
}

const SIGNALS: [&str; 3] = ["traces", "logs", "metrics"];
const TRANSPORTS: [&str; 2] = ["http", "grpc"];

impl OtlpCounters {
    fn render(&self, out: &mut String) {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        for (name, help, counters) in [
            (
                "otlp_receiver_requests_total",
                "OTLP export requests received",
                &self.requests,
            ),
            (
                "otlp_receiver_requests_failed_total",
                "OTLP export requests refused whole",
                &self.failed,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (signal, per_transport) in SIGNALS.iter().zip(counters) {
                for (transport, counter) in TRANSPORTS.iter().zip(per_transport) {
                    let _ = writeln!(
                        out,
                        "{name}{{signal=\"{signal}\",transport=\"{transport}\"}} {}",
                        load(counter)
                    );
                }
            }
        }
        for (name, help, counters) in [
            ("otlp_receiver_accepted_total", "Spans, log records and metric data points accepted over OTLP (metrics are counted, not stored)", &self.accepted),
            ("otlp_receiver_rejected_total", "Spans and log records rejected over OTLP", &self.rejected),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (signal, counter) in SIGNALS.iter().zip(counters) {
                let _ = writeln!(out, "{name}{{signal=\"{signal}\"}} {}", load(counter));
            }
        }
        let _ = writeln!(out, "# HELP otlp_receiver_bytes_total OTLP request bytes received\n# TYPE otlp_receiver_bytes_total counter\notlp_receiver_bytes_total {}", load(&self.bytes));
    }
}

/// Counters of spans handed to the store in process (the proxy's, queued by
/// `control::spans` and ingested in batches). The [`Store`] keeps them, so every trace server
/// reading that store reports the same numbers.
#[derive(Debug, Default)]
pub struct InProcess {
    /// Batches ingested.
    pub messages: AtomicU64,
    /// Spans ingested.
    pub spans: AtomicU64,
    /// Spans lost before ingest: the queue was full (or closed, after shutdown), or their ids were
    /// not valid hex.
    pub spans_dropped: AtomicU64,
}

/// Adds `n` to a counter.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Metrics {
    /// The Prometheus exposition text: these counters, `store`'s in-process ones, and its gauges
    /// (spans stored, spans evicted).
    pub fn render(&self, store: &Store) -> String {
        let mut out = String::with_capacity(2048);
        let proxy = store.in_process();
        let counters = [
            (
                "zipkin_collector_messages_total",
                "Messages received",
                &self.messages,
                Some(&proxy.messages),
            ),
            (
                "zipkin_collector_messages_dropped_total",
                "Messages dropped",
                &self.messages_dropped,
                None,
            ),
            (
                "zipkin_collector_bytes_total",
                "Bytes received",
                &self.bytes,
                None,
            ),
            (
                "zipkin_collector_spans_total",
                "Spans received",
                &self.spans,
                Some(&proxy.spans),
            ),
            (
                "zipkin_collector_spans_dropped_total",
                "Spans dropped",
                &self.spans_dropped,
                Some(&proxy.spans_dropped),
            ),
        ];
        for (name, help, http, in_process) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(
                out,
                "{name}{{transport=\"http\"}} {}",
                http.load(Ordering::Relaxed)
            );
            if let Some(counter) = in_process {
                let _ = writeln!(
                    out,
                    "{name}{{transport=\"proxy\"}} {}",
                    counter.load(Ordering::Relaxed)
                );
            }
        }
        let forward = [
            (
                "zipkin_forward_spans_total",
                "Spans forwarded",
                &self.forwarded_spans,
            ),
            (
                "zipkin_forward_spans_dropped_total",
                "Spans not forwarded: queue full",
                &self.forward_dropped_spans,
            ),
            (
                "zipkin_forward_spans_failed_total",
                "Spans whose forward request failed",
                &self.forward_failed_spans,
            ),
        ];
        for (name, help, counter) in forward {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", counter.load(Ordering::Relaxed));
        }
        let _ = writeln!(out, "# HELP zipkin_storage_spans Spans held in memory\n# TYPE zipkin_storage_spans gauge\nzipkin_storage_spans {}", store.span_count());
        self.otlp.render(&mut out);
        let logs = store.logs();
        let _ = writeln!(out, "# HELP logs_stored Log records held in memory\n# TYPE logs_stored gauge\nlogs_stored {}", logs.len());
        let _ = writeln!(out, "# HELP logs_evicted_total Log records evicted to stay within max-logs\n# TYPE logs_evicted_total counter\nlogs_evicted_total {}", logs.evicted());
        let _ = writeln!(out, "# HELP zipkin_storage_spans_evicted_total Spans evicted to stay within max-spans\n# TYPE zipkin_storage_spans_evicted_total counter\nzipkin_storage_spans_evicted_total {}", store.evicted_span_count());
        out
    }
}
