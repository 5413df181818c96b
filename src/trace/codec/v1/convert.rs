//! The v1 → v2 conversion of one span, with the rules of the server's `V1SpanConverter`.

use super::{V1Annotation, V1Span};
use crate::trace::model::{Annotation, Endpoint, Kind, Span};

fn same_service(left: Option<&Endpoint>, right: Option<&Endpoint>) -> bool {
    left.and_then(|e| e.service_name.as_deref()) == right.and_then(|e| e.service_name.as_deref())
}

/// Converts one v1 span; `spans[0]` collects data that has no endpoint.
pub(super) struct Converter {
    source: V1Span,
    spans: Vec<Span>,
    core: [Option<V1Annotation>; 8],
}

const CS: usize = 0;
const SR: usize = 1;
const SS: usize = 2;
const CR: usize = 3;
const MS: usize = 4;
const MR: usize = 5;
const WS: usize = 6;
const WR: usize = 7;

impl Converter {
    pub(super) fn new(source: V1Span) -> Self {
        let first = Self::blank(&source, None);
        Converter {
            source,
            spans: vec![first],
            core: Default::default(),
        }
    }

    fn blank(source: &V1Span, local: Option<Endpoint>) -> Span {
        let mut span = Span::new(source.trace_id, source.id);
        span.parent_id = source.parent_id;
        span.name.clone_from(&source.name);
        span.debug = source.debug;
        span.local_endpoint = local;
        span
    }

    /// The span recording on `endpoint`: the first one without an endpoint or with the same service.
    fn for_endpoint(&mut self, endpoint: Option<&Endpoint>) -> usize {
        let Some(endpoint) = endpoint else { return 0 };
        for (index, span) in self.spans.iter_mut().enumerate() {
            match &span.local_endpoint {
                None => {
                    span.local_endpoint = Some(endpoint.clone());
                    return index;
                }
                Some(local) if same_service(Some(local), Some(endpoint)) => return index,
                Some(_) => {}
            }
        }
        self.new_span(endpoint)
    }

    fn new_span(&mut self, endpoint: &Endpoint) -> usize {
        self.spans
            .push(Self::blank(&self.source, Some(endpoint.clone())));
        self.spans.len() - 1
    }

    fn annotate(&mut self, index: usize, timestamp: u64, value: &str) {
        self.spans[index].annotations.push(Annotation {
            timestamp,
            value: value.to_owned(),
        });
    }

    pub(super) fn convert(mut self, sink: &mut Vec<Span>) {
        self.process_annotations();
        self.process_binary_annotations();
        sink.extend(self.spans);
    }

    fn process_annotations(&mut self) {
        let annotations = std::mem::take(&mut self.source.annotations);
        for a in &annotations {
            let index = self.for_endpoint(a.endpoint.as_ref());
            let slot = match a.value.as_str() {
                _ if a.endpoint.is_none() => None,
                "cs" => Some((CS, Some(Kind::Client))),
                "sr" => Some((SR, Some(Kind::Server))),
                "ss" => Some((SS, Some(Kind::Server))),
                "cr" => Some((CR, Some(Kind::Client))),
                "ms" => Some((MS, Some(Kind::Producer))),
                "mr" => Some((MR, Some(Kind::Consumer))),
                "ws" => Some((WS, None)),
                "wr" => Some((WR, None)),
                _ => None,
            };
            match slot {
                Some((slot, kind)) => {
                    if kind.is_some() {
                        self.spans[index].kind = kind;
                    }
                    self.core[slot] = Some(a.clone());
                }
                None => self.annotate(index, a.timestamp, &a.value),
            }
        }
        self.derive_rpc_timing();
        self.derive_messaging_timing();
    }

    fn end_reflects_duration(&self, end: usize) -> bool {
        let source = &self.source;
        matches!(&self.core[end], Some(a) if source.timestamp != 0 && source.duration != 0
            && source.timestamp + source.duration == a.timestamp)
    }

