//! Zipkin proto3 (`zipkin.proto`): `ListOfSpans` with the messages written by hand for prost.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use prost::Message;

use super::DecodeError;
use crate::trace::model::{Annotation, Endpoint, Kind, Span, SpanId, TraceId};

const FORMAT: &str = "proto3";

/// `zipkin.proto3.ListOfSpans`.
#[derive(Clone, PartialEq, Message)]
pub struct ListOfSpans {
    /// The spans.
    #[prost(message, repeated, tag = "1")]
    pub spans: Vec<ProtoSpan>,
}

/// `zipkin.proto3.Span`.
#[derive(Clone, PartialEq, Message)]
pub struct ProtoSpan {
    /// 8 or 16 bytes, big-endian.
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    /// Empty or 8 bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub parent_id: Vec<u8>,
    /// 8 bytes.
    #[prost(bytes = "vec", tag = "3")]
    pub id: Vec<u8>,
    /// `Span.Kind`: 0 unspecified, 1 client, 2 server, 3 producer, 4 consumer.
    #[prost(int32, tag = "4")]
    pub kind: i32,
    /// Operation name.
    #[prost(string, tag = "5")]
    pub name: String,
    /// Epoch microseconds.
    #[prost(fixed64, tag = "6")]
    pub timestamp: u64,
    /// Microseconds.
    #[prost(uint64, tag = "7")]
    pub duration: u64,
    /// Local endpoint.
    #[prost(message, optional, tag = "8")]
    pub local_endpoint: Option<ProtoEndpoint>,
    /// Remote endpoint.
    #[prost(message, optional, tag = "9")]
    pub remote_endpoint: Option<ProtoEndpoint>,
    /// Annotations.
    #[prost(message, repeated, tag = "10")]
    pub annotations: Vec<ProtoAnnotation>,
    /// Tags.
    #[prost(btree_map = "string, string", tag = "11")]
    pub tags: BTreeMap<String, String>,
    /// Debug flag.
    #[prost(bool, tag = "12")]
    pub debug: bool,
    /// Shared flag.
    #[prost(bool, tag = "13")]
    pub shared: bool,
}

/// `zipkin.proto3.Endpoint`.
#[derive(Clone, PartialEq, Message)]
pub struct ProtoEndpoint {
    /// Service name.
    #[prost(string, tag = "1")]
    pub service_name: String,
    /// 4 bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub ipv4: Vec<u8>,
    /// 16 bytes.
    #[prost(bytes = "vec", tag = "3")]
    pub ipv6: Vec<u8>,
    /// Port.
    #[prost(int32, tag = "4")]
    pub port: i32,
}

/// `zipkin.proto3.Annotation`.
#[derive(Clone, PartialEq, Message)]
pub struct ProtoAnnotation {
    /// Epoch microseconds.
    #[prost(fixed64, tag = "1")]
    pub timestamp: u64,
    /// Value.
    #[prost(string, tag = "2")]
    pub value: String,
}

fn bytes_to_u64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}

fn span_id(field: &'static str, bytes: &[u8]) -> Result<u64, DecodeError> {
    if bytes.len() != 8 {
        return Err(DecodeError::new(
            FORMAT,
            format!("{field} should be 8 bytes, was {}", bytes.len()),
        ));
    }
    Ok(bytes_to_u64(bytes))
}

fn endpoint_from(proto: ProtoEndpoint) -> Endpoint {
    let ipv4 = <[u8; 4]>::try_from(proto.ipv4.as_slice())
        .ok()
        .map(Ipv4Addr::from);
    let ipv6 = <[u8; 16]>::try_from(proto.ipv6.as_slice())
        .ok()
        .map(Ipv6Addr::from);
    Endpoint {
        service_name: Some(proto.service_name).filter(|name| !name.is_empty()),
        ipv4,
        ipv6,
        port: u16::try_from(proto.port).ok().filter(|port| *port != 0),
    }
}

fn span_from(proto: ProtoSpan) -> Result<Span, DecodeError> {
    let trace_id = match proto.trace_id.len() {
        8 | 16 => proto
            .trace_id
            .iter()
            .fold(0u128, |acc, b| (acc << 8) | u128::from(*b)),
        other => {
            return Err(DecodeError::new(
                FORMAT,
                format!("trace_id should be 8 or 16 bytes, was {other}"),
            ))
        }
    };
    if trace_id == 0 {
        return Err(DecodeError::new(FORMAT, "trace_id is all zeros"));
    }
    let id = span_id("id", &proto.id)?;
    if id == 0 {
        return Err(DecodeError::new(FORMAT, "id is all zeros"));
    }
    let mut span = Span::new(TraceId(trace_id), SpanId(id));
    if !proto.parent_id.is_empty() {
        span.parent_id = Some(span_id("parent_id", &proto.parent_id)?)
            .filter(|parent| *parent != 0)
            .map(SpanId);
    }
    span.kind = match proto.kind {
        1 => Some(Kind::Client),
        2 => Some(Kind::Server),
        3 => Some(Kind::Producer),
        4 => Some(Kind::Consumer),
        _ => None,
    };
    span.name = Some(proto.name).filter(|name| !name.is_empty());
    span.timestamp = Some(proto.timestamp).filter(|t| *t != 0);
    span.duration = Some(proto.duration).filter(|d| *d != 0);
    span.local_endpoint = proto.local_endpoint.map(endpoint_from);
    span.remote_endpoint = proto.remote_endpoint.map(endpoint_from);
    span.annotations = proto
        .annotations
        .into_iter()
        .map(|a| Annotation {
            timestamp: a.timestamp,
            value: a.value,
        })
        .collect();
    span.tags = proto.tags;
    span.debug = proto.debug;
    span.shared = proto.shared;
    Ok(span)
}

