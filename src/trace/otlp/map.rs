//! OTLP spans onto the Zipkin model, as the OpenTelemetry Collector's Zipkin exporter maps them,
//! and OTLP log records onto the log store's records.
//!
//! Spans: kind as is (`INTERNAL` becomes no kind and the tag `span.kind=internal`); the resource's
//! `service.name` (else `faas.name`, `k8s.deployment.name`, `process.executable.name`, naming the
//! source in `zipkin.service_name_source`) is the local endpoint; `peer.service` and, on client and
//! producer spans, `server.address`/`net.peer.name`/`net.sock.peer.name`/`peer.hostname` name the
//! remote one, with the peer's address and port from the network attributes, so a dependency link
//! appears even when only the caller is instrumented; resource and scope attributes
//! (`otel.scope.name`, `otel.scope.version`) and span attributes become tags, non-strings written
//! as the exporter's `AsString` writes them (arrays and maps as JSON, bytes as base64); an error
//! status is the `error` tag with its message (`true` without one) plus `otel.status_code` and
//! `otel.status_description`; events are annotations (`name`, or `name|{attributes}|dropped`);
//! links are tags `otlp.link.N` = `trace|span|tracestate|{attributes}|dropped`; the tracestate is
//! `w3c.tracestate`.
//!
//! A span whose ids are not the sizes OTLP defines is rejected (counted for the partial success),
//! the others kept.

use std::collections::BTreeMap;
use std::net::IpAddr;

use base64::Engine;

use super::proto::{
    AnyValue, ExportLogsServiceRequest, ExportTraceServiceRequest, InstrumentationScope, KeyValue,
    OtlpLogRecord, OtlpSpan, Resource, Value,
};
use crate::trace::logs::{LogRecord, LogSource};
use crate::trace::model::{Annotation, Endpoint, Kind, Span, SpanId, TraceId};

/// The service name used when a resource names none (the exporter's).
pub const NO_SERVICE_NAME: &str = "OTLPResourceNoServiceName";

/// What came out of a request: the items kept, and how many were rejected and why (the first
/// reason), for OTLP's partial success.
#[derive(Debug)]
pub struct Mapped<T> {
    /// Accepted items.
    pub items: Vec<T>,
    /// Items rejected.
    pub rejected: u64,
    /// Why the first rejected item was.
    pub reason: Option<String>,
}

impl<T> Default for Mapped<T> {
    fn default() -> Self {
        Mapped {
            items: Vec::new(),
            rejected: 0,
            reason: None,
        }
    }
}

impl<T> Mapped<T> {
    fn reject(&mut self, reason: impl FnOnce() -> String) {
        self.rejected += 1;
        if self.reason.is_none() {
            self.reason = Some(reason());
        }
    }
}

/// An attribute value as the exporter writes it into a tag.
pub fn value_text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Bool(flag)) => flag.to_string(),
        Some(Value::Int(number)) => number.to_string(),
        Some(Value::Double(number)) => double_text(*number),
        Some(Value::Bytes(bytes)) => base64::engine::general_purpose::STANDARD.encode(bytes),
        Some(other @ (Value::Array(_) | Value::Kvlist(_))) => json_of(Some(other)).to_string(),
    }
}

/// [`value_text`] of a value the caller gives up: a string is moved, not copied.
fn into_text(value: Option<AnyValue>) -> String {
    match value {
        Some(AnyValue {
            value: Some(Value::String(text)),
        }) => text,
        other => value_text(other.as_ref()),
    }
}

/// A double as Go's `FormatFloat(v, 'f', -1, 64)`: shortest digits, never an exponent.
fn double_text(number: f64) -> String {
    if number.is_infinite() {
        if number > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        number.to_string()
    }
}

/// A value as plain JSON (what the exporter writes for events, links, arrays and maps).
fn value_json(value: Option<&AnyValue>) -> serde_json::Value {
    json_of(value.and_then(|v| v.value.as_ref()))
}

