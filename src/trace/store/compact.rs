//! The stored form of a span: names and tag keys as symbols, all tag and annotation values in one
//! string per span, so a typical span with six tags costs about 300 bytes.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::trace::model::{Annotation, Endpoint, Kind, Span, SpanId, TraceId};
use crate::trace::symbols::{Symbol, Table};

const PRESENT: u8 = 1;
const HAS_IPV4: u8 = 2;

#[derive(Default)]
pub(crate) struct StoredEndpoint {
    pub(crate) service: Symbol,
    ipv4: u32,
    port: u16,
    flags: u8,
    ipv6: Option<Box<[u8; 16]>>,
}

const DEBUG: u8 = 1;
const SHARED: u8 = 2;

pub(crate) struct StoredSpan {
    pub(crate) id: u64,
    /// 0 when the span is a root.
    pub(crate) parent: u64,
    /// Epoch microseconds; 0 when absent.
    pub(crate) timestamp: u64,
    /// 0 when absent.
    pub(crate) duration: u64,
    pub(crate) name: Symbol,
    /// 0 none, then client, server, producer, consumer.
    pub(crate) kind: u8,
    flags: u8,
    pub(crate) local: StoredEndpoint,
    pub(crate) remote: StoredEndpoint,
    /// (key, end offset of the value in `text`).
    tags: Box<[(Symbol, u32)]>,
    /// (timestamp, end offset of the value in `text`), after the tag values.
    annotations: Box<[(u64, u32)]>,
    text: Box<str>,
}

pub(crate) fn kind_code(kind: Option<Kind>) -> u8 {
    match kind {
        None => 0,
        Some(Kind::Client) => 1,
        Some(Kind::Server) => 2,
        Some(Kind::Producer) => 3,
        Some(Kind::Consumer) => 4,
    }
}

fn kind_from(code: u8) -> Option<Kind> {
    match code {
        1 => Some(Kind::Client),
        2 => Some(Kind::Server),
        3 => Some(Kind::Producer),
        4 => Some(Kind::Consumer),
        _ => None,
    }
}

impl StoredEndpoint {
    /// `None` when the service name is not interned.
    fn from(endpoint: Option<&Endpoint>, symbols: &Table) -> Option<Self> {
        let Some(endpoint) = endpoint else {
            return Some(StoredEndpoint::default());
        };
        Some(StoredEndpoint {
            service: symbols.lookup(endpoint.service_name.as_deref())?,
            ipv4: endpoint.ipv4.map_or(0, u32::from),
            port: endpoint.port.unwrap_or(0),
            flags: PRESENT | if endpoint.ipv4.is_some() { HAS_IPV4 } else { 0 },
            ipv6: endpoint.ipv6.map(|ip| Box::new(ip.octets())),
        })
    }

    fn to_endpoint(&self, table: &Table) -> Option<Endpoint> {
        if self.flags & PRESENT == 0 {
            return None;
        }
        Some(Endpoint {
            service_name: table.name(self.service).map(str::to_owned),
            ipv4: (self.flags & HAS_IPV4 != 0).then(|| Ipv4Addr::from(self.ipv4)),
            ipv6: self.ipv6.as_deref().map(|octets| Ipv6Addr::from(*octets)),
            port: Some(self.port).filter(|p| *p != 0),
        })
    }
}

impl StoredSpan {
    /// The names of a span that are stored as symbols.
    pub(crate) fn names(span: &Span) -> impl Iterator<Item = &str> {
        let endpoints = [&span.local_endpoint, &span.remote_endpoint];
        span.name
            .as_deref()
            .into_iter()
            .chain(
                endpoints
                    .into_iter()
                    .filter_map(|e| e.as_ref()?.service_name.as_deref()),
            )
            .chain(span.tags.keys().map(String::as_str))
    }

