//! OpenTelemetry in: OTLP/HTTP (`POST /v1/traces`, `/v1/logs`, `/v1/metrics`, protobuf or JSON,
//! optionally gzipped) and OTLP/gRPC (`TraceService`, `LogsService`, `MetricsService` `Export`,
//! over h2c) into the same stores as Zipkin's API: spans mapped onto the Zipkin model
//! ([`map`]), log records into the log store, metrics counted and dropped.
//!
//! Owns the OTLP wire formats and their mapping; the trace server's `api` routes requests here and
//! `server` serves the listeners. Knows nothing of the control plane.
//!
//! # Layout
//! - [`proto`]: the OTLP messages (prost, with serde for the JSON mapping); [`json`]: the JSON
//!   mapping's field rules.
//! - [`map`]: OTLP spans → Zipkin spans, OTLP log records → log records.
//! - `http`, `grpc`: the two transports; both end in [`export`].
//! - [`environment`]: the variables that point an SDK in a container at these ports.
//!
//! # Choices where OTLP leaves room
//! - A span or log record with ids of the wrong size is rejected alone (partial success, with the
//!   first reason); a body that does not decode is rejected whole (HTTP 400 / `INVALID_ARGUMENT`).
//! - Body limits are the Zipkin collector's (`max_body_bytes`, before and after gunzip): HTTP 413,
//!   gRPC `RESOURCE_EXHAUSTED`.
//! - An unsupported `Content-Type` gets 415 with a plain-text reason (there is no encoding of the
//!   client's to answer in).

pub mod environment;
pub(crate) mod grpc;
pub(crate) mod http;
pub mod json;
pub mod map;
pub mod proto;

use prost::Message;
use serde::de::DeserializeOwned;

use self::proto::{
    ExportLogsServiceRequest, ExportMetricsServiceRequest, ExportResponse,
    ExportTraceServiceRequest, PartialSuccess,
};
use crate::trace::api::State;
use crate::trace::metrics::add;

/// OTLP/HTTP's standard port.
pub const DEFAULT_HTTP_PORT: u16 = 4318;
/// OTLP/gRPC's standard port.
pub const DEFAULT_GRPC_PORT: u16 = 4317;

/// What an export request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Spans.
    Traces,
    /// Log records.
    Logs,
    /// Metrics (counted, not stored).
    Metrics,
}

impl Signal {
    /// `traces`, `logs` or `metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
        }
    }

    /// The partial success's count field in JSON.
    fn rejected_field(self) -> &'static str {
        match self {
            Signal::Traces => "rejectedSpans",
            Signal::Logs => "rejectedLogRecords",
            Signal::Metrics => "rejectedDataPoints",
        }
    }

    /// Index into per-signal counters.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// How a request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf` (and every gRPC message).
    Protobuf,
    /// `application/json`, the OTLP JSON mapping.
    Json,
}

/// Why a request body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed OTLP {encoding} {signal} request: {reason}", encoding = match .encoding { Encoding::Protobuf => "protobuf", Encoding::Json => "JSON" }, signal = .signal.as_str())]
pub struct DecodeError {
    /// The body's encoding.
    pub encoding: Encoding,
    /// The signal.
    pub signal: Signal,
    /// What was wrong, with a position when the parser knows one.
    pub reason: String,
}

/// Decodes an export request of either encoding.
pub fn decode<T: Message + Default + DeserializeOwned>(
    signal: Signal,
    encoding: Encoding,
    body: &[u8],
) -> Result<T, DecodeError> {
    let error = |reason: String| DecodeError {
        encoding,
        signal,
        reason,
    };
    match encoding {
        Encoding::Protobuf => T::decode(body).map_err(|e| error(e.to_string())),
        Encoding::Json => serde_json::from_slice(body).map_err(|e| error(e.to_string())),
    }
}

/// What an accepted export request leaves for the response: rejected items and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    /// Items rejected.
    pub rejected: u64,
    /// Why (empty when nothing was).
    pub message: String,
}

impl Accepted {
    /// The response message, in protobuf.
    pub fn to_protobuf(&self) -> Vec<u8> {
        let partial_success =
            (self.rejected > 0 || !self.message.is_empty()).then(|| PartialSuccess {
                rejected: self.rejected as i64,
                error_message: self.message.clone(),
            });
        ExportResponse { partial_success }.encode_to_vec()
    }

    /// The response message, in OTLP JSON.
    pub fn to_json(&self, signal: Signal) -> Vec<u8> {
        if self.rejected == 0 && self.message.is_empty() {
            return b"{}".to_vec();
        }
        serde_json::json!({
            "partialSuccess": {
                signal.rejected_field(): self.rejected.to_string(),
                "errorMessage": self.message,
            }
        })
        .to_string()
        .into_bytes()
    }
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Decodes one export request and stores what it carries: spans into the span store, log
/// records into the log store, metric data points counted. Shared by both transports.
pub(crate) fn export(
    state: &State,
    signal: Signal,
    encoding: Encoding,
    body: &[u8],
) -> Result<Accepted, DecodeError> {
    let counters = &state.metrics.otlp;
    let (accepted, rejected, message) = match signal {
        Signal::Traces => {
            let request: ExportTraceServiceRequest = decode(signal, encoding, body)?;
            let mapped = map::spans(request);
            let count = mapped.items.len() as u64;
            state.store.ingest(mapped.items);
            (count, mapped.rejected, mapped.reason)
        }
        Signal::Logs => {
            let request: ExportLogsServiceRequest = decode(signal, encoding, body)?;
            let mapped = map::logs(request, now_nanos());
            let count = mapped.items.len() as u64;
            state.store.logs().push(mapped.items);
            (count, mapped.rejected, mapped.reason)
        }
        Signal::Metrics => {
            let request: ExportMetricsServiceRequest = decode(signal, encoding, body)?;
            (request.data_points(), 0, None)
        }
    };
    add(&counters.accepted[signal.index()], accepted);
    add(&counters.rejected[signal.index()], rejected);
    Ok(Accepted {
        rejected,
        message: message.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests;
