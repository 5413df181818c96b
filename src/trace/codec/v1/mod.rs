//! Zipkin v1 JSON, converted to v2 spans with the rules of the server's `V1SpanConverter`:
//! core annotations (`cs`, `sr`, `ss`, `cr`, `ms`, `mr`, `ws`, `wr`) become kind, timestamp and
//! duration; address annotations (`ca`, `sa`, `ma`) become remote endpoints; other binary
//! annotations become tags; a v1 span holding both client and server sides becomes two v2 spans.

use serde::Deserialize;

use super::json::{non_negative, RawEndpoint};
use super::DecodeError;
use crate::trace::model::{Endpoint, Span, SpanId, TraceId};

mod convert;

use convert::Converter;

const FORMAT: &str = "json v1";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawV1Span {
    trace_id: Option<String>,
    id: Option<String>,
    name: Option<String>,
    parent_id: Option<String>,
    timestamp: Option<i64>,
    duration: Option<i64>,
    annotations: Option<Vec<RawV1Annotation>>,
    binary_annotations: Option<Vec<RawV1Binary>>,
    debug: Option<bool>,
}

#[derive(Deserialize)]
struct RawV1Annotation {
    timestamp: i64,
    value: String,
    endpoint: Option<RawEndpoint>,
}

#[derive(Deserialize)]
struct RawV1Binary {
    key: String,
    value: Option<serde_json::Value>,
    endpoint: Option<RawEndpoint>,
}

/// A v1 annotation: a timestamped event on an endpoint.
#[derive(Clone)]
struct V1Annotation {
    timestamp: u64,
    value: String,
    endpoint: Option<Endpoint>,
}

/// A binary annotation; `value == None` marks an address annotation (`ca`, `sa`, `ma`).
struct V1Binary {
    key: String,
    value: Option<String>,
    endpoint: Option<Endpoint>,
}

struct V1Span {
    trace_id: TraceId,
    parent_id: Option<SpanId>,
    id: SpanId,
    name: Option<String>,
    timestamp: u64,
    duration: u64,
    annotations: Vec<V1Annotation>,
    binary_annotations: Vec<V1Binary>,
    debug: bool,
}

fn endpoint(raw: Option<RawEndpoint>) -> Result<Option<Endpoint>, DecodeError> {
    raw.map(|e| e.into_endpoint(FORMAT)).transpose()
}

impl RawV1Span {
    fn into_v1(self, index: usize) -> Result<V1Span, DecodeError> {
        let at = |what: &str| DecodeError::new(FORMAT, format!("span {index}: {what}"));
        let trace_id = self.trace_id.ok_or_else(|| at("missing traceId"))?;
        let id = self.id.ok_or_else(|| at("missing id"))?;
        let mut annotations = Vec::new();
        for a in self.annotations.unwrap_or_default() {
            annotations.push(V1Annotation {
                timestamp: a.timestamp.max(0) as u64,
                value: a.value,
                endpoint: endpoint(a.endpoint)?,
            });
        }
        let mut binary_annotations = Vec::new();
        for b in self.binary_annotations.unwrap_or_default() {
            let endpoint = endpoint(b.endpoint)?;
            let value = match b.value {
                Some(serde_json::Value::String(text)) => Some(text),
                // `"value": true` with an endpoint is an address annotation; other kinds are skipped.
                Some(serde_json::Value::Bool(true))
                    if endpoint.is_some() && matches!(b.key.as_str(), "ca" | "sa" | "ma") =>
                {
                    None
                }
                _ => continue,
            };
            binary_annotations.push(V1Binary {
                key: b.key,
                value,
                endpoint,
            });
        }
        Ok(V1Span {
            trace_id: TraceId::parse(&trace_id).map_err(|e| DecodeError::new(FORMAT, e))?,
            parent_id: match self.parent_id {
                Some(parent) => {
                    SpanId::parse_parent(&parent).map_err(|e| DecodeError::new(FORMAT, e))?
                }
                None => None,
            },
            id: SpanId::parse(&id).map_err(|e| DecodeError::new(FORMAT, e))?,
            name: self.name,
            timestamp: non_negative(self.timestamp).unwrap_or(0),
            duration: non_negative(self.duration).unwrap_or(0),
            annotations,
            binary_annotations,
            debug: self.debug.unwrap_or(false),
        })
    }
}