    /// Compacts a normalised span; `None` when one of its [`Self::names`] is not interned in
    /// `symbols` yet (each name is looked up once: interning first would look each up twice).
    pub(crate) fn from_span(span: &Span, symbols: &Table) -> Option<Self> {
        let name = symbols.lookup(span.name.as_deref())?;
        let local = StoredEndpoint::from(span.local_endpoint.as_ref(), symbols)?;
        let remote = StoredEndpoint::from(span.remote_endpoint.as_ref(), symbols)?;
        let size = span.tags.values().map(String::len).sum::<usize>()
            + span
                .annotations
                .iter()
                .map(|a| a.value.len())
                .sum::<usize>();
        let mut text = String::with_capacity(size);
        // Collected at its final size: `collect::<Option<Box<[_]>>>` grows a vector step by step.
        let mut tags = Vec::with_capacity(span.tags.len());
        for (key, value) in &span.tags {
            text.push_str(value);
            tags.push((symbols.get(key)?, text.len() as u32));
        }
        let annotations = span
            .annotations
            .iter()
            .map(|a| {
                text.push_str(&a.value);
                (a.timestamp, text.len() as u32)
            })
            .collect();
        Some(StoredSpan {
            id: span.id.0,
            parent: span.parent_id.map_or(0, |p| p.0),
            timestamp: span.timestamp.unwrap_or(0),
            duration: span.duration.unwrap_or(0),
            name,
            kind: kind_code(span.kind),
            flags: if span.debug { DEBUG } else { 0 } | if span.shared { SHARED } else { 0 },
            local,
            remote,
            tags: tags.into_boxed_slice(),
            annotations,
            text: text.into_boxed_str(),
        })
    }

    /// Tag keys (as symbols) and values.
    pub(crate) fn tags(&self) -> impl Iterator<Item = (Symbol, &str)> {
        let mut start = 0usize;
        self.tags.iter().map(move |&(key, end)| {
            let value = &self.text[start..end as usize];
            start = end as usize;
            (key, value)
        })
    }

    /// Annotation timestamps and values.
    pub(crate) fn annotations(&self) -> impl Iterator<Item = (u64, &str)> {
        let mut start = self.tags.last().map_or(0, |t| t.1 as usize);
        self.annotations.iter().map(move |&(timestamp, end)| {
            let value = &self.text[start..end as usize];
            start = end as usize;
            (timestamp, value)
        })
    }

    /// Rebuilds the model span.
    pub(crate) fn to_span(&self, trace_id: TraceId, table: &Table) -> Span {
        let mut span = Span::new(trace_id, SpanId(self.id));
        span.parent_id = Some(self.parent).filter(|p| *p != 0).map(SpanId);
        span.kind = kind_from(self.kind);
        span.name = table.name(self.name).map(str::to_owned);
        span.timestamp = Some(self.timestamp).filter(|t| *t != 0);
        span.duration = Some(self.duration).filter(|d| *d != 0);
        span.local_endpoint = self.local.to_endpoint(table);
        span.remote_endpoint = self.remote.to_endpoint(table);
        span.annotations = self
            .annotations()
            .map(|(timestamp, value)| Annotation {
                timestamp,
                value: value.to_owned(),
            })
            .collect();
        span.tags = self
            .tags()
            .map(|(key, value)| {
                (
                    table.name(key).unwrap_or_default().to_owned(),
                    value.to_owned(),
                )
            })
            .collect();
        span.debug = self.flags & DEBUG != 0;
        span.shared = self.flags & SHARED != 0;
        span
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::symbols::Symbols;

    #[test]
    fn compaction_round_trips() {
        let symbols = Symbols::default();
        let mut span = Span::new(TraceId(77), SpanId(5));
        span.parent_id = Some(SpanId(4));
        span.kind = Some(Kind::Producer);
        span.name = Some("send".into());
        span.timestamp = Some(123);
        span.local_endpoint = Some(Endpoint {
            service_name: Some("orders".into()),
            ipv4: Some(Ipv4Addr::new(0, 0, 0, 0)),
            ipv6: Some(Ipv6Addr::LOCALHOST),
            port: Some(9),
        });
        span.remote_endpoint = Some(Endpoint::service("kafka"));
        span.tags.insert("a".into(), "1".into());
        span.tags.insert("b".into(), "".into());
        span.tags.insert("c".into(), "ünïcode".into());
        span.annotations.push(Annotation {
            timestamp: 124,
            value: "ws".into(),
        });
        span.shared = true;
        assert!(StoredSpan::from_span(&span, &symbols.read()).is_none());
        StoredSpan::names(&span).for_each(|name| {
            symbols.intern(name);
        });
        let stored = StoredSpan::from_span(&span, &symbols.read()).unwrap();
        assert_eq!(stored.to_span(TraceId(77), &symbols.read()), span);
    }

    #[test]
    fn stored_span_stays_small() {
        assert!(
            std::mem::size_of::<StoredSpan>() <= 144,
            "{}",
            std::mem::size_of::<StoredSpan>()
        );
    }
}
