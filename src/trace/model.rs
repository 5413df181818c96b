//! The Zipkin v2 span model: what clients report, what the API returns, and what the proxy builds
//! directly to record its own spans.
//!
//! Owns identifier parsing and normalisation (as the Zipkin server's `Span.Builder` does); knows
//! nothing about encodings or storage.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A trace identifier: 64 or 128 bits. A 128-bit id whose high 64 bits are zero is the same trace
/// as the 64-bit id, as the Zipkin server normalises `0000000000000000xxxxxxxxxxxxxxxx` to 16 hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(pub u128);

/// A 64-bit span identifier; never zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(pub u64);

/// Why an identifier was refused; the message names the field, as the server's do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The id was the empty string.
    #[error("{0} is empty")]
    Empty(&'static str),
    /// The id has more hex digits than the field holds.
    #[error("{field}.length > {max}")]
    TooLong {
        /// `traceId`, `id` or `parentId`.
        field: &'static str,
        /// 32 for trace ids, 16 for span ids.
        max: usize,
    },
    /// The id has a character other than `0-9a-f`.
    #[error("{0} should be lower-hex encoded with no prefix")]
    NotLowerHex(&'static str),
    /// Every digit is zero.
    #[error("{0} is all zeros")]
    AllZeros(&'static str),
}

fn parse_hex(field: &'static str, text: &str, max: usize) -> Result<u128, IdError> {
    if text.is_empty() {
        return Err(IdError::Empty(field));
    }
    if text.len() > max {
        return Err(IdError::TooLong { field, max });
    }
    let mut value: u128 = 0;
    for byte in text.bytes() {
        let digit = match byte {
            b'0'..=b'9' => byte - b'0',
            b'a'..=b'f' => byte - b'a' + 10,
            _ => return Err(IdError::NotLowerHex(field)),
        };
        value = (value << 4) | u128::from(digit);
    }
    if value == 0 {
        return Err(IdError::AllZeros(field));
    }
    Ok(value)
}

impl TraceId {
    /// Parses 1–32 lower-hex digits (left-padded, as the server accepts).
    pub fn parse(text: &str) -> Result<Self, IdError> {
        parse_hex("traceId", text, 32).map(TraceId)
    }

    /// The high 64 bits (zero for a 64-bit trace id).
    pub fn high(self) -> u64 {
        (self.0 >> 64) as u64
    }

    /// The low 64 bits.
    pub fn low(self) -> u64 {
        self.0 as u64
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.high() == 0 {
            write!(f, "{:016x}", self.low())
        } else {
            write!(f, "{:032x}", self.0)
        }
    }
}

impl SpanId {
    /// Parses 1–16 lower-hex digits (left-padded). `field` names the JSON field in errors.
    pub fn parse_field(field: &'static str, text: &str) -> Result<Self, IdError> {
        parse_hex(field, text, 16).map(|value| SpanId(value as u64))
    }

    /// Parses a span `id`.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        Self::parse_field("id", text)
    }

    /// Parses a `parentId`: an all-zero parent means "no parent", as the server reads it.
    pub fn parse_parent(text: &str) -> Result<Option<Self>, IdError> {
        match Self::parse_field("parentId", text) {
            Ok(id) => Ok(Some(id)),
            Err(IdError::AllZeros(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The role of a span in an RPC or messaging exchange; absent for local spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// The caller side of an RPC.
    Client,
    /// The callee side of an RPC.
    Server,
    /// Sends a message to a broker.
    Producer,
    /// Receives a message from a broker.
    Consumer,
}

impl Kind {
    /// The upper-case name used in JSON (`CLIENT`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Client => "CLIENT",
            Kind::Server => "SERVER",
            Kind::Producer => "PRODUCER",
            Kind::Consumer => "CONSUMER",
        }
    }

    /// Reads the JSON name; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "CLIENT" => Some(Kind::Client),
            "SERVER" => Some(Kind::Server),
            "PRODUCER" => Some(Kind::Producer),
            "CONSUMER" => Some(Kind::Consumer),
            _ => None,
        }
    }
}

/// The network context of a node in the service graph.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// Lower-case service name; `None` when unknown.
    pub service_name: Option<String>,
    /// IPv4 address.
    pub ipv4: Option<Ipv4Addr>,
    /// IPv6 address.
    pub ipv6: Option<Ipv6Addr>,
    /// Port; never zero.
    pub port: Option<u16>,
}