    fn synthesize_start(&mut self, start: usize, end: usize, value: &str) {
        if self.core[start].is_none() && self.end_reflects_duration(end) {
            let endpoint = self.core[end].as_ref().and_then(|a| a.endpoint.clone());
            self.core[start] = Some(V1Annotation {
                timestamp: self.source.timestamp,
                value: value.to_owned(),
                endpoint,
            });
        }
    }

    fn derive_rpc_timing(&mut self) {
        self.synthesize_start(CS, CR, "cs");
        self.synthesize_start(SR, SS, "sr");
        let [cs, sr, ss, cr] = [CS, SR, SS, CR].map(|slot| self.core[slot].clone());
        match (&cs, &sr) {
            (Some(cs), Some(sr)) => {
                self.timestamp_duration(cs, cr.as_ref());
                let client = self.for_endpoint(cs.endpoint.as_ref());
                let server = if same_service(cs.endpoint.as_ref(), sr.endpoint.as_ref()) {
                    self.spans[client].kind = Some(Kind::Client);
                    let server =
                        self.new_span(sr.endpoint.as_ref().unwrap_or(&Endpoint::default()));
                    self.spans[server].kind = Some(Kind::Server);
                    server
                } else {
                    self.for_endpoint(sr.endpoint.as_ref())
                };
                let span = &mut self.spans[server];
                span.shared = true;
                span.timestamp = Some(sr.timestamp);
                if let Some(ss) = &ss {
                    span.duration = Some(ss.timestamp.saturating_sub(sr.timestamp));
                }
                if cr.is_none() && self.source.duration == 0 {
                    self.spans[client].duration = None;
                }
            }
            (Some(cs), None) if cr.is_some() => self.timestamp_duration(cs, cr.as_ref()),
            (None, Some(sr)) if ss.is_some() => self.timestamp_duration(sr, ss.as_ref()),
            _ => self.handle_incomplete_rpc(),
        }
        // v1 had no shared flag: an absent timestamp on a server-only span implied it.
        if let (None, Some(sr)) = (&cs, &sr) {
            if self.source.timestamp == 0 || (ss.is_some() && self.source.duration == 0) {
                let index = self.for_endpoint(sr.endpoint.as_ref());
                self.spans[index].shared = true;
            }
        }
    }

    fn handle_incomplete_rpc(&mut self) {
        let [cs, sr, ss, cr] = [CS, SR, SS, CR].map(|slot| self.core[slot].clone());
        for index in 0..self.spans.len() {
            let (start, end) = match self.spans[index].kind {
                Some(Kind::Client) => (&cs, &cr),
                Some(Kind::Server) => (&sr, &ss),
                _ => continue,
            };
            if let Some(start) = start {
                self.spans[index].timestamp = Some(start.timestamp);
            }
            if let Some(end) = end {
                let (timestamp, value) = (end.timestamp, end.value.clone());
                self.annotate(index, timestamp, &value);
            }
        }
        if self.source.timestamp != 0 {
            self.spans[0].timestamp = Some(self.source.timestamp);
            self.spans[0].duration = Some(self.source.duration).filter(|d| *d != 0);
        }
    }

    fn timestamp_duration(&mut self, begin: &V1Annotation, end: Option<&V1Annotation>) {
        let index = self.for_endpoint(begin.endpoint.as_ref());
        let (timestamp, duration) = (self.source.timestamp, self.source.duration);
        let span = &mut self.spans[index];
        if timestamp != 0 && duration != 0 {
            span.timestamp = Some(timestamp);
            span.duration = Some(duration);
        } else {
            span.timestamp = Some(begin.timestamp);
            if let Some(end) = end {
                span.duration = Some(end.timestamp.saturating_sub(begin.timestamp));
            }
        }
    }

