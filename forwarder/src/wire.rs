//! What a forwarder sends the control plane before a connection's bytes: a PROXY protocol
//! version 2 header (the binary form HAProxy defined and Envoy, nginx and HAProxy read), so the
//! control plane learns who called (`source`), which service and port were called
//! (`destination` and the service TLV) and that the sender is one of this sandbox's forwarders
//! (the token TLV). The same header, with the dial TLV, asks a forwarder to open a connection
//! to `destination` on the control plane's behalf (engines whose host cannot reach container
//! addresses).
//!
//! Layout: the 12-byte signature, version and command (`0x21`: v2, PROXY), family and
//! transport (`0x11` TCP over IPv4, `0x21` TCP over IPv6), the length of the rest (big endian),
//! the addresses (source, destination, source port, destination port), then TLVs: a type byte,
//! a big-endian length and the value. sandbox's TLVs use the range the specification leaves to
//! applications (`0xE0`–`0xEF`).
//!
//! A dial request is answered with one byte before the destination's own bytes:
//! [`DIAL_CONNECTED`] once the forwarder holds the connection (then it splices), or
//! [`DIAL_REFUSED`] / [`DIAL_FAILED`] and an orderly close, so the control plane tells a
//! refused or unreachable replica (a connect failure, retried elsewhere) from a replica that
//! closed a connection it had accepted. A request without the right token gets no answer: the
//! connection is reset.
//!
//! # L4 connections decided by the control plane, spliced by the forwarder
//! A forwarder that sniffed its caller's first bytes ([`crate::sniff`]) says what it found in
//! the sniffed TLV. HTTP: the caller's bytes follow the header, as without the TLV. Anything
//! else (L4): nothing follows the header; the connection stays a control connection for this
//! one caller's connection, in [`Message`]s (a version byte, a kind byte, a big-endian length
//! and at most [`MAX_MESSAGE`] bytes in all):
//! 1. the control plane answers with a verdict: [`Message::Refuse`] (the forwarder resets the
//!    caller's connection) or [`Message::Dial`] (the replicas to connect, in order, with the
//!    back-off before each retry and the connect timeout);
//! 2. the forwarder reports [`Message::Dialed`] once a candidate took the connection or all
//!    failed (which failed and why), splices the caller to the replica itself, and when both
//!    directions have ended reports [`Message::Ended`] (bytes each way, how it ended).
//!
//! The control plane holds the connection's circuit-breaker slot while the control connection
//! is open and records the connection's spans from the reports; a forwarder whose control
//! connection ends early splices on all the same.

use std::fmt;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::sniff::{valid_server_name, Sniffed};

/// The answer to a dial request: the destination is connected; its bytes follow.
pub const DIAL_CONNECTED: u8 = 0x00;
/// The answer to a dial request: the destination refused the connection (nothing listens).
pub const DIAL_REFUSED: u8 = 0x01;
/// The answer to a dial request: no connection within the forwarder's connect timeout, or
/// another failure (no route to the address).
pub const DIAL_FAILED: u8 = 0x02;

/// Every PROXY v2 header starts with these bytes.
pub const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The fixed part: signature, version/command, family, length.
pub const FIXED_LEN: usize = 16;
/// The most a header of ours may take (a sane bound for readers; the format allows 64 KiB).
pub const MAX_LEN: usize = 1024;

const VERSION_PROXY: u8 = 0x21;
const VERSION_LOCAL: u8 = 0x20;
const TCP_V4: u8 = 0x11;
const TCP_V6: u8 = 0x21;
const UNSPECIFIED: u8 = 0x00;

/// The sandbox's secret, proving the sender is one of its forwarders (or its control plane).
pub const TLV_TOKEN: u8 = 0xE0;
/// The service the caller addressed (the forwarder's service), UTF-8.
pub const TLV_SERVICE: u8 = 0xE1;
/// Present (empty): the sender asks the receiver to dial `destination` and splice.
pub const TLV_DIAL: u8 = 0xE2;
/// What the forwarder's sniff found: one byte ([`SNIFFED_HTTP`], [`SNIFFED_OTHER`],
/// [`SNIFFED_TLS`]), for TLS followed by the server name (may be empty). Absent: the forwarder
/// did not sniff, the receiver does (and splices L4 connections itself).
pub const TLV_SNIFFED: u8 = 0xE8;
/// [`TLV_SNIFFED`]: an HTTP request; its bytes follow the header.
pub const SNIFFED_HTTP: u8 = 1;
/// [`TLV_SNIFFED`]: L4, not TLS; control [`Message`]s follow the header.
pub const SNIFFED_OTHER: u8 = 2;
/// [`TLV_SNIFFED`]: L4, a TLS ClientHello; control [`Message`]s follow the header.
pub const SNIFFED_TLS: u8 = 3;

