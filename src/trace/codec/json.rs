//! Zipkin v2 JSON: decoding a `ListOfSpans` and encoding spans, traces and name lists.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::DecodeError;
use crate::trace::model::{Annotation, Endpoint, IdError, Kind, Span, SpanId, TraceId};

const FORMAT: &str = "json v2";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSpan {
    trace_id: Option<String>,
    parent_id: Option<String>,
    id: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    timestamp: Option<i64>,
    duration: Option<i64>,
    local_endpoint: Option<RawEndpoint>,
    remote_endpoint: Option<RawEndpoint>,
    annotations: Option<Vec<RawAnnotation>>,
    tags: Option<BTreeMap<String, TagValue>>,
    debug: Option<bool>,
    shared: Option<bool>,
}

/// An endpoint as written in JSON (v1 and v2 share it).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawEndpoint {
    service_name: Option<String>,
    ipv4: Option<String>,
    ipv6: Option<String>,
    port: Option<i64>,
}

#[derive(Deserialize)]
struct RawAnnotation {
    timestamp: i64,
    value: String,
}

/// A tag value: clients send strings, some send numbers or booleans, which the server keeps as text.
pub(crate) struct TagValue(pub(crate) String);

impl<'de> Deserialize<'de> for TagValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TagVisitor;
        impl Visitor<'_> for TagVisitor {
            type Value = TagValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean tag value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TagValue, E> {
                Ok(TagValue(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<TagValue, E> {
                Ok(TagValue(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<TagValue, E> {
                Ok(TagValue(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<TagValue, E> {
                Ok(TagValue(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<TagValue, E> {
                Ok(TagValue(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<TagValue, E> {
                Ok(TagValue(v.to_string()))
            }
        }
        deserializer.deserialize_any(TagVisitor)
    }
}

impl RawEndpoint {
    /// Converts to the model; unparseable IPs are dropped as the server drops them.
    pub(crate) fn into_endpoint(self, format: &'static str) -> Result<Endpoint, DecodeError> {
        let mut endpoint = Endpoint {
            service_name: crate::trace::model::normalize_name(self.service_name),
            ..Endpoint::default()
        };
        for text in [self.ipv4, self.ipv6].into_iter().flatten() {
            match text.parse::<IpAddr>() {
                Ok(IpAddr::V4(ip)) => endpoint.ipv4 = Some(ip),
                Ok(IpAddr::V6(ip)) => endpoint.ipv6 = Some(ip),
                Err(_) => {}
            }
        }
        endpoint.port = match self.port {
            // The server reads a negative port as unknown and refuses one past 65535.
            None | Some(i64::MIN..=0) => None,
            Some(port @ 1..=65535) => Some(port as u16),
            Some(port) => return Err(DecodeError::new(format, format!("invalid port {port}"))),
        };
        Ok(endpoint)
    }
}

/// A negative timestamp or duration is read as absent, as the server's span builder does.
pub(crate) fn non_negative(value: Option<i64>) -> Option<u64> {
    value.filter(|v| *v > 0).map(|v| v as u64)
}

fn id_error(error: IdError) -> DecodeError {
    DecodeError::new(FORMAT, error)
}

impl RawSpan {
    fn into_span(self, index: usize) -> Result<Span, DecodeError> {
        let at = |what: &str| DecodeError::new(FORMAT, format!("span {index}: {what}"));
        let trace_id = self.trace_id.ok_or_else(|| at("missing traceId"))?;
        let id = self.id.ok_or_else(|| at("missing id"))?;
        let mut span = Span::new(
            TraceId::parse(&trace_id).map_err(id_error)?,
            SpanId::parse(&id).map_err(id_error)?,
        );
        if let Some(parent) = self.parent_id {
            span.parent_id = SpanId::parse_parent(&parent).map_err(id_error)?;
        }
        if let Some(kind) = self.kind {
            span.kind =
                Some(Kind::parse(&kind).ok_or_else(|| at(&format!("unknown kind {kind:?}")))?);
        }
        span.name = self.name;
        span.timestamp = non_negative(self.timestamp);
        span.duration = non_negative(self.duration);
        span.local_endpoint = self
            .local_endpoint
            .map(|e| e.into_endpoint(FORMAT))
            .transpose()?;
        span.remote_endpoint = self
            .remote_endpoint
            .map(|e| e.into_endpoint(FORMAT))
            .transpose()?;
        span.annotations = self
            .annotations
            .unwrap_or_default()
            .into_iter()
            .map(|a| Annotation {
                timestamp: a.timestamp.max(0) as u64,
                value: a.value,
            })
            .collect();
        span.tags = self
            .tags
            .unwrap_or_default()
            .into_iter()
            .map(|(key, value)| (key, value.0))
            .collect();
        span.debug = self.debug.unwrap_or(false);
        span.shared = self.shared.unwrap_or(false);
        Ok(span)
    }
}

/// Decodes a JSON v2 list of spans.
pub fn decode(body: &[u8]) -> Result<Vec<Span>, DecodeError> {
    let raw: Vec<RawSpan> =
        serde_json::from_slice(body).map_err(|e| DecodeError::new(FORMAT, e))?;
    raw.into_iter()
        .enumerate()
        .map(|(index, span)| span.into_span(index))
        .collect()
}

/// Appends `text` as a JSON string.
/// Writes `{"key":"value",...}`: tags, attributes.
pub(crate) fn write_string_map<'a>(
    out: &mut Vec<u8>,
    entries: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    out.push(b'{');
    for (index, (key, value)) in entries.into_iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_str(out, key);
        out.push(b':');
        write_str(out, value);
    }
    out.push(b'}');
}

pub(crate) fn write_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        let escape: Option<&[u8]> = match byte {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..index]);
        match escape {
            Some(escaped) => out.extend_from_slice(escaped),
            None => out.extend_from_slice(format!("\\u{byte:04x}").as_bytes()),
        }
        start = index + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn write_endpoint(out: &mut Vec<u8>, endpoint: &Endpoint) {
    out.push(b'{');
    let mut first = true;
    let mut field = |out: &mut Vec<u8>, name: &str| {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(name.as_bytes());
    };
    if let Some(name) = &endpoint.service_name {
        field(out, "\"serviceName\":");
        write_str(out, name);
    }
    if let Some(ip) = endpoint.ipv4 {
        field(out, "\"ipv4\":");
        write_str(out, &ip.to_string());
    }
    if let Some(ip) = endpoint.ipv6 {
        field(out, "\"ipv6\":");
        write_str(out, &ip.to_string());
    }
    if let Some(port) = endpoint.port {
        field(out, "\"port\":");
        out.extend_from_slice(port.to_string().as_bytes());
    }
    out.push(b'}');
}

/// Appends one span as JSON v2, fields in the order the server writes them.
pub fn write_span(out: &mut Vec<u8>, span: &Span) {
    use std::io::Write;
    let _ = write!(out, "{{\"traceId\":\"{}\"", span.trace_id);
    if let Some(parent) = span.parent_id {
        let _ = write!(out, ",\"parentId\":\"{parent}\"");
    }
    let _ = write!(out, ",\"id\":\"{}\"", span.id);
    if let Some(kind) = span.kind {
        let _ = write!(out, ",\"kind\":\"{}\"", kind.as_str());
    }
    if let Some(name) = &span.name {
        out.extend_from_slice(b",\"name\":");
        write_str(out, name);
    }
    if let Some(timestamp) = span.timestamp {
        let _ = write!(out, ",\"timestamp\":{timestamp}");
    }
    if let Some(duration) = span.duration {
        let _ = write!(out, ",\"duration\":{duration}");
    }
    if let Some(endpoint) = &span.local_endpoint {
        out.extend_from_slice(b",\"localEndpoint\":");
        write_endpoint(out, endpoint);
    }
    if let Some(endpoint) = &span.remote_endpoint {
        out.extend_from_slice(b",\"remoteEndpoint\":");
        write_endpoint(out, endpoint);
    }
    if !span.annotations.is_empty() {
        out.extend_from_slice(b",\"annotations\":[");
        for (index, annotation) in span.annotations.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            let _ = write!(out, "{{\"timestamp\":{},\"value\":", annotation.timestamp);
            write_str(out, &annotation.value);
            out.push(b'}');
        }
        out.push(b']');
    }
    if !span.tags.is_empty() {
        out.extend_from_slice(b",\"tags\":");
        write_string_map(
            out,
            span.tags.iter().map(|(key, value)| (&key[..], &value[..])),
        );
    }
    if span.debug {
        out.extend_from_slice(b",\"debug\":true");
    }
    if span.shared {
        out.extend_from_slice(b",\"shared\":true");
    }
    out.push(b'}');
}

/// Appends a JSON array of spans.
pub fn write_spans(out: &mut Vec<u8>, spans: &[Span]) {
    out.push(b'[');
    for (index, span) in spans.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_span(out, span);
    }
    out.push(b']');
}

/// Encodes a list of spans (what `POST /api/v2/spans` accepts and `/api/v2/trace/{id}` returns).
pub fn encode(spans: &[Span]) -> Vec<u8> {
    let mut out = Vec::with_capacity(spans.len() * 400 + 2);
    write_spans(&mut out, spans);
    out
}

/// Encodes a list of traces (what `/api/v2/traces` returns).
pub fn encode_traces(traces: &[Vec<Span>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(traces.iter().map(|t| t.len() * 400 + 3).sum::<usize>() + 2);
    out.push(b'[');
    for (index, trace) in traces.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_spans(&mut out, trace);
    }
    out.push(b']');
    out
}

/// Encodes a list of strings (service names, span names, autocomplete values).
pub fn encode_strings<S: AsRef<str>>(names: &[S]) -> Vec<u8> {
    let mut out = Vec::with_capacity(names.len() * 16 + 2);
    out.push(b'[');
    for (index, name) in names.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_str(&mut out, name.as_ref());
    }
    out.push(b']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"[{"id":"352bff9a74ca9ad2","traceId":"5af7183fb1d4cf5f","parentId":"6b221d5bc9e6496c",
      "name":"get /api","timestamp":1556604172355737,"duration":1431,"kind":"SERVER",
      "localEndpoint":{"serviceName":"backend","ipv4":"192.168.99.1","port":3306},
      "remoteEndpoint":{"ipv4":"172.19.0.2","port":58648},
      "annotations":[{"timestamp":1556604172355800,"value":"wr"}],
      "tags":{"http.method":"GET","http.path":"/api","retries":3,"cached":false},"unknownField":[1]}]"#;

    #[test]
    fn decodes_the_spec_example_and_round_trips() {
        let spans = decode(EXAMPLE.as_bytes()).unwrap();
        assert_eq!(spans.len(), 1);
        let span = &spans[0];
        assert_eq!(span.kind, Some(Kind::Server));
        assert_eq!(span.tags["retries"], "3");
        assert_eq!(span.tags["cached"], "false");
        assert_eq!(span.remote_endpoint.as_ref().unwrap().port, Some(58648));
        let encoded = String::from_utf8(encode(&spans)).unwrap();
        assert!(encoded.starts_with(r#"[{"traceId":"5af7183fb1d4cf5f","parentId":"6b221d5bc9e6496c","id":"352bff9a74ca9ad2","kind":"SERVER","name":"get /api""#), "{encoded}");
        assert_eq!(decode(encoded.as_bytes()).unwrap(), spans);
    }

    #[test]
    fn rejects_bad_shapes_and_ids_with_a_reason() {
        let cases = [
            ("{}", "expected a sequence"),
            ("[{\"traceId\":\"a\"}]", "missing id"),
            ("[{\"id\":\"a\"}]", "missing traceId"),
            ("[{\"traceId\":\"XYZ\",\"id\":\"a\"}]", "lower-hex"),
            (
                "[{\"traceId\":\"a\",\"id\":\"12345678901234567\"}]",
                "id.length > 16",
            ),
            (
                "[{\"traceId\":\"a\",\"id\":\"b\",\"kind\":\"CLIENTS\"}]",
                "unknown kind",
            ),
            (
                "[{\"traceId\":\"a\",\"id\":\"b\",\"tags\":{\"k\":null}}]",
                "tag value",
            ),
            ("[{\"traceId\":\"a\",\"id\":\"b\"", "EOF"),
        ];
        for (body, reason) in cases {
            let error = decode(body.as_bytes()).unwrap_err().to_string();
            assert!(error.contains(reason), "{body}: {error}");
        }
    }

    #[test]
    fn escapes_control_characters() {
        let mut out = Vec::new();
        write_str(&mut out, "a\"b\\c\nd\u{1}");
        assert_eq!(String::from_utf8(out).unwrap(), r#""a\"b\\c\nd\u0001""#);
    }
}