impl Endpoint {
    /// An endpoint with only a service name.
    pub fn service(name: &str) -> Self {
        Endpoint {
            service_name: Some(name.to_owned()),
            ..Endpoint::default()
        }
    }

    /// True when no field is set (the server then drops the endpoint).
    pub fn is_empty(&self) -> bool {
        self.service_name.is_none()
            && self.ipv4.is_none()
            && self.ipv6.is_none()
            && self.port.is_none()
    }

    fn normalize(&mut self) {
        self.service_name = normalize_name(self.service_name.take());
        if self.port == Some(0) {
            self.port = None;
        }
        // Prefer the IPv4 field for IPv4-mapped IPv6 addresses, as the server does.
        if let Some(mapped) = self.ipv6.and_then(|ip| ip.to_ipv4_mapped()) {
            self.ipv6 = None;
            self.ipv4.get_or_insert(mapped);
        }
    }

    /// Fills fields this endpoint lacks from `other`.
    pub fn merge(&mut self, other: &Endpoint) {
        if self.service_name.is_none() {
            self.service_name.clone_from(&other.service_name);
        }
        self.ipv4 = self.ipv4.or(other.ipv4);
        self.ipv6 = self.ipv6.or(other.ipv6);
        self.port = self.port.or(other.port);
    }
}

/// An event explaining latency, with its time in epoch microseconds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Annotation {
    /// Epoch microseconds.
    pub timestamp: u64,
    /// Usually a short code, like `ws` or `error`.
    pub value: String,
}

/// A Zipkin v2 span. Build one directly (the proxy does) and hand it to [`super::Store::ingest`],
/// which normalises it as the Zipkin server would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// The trace this span belongs to.
    pub trace_id: TraceId,
    /// The parent span, absent on a root span.
    pub parent_id: Option<SpanId>,
    /// This span's id (shared by client and server halves in B3 propagation).
    pub id: SpanId,
    /// RPC or messaging role.
    pub kind: Option<Kind>,
    /// Lower-case operation name.
    pub name: Option<String>,
    /// Start, epoch microseconds.
    pub timestamp: Option<u64>,
    /// Duration in microseconds.
    pub duration: Option<u64>,
    /// The host that recorded this span.
    pub local_endpoint: Option<Endpoint>,
    /// The other side of an RPC or messaging exchange.
    pub remote_endpoint: Option<Endpoint>,
    /// Events, sorted by timestamp then value.
    pub annotations: Vec<Annotation>,
    /// Tags, sorted by key.
    pub tags: BTreeMap<String, String>,
    /// Sampling override.
    pub debug: bool,
    /// True when this span continues one started by another tracer (the server half of a shared id).
    pub shared: bool,
}

impl Span {
    /// A span with only its ids set.
    pub fn new(trace_id: TraceId, id: SpanId) -> Self {
        Span {
            trace_id,
            parent_id: None,
            id,
            kind: None,
            name: None,
            timestamp: None,
            duration: None,
            local_endpoint: None,
            remote_endpoint: None,
            annotations: Vec::new(),
            tags: BTreeMap::new(),
            debug: false,
            shared: false,
        }
    }

    /// The local endpoint's service name.
    pub fn local_service_name(&self) -> Option<&str> {
        self.local_endpoint.as_ref()?.service_name.as_deref()
    }

    /// The remote endpoint's service name.
    pub fn remote_service_name(&self) -> Option<&str> {
        self.remote_endpoint.as_ref()?.service_name.as_deref()
    }

    /// Applies the server's normalisation: lower-case names, empty values absent, zero
    /// timestamps absent, a span that is its own parent made a root, annotations sorted and unique.
    pub fn normalize(&mut self) {
        self.name = normalize_name(self.name.take());
        if self.timestamp == Some(0) {
            self.timestamp = None;
        }
        if self.duration == Some(0) {
            self.duration = None;
        }
        if self.parent_id == Some(self.id) {
            self.parent_id = None;
        }
        for endpoint in [&mut self.local_endpoint, &mut self.remote_endpoint] {
            if let Some(inner) = endpoint {
                inner.normalize();
                if inner.is_empty() {
                    *endpoint = None;
                }
            }
        }
        self.annotations.sort();
        self.annotations.dedup();
    }