/// One header.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    /// The caller, as the forwarder saw it.
    pub source: SocketAddr,
    /// The address the caller connected to (the forwarder's own address and the service's
    /// port), or with [`Header::dial`] the address to dial.
    pub destination: SocketAddr,
    pub token: Vec<u8>,
    pub service: String,
    pub dial: bool,
    /// What the forwarder's sniff found (see [`TLV_SNIFFED`]); `None`: it did not sniff.
    pub sniffed: Option<Sniffed>,
}

impl fmt::Debug for Header {
    // The token is a secret: never in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Header")
            .field("source", &self.source)
            .field("destination", &self.destination)
            .field("token", &"<redacted>")
            .field("service", &self.service)
            .field("dial", &self.dial)
            .field("sniffed", &self.sniffed)
            .finish()
    }
}

/// Why bytes are not a header of ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// Not the PROXY v2 signature: the peer speaks something else.
    NotProxyProtocol,
    /// A version or command this reader does not take (`LOCAL`, v1 text).
    Unsupported(&'static str),
    /// The declared length exceeds [`MAX_LEN`].
    TooLong(usize),
    /// The header is cut or inconsistent.
    Malformed(&'static str),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::NotProxyProtocol => f.write_str("not a PROXY protocol v2 header"),
            WireError::Unsupported(what) => write!(f, "unsupported PROXY header: {what}"),
            WireError::TooLong(len) => {
                write!(f, "PROXY header of {len} bytes (at most {MAX_LEN})")
            }
            WireError::Malformed(what) => write!(f, "malformed PROXY header: {what}"),
        }
    }
}

impl std::error::Error for WireError {}

