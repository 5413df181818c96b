//! The OTLP messages (`opentelemetry/proto/**`, v1), written by hand for prost, with serde
//! attributes for the OTLP JSON mapping ([`super::json`] has the field helpers).
//!
//! Only what ingest reads is declared: unknown fields are skipped by both decoders, so a newer SDK
//! that adds fields is still understood. Metric data points are counted, not read.

use prost::{Message, Oneof};
use serde::Deserialize;

use super::json::{hex_id, uint64};

/// `common.v1.AnyValue`.
#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(from = "super::json::RawAnyValue")]
pub struct AnyValue {
    /// The value; `None` is the empty value.
    #[prost(oneof = "Value", tags = "1, 2, 3, 4, 5, 6, 7")]
    pub value: Option<Value>,
}

/// `common.v1.AnyValue.value`.
#[derive(Clone, PartialEq, Oneof)]
pub enum Value {
    /// A string.
    #[prost(string, tag = "1")]
    String(String),
    /// A boolean.
    #[prost(bool, tag = "2")]
    Bool(bool),
    /// A 64-bit integer.
    #[prost(int64, tag = "3")]
    Int(i64),
    /// A double.
    #[prost(double, tag = "4")]
    Double(f64),
    /// An array.
    #[prost(message, tag = "5")]
    Array(ArrayValue),
    /// A map.
    #[prost(message, tag = "6")]
    Kvlist(KeyValueList),
    /// Raw bytes (base64 in JSON).
    #[prost(bytes = "vec", tag = "7")]
    Bytes(Vec<u8>),
}

/// `common.v1.ArrayValue`.
#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
pub struct ArrayValue {
    /// The elements.
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<AnyValue>,
}

/// `common.v1.KeyValueList`.
#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
pub struct KeyValueList {
    /// The entries.
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<KeyValue>,
}

/// `common.v1.KeyValue`: an attribute.
#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
pub struct KeyValue {
    /// The key.
    #[prost(string, tag = "1")]
    pub key: String,
    /// The value.
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

/// `common.v1.InstrumentationScope`.
#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
pub struct InstrumentationScope {
    /// Library name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Library version.
    #[prost(string, tag = "2")]
    pub version: String,
}

/// `resource.v1.Resource`.
#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
pub struct Resource {
    /// Attributes of the emitting entity (`service.name`, ...).
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
}

/// `collector.trace.v1.ExportTraceServiceRequest` (and `trace.v1.TracesData`).
#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ExportTraceServiceRequest {
    /// Spans grouped by resource.
    #[prost(message, repeated, tag = "1")]
    pub resource_spans: Vec<ResourceSpans>,
}

/// `trace.v1.ResourceSpans`.
#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ResourceSpans {
    /// The resource; absent means empty.
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    /// Spans grouped by instrumentation scope.
    #[prost(message, repeated, tag = "2")]
    pub scope_spans: Vec<ScopeSpans>,
}

/// `trace.v1.ScopeSpans`.
#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ScopeSpans {
    /// The library that recorded the spans.
    #[prost(message, optional, tag = "1")]
    pub scope: Option<InstrumentationScope>,
    /// The spans.
    #[prost(message, repeated, tag = "2")]
    pub spans: Vec<OtlpSpan>,
}