/// Decodes a v1 JSON list of spans into v2 spans.
pub fn decode(body: &[u8]) -> Result<Vec<Span>, DecodeError> {
    let raw: Vec<RawV1Span> =
        serde_json::from_slice(body).map_err(|e| DecodeError::new(FORMAT, e))?;
    let mut out = Vec::with_capacity(raw.len());
    for (index, span) in raw.into_iter().enumerate() {
        Converter::new(span.into_v1(index)?).convert(&mut out);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::model::Kind;

    fn decode_str(text: &str) -> Vec<Span> {
        let mut spans = decode(text.as_bytes()).unwrap();
        spans.iter_mut().for_each(Span::normalize);
        spans
    }

    #[test]
    fn client_and_server_in_one_v1_span_become_two_spans() {
        let spans = decode_str(
            r#"[{"traceId":"1","id":"2","parentId":"1","name":"GET","timestamp":100,"duration":50,
            "annotations":[
              {"timestamp":100,"value":"cs","endpoint":{"serviceName":"Front","ipv4":"10.0.0.1"}},
              {"timestamp":110,"value":"sr","endpoint":{"serviceName":"back"}},
              {"timestamp":140,"value":"ss","endpoint":{"serviceName":"back"}},
              {"timestamp":150,"value":"cr","endpoint":{"serviceName":"Front","ipv4":"10.0.0.1"}},
              {"timestamp":120,"value":"cache.miss","endpoint":{"serviceName":"back"}}],
            "binaryAnnotations":[
              {"key":"http.path","value":"/a","endpoint":{"serviceName":"back"}},
              {"key":"sa","value":true,"endpoint":{"serviceName":"back","port":80}},
              {"key":"ca","value":true,"endpoint":{"serviceName":"front","ipv4":"10.0.0.1"}}]}]"#,
        );
        assert_eq!(spans.len(), 2);
        let client = &spans[0];
        assert_eq!(client.kind, Some(Kind::Client));
        assert_eq!(client.local_service_name(), Some("front"));
        assert_eq!((client.timestamp, client.duration), (Some(100), Some(50)));
        assert_eq!(client.remote_service_name(), Some("back"));
        assert_eq!(client.name.as_deref(), Some("get"));
        let server = &spans[1];
        assert_eq!(server.kind, Some(Kind::Server));
        assert!(server.shared);
        assert_eq!((server.timestamp, server.duration), (Some(110), Some(30)));
        assert_eq!(server.annotations[0].value, "cache.miss");
        assert_eq!(server.tags["http.path"], "/a");
        assert_eq!(server.remote_service_name(), Some("front"));
    }

    #[test]
    fn local_span_with_lc_keeps_timestamp_and_drops_marker() {
        let spans = decode_str(
            r#"[{"traceId":"1","id":"3","name":"compute","timestamp":5,"duration":7,
            "binaryAnnotations":[{"key":"lc","value":"","endpoint":{"serviceName":"worker"}},
                                 {"key":"retries","value":3}]}]"#,
        );
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].kind, None);
        assert_eq!(spans[0].local_service_name(), Some("worker"));
        assert_eq!((spans[0].timestamp, spans[0].duration), (Some(5), Some(7)));
        assert!(spans[0].tags.is_empty());
    }

    #[test]
    fn server_only_span_without_timestamp_is_shared() {
        let spans = decode_str(
            r#"[{"traceId":"1","id":"4","name":"get","annotations":[
              {"timestamp":10,"value":"sr","endpoint":{"serviceName":"api"}},
              {"timestamp":30,"value":"ss","endpoint":{"serviceName":"api"}}]}]"#,
        );
        assert_eq!(spans[0].kind, Some(Kind::Server));
        assert!(spans[0].shared);
        assert_eq!(
            (spans[0].timestamp, spans[0].duration),
            (Some(10), Some(20))
        );
    }

    #[test]
    fn messaging_producer_with_broker_address() {
        let spans = decode_str(
            r#"[{"traceId":"1","id":"5","name":"send","annotations":[
              {"timestamp":10,"value":"ms","endpoint":{"serviceName":"orders"}}],
              "binaryAnnotations":[{"key":"ma","value":true,"endpoint":{"serviceName":"kafka"}}]}]"#,
        );
        assert_eq!(spans[0].kind, Some(Kind::Producer));
        assert_eq!(spans[0].timestamp, Some(10));
        assert_eq!(spans[0].remote_service_name(), Some("kafka"));
    }

    #[test]
    fn incomplete_annotation_is_an_error() {
        let error =
            decode(br#"[{"traceId":"1","id":"5","annotations":[{"value":"cs"}]}]"#).unwrap_err();
        assert!(error.reason.contains("timestamp"), "{error}");
    }
}