impl Header {
    /// The header's bytes. Source and destination must be of one family; a mixed pair is sent
    /// with both mapped to IPv6.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.token.len() + self.service.len());
        out.extend_from_slice(&SIGNATURE);
        out.push(VERSION_PROXY);
        let addresses = match (self.source.ip(), self.destination.ip()) {
            (IpAddr::V4(source), IpAddr::V4(destination)) => {
                out.push(TCP_V4);
                let mut bytes = Vec::with_capacity(12);
                bytes.extend_from_slice(&source.octets());
                bytes.extend_from_slice(&destination.octets());
                bytes
            }
            (source, destination) => {
                out.push(TCP_V6);
                let mut bytes = Vec::with_capacity(36);
                bytes.extend_from_slice(&to_v6(source).octets());
                bytes.extend_from_slice(&to_v6(destination).octets());
                bytes
            }
        };
        let mut rest = addresses;
        rest.extend_from_slice(&self.source.port().to_be_bytes());
        rest.extend_from_slice(&self.destination.port().to_be_bytes());
        push_tlv(&mut rest, TLV_TOKEN, &self.token);
        push_tlv(&mut rest, TLV_SERVICE, self.service.as_bytes());
        if self.dial {
            push_tlv(&mut rest, TLV_DIAL, &[]);
        }
        match &self.sniffed {
            None => {}
            Some(Sniffed::Http) => push_tlv(&mut rest, TLV_SNIFFED, &[SNIFFED_HTTP]),
            Some(Sniffed::Other) => push_tlv(&mut rest, TLV_SNIFFED, &[SNIFFED_OTHER]),
            Some(Sniffed::Tls { sni }) => {
                let mut value = vec![SNIFFED_TLS];
                if let Some(sni) = sni
                    .as_deref()
                    .filter(|sni| valid_server_name(sni.as_bytes()))
                {
                    value.extend_from_slice(sni.as_bytes());
                }
                push_tlv(&mut rest, TLV_SNIFFED, &value);
            }
        }
        out.extend_from_slice(&(rest.len() as u16).to_be_bytes());
        out.extend_from_slice(&rest);
        out
    }

    /// Reads a header from the start of `bytes`: `Ok(None)` while more bytes are needed, else
    /// the header and how many bytes it took (what follows is the connection's own data).
    /// Unknown TLVs are skipped, as the specification asks.
    pub fn decode(bytes: &[u8]) -> Result<Option<(Header, usize)>, WireError> {
        let known = bytes.len().min(SIGNATURE.len());
        if bytes[..known] != SIGNATURE[..known] {
            return Err(WireError::NotProxyProtocol);
        }
        if bytes.len() < FIXED_LEN {
            return Ok(None);
        }
        match bytes[12] {
            VERSION_PROXY => {}
            VERSION_LOCAL => return Err(WireError::Unsupported("LOCAL command")),
            _ => return Err(WireError::Unsupported("version or command")),
        }
        let family = bytes[13];
        let len = usize::from(u16::from_be_bytes([bytes[14], bytes[15]]));
        if len > MAX_LEN - FIXED_LEN {
            return Err(WireError::TooLong(FIXED_LEN + len));
        }
        if bytes.len() < FIXED_LEN + len {
            return Ok(None);
        }
        let rest = &bytes[FIXED_LEN..FIXED_LEN + len];
        let (source, destination, tlvs) = match family {
            TCP_V4 => {
                let (addresses, tlvs) = split(rest, 12)?;
                let ip = |at: usize| {
                    IpAddr::V4(Ipv4Addr::new(
                        addresses[at],
                        addresses[at + 1],
                        addresses[at + 2],
                        addresses[at + 3],
                    ))
                };
                let port = |at: usize| u16::from_be_bytes([addresses[at], addresses[at + 1]]);
                (
                    SocketAddr::new(ip(0), port(8)),
                    SocketAddr::new(ip(4), port(10)),
                    tlvs,
                )
            }
            TCP_V6 => {
                let (addresses, tlvs) = split(rest, 36)?;
                let ip = |at: usize| {
                    let mut octets = [0u8; 16];
                    octets.copy_from_slice(&addresses[at..at + 16]);
                    unmap(Ipv6Addr::from(octets))
                };
                let port = |at: usize| u16::from_be_bytes([addresses[at], addresses[at + 1]]);
                (
                    SocketAddr::new(ip(0), port(32)),
                    SocketAddr::new(ip(16), port(34)),
                    tlvs,
                )
            }
            UNSPECIFIED => return Err(WireError::Unsupported("unspecified address family")),
            _ => return Err(WireError::Unsupported("address family other than TCP")),
        };
        let mut header = Header {
            source,
            destination,
            token: Vec::new(),
            service: String::new(),
            dial: false,
            sniffed: None,
        };
        let mut tlvs = tlvs;
        while !tlvs.is_empty() {
            if tlvs.len() < 3 {
                return Err(WireError::Malformed("cut TLV"));
            }
            let kind = tlvs[0];
            let value_len = usize::from(u16::from_be_bytes([tlvs[1], tlvs[2]]));
            let value = tlvs
                .get(3..3 + value_len)
                .ok_or(WireError::Malformed("TLV longer than the header"))?;
            match kind {
                TLV_TOKEN => header.token = value.to_vec(),
                TLV_SERVICE => {
                    header.service = std::str::from_utf8(value)
                        .map_err(|_| WireError::Malformed("service name is not UTF-8"))?
                        .to_string();
                }
                TLV_DIAL => header.dial = true,
                TLV_SNIFFED => header.sniffed = Some(sniffed(value)?),
                _ => {}
            }
            tlvs = &tlvs[3 + value_len..];
        }
        Ok(Some((header, FIXED_LEN + len)))
    }
}

/// The value of a [`TLV_SNIFFED`].
fn sniffed(value: &[u8]) -> Result<Sniffed, WireError> {
    match value {
        [SNIFFED_HTTP] => Ok(Sniffed::Http),
        [SNIFFED_OTHER] => Ok(Sniffed::Other),
        [SNIFFED_TLS] => Ok(Sniffed::Tls { sni: None }),
        [SNIFFED_TLS, name @ ..] if valid_server_name(name) => Ok(Sniffed::Tls {
            sni: Some(String::from_utf8_lossy(name).into_owned()),
        }),
        [SNIFFED_TLS, ..] => Err(WireError::Malformed("server name")),
        _ => Err(WireError::Malformed("sniffed TLV")),
    }
}

fn push_tlv(out: &mut Vec<u8>, kind: u8, value: &[u8]) {
    out.push(kind);
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
}

