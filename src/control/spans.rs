//! The proxy's spans into the trace store: [`ProxySpan`] → Zipkin [`Span`], stored at once so a
//! trace is queryable as soon as its response has been sent.

use crate::proxy::{ProxySpan, SpanKind, SpanRecorder};
use crate::trace::{Annotation, Endpoint, Kind, Span, SpanId, Store, TraceId};

/// Records into a [`Store`].
pub struct StoreRecorder {
    pub store: Store,
}

impl SpanRecorder for StoreRecorder {
    fn record(&self, span: ProxySpan) {
        if let Some(span) = convert(span) {
            self.store.ingest(vec![span]);
        }
    }
}

/// `None` when the ids are not valid hex (the proxy makes valid ones; a caller's may not be).
pub fn convert(span: ProxySpan) -> Option<Span> {
    let mut converted = Span::new(
        TraceId::parse(&span.trace_id).ok()?,
        SpanId::parse(&span.id).ok()?,
    );
    converted.parent_id = match &span.parent_id {
        Some(parent) => Some(SpanId::parse(parent).ok()?),
        None => None,
    };
    converted.kind = Some(match span.kind {
        SpanKind::Client => Kind::Client,
        SpanKind::Server => Kind::Server,
    });
    converted.shared = span.shared;
    converted.name = Some(span.name.to_lowercase());
    converted.timestamp = Some(span.start_micros);
    converted.duration = Some(span.duration_micros.max(1));
    converted.local_endpoint = Some(Endpoint {
        service_name: Some(span.local_service.to_lowercase()),
        ..Endpoint::default()
    });
    let mut remote = Endpoint {
        service_name: Some(span.remote_service.to_lowercase()),
        ..Endpoint::default()
    };
    if let Some(address) = span.remote_address {
        match address.ip() {
            std::net::IpAddr::V4(ip) => remote.ipv4 = Some(ip),
            std::net::IpAddr::V6(ip) => remote.ipv6 = Some(ip),
        }
        remote.port = Some(address.port()).filter(|port| *port != 0);
    }
    converted.remote_endpoint = Some(remote);
    converted.tags = span
        .tags
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect();
    if let Some(replica) = span.remote_replica {
        converted
            .tags
            .insert("sandbox.replica".to_string(), replica);
    }
    converted.annotations = span
        .annotations
        .into_iter()
        .map(|(timestamp, value)| Annotation { timestamp, value })
        .collect();
    converted
        .annotations
        .sort_by(|a, b| (a.timestamp, &a.value).cmp(&(b.timestamp, &b.value)));
    Some(converted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_proxy_span_becomes_a_zipkin_span() {
        let span = ProxySpan {
            trace_id: "463ac35c9f6413ad48485a3953bb6124".into(),
            id: "a2fb4a1d1a96d312".into(),
            parent_id: Some("0020000000000001".into()),
            kind: SpanKind::Server,
            shared: true,
            name: "GET".into(),
            local_service: "item".into(),
            remote_service: "user".into(),
            remote_replica: Some("item-1".into()),
            remote_address: Some("172.18.0.5:8080".parse().unwrap()),
            start_micros: 1_700_000_000_000_000,
            duration_micros: 1500,
            tags: BTreeMap::from([
                ("http.status_code", "503".to_string()),
                ("error", "503".to_string()),
            ]),
            annotations: vec![(1_700_000_000_000_100, "retry 1: 503 from item-1".into())],
        };
        let converted = convert(span).unwrap();
        assert_eq!(
            converted.trace_id.to_string(),
            "463ac35c9f6413ad48485a3953bb6124"
        );
        assert_eq!(converted.kind, Some(Kind::Server));
        assert!(converted.shared);
        assert_eq!(converted.name.as_deref(), Some("get"));
        assert_eq!(
            converted.local_endpoint.unwrap().service_name.as_deref(),
            Some("item")
        );
        let remote = converted.remote_endpoint.unwrap();
        assert_eq!(remote.ipv4, Some("172.18.0.5".parse().unwrap()));
        assert_eq!(remote.port, Some(8080));
        assert_eq!(converted.tags["error"], "503");
        assert_eq!(converted.tags["sandbox.replica"], "item-1");
        assert_eq!(converted.annotations[0].value, "retry 1: 503 from item-1");
    }

    #[test]
    fn bad_ids_are_dropped_not_stored() {
        let span = ProxySpan {
            trace_id: "not-hex".into(),
            id: "a2fb4a1d1a96d312".into(),
            parent_id: None,
            kind: SpanKind::Client,
            shared: false,
            name: "get".into(),
            local_service: "gateway".into(),
            remote_service: "user".into(),
            remote_replica: None,
            remote_address: None,
            start_micros: 1,
            duration_micros: 1,
            tags: BTreeMap::new(),
            annotations: Vec::new(),
        };
        assert!(convert(span).is_none());
    }
}