/// `trace.v1.Span`.
#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OtlpSpan {
    /// 16 bytes (hex in JSON).
    #[prost(bytes = "vec", tag = "1")]
    #[serde(deserialize_with = "hex_id")]
    pub trace_id: Vec<u8>,
    /// 8 bytes (hex in JSON).
    #[prost(bytes = "vec", tag = "2")]
    #[serde(deserialize_with = "hex_id")]
    pub span_id: Vec<u8>,
    /// W3C `tracestate`.
    #[prost(string, tag = "3")]
    pub trace_state: String,
    /// Empty on a root span, else 8 bytes.
    #[prost(bytes = "vec", tag = "4")]
    #[serde(deserialize_with = "hex_id")]
    pub parent_span_id: Vec<u8>,
    /// Operation name.
    #[prost(string, tag = "5")]
    pub name: String,
    /// `SpanKind`: 0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer.
    #[prost(int32, tag = "6")]
    pub kind: i32,
    /// Start, epoch nanoseconds.
    #[prost(fixed64, tag = "7")]
    #[serde(deserialize_with = "uint64")]
    pub start_time_unix_nano: u64,
    /// End, epoch nanoseconds.
    #[prost(fixed64, tag = "8")]
    #[serde(deserialize_with = "uint64")]
    pub end_time_unix_nano: u64,
    /// Attributes.
    #[prost(message, repeated, tag = "9")]
    pub attributes: Vec<KeyValue>,
    /// Events.
    #[prost(message, repeated, tag = "11")]
    pub events: Vec<Event>,
    /// Links to other spans.
    #[prost(message, repeated, tag = "13")]
    pub links: Vec<Link>,
    /// Status.
    #[prost(message, optional, tag = "15")]
    pub status: Option<Status>,
}

/// `trace.v1.Span.Event`.
#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Event {
    /// Epoch nanoseconds.
    #[prost(fixed64, tag = "1")]
    #[serde(deserialize_with = "uint64")]
    pub time_unix_nano: u64,
    /// Name.
    #[prost(string, tag = "2")]
    pub name: String,
    /// Attributes.
    #[prost(message, repeated, tag = "3")]
    pub attributes: Vec<KeyValue>,
    /// Attributes the SDK dropped.
    #[prost(uint32, tag = "4")]
    pub dropped_attributes_count: u32,
}

/// `trace.v1.Span.Link`.
#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Link {
    /// The linked span's trace.
    #[prost(bytes = "vec", tag = "1")]
    #[serde(deserialize_with = "hex_id")]
    pub trace_id: Vec<u8>,
    /// The linked span.
    #[prost(bytes = "vec", tag = "2")]
    #[serde(deserialize_with = "hex_id")]
    pub span_id: Vec<u8>,
    /// W3C `tracestate`.
    #[prost(string, tag = "3")]
    pub trace_state: String,
    /// Attributes.
    #[prost(message, repeated, tag = "4")]
    pub attributes: Vec<KeyValue>,
    /// Attributes the SDK dropped.
    #[prost(uint32, tag = "5")]
    pub dropped_attributes_count: u32,
}

/// `trace.v1.Status`.
#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
pub struct Status {
    /// Description (kept only for errors by SDKs).
    #[prost(string, tag = "2")]
    pub message: String,
    /// 0 unset, 1 ok, 2 error.
    #[prost(int32, tag = "3")]
    pub code: i32,
}

/// `collector.trace.v1.ExportTraceServiceResponse` (and the logs' and metrics' responses, which
/// have the same shape: field 1 of the partial success counts what was rejected).
#[derive(Clone, PartialEq, Message)]
pub struct ExportResponse {
    /// Set when something was rejected.
    #[prost(message, optional, tag = "1")]
    pub partial_success: Option<PartialSuccess>,
}

/// `Export*PartialSuccess`.
#[derive(Clone, PartialEq, Message)]
pub struct PartialSuccess {
    /// Spans, log records or data points rejected.
    #[prost(int64, tag = "1")]
    pub rejected: i64,
    /// Why.
    #[prost(string, tag = "2")]
    pub error_message: String,
}

/// `google.rpc.Status`: the body of an OTLP/HTTP error response.
#[derive(Clone, PartialEq, Message)]
pub struct RpcStatus {
    /// A `google.rpc.Code`.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// The reason.
    #[prost(string, tag = "2")]
    pub message: String,
}

/// `collector.logs.v1.ExportLogsServiceRequest` (and `logs.v1.LogsData`).
#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ExportLogsServiceRequest {
    /// Log records grouped by resource.
    #[prost(message, repeated, tag = "1")]
    pub resource_logs: Vec<ResourceLogs>,
}

/// `logs.v1.ResourceLogs`.
#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ResourceLogs {
    /// The resource.
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    /// Records grouped by scope.
    #[prost(message, repeated, tag = "2")]
    pub scope_logs: Vec<ScopeLogs>,
}