    /// Fills what this span lacks from another fragment of the same span (as `Span.Builder.merge`).
    pub fn merge(&mut self, other: &Span) {
        self.parent_id = self.parent_id.or(other.parent_id);
        self.kind = self.kind.or(other.kind);
        if self.name.is_none() {
            self.name.clone_from(&other.name);
        }
        self.timestamp = self.timestamp.or(other.timestamp);
        self.duration = self.duration.or(other.duration);
        for (mine, theirs) in [
            (&mut self.local_endpoint, &other.local_endpoint),
            (&mut self.remote_endpoint, &other.remote_endpoint),
        ] {
            match (mine.as_mut(), theirs) {
                (None, Some(endpoint)) => *mine = Some(endpoint.clone()),
                (Some(endpoint), Some(other)) => endpoint.merge(other),
                _ => {}
            }
        }
        self.annotations.extend(other.annotations.iter().cloned());
        self.annotations.sort();
        self.annotations.dedup();
        for (key, value) in &other.tags {
            self.tags.insert(key.clone(), value.clone());
        }
        self.debug |= other.debug;
        self.shared |= other.shared;
    }
}

/// Lower-cases a name and treats the empty string as absent.
pub(crate) fn normalize_name(name: Option<String>) -> Option<String> {
    let name = name?;
    if name.is_empty() {
        return None;
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) || !name.is_ascii() {
        Some(name.to_lowercase())
    } else {
        Some(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_are_left_padded_to_16_or_32() {
        assert_eq!(TraceId::parse("a").unwrap().to_string(), "000000000000000a");
        let long = TraceId::parse("1a2b3c4d5e6f7a8b9").unwrap();
        assert_eq!(
            long.to_string(),
            "00000000000000000000000000000001a2b3c4d5e6f7a8b9"[16..]
        );
        assert_eq!(long.to_string().len(), 32);
    }

    #[test]
    fn a_128_bit_id_with_zero_high_bits_is_the_64_bit_id() {
        let wide = TraceId::parse("0000000000000000463ac35c9f6413ad").unwrap();
        assert_eq!(wide, TraceId::parse("463ac35c9f6413ad").unwrap());
        assert_eq!(wide.to_string(), "463ac35c9f6413ad");
    }

    #[test]
    fn ids_reject_upper_case_too_long_and_zero() {
        assert_eq!(TraceId::parse("ABC"), Err(IdError::NotLowerHex("traceId")));
        assert!(matches!(
            TraceId::parse(&"1".repeat(33)),
            Err(IdError::TooLong { .. })
        ));
        assert_eq!(
            SpanId::parse(&"1".repeat(17)),
            Err(IdError::TooLong {
                field: "id",
                max: 16
            })
        );
        assert_eq!(SpanId::parse("0000"), Err(IdError::AllZeros("id")));
        assert_eq!(SpanId::parse_parent("0000000000000000"), Ok(None));
        assert_eq!(SpanId::parse("0x12"), Err(IdError::NotLowerHex("id")));
    }

    #[test]
    fn normalize_lower_cases_names_and_drops_empties() {
        let mut span = Span::new(TraceId(1), SpanId(2));
        span.name = Some("GET /Foo".into());
        span.parent_id = Some(SpanId(2));
        span.timestamp = Some(0);
        span.local_endpoint = Some(Endpoint::service("FrontEnd"));
        span.remote_endpoint = Some(Endpoint {
            service_name: Some(String::new()),
            port: Some(0),
            ..Endpoint::default()
        });
        span.normalize();
        assert_eq!(span.name.as_deref(), Some("get /foo"));
        assert_eq!(span.local_service_name(), Some("frontend"));
        assert_eq!(span.parent_id, None);
        assert_eq!(span.timestamp, None);
        assert_eq!(span.remote_endpoint, None);
    }
}