fn json_of(value: Option<&Value>) -> serde_json::Value {
    use serde_json::Value as Json;
    match value {
        None => Json::Null,
        Some(Value::String(text)) => Json::String(text.clone()),
        Some(Value::Bool(flag)) => Json::Bool(*flag),
        Some(Value::Int(number)) => Json::from(*number),
        Some(Value::Double(number)) => serde_json::Number::from_f64(*number)
            .map_or_else(|| Json::String(double_text(*number)), Json::Number),
        Some(Value::Bytes(bytes)) => {
            Json::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        Some(Value::Array(array)) => {
            Json::Array(array.values.iter().map(|v| value_json(Some(v))).collect())
        }
        Some(Value::Kvlist(list)) => attributes_json(&list.values),
    }
}

fn attributes_json(attributes: &[KeyValue]) -> serde_json::Value {
    serde_json::Value::Object(
        attributes
            .iter()
            .map(|kv| (kv.key.clone(), value_json(kv.value.as_ref())))
            .collect(),
    )
}

fn tags_of(attributes: Vec<KeyValue>, tags: &mut BTreeMap<String, String>) {
    for attribute in attributes {
        tags.insert(attribute.key, into_text(attribute.value));
    }
}

/// The resource's service name and the tags every span of it carries.
fn resource_tags(resource: Option<Resource>) -> (String, BTreeMap<String, String>) {
    let mut tags = BTreeMap::new();
    tags_of(
        resource.map(|r| r.attributes).unwrap_or_default(),
        &mut tags,
    );
    if let Some(name) = tags.remove("service.name") {
        return (name, tags);
    }
    for source in [
        "faas.name",
        "k8s.deployment.name",
        "process.executable.name",
    ] {
        if let Some(name) = tags.remove(source) {
            tags.insert("zipkin.service_name_source".into(), source.into());
            return (name, tags);
        }
    }
    (NO_SERVICE_NAME.to_string(), tags)
}

fn scope_tags(scope: Option<&InstrumentationScope>, tags: &mut BTreeMap<String, String>) {
    if let Some(scope) = scope {
        if !scope.name.is_empty() {
            tags.insert("otel.scope.name".into(), scope.name.clone());
        }
        if !scope.version.is_empty() {
            tags.insert("otel.scope.version".into(), scope.version.clone());
        }
    }
}

fn be_u64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |acc, b| (acc << 8) | u64::from(*b))
}

fn trace_id(bytes: &[u8]) -> Result<TraceId, String> {
    match bytes.len() {
        16 => {
            let id = bytes
                .iter()
                .fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
            (id != 0)
                .then_some(TraceId(id))
                .ok_or_else(|| "trace_id is all zeros".to_string())
        }
        other => Err(format!("trace_id must be 16 bytes, was {other}")),
    }
}

