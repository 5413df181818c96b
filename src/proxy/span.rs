//! The tracing hook: the proxy hands finished spans to a [`SpanRecorder`] the control plane
//! provides (the trace store, in `sandbox up`). Nothing here depends on the trace server.

use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Receives the proxy's spans. Called on the request path: keep it cheap (push to a bounded
/// buffer or channel), never block.
pub trait SpanRecorder: Send + Sync {
    fn record(&self, span: ProxySpan);
}

/// Zipkin's span kinds, the two the proxy records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// The caller's side of the call (`local_service` is the caller, `gateway` at the front door).
    Client,
    /// The target's side (`local_service` is the target service); shares the client span's id.
    Server,
}

/// One span, with what a Zipkin v2 span needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxySpan {
    /// 32 hex digits (16 when a B3 caller sent a 64-bit id).
    pub trace_id: String,
    /// 16 hex digits.
    pub id: String,
    pub parent_id: Option<String>,
    pub kind: SpanKind,
    /// Zipkin's `shared` flag: set on the server span, which reuses the client span's id (B3 style).
    pub shared: bool,
    /// Span name: the HTTP method, lower-case (`get`), as Zipkin instrumentations name them; for a
    /// gRPC call, its method path (`/pkg.Service/Method`), as gRPC instrumentations do.
    pub name: String,
    pub local_service: String,
    pub remote_service: String,
    /// The replica that served the request, if one was chosen.
    pub remote_replica: Option<String>,
    pub remote_address: Option<SocketAddr>,
    /// Microseconds since the Unix epoch.
    pub start_micros: u64,
    pub duration_micros: u64,
    /// `http.method`, `http.path`, `http.status_code`, `error` (when failed), `sandbox.route`,
    /// `sandbox.request_id`; for gRPC calls also `rpc.system` (`grpc`), `rpc.service`,
    /// `rpc.method` and `rpc.grpc.status_code`, with `error` the status name and message when it
    /// is not OK.
    pub tags: BTreeMap<&'static str, String>,
    /// (microseconds since the Unix epoch, text): retries (`retry 1: 503 from item-1`) and injected
    /// faults (`fault: delay 300ms`).
    pub annotations: Vec<(u64, String)>,
}

/// Microseconds since the Unix epoch, now.
pub fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_micros() as u64)
}