/// The address block (both addresses and both ports: 12 bytes for IPv4, 36 for IPv6) and the
/// TLVs after it.
fn split(rest: &[u8], addresses: usize) -> Result<(&[u8], &[u8]), WireError> {
    if rest.len() < addresses {
        return Err(WireError::Malformed("addresses cut short"));
    }
    Ok(rest.split_at(addresses))
}

fn to_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(ip) => ip.to_ipv6_mapped(),
        IpAddr::V6(ip) => ip,
    }
}

fn unmap(ip: Ipv6Addr) -> IpAddr {
    match ip.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(ip),
    }
}

/// Compares two tokens in time independent of where they differ.
pub fn token_matches(expected: &[u8], presented: &[u8]) -> bool {
    if expected.len() != presented.len() {
        return false;
    }
    expected
        .iter()
        .zip(presented)
        .fold(0u8, |difference, (a, b)| difference | (a ^ b))
        == 0
}

/// The version byte every control [`Message`] starts with.
pub const CONTROL_VERSION: u8 = 1;
/// A control message's head: version, kind, big-endian length of the body.
pub const MESSAGE_HEAD: usize = 4;
/// The most a control message may take, head included.
pub const MAX_MESSAGE: usize = 4096;
/// The most candidates a [`Message::Dial`] carries.
pub const MAX_CANDIDATES: usize = 16;
/// The longest error text a [`Failure`] carries, in bytes (longer ones are cut).
pub const MAX_ERROR: usize = 200;

const KIND_REFUSE: u8 = 1;
const KIND_DIAL: u8 = 2;
const KIND_DIALED: u8 = 3;
const KIND_ENDED: u8 = 4;
/// [`Dialed::connected`] when no candidate took the connection.
const NONE_CONNECTED: u8 = 0xFF;

/// One message on an L4 control connection (see the module's documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Control plane → forwarder: no replica for this connection (an `abort` fault, none up, the
    /// circuit breaker full); the forwarder resets the caller's connection.
    Refuse,
    /// Control plane → forwarder: connect these, in order.
    Dial(Dial),
    /// Forwarder → control plane: the connects' outcome.
    Dialed(Dialed),
    /// Forwarder → control plane: the spliced connection ended.
    Ended(Ended),
}

/// Where a forwarder connects an L4 caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dial {
    /// The replicas, tried in order until one accepts (at most [`MAX_CANDIDATES`]; the first
    /// is the connection's try, each further one a retry).
    pub candidates: Vec<SocketAddr>,
    /// The pause before each retry: `backoffs[i]` before `candidates[i + 1]` (missing ones are
    /// no pause; microseconds on the wire).
    pub backoffs: Vec<Duration>,
    /// How long each connect may take (milliseconds on the wire).
    pub connect_timeout: Duration,
}

/// Which candidate took the connection, and why the ones before it did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialed {
    /// The index of the candidate connected; `None`: all failed (the caller was reset).
    pub connected: Option<u8>,
    /// The candidates that failed, in the order tried.
    pub failures: Vec<Failure>,
}

/// A candidate that could not be connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub candidate: u8,
    /// What the connect returned (at most [`MAX_ERROR`] bytes).
    pub error: String,
}

/// How a spliced connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub close: Ending,
    /// Bytes from the caller to the replica.
    pub sent: u64,
    /// Bytes from the replica to the caller.
    pub received: u64,
}

/// Which side ended a spliced connection first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The caller closed its side first (the replica's answer passed on after).
    Client,
    /// The replica closed its side first.
    Upstream,
    /// A side reset the connection or failed mid-stream.
    Reset,
}

impl Ending {
    fn code(self) -> u8 {
        match self {
            Ending::Client => 1,
            Ending::Upstream => 2,
            Ending::Reset => 3,
        }
    }

    fn from_code(code: u8) -> Option<Ending> {
        match code {
            1 => Some(Ending::Client),
            2 => Some(Ending::Upstream),
            3 => Some(Ending::Reset),
            _ => None,
        }
    }
}

