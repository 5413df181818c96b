//! `GET /api/v2/logs`: its parameters, validated, and its JSON answer.
//!
//! Parameters (all optional): `serviceName` (exact, case-insensitive), `severity` (a minimum:
//! `trace`, `debug`, `info`, `warn`, `error`, `fatal` or a number 1–24; records with no severity
//! then do not match), `since` and `until` (epoch milliseconds, inclusive), `q` (text the body
//! contains, case-insensitive), `traceId` (hex, as `/api/v2/trace/{id}` takes it), `limit`
//! (default 100, at most 10 000). The answer is a JSON array of the newest matching records, in
//! time order.

use std::io::Write;

use super::{LogRecord, LogSource};
use crate::trace::codec::json::{write_str, write_string_map};
use crate::trace::model::TraceId;
use crate::trace::query::{Params, QueryError};

/// The default `limit`.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `limit`.
pub const MAX_LIMIT: usize = 10_000;

/// A validated log search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    /// Lower-case service name.
    pub service: Option<String>,
    /// Least severity number (0: any, including unspecified).
    pub min_severity: u8,
    /// Epoch nanoseconds, inclusive.
    pub since: Option<u64>,
    /// Epoch nanoseconds, inclusive.
    pub until: Option<u64>,
    /// Lower-case text the body contains.
    pub text: Option<String>,
    /// The trace the records belong to.
    pub trace_id: Option<TraceId>,
    /// Most records returned.
    pub limit: usize,
}

impl Default for LogQuery {
    fn default() -> Self {
        LogQuery {
            service: None,
            min_severity: 0,
            since: None,
            until: None,
            text: None,
            trace_id: None,
            limit: DEFAULT_LIMIT,
        }
    }
}

/// Reads a severity name or number as the least `SeverityNumber` of that level.
pub fn parse_severity(text: &str) -> Option<u8> {
    let level = match text.to_ascii_lowercase().as_str() {
        "trace" => 1,
        "debug" => 5,
        "info" => 9,
        "warn" | "warning" => 13,
        "error" => 17,
        "fatal" | "critical" => 21,
        number => number.parse::<u8>().ok().filter(|n| (1..=24).contains(n))?,
    };
    Some(level)
}

fn millis_to_nanos(params: &Params, key: &str) -> Result<Option<u64>, QueryError> {
    match params.integer(key)? {
        None => Ok(None),
        Some(ms) if ms < 0 => Err(QueryError(format!("{key} < 0"))),
        Some(ms) => Ok(Some((ms as u64).saturating_mul(1_000_000))),
    }
}

impl LogQuery {
    /// Validates the query string of `/api/v2/logs`.
    pub fn from_params(params: &Params) -> Result<Self, QueryError> {
        let min_severity = match params.get("severity") {
            None => 0,
            Some(text) => parse_severity(text).ok_or_else(|| {
                QueryError(format!(
                    "invalid severity {text:?}: use trace, debug, info, warn, error, fatal or 1-24"
                ))
            })?,
        };
        let limit = match params.integer("limit")? {
            None => DEFAULT_LIMIT,
            Some(limit) if limit <= 0 => return Err(QueryError("limit <= 0".into())),
            Some(limit) => (limit as usize).min(MAX_LIMIT),
        };
        let trace_id = params
            .get("traceId")
            .map(|id| TraceId::parse(&id.to_ascii_lowercase()))
            .transpose()
            .map_err(|e| QueryError(e.to_string()))?;
        Ok(LogQuery {
            service: params.get("serviceName").map(str::to_lowercase),
            min_severity,
            since: millis_to_nanos(params, "since")?,
            until: millis_to_nanos(params, "until")?.map(|until| until.saturating_add(999_999)),
            text: params.get("q").map(str::to_lowercase),
            trace_id,
            limit,
        })
    }