fn span_id(field: &str, bytes: &[u8]) -> Result<SpanId, String> {
    match bytes.len() {
        8 if be_u64(bytes) != 0 => Ok(SpanId(be_u64(bytes))),
        8 => Err(format!("{field} is all zeros")),
        other => Err(format!("{field} must be 8 bytes, was {other}")),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Maps every span of an export request; spans with bad ids are rejected, the rest kept.
pub fn spans(request: ExportTraceServiceRequest) -> Mapped<Span> {
    let mut mapped = Mapped::default();
    let mut index = 0usize;
    for resource_spans in request.resource_spans {
        let (service, resource) = resource_tags(resource_spans.resource);
        for scope_spans in resource_spans.scope_spans {
            let mut common = resource.clone();
            scope_tags(scope_spans.scope.as_ref(), &mut common);
            for otlp in scope_spans.spans {
                match span(otlp, &service, &common) {
                    Ok(span) => mapped.items.push(span),
                    Err(reason) => mapped.reject(|| format!("span {index}: {reason}")),
                }
                index += 1;
            }
        }
    }
    mapped
}

/// One span, with the resource's service name and the resource and scope tags.
pub fn span(
    otlp: OtlpSpan,
    service: &str,
    common: &BTreeMap<String, String>,
) -> Result<Span, String> {
    let mut span = Span::new(
        trace_id(&otlp.trace_id)?,
        span_id("span_id", &otlp.span_id)?,
    );
    if !otlp.parent_span_id.is_empty() {
        span.parent_id = Some(span_id("parent_span_id", &otlp.parent_span_id)?);
    }
    let mut tags = common.clone();
    tags_of(otlp.attributes, &mut tags);
    if !otlp.trace_state.is_empty() {
        tags.insert("w3c.tracestate".into(), otlp.trace_state);
    }
    span.kind = match otlp.kind {
        2 => Some(Kind::Server),
        3 => Some(Kind::Client),
        4 => Some(Kind::Producer),
        5 => Some(Kind::Consumer),
        1 => {
            tags.insert("span.kind".into(), "internal".into());
            None
        }
        _ => None,
    };
    span.name = Some(otlp.name);
    if otlp.start_time_unix_nano != 0 {
        span.timestamp = Some(otlp.start_time_unix_nano / 1000);
    }
    if otlp.end_time_unix_nano > otlp.start_time_unix_nano && otlp.start_time_unix_nano != 0 {
        span.duration = Some(((otlp.end_time_unix_nano - otlp.start_time_unix_nano) / 1000).max(1));
    }
    let mut rule_tags = RuleTags::new(tags);
    span.local_endpoint = Some(local_endpoint(service, &mut rule_tags));
    span.remote_endpoint = remote_endpoint(span.kind, &mut rule_tags);
    status(otlp.status, &mut rule_tags);
    let mut tags = rule_tags.map;
    span.annotations = otlp
        .events
        .into_iter()
        .map(|event| Annotation {
            timestamp: event.time_unix_nano / 1000,
            value: if event.attributes.is_empty() && event.dropped_attributes_count == 0 {
                event.name
            } else {
                format!(
                    "{}|{}|{}",
                    event.name,
                    attributes_json(&event.attributes),
                    event.dropped_attributes_count
                )
            },
        })
        .collect();
    for (index, link) in otlp.links.into_iter().enumerate() {
        tags.insert(
            format!("otlp.link.{index}"),
            format!(
                "{}|{}|{}|{}|{}",
                hex(&link.trace_id),
                hex(&link.span_id),
                link.trace_state,
                attributes_json(&link.attributes),
                link.dropped_attributes_count
            ),
        );
    }
    span.tags = tags;
    Ok(span)
}

/// The keys the endpoint and status rules read or remove; a key's bit in [`RuleTags`] is its index.
const RULE_KEYS: [&str; 15] = [
    "net.host.ip",
    "net.host.port",
    "peer.service",
    "server.address",
    "net.peer.name",
    "net.sock.peer.name",
    "peer.hostname",
    "network.peer.address",
    "net.sock.peer.addr",
    "net.peer.ip",
    "network.peer.port",
    "net.sock.peer.port",
    "net.peer.port",
    "server.port",
    "error",
];

fn rule_bit(key: &str) -> u16 {
    RULE_KEYS
        .iter()
        .position(|rule_key| *rule_key == key)
        .map_or(0, |index| 1 << index)
}

/// A span's tags while the endpoint and status rules run, with which of [`RULE_KEYS`] are
/// present: most spans carry few of them, and a key a span lacks then costs no map lookup (the
/// lookups were a tenth of an OTLP span's ingest).
struct RuleTags {
    map: BTreeMap<String, String>,
    present: u16,
}

impl RuleTags {
    fn new(map: BTreeMap<String, String>) -> Self {
        let present = map.keys().fold(0, |present, key| present | rule_bit(key));
        RuleTags { map, present }
    }

    /// `key` must be one of [`RULE_KEYS`].
    fn get(&self, key: &str) -> Option<&String> {
        debug_assert_ne!(rule_bit(key), 0, "{key} is not a rule key");
        (self.present & rule_bit(key) != 0)
            .then(|| self.map.get(key))
            .flatten()
    }

    /// `key` must be one of [`RULE_KEYS`].
    fn remove(&mut self, key: &str) -> Option<String> {
        debug_assert_ne!(rule_bit(key), 0, "{key} is not a rule key");
        let bit = rule_bit(key);
        if self.present & bit == 0 {
            return None;
        }
        self.present &= !bit;
        self.map.remove(key)
    }

    fn insert(&mut self, key: &str, value: String) {
        self.present |= rule_bit(key);
        self.map.insert(key.to_owned(), value);
    }
}

fn address(tags: &mut RuleTags, keys: &[&str], remove: &[&str]) -> Option<IpAddr> {
    let found = keys
        .iter()
        .find_map(|key| tags.get(key).and_then(|text| text.parse::<IpAddr>().ok()));
    remove.iter().for_each(|key| {
        tags.remove(key);
    });
    found
}

fn port(tags: &mut RuleTags, keys: &[&str], remove: &[&str]) -> Option<u16> {
    let found = keys
        .iter()
        .find_map(|key| tags.get(key).and_then(|text| text.parse::<u16>().ok()))
        .filter(|port| *port != 0);
    remove.iter().for_each(|key| {
        tags.remove(key);
    });
    found
}

fn with_address(mut endpoint: Endpoint, ip: Option<IpAddr>) -> Endpoint {
    match ip {
        Some(IpAddr::V4(ip)) => endpoint.ipv4 = Some(ip),
        Some(IpAddr::V6(ip)) => endpoint.ipv6 = Some(ip),
        None => {}
    }
    endpoint
}

fn local_endpoint(service: &str, tags: &mut RuleTags) -> Endpoint {
    let ip = address(tags, &["net.host.ip"], &["net.host.ip"]);
    let mut endpoint = with_address(Endpoint::service(service), ip);
    endpoint.port = port(tags, &["net.host.port"], &["net.host.port"]);
    endpoint
}

fn remote_endpoint(kind: Option<Kind>, tags: &mut RuleTags) -> Option<Endpoint> {
    let outgoing = matches!(kind, Some(Kind::Client | Kind::Producer));
    let mut service = tags.remove("peer.service");
    if service.is_none() && outgoing {
        service = [
            "server.address",
            "net.peer.name",
            "net.sock.peer.name",
            "peer.hostname",
        ]
        .iter()
        .find_map(|key| tags.get(key).cloned());
    }
    let ip = address(
        tags,
        &["network.peer.address", "net.sock.peer.addr", "net.peer.ip"],
        &["net.peer.ip"],
    );
    let port_keys = [
        "network.peer.port",
        "net.sock.peer.port",
        "net.peer.port",
        "server.port",
    ];
    let port_keys = if outgoing {
        &port_keys[..]
    } else {
        &port_keys[..3]
    };
    let port = port(tags, port_keys, &["net.peer.port"]);
    let endpoint = Endpoint {
        service_name: service,
        port,
        ..Endpoint::default()
    };
    let endpoint = with_address(endpoint, ip);
    (!endpoint.is_empty()).then_some(endpoint)
}

fn status(status: Option<super::proto::Status>, tags: &mut RuleTags) {
    let status = status.unwrap_or_default();
    match status.code {
        2 => {
            let message = if status.message.is_empty() {
                "true".to_string()
            } else {
                status.message.clone()
            };
            tags.insert("error", message);
            tags.insert("otel.status_code", "ERROR".into());
        }
        1 => {
            tags.remove("error");
            tags.insert("otel.status_code", "OK".into());
        }
        _ => {
            tags.remove("error");
            return;
        }
    }
    if !status.message.is_empty() {
        tags.insert("otel.status_description", status.message);
    }
}

/// Maps every log record of an export request; `now` (epoch nanoseconds) dates a record that
/// carries neither a time nor an observed time. Records with bad ids are rejected.
pub fn logs(request: ExportLogsServiceRequest, now: u64) -> Mapped<LogRecord> {
    let mut mapped = Mapped::default();
    let mut index = 0usize;
    for resource_logs in request.resource_logs {
        let has_resource = resource_logs.resource.is_some();
        let (service, _) = resource_tags(resource_logs.resource);
        let service = (has_resource && service != NO_SERVICE_NAME).then_some(service);
        for scope_logs in resource_logs.scope_logs {
            let scope = scope_logs
                .scope
                .map(|scope| scope.name)
                .filter(|name| !name.is_empty());
            for otlp in scope_logs.log_records {
                match log_record(otlp, service.as_deref(), scope.clone(), now) {
                    Ok(record) => mapped.items.push(record),
                    Err(reason) => mapped.reject(|| format!("log record {index}: {reason}")),
                }
                index += 1;
            }
        }
    }
    mapped
}

fn log_record(
    otlp: OtlpLogRecord,
    service: Option<&str>,
    scope: Option<String>,
    now: u64,
) -> Result<LogRecord, String> {
    let trace_id = match otlp.trace_id.as_slice() {
        [] => None,
        bytes => Some(trace_id(bytes)?),
    };
    let span_id = match otlp.span_id.as_slice() {
        [] => None,
        bytes => Some(span_id("span_id", bytes)?),
    };
    let time = [otlp.time_unix_nano, otlp.observed_time_unix_nano, now]
        .into_iter()
        .find(|t| *t != 0)
        .unwrap_or_default();
    Ok(LogRecord {
        time_unix_nano: time,
        severity_number: u8::try_from(otlp.severity_number)
            .ok()
            .filter(|n| *n <= 24)
            .unwrap_or(0),
        severity_text: Some(otlp.severity_text).filter(|text| !text.is_empty()),
        body: into_text(otlp.body),
        attributes: otlp
            .attributes
            .into_iter()
            .map(|kv| (kv.key, into_text(kv.value)))
            .collect(),
        service: service.map(str::to_owned),
        trace_id,
        span_id,
        source: LogSource::Otlp { scope },
    })
}