/// Decodes a proto3 `ListOfSpans`.
pub fn decode(body: &[u8]) -> Result<Vec<Span>, DecodeError> {
    let list = ListOfSpans::decode(body).map_err(|e| DecodeError::new(FORMAT, e))?;
    list.spans.into_iter().map(span_from).collect()
}

fn endpoint_to(endpoint: &Endpoint) -> ProtoEndpoint {
    ProtoEndpoint {
        service_name: endpoint.service_name.clone().unwrap_or_default(),
        ipv4: endpoint
            .ipv4
            .map(|ip| ip.octets().to_vec())
            .unwrap_or_default(),
        ipv6: endpoint
            .ipv6
            .map(|ip| ip.octets().to_vec())
            .unwrap_or_default(),
        port: endpoint.port.map(i32::from).unwrap_or_default(),
    }
}

fn span_to(span: &Span) -> ProtoSpan {
    let trace_id = if span.trace_id.high() == 0 {
        span.trace_id.low().to_be_bytes().to_vec()
    } else {
        span.trace_id.0.to_be_bytes().to_vec()
    };
    ProtoSpan {
        trace_id,
        parent_id: span
            .parent_id
            .map(|p| p.0.to_be_bytes().to_vec())
            .unwrap_or_default(),
        id: span.id.0.to_be_bytes().to_vec(),
        kind: match span.kind {
            None => 0,
            Some(Kind::Client) => 1,
            Some(Kind::Server) => 2,
            Some(Kind::Producer) => 3,
            Some(Kind::Consumer) => 4,
        },
        name: span.name.clone().unwrap_or_default(),
        timestamp: span.timestamp.unwrap_or_default(),
        duration: span.duration.unwrap_or_default(),
        local_endpoint: span.local_endpoint.as_ref().map(endpoint_to),
        remote_endpoint: span.remote_endpoint.as_ref().map(endpoint_to),
        annotations: span
            .annotations
            .iter()
            .map(|a| ProtoAnnotation {
                timestamp: a.timestamp,
                value: a.value.clone(),
            })
            .collect(),
        tags: span
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        debug: span.debug,
        shared: span.shared,
    }
}

/// Encodes spans as a proto3 `ListOfSpans` (used by tests, the benchmark and clients).
pub fn encode(spans: &[Span]) -> Vec<u8> {
    ListOfSpans {
        spans: spans.iter().map(span_to).collect(),
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Span {
        let mut span = Span::new(
            TraceId(0x1234_5678_9abc_def0_1111_2222_3333_4444),
            SpanId(7),
        );
        span.parent_id = Some(SpanId(3));
        span.kind = Some(Kind::Client);
        span.name = Some("get".into());
        span.timestamp = Some(1_700_000_000_000_000);
        span.duration = Some(25);
        span.local_endpoint = Some(Endpoint {
            service_name: Some("frontend".into()),
            ipv4: Some(Ipv4Addr::new(10, 0, 0, 1)),
            ipv6: Some("2001:db8::1".parse().unwrap()),
            port: Some(8080),
        });
        span.annotations.push(Annotation {
            timestamp: 1_700_000_000_000_010,
            value: "ws".into(),
        });
        span.tags.insert("http.method".into(), "GET".into());
        span.shared = true;
        span
    }

    #[test]
    fn round_trips() {
        let spans = vec![sample()];
        assert_eq!(decode(&encode(&spans)).unwrap(), spans);
    }

    #[test]
    fn truncated_input_is_an_error() {
        let bytes = encode(&[sample()]);
        let error = decode(&bytes[..bytes.len() - 3]).unwrap_err();
        assert_eq!(error.format, "proto3");
    }

    #[test]
    fn wrong_id_lengths_are_errors() {
        let mut proto = span_to(&sample());
        proto.id = vec![1, 2, 3];
        let bytes = ListOfSpans { spans: vec![proto] }.encode_to_vec();
        assert!(decode(&bytes)
            .unwrap_err()
            .reason
            .contains("id should be 8 bytes"));
    }
}