    /// True when `record` passes every criterion.
    pub fn matches(&self, record: &LogRecord) -> bool {
        self.service
            .as_ref()
            .is_none_or(|service| record.service.as_ref() == Some(service))
            && (self.min_severity == 0 || record.severity_number >= self.min_severity)
            && self
                .since
                .is_none_or(|since| record.time_unix_nano >= since)
            && self
                .until
                .is_none_or(|until| record.time_unix_nano <= until)
            && self.trace_id.is_none_or(|id| record.trace_id == Some(id))
            && self
                .text
                .as_ref()
                .is_none_or(|text| contains_ignoring_case(&record.body, text))
    }
}

fn contains_ignoring_case(haystack: &str, lower_needle: &str) -> bool {
    if haystack.is_ascii() && lower_needle.is_ascii() {
        let needle = lower_needle.as_bytes();
        haystack
            .as_bytes()
            .windows(needle.len().max(1))
            .any(|window| window.eq_ignore_ascii_case(needle))
            || needle.is_empty()
    } else {
        haystack.to_lowercase().contains(lower_needle)
    }
}

/// The JSON answer: one object per record (`timestamp` in epoch microseconds as Zipkin's, and
/// `timeUnixNano` as a string as OTLP's).
pub fn encode(records: &[std::sync::Arc<LogRecord>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.len() * 256 + 2);
    out.push(b'[');
    for (index, record) in records.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_record(&mut out, record);
    }
    out.push(b']');
    out
}

fn write_record(out: &mut Vec<u8>, record: &LogRecord) {
    let _ = write!(
        out,
        "{{\"timestamp\":{},\"timeUnixNano\":\"{}\",\"severityNumber\":{}",
        record.time_unix_nano / 1000,
        record.time_unix_nano,
        record.severity_number
    );
    let field = |out: &mut Vec<u8>, name: &str, value: &str| {
        let _ = write!(out, ",\"{name}\":");
        write_str(out, value);
    };
    if let Some(text) = &record.severity_text {
        field(out, "severityText", text);
    }
    if let Some(service) = &record.service {
        field(out, "serviceName", service);
    }
    if let Some(trace_id) = record.trace_id {
        field(out, "traceId", &trace_id.to_string());
    }
    if let Some(span_id) = record.span_id {
        field(out, "spanId", &span_id.to_string());
    }
    field(out, "body", &record.body);
    match &record.source {
        LogSource::Otlp { scope } => {
            field(out, "source", "otlp");
            if let Some(scope) = scope {
                field(out, "scope", scope);
            }
        }
        LogSource::Container { replica, stream } => {
            field(out, "source", "container");
            field(out, "replica", replica);
            field(out, "stream", stream.as_str());
        }
    }
    out.extend_from_slice(b",\"attributes\":");
    write_string_map(
        out,
        record
            .attributes
            .iter()
            .map(|(key, value)| (&key[..], &value[..])),
    );
    out.push(b'}');
}