    fn derive_messaging_timing(&mut self) {
        let [ms, mr, ws, wr] = [MS, MR, WS, WR].map(|slot| self.core[slot].clone());
        match (&ms, &mr) {
            (Some(ms), Some(mr)) => {
                let producer = self.for_endpoint(ms.endpoint.as_ref());
                let consumer = if same_service(ms.endpoint.as_ref(), mr.endpoint.as_ref()) {
                    self.spans[producer].kind = Some(Kind::Producer);
                    let consumer =
                        self.new_span(mr.endpoint.as_ref().unwrap_or(&Endpoint::default()));
                    self.spans[consumer].kind = Some(Kind::Consumer);
                    consumer
                } else {
                    self.for_endpoint(mr.endpoint.as_ref())
                };
                let span = &mut self.spans[consumer];
                span.shared = true;
                match &wr {
                    Some(wr) => {
                        span.timestamp = Some(wr.timestamp);
                        span.duration = Some(mr.timestamp.saturating_sub(wr.timestamp));
                    }
                    None => span.timestamp = Some(mr.timestamp),
                }
                let span = &mut self.spans[producer];
                span.timestamp = Some(ms.timestamp);
                span.duration = ws
                    .as_ref()
                    .map(|ws| ws.timestamp.saturating_sub(ms.timestamp));
            }
            (Some(ms), None) => self.timestamp_duration(ms, ws.as_ref()),
            (None, Some(mr)) => match &wr {
                Some(wr) => self.timestamp_duration(wr, Some(mr)),
                None => self.timestamp_duration(mr, None),
            },
            (None, None) => {
                for a in [ws, wr].into_iter().flatten() {
                    let index = self.for_endpoint(a.endpoint.as_ref());
                    self.annotate(index, a.timestamp, &a.value);
                }
            }
        }
    }

    fn process_binary_annotations(&mut self) {
        let (mut ca, mut sa, mut ma) = (None, None, None);
        let binary = std::mem::take(&mut self.source.binary_annotations);
        for b in binary {
            let Some(value) = b.value else {
                match b.key.as_str() {
                    "ca" => ca = b.endpoint,
                    "sa" => sa = b.endpoint,
                    _ => ma = b.endpoint,
                }
                continue;
            };
            let index = self.for_endpoint(b.endpoint.as_ref());
            if b.key == "lc" && value.is_empty() {
                continue; // marker "lc" tags are not kept
            }
            self.spans[index].tags.insert(b.key, value);
        }
        let [cs, sr, ss, cr, ms, mr] = [CS, SR, SS, CR, MS, MR].map(|slot| self.core[slot].clone());
        let no_core = cs.is_none() && cr.is_none() && ss.is_none() && sr.is_none();
        if no_core && (ca.is_some() || sa.is_some()) {
            match (ca, sa) {
                (Some(ca), Some(sa)) => {
                    let index = self.for_endpoint(Some(&ca));
                    self.spans[index].remote_endpoint = Some(sa);
                }
                // "sa" alone is a remote address, not a hint that this is a client span.
                (None, Some(sa)) => self.spans[0].remote_endpoint = Some(sa),
                (Some(ca), None) => {
                    self.spans[0].kind = Some(Kind::Server);
                    self.spans[0].remote_endpoint = Some(ca);
                }
                (None, None) => {}
            }
            return;
        }
        let server = sr.or(ss);
        if let (Some(mut ca), Some(server)) = (ca, server) {
            if Some(&ca) != server.endpoint.as_ref() {
                // Finagle's "ca" on server spans repeats the server's name; drop it to avoid loopback links.
                if same_service(Some(&ca), server.endpoint.as_ref()) {
                    ca.service_name = None;
                }
                let index = self.for_endpoint(server.endpoint.as_ref());
                self.spans[index].remote_endpoint = Some(ca);
            }
        }
        if let Some(sa) = sa {
            if let Some(client) = cs.or(cr) {
                let index = self.for_endpoint(client.endpoint.as_ref());
                self.spans[index].remote_endpoint = Some(sa);
            }
        }
        if let Some(ma) = ma {
            for side in [ms, mr].into_iter().flatten() {
                let index = self.for_endpoint(side.endpoint.as_ref());
                self.spans[index].remote_endpoint = Some(ma.clone());
            }
        }
    }
}