/// `logs.v1.ScopeLogs`.
#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ScopeLogs {
    /// The library that emitted the records.
    #[prost(message, optional, tag = "1")]
    pub scope: Option<InstrumentationScope>,
    /// The records.
    #[prost(message, repeated, tag = "2")]
    pub log_records: Vec<OtlpLogRecord>,
}

/// `logs.v1.LogRecord`.
#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OtlpLogRecord {
    /// When the event happened, epoch nanoseconds (0: unknown).
    #[prost(fixed64, tag = "1")]
    #[serde(deserialize_with = "uint64")]
    pub time_unix_nano: u64,
    /// `SeverityNumber`, 1–24 (0: unspecified).
    #[prost(int32, tag = "2")]
    pub severity_number: i32,
    /// As the source wrote it (`INFO`, `warning`, ...).
    #[prost(string, tag = "3")]
    pub severity_text: String,
    /// The message.
    #[prost(message, optional, tag = "5")]
    pub body: Option<AnyValue>,
    /// Attributes.
    #[prost(message, repeated, tag = "6")]
    pub attributes: Vec<KeyValue>,
    /// Empty or 16 bytes.
    #[prost(bytes = "vec", tag = "9")]
    #[serde(deserialize_with = "hex_id")]
    pub trace_id: Vec<u8>,
    /// Empty or 8 bytes.
    #[prost(bytes = "vec", tag = "10")]
    #[serde(deserialize_with = "hex_id")]
    pub span_id: Vec<u8>,
    /// When the collector saw it, epoch nanoseconds.
    #[prost(fixed64, tag = "11")]
    #[serde(deserialize_with = "uint64")]
    pub observed_time_unix_nano: u64,
}

/// `collector.metrics.v1.ExportMetricsServiceRequest`: read only to count data points.
#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ExportMetricsServiceRequest {
    /// Metrics grouped by resource.
    #[prost(message, repeated, tag = "1")]
    pub resource_metrics: Vec<ResourceMetrics>,
}

/// `metrics.v1.ResourceMetrics` (the resource skipped).
#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ResourceMetrics {
    /// Metrics grouped by scope.
    #[prost(message, repeated, tag = "2")]
    pub scope_metrics: Vec<ScopeMetrics>,
}

/// `metrics.v1.ScopeMetrics` (the scope skipped).
#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ScopeMetrics {
    /// The metrics.
    #[prost(message, repeated, tag = "2")]
    pub metrics: Vec<Metric>,
}

/// `metrics.v1.Metric`: one of its data kinds, each a list of data points.
#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Metric {
    /// `Gauge`.
    #[prost(message, optional, tag = "5")]
    pub gauge: Option<DataPoints>,
    /// `Sum`.
    #[prost(message, optional, tag = "7")]
    pub sum: Option<DataPoints>,
    /// `Histogram`.
    #[prost(message, optional, tag = "9")]
    pub histogram: Option<DataPoints>,
    /// `ExponentialHistogram`.
    #[prost(message, optional, tag = "10")]
    pub exponential_histogram: Option<DataPoints>,
    /// `Summary`.
    #[prost(message, optional, tag = "11")]
    pub summary: Option<DataPoints>,
}

/// The `data_points` field every metric kind has at tag 1, read as opaque points.
#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DataPoints {
    /// The points (their content skipped).
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<Opaque>,
}

/// A message whose fields are all skipped.
#[derive(Clone, Copy, PartialEq, Message, Deserialize)]
pub struct Opaque {}

impl ExportMetricsServiceRequest {
    /// Data points in the request, of every metric kind.
    pub fn data_points(&self) -> u64 {
        let points = |data: &Option<DataPoints>| data.as_ref().map_or(0, |d| d.data_points.len());
        self.resource_metrics
            .iter()
            .flat_map(|resource| &resource.scope_metrics)
            .flat_map(|scope| &scope.metrics)
            .map(|metric| {
                points(&metric.gauge)
                    + points(&metric.sum)
                    + points(&metric.histogram)
                    + points(&metric.exponential_histogram)
                    + points(&metric.summary)
            })
            .sum::<usize>() as u64
    }
}