/// Reads an answer of `/api/v2/logs` back (what [`encode`] wrote): the records, in its order.
/// Fields it does not know are ignored; a record without a body or time is an error.
pub fn decode(body: &[u8]) -> Result<Vec<LogRecord>, QueryError> {
    let invalid = |reason: String| QueryError(format!("not a log search answer: {reason}"));
    let values: Vec<serde_json::Value> =
        serde_json::from_slice(body).map_err(|error| invalid(error.to_string()))?;
    values
        .iter()
        .map(|value| {
            let text = |name: &str| value.get(name).and_then(|v| v.as_str()).map(String::from);
            let time_unix_nano = text("timeUnixNano")
                .and_then(|time| time.parse().ok())
                .ok_or_else(|| invalid("a record has no timeUnixNano".into()))?;
            let body = text("body").ok_or_else(|| invalid("a record has no body".into()))?;
            let source = match text("source").as_deref() {
                Some("container") => LogSource::Container {
                    replica: text("replica").unwrap_or_default(),
                    stream: if text("stream").as_deref() == Some("stderr") {
                        super::Stream::Stderr
                    } else {
                        super::Stream::Stdout
                    },
                },
                _ => LogSource::Otlp {
                    scope: text("scope"),
                },
            };
            let attributes = value
                .get("attributes")
                .and_then(|v| v.as_object())
                .map(|map| {
                    map.iter()
                        .map(|(key, value)| {
                            (key.clone(), value.as_str().unwrap_or_default().to_string())
                        })
                        .collect()
                })
                .unwrap_or_default();
            Ok(LogRecord {
                time_unix_nano,
                severity_number: value
                    .get("severityNumber")
                    .and_then(|v| v.as_u64())
                    .and_then(|n| u8::try_from(n).ok())
                    .unwrap_or(0),
                severity_text: text("severityText"),
                body,
                attributes,
                service: text("serviceName"),
                trace_id: text("traceId").and_then(|id| TraceId::parse(&id).ok()),
                span_id: text("spanId").and_then(|id| crate::trace::SpanId::parse(&id).ok()),
                source,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(text: &str) -> Result<LogQuery, QueryError> {
        LogQuery::from_params(&Params::parse(Some(text)))
    }

    #[test]
    fn parameters_are_validated() {
        let parsed =
            query("serviceName=Web&severity=warn&since=5&until=6&q=Boom&traceId=ABC&limit=20000")
                .unwrap();
        assert_eq!(parsed.service.as_deref(), Some("web"));
        assert_eq!(parsed.min_severity, 13);
        assert_eq!(parsed.since, Some(5_000_000));
        assert_eq!(parsed.until, Some(6_999_999));
        assert_eq!(parsed.text.as_deref(), Some("boom"));
        assert_eq!(parsed.trace_id, Some(TraceId(0xabc)));
        assert_eq!(parsed.limit, MAX_LIMIT);
        assert!(query("severity=loud")
            .unwrap_err()
            .0
            .contains("invalid severity"));
        assert!(query("limit=0").unwrap_err().0.contains("limit <= 0"));
        assert!(query("since=-1").unwrap_err().0.contains("since < 0"));
        assert!(query("traceId=xyz").is_err());
    }

    #[test]
    fn text_matches_ignoring_case() {
        assert!(contains_ignoring_case("Payment DECLINED", "declined"));
        assert!(!contains_ignoring_case("ok", "declined"));
        assert!(contains_ignoring_case("Über", "über"));
    }

    #[test]
    fn records_encode_as_json() {
        let record = LogRecord {
            time_unix_nano: 1_700_000_000_123_456_789,
            severity_number: 17,
            severity_text: Some("ERROR".into()),
            body: "card \"declined\"".into(),
            attributes: vec![("code".into(), "402".into())],
            service: Some("payments".into()),
            trace_id: Some(TraceId(0x1234)),
            span_id: None,
            source: LogSource::Container {
                replica: "shop-payments-1".into(),
                stream: super::super::Stream::Stderr,
            },
        };
        let json: serde_json::Value =
            serde_json::from_slice(&encode(&[std::sync::Arc::new(record)])).unwrap();
        assert_eq!(json[0]["timestamp"], 1_700_000_000_123_456u64);
        assert_eq!(json[0]["timeUnixNano"], "1700000000123456789");
        assert_eq!(json[0]["body"], "card \"declined\"");
        assert_eq!(json[0]["traceId"], "0000000000001234");
        assert_eq!(json[0]["stream"], "stderr");
        assert_eq!(json[0]["attributes"]["code"], "402");
    }

    #[test]
    fn an_encoded_answer_decodes_to_the_same_records() {
        let record = LogRecord {
            time_unix_nano: 1_700_000_000_123_456_789,
            severity_number: 9,
            severity_text: Some("INFO".into()),
            body: "line".into(),
            attributes: vec![("k".into(), "v".into())],
            service: Some("web".into()),
            trace_id: Some(TraceId(0x4bf92f3577b34da6a3ce929d0e0e4736)),
            span_id: Some(crate::trace::SpanId(7)),
            source: LogSource::Container {
                replica: "shop-web-1".into(),
                stream: super::super::Stream::Stdout,
            },
        };
        let body = encode(&[std::sync::Arc::new(record.clone())]);
        assert_eq!(decode(&body).unwrap(), vec![record]);
        assert!(decode(b"{}")
            .unwrap_err()
            .0
            .contains("not a log search answer"));
        assert!(decode(b"[{}]").is_err());
    }
}