impl Message {
    /// The message's bytes. Bounded whatever the fields hold: candidates beyond
    /// [`MAX_CANDIDATES`] and failures beyond them are left out, error texts are cut to
    /// [`MAX_ERROR`] bytes, durations saturate.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        let kind = match self {
            Message::Refuse => KIND_REFUSE,
            Message::Dial(dial) => {
                body.extend_from_slice(&millis(dial.connect_timeout).to_be_bytes());
                let candidates = &dial.candidates[..dial.candidates.len().min(MAX_CANDIDATES)];
                body.push(candidates.len() as u8);
                for candidate in candidates {
                    push_address(&mut body, *candidate);
                }
                for retry in 1..candidates.len() {
                    let pause = dial.backoffs.get(retry - 1).copied().unwrap_or_default();
                    body.extend_from_slice(&micros(pause).to_be_bytes());
                }
                KIND_DIAL
            }
            Message::Dialed(dialed) => {
                body.push(match dialed.connected {
                    Some(index) if usize::from(index) < MAX_CANDIDATES => index,
                    _ => NONE_CONNECTED,
                });
                let failures = &dialed.failures[..dialed.failures.len().min(MAX_CANDIDATES)];
                body.push(failures.len() as u8);
                for failure in failures {
                    body.push(failure.candidate);
                    let error = cut(&failure.error, MAX_ERROR);
                    body.push(error.len() as u8);
                    body.extend_from_slice(error.as_bytes());
                }
                KIND_DIALED
            }
            Message::Ended(ended) => {
                body.push(ended.close.code());
                body.extend_from_slice(&ended.sent.to_be_bytes());
                body.extend_from_slice(&ended.received.to_be_bytes());
                KIND_ENDED
            }
        };
        let mut out = Vec::with_capacity(MESSAGE_HEAD + body.len());
        out.push(CONTROL_VERSION);
        out.push(kind);
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// The length of the message `head` (its first [`MESSAGE_HEAD`] bytes) starts, head
    /// included, once the head is checked.
    pub fn length(head: [u8; MESSAGE_HEAD]) -> Result<usize, WireError> {
        if head[0] != CONTROL_VERSION {
            return Err(WireError::Unsupported("control message version"));
        }
        let len = MESSAGE_HEAD + usize::from(u16::from_be_bytes([head[2], head[3]]));
        if len > MAX_MESSAGE {
            return Err(WireError::TooLong(len));
        }
        Ok(len)
    }

    /// Reads a message from the start of `bytes`: `Ok(None)` while more bytes are needed, else
    /// the message and how many bytes it took.
    pub fn decode(bytes: &[u8]) -> Result<Option<(Message, usize)>, WireError> {
        let Some(head) = bytes.get(..MESSAGE_HEAD) else {
            if bytes
                .first()
                .is_some_and(|version| *version != CONTROL_VERSION)
            {
                return Err(WireError::Unsupported("control message version"));
            }
            return Ok(None);
        };
        let len = Message::length([head[0], head[1], head[2], head[3]])?;
        let Some(body) = bytes.get(MESSAGE_HEAD..len) else {
            return Ok(None);
        };
        let mut body = Reader(body);
        let message = match head[1] {
            KIND_REFUSE => Message::Refuse,
            KIND_DIAL => {
                let connect_timeout = Duration::from_millis(body.u32()?.into());
                let count = usize::from(body.u8()?);
                if count == 0 || count > MAX_CANDIDATES {
                    return Err(WireError::Malformed("candidate count"));
                }
                let candidates = (0..count)
                    .map(|_| body.address())
                    .collect::<Result<Vec<_>, _>>()?;
                let backoffs = (1..count)
                    .map(|_| {
                        body.u32()
                            .map(|micros| Duration::from_micros(micros.into()))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Message::Dial(Dial {
                    candidates,
                    backoffs,
                    connect_timeout,
                })
            }
            KIND_DIALED => {
                let connected = match body.u8()? {
                    NONE_CONNECTED => None,
                    index if usize::from(index) < MAX_CANDIDATES => Some(index),
                    _ => return Err(WireError::Malformed("candidate index")),
                };
                let count = usize::from(body.u8()?);
                if count > MAX_CANDIDATES {
                    return Err(WireError::Malformed("failure count"));
                }
                let failures = (0..count)
                    .map(|_| {
                        let candidate = body.u8()?;
                        if usize::from(candidate) >= MAX_CANDIDATES {
                            return Err(WireError::Malformed("candidate index"));
                        }
                        let len = usize::from(body.u8()?);
                        let error = std::str::from_utf8(body.take(len)?)
                            .map_err(|_| WireError::Malformed("error text is not UTF-8"))?;
                        Ok(Failure {
                            candidate,
                            error: error.to_string(),
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Message::Dialed(Dialed {
                    connected,
                    failures,
                })
            }
            KIND_ENDED => {
                let close =
                    Ending::from_code(body.u8()?).ok_or(WireError::Malformed("unknown ending"))?;
                Message::Ended(Ended {
                    close,
                    sent: body.u64()?,
                    received: body.u64()?,
                })
            }
            _ => return Err(WireError::Unsupported("control message kind")),
        };
        if !body.0.is_empty() {
            return Err(WireError::Malformed("bytes after the message"));
        }
        Ok(Some((message, len)))
    }

    /// Reads one whole message from a blocking stream (nothing past it).
    pub fn read_from(stream: &mut impl Read) -> io::Result<Message> {
        let invalid = |error: WireError| io::Error::new(io::ErrorKind::InvalidData, error);
        let mut bytes = [0u8; MAX_MESSAGE];
        stream.read_exact(&mut bytes[..MESSAGE_HEAD])?;
        let head = [bytes[0], bytes[1], bytes[2], bytes[3]];
        let len = Message::length(head).map_err(invalid)?;
        stream.read_exact(&mut bytes[MESSAGE_HEAD..len])?;
        match Message::decode(&bytes[..len]).map_err(invalid)? {
            Some((message, _)) => Ok(message),
            None => Err(invalid(WireError::Malformed("message cut short"))),
        }
    }
}

/// Milliseconds, saturating at `u32::MAX` (about 49 days).
fn millis(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}

/// Microseconds, saturating at `u32::MAX` (about 71 minutes).
fn micros(duration: Duration) -> u32 {
    u32::try_from(duration.as_micros()).unwrap_or(u32::MAX)
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// An address: a family byte (4 or 6), the IP's octets, the port (big endian).
fn push_address(out: &mut Vec<u8>, address: SocketAddr) {
    match address.ip() {
        IpAddr::V4(ip) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(6);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&address.port().to_be_bytes());
}

/// A bounds-checked reader over a message's body.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], WireError> {
        let taken = self
            .0
            .get(..count)
            .ok_or(WireError::Malformed("message cut short"))?;
        self.0 = &self.0[count..];
        Ok(taken)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        let bytes = self.take(4)?;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn u64(&mut self) -> Result<u64, WireError> {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(bytes))
    }

    fn address(&mut self) -> Result<SocketAddr, WireError> {
        let ip = match self.u8()? {
            4 => {
                let octets = self.take(4)?;
                IpAddr::V4(Ipv4Addr::new(octets[0], octets[1], octets[2], octets[3]))
            }
            6 => {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(self.take(16)?);
                IpAddr::V6(Ipv6Addr::from(octets))
            }
            _ => return Err(WireError::Malformed("address family")),
        };
        let port = self.take(2)?;
        Ok(SocketAddr::new(ip, u16::from_be_bytes([port[0], port[1]])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(source: &str, destination: &str) -> Header {
        Header {
            source: source.parse().unwrap(),
            destination: destination.parse().unwrap(),
            token: b"s3cret".to_vec(),
            service: "item".to_string(),
            dial: false,
            sniffed: None,
        }
    }

    #[test]
    fn a_header_reads_back_as_written_with_the_data_after_it() {
        let sent = header("172.18.0.5:41234", "172.18.0.9:8080");
        let mut bytes = sent.encode();
        let len = bytes.len();
        bytes.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let (read, used) = Header::decode(&bytes).unwrap().unwrap();
        assert_eq!(read, sent);
        assert_eq!(used, len);
        assert_eq!(&bytes[used..], b"GET / HTTP/1.1\r\n");
        // The standard fixed part, readable by any PROXY v2 reader.
        assert_eq!(&bytes[..12], &SIGNATURE);
        assert_eq!(bytes[12], 0x21);
        assert_eq!(bytes[13], 0x11);
    }

    #[test]
    fn ipv6_and_mixed_families_read_back() {
        let sent = header("[fd00::5]:41234", "[fd00::9]:6379");
        assert_eq!(Header::decode(&sent.encode()).unwrap().unwrap().0, sent);
        let mixed = header("172.18.0.5:41234", "[fd00::9]:6379");
        let (read, _) = Header::decode(&mixed.encode()).unwrap().unwrap();
        assert_eq!(read, mixed, "IPv4 travels mapped and comes back as IPv4");
        let dial = Header {
            dial: true,
            ..header("10.0.0.1:1", "10.0.0.2:5432")
        };
        assert!(Header::decode(&dial.encode()).unwrap().unwrap().0.dial);
    }

    #[test]
    fn every_prefix_of_a_header_asks_for_more() {
        let bytes = header("172.18.0.5:41234", "172.18.0.9:8080").encode();
        for cut in 0..bytes.len() {
            assert_eq!(Header::decode(&bytes[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn other_protocols_and_bad_headers_are_refused() {
        assert_eq!(
            Header::decode(b"GET / HTTP/1.1\r\n"),
            Err(WireError::NotProxyProtocol)
        );
        assert_eq!(
            Header::decode(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
            Err(WireError::NotProxyProtocol)
        );
        let mut local = header("1.2.3.4:1", "5.6.7.8:2").encode();
        local[12] = 0x20;
        assert!(matches!(
            Header::decode(&local),
            Err(WireError::Unsupported(_))
        ));
        let mut long = header("1.2.3.4:1", "5.6.7.8:2").encode();
        long[14] = 0xff;
        assert!(matches!(Header::decode(&long), Err(WireError::TooLong(_))));
        let mut cut_tlv = header("1.2.3.4:1", "5.6.7.8:2").encode();
        let len = cut_tlv.len();
        cut_tlv[len - 6] = 0x7f; // the service TLV claims more than is there
        assert!(matches!(
            Header::decode(&cut_tlv),
            Err(WireError::Malformed(_))
        ));
    }

    #[test]
    fn unknown_tlvs_are_skipped() {
        let mut bytes = header("1.2.3.4:1", "5.6.7.8:2").encode();
        // A TLV another writer might add (PP2_TYPE_AUTHORITY), appended and counted.
        bytes.extend_from_slice(&[0x02, 0x00, 0x03, b'a', b'b', b'c']);
        let len = u16::from_be_bytes([bytes[14], bytes[15]]) + 6;
        bytes[14..16].copy_from_slice(&len.to_be_bytes());
        let (read, used) = Header::decode(&bytes).unwrap().unwrap();
        assert_eq!(read.service, "item");
        assert_eq!(used, bytes.len());
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(token_matches(b"abc", b"abc"));
        assert!(!token_matches(b"abc", b"abd"));
        assert!(!token_matches(b"abc", b"ab"));
        assert!(!format!("{:?}", header("1.2.3.4:1", "5.6.7.8:2")).contains("s3cret"));
    }

    #[test]
    fn the_sniffed_tlv_reads_back() {
        for sniffed in [
            Sniffed::Http,
            Sniffed::Other,
            Sniffed::Tls { sni: None },
            Sniffed::Tls {
                sni: Some("db.example.internal".into()),
            },
        ] {
            let sent = Header {
                sniffed: Some(sniffed),
                ..header("172.18.0.5:41234", "172.18.0.9:6379")
            };
            assert_eq!(Header::decode(&sent.encode()).unwrap().unwrap().0, sent);
        }
        // A name that is not a host name is not sent (and not taken).
        let odd = Header {
            sniffed: Some(Sniffed::Tls {
                sni: Some("bad name".into()),
            }),
            ..header("1.2.3.4:1", "5.6.7.8:2")
        };
        let (read, _) = Header::decode(&odd.encode()).unwrap().unwrap();
        assert_eq!(read.sniffed, Some(Sniffed::Tls { sni: None }));
        for value in [
            &[][..],
            &[0],
            &[9],
            &[SNIFFED_HTTP, 1],
            &[SNIFFED_TLS, b' '],
        ] {
            let mut bytes = header("1.2.3.4:1", "5.6.7.8:2").encode();
            bytes.push(TLV_SNIFFED);
            bytes.extend_from_slice(&(value.len() as u16).to_be_bytes());
            bytes.extend_from_slice(value);
            let len = u16::from_be_bytes([bytes[14], bytes[15]]) + 3 + value.len() as u16;
            bytes[14..16].copy_from_slice(&len.to_be_bytes());
            assert!(
                matches!(Header::decode(&bytes), Err(WireError::Malformed(_))),
                "{value:?}"
            );
        }
    }

    fn messages() -> Vec<Message> {
        vec![
            Message::Refuse,
            Message::Dial(Dial {
                candidates: vec![
                    "172.18.0.7:6379".parse().unwrap(),
                    "[fd00::8]:6379".parse().unwrap(),
                    "172.18.0.7:6379".parse().unwrap(),
                ],
                backoffs: vec![Duration::from_micros(12_500), Duration::from_millis(50)],
                connect_timeout: Duration::from_secs(3),
            }),
            Message::Dialed(Dialed {
                connected: Some(1),
                failures: vec![Failure {
                    candidate: 0,
                    error: "Connection refused (os error 111)".into(),
                }],
            }),
            Message::Dialed(Dialed {
                connected: None,
                failures: Vec::new(),
            }),
            Message::Ended(Ended {
                close: Ending::Upstream,
                sent: 10 << 20,
                received: u64::MAX,
            }),
        ]
    }

    #[test]
    fn control_messages_read_back_and_every_prefix_asks_for_more() {
        for message in messages() {
            let mut bytes = message.encode();
            let len = bytes.len();
            assert!(len <= MAX_MESSAGE);
            for cut in 0..len {
                assert_eq!(
                    Message::decode(&bytes[..cut]),
                    Ok(None),
                    "{message:?} cut at {cut}"
                );
            }
            bytes.extend_from_slice(b"next");
            assert_eq!(Message::decode(&bytes), Ok(Some((message.clone(), len))));
            let read = Message::read_from(&mut &bytes[..]).unwrap();
            assert_eq!(read, message);
        }
    }

    #[test]
    fn control_messages_stay_within_their_bounds() {
        let address: SocketAddr = "[fd00::1]:65535".parse().unwrap();
        let dial = Message::Dial(Dial {
            candidates: vec![address; 100],
            backoffs: vec![Duration::from_secs(1 << 40); 100],
            connect_timeout: Duration::MAX,
        });
        let bytes = dial.encode();
        assert!(bytes.len() <= MAX_MESSAGE);
        let Some((Message::Dial(read), _)) = Message::decode(&bytes).unwrap() else {
            panic!("not a dial");
        };
        assert_eq!(read.candidates.len(), MAX_CANDIDATES);
        assert_eq!(read.backoffs.len(), MAX_CANDIDATES - 1);
        assert_eq!(read.backoffs[0], Duration::from_micros(u32::MAX.into()));
        let dialed = Message::Dialed(Dialed {
            connected: Some(200),
            failures: vec![
                Failure {
                    candidate: 3,
                    error: "é".repeat(300),
                };
                100
            ],
        });
        let bytes = dialed.encode();
        assert!(bytes.len() <= MAX_MESSAGE);
        let Some((Message::Dialed(read), _)) = Message::decode(&bytes).unwrap() else {
            panic!("not a report");
        };
        assert_eq!(read.connected, None, "an index out of range is no index");
        assert_eq!(read.failures.len(), MAX_CANDIDATES);
        assert_eq!(read.failures[0].error, "é".repeat(MAX_ERROR / 2));
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        assert!(matches!(
            Message::decode(&[2, 1, 0, 0]),
            Err(WireError::Unsupported(_))
        ));
        assert!(matches!(
            Message::decode(&[7]),
            Err(WireError::Unsupported(_))
        ));
        assert!(matches!(
            Message::decode(&[1, 9, 0, 0]),
            Err(WireError::Unsupported(_))
        ));
        assert!(matches!(
            Message::decode(&[1, 2, 0xff, 0xff]),
            Err(WireError::TooLong(_))
        ));
        assert!(matches!(
            Message::decode(&[1, 1, 0, 1, 0]),
            Err(WireError::Malformed(_))
        ));
        // No candidates, a bad family, an unknown ending.
        assert!(Message::decode(&[1, 2, 0, 5, 0, 0, 0, 1, 0]).is_err());
        assert!(Message::decode(&[1, 2, 0, 8, 0, 0, 0, 1, 1, 5, 0, 0]).is_err());
        assert!(
            Message::decode(&[1, 4, 0, 17, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
                .is_err()
        );
        // Every byte string of a few bytes, and every corruption of real messages: an answer,
        // never a panic.
        for message in messages() {
            let bytes = message.encode();
            for at in 0..bytes.len() {
                for value in [0u8, 1, 0x7f, 0xff] {
                    let mut bad = bytes.clone();
                    bad[at] = value;
                    let _ = Message::decode(&bad);
                    let _ = Message::read_from(&mut &bad[..]);
                }
            }
        }
        assert!(Message::read_from(&mut &[1u8, 3, 0][..]).is_err());
    }
}
