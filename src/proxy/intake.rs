//! The mesh intake: connections the forwarders hand over. Each opens with a PROXY v2 header
//! (`sandbox_forwarder::wire`: the caller's address, the address it dialed, the mesh token, the
//! service), read here without reading past it (peeked, then exactly its bytes consumed), within
//! [`HEADER_TIMEOUT`] and at most `wire::MAX_LEN` bytes. A bad header or a wrong token closes
//! the connection (counted in `sandbox_proxy_intake_refusals_total`, logged at debug without the
//! token). Then the first bytes the caller sends are peeked ([`sniff`]):
//! - an HTTP/1.x request line or the HTTP/2 preface: the connection is served as the mesh's are
//!   (`serve::serve_http`: fast path, hyper, h2), each request's target fixed to the header's
//!   service and sent to the chosen replica's IP at the port dialed;
//! - a TLS ClientHello: spliced at L4 ([`super::l4`]), its SNI ([`server_name`]) on the span;
//! - anything else, or nothing within [`SNIFF_WINDOW`] (server-first protocols: MySQL, SMTP,
//!   …): spliced at L4.

use std::sync::Arc;
use std::time::Duration;

use sandbox_forwarder::wire::{self, Header};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::h1::codec::HTTP2_PREFACE;
use super::hyper_server::Downstream;
use super::l4;
use super::serve::serve_http;
use super::session::{Called, Listener};
use super::{Limits, Shared};

/// A forwarder writes its header as soon as it connects: one that has not within this time is
/// not one.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the intake waits for the caller's first bytes before it splices at L4: clients of
/// server-first protocols (MySQL, SMTP, …) send nothing until the server greets them.
pub const SNIFF_WINDOW: Duration = Duration::from_millis(150);
/// The most the sniffer peeks at: one whole TLS record (a ClientHello with its SNI).
const SNIFF_BYTES: usize = 5 + MAX_RECORD;
/// The largest TLS record a peer may send (2^14 plus room for expansion).
const MAX_RECORD: usize = 16 * 1024 + 2048;
/// Longest method token taken for an HTTP request line.
const MAX_METHOD: usize = 32;

/// What the first bytes of a connection are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sniffed {
    /// An HTTP/1.x request line, or the HTTP/2 preface.
    Http,
    /// A TLS handshake; the server name its ClientHello asks for, when it names one.
    Tls { sni: Option<String> },
    /// Anything else, or nothing in time.
    Other,
}

/// Why a forwarder's connection was refused (the metric's `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// No header within [`HEADER_TIMEOUT`] (or the peer went away first).
    Timeout,
    /// Not a PROXY v2 header of ours (or one asking to dial, which forwarders receive).
    Header,
    /// The token does not match the sandbox's (or none is set).
    Token,
}

impl Refusal {
    fn reason(self) -> &'static str {
        match self {
            Refusal::Timeout => "timeout",
            Refusal::Header => "header",
            Refusal::Token => "token",
        }
    }
}

/// Serves one connection accepted on the intake.
pub(super) async fn serve_connection(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let peer = stream.peer_addr().ok();
    let header = match accept(&shared, &mut stream).await {
        Ok(header) => header,
        Err(refusal) => {
            shared.metrics.record_intake_refusal(refusal.reason());
            tracing::debug!(target: "sandbox::proxy", ?peer, reason = refusal.reason(), "mesh intake connection refused");
            return;
        }
    };
    let caller = shared.caller(header.source.ip());
    let called = Called {
        service: header.service.as_str().into(),
        port: header.destination.port(),
    };
    match sniff(&stream, &shutdown).await {
        Sniffed::Http => {
            let downstream = Downstream {
                shared: shared.clone(),
                kind: Listener::Intake,
                peer: header.source,
                caller,
                called: Some(called),
                limits: limits.clone(),
                shutdown: shutdown.clone(),
                tls: false,
            };
            serve_http(stream, downstream, &limits, shutdown).await;
        }
        Sniffed::Tls { sni } => {
            let connection = l4::Connection {
                source: header.source,
                caller,
                called,
                tls: true,
                sni,
            };
            l4::serve(shared, stream, connection, shutdown).await;
        }
        Sniffed::Other => {
            let connection = l4::Connection {
                source: header.source,
                caller,
                called,
                tls: false,
                sni: None,
            };
            l4::serve(shared, stream, connection, shutdown).await;
        }
    }
}

/// Reads the PROXY header (in time, bounded) and checks its token.
async fn accept(shared: &Shared, stream: &mut TcpStream) -> Result<Header, Refusal> {
    let header = tokio::time::timeout(HEADER_TIMEOUT, read_header(stream))
        .await
        .map_err(|_| Refusal::Timeout)??;
    if header.dial {
        return Err(Refusal::Header);
    }
    let token = shared.mesh_token().ok_or(Refusal::Token)?;
    if !wire::token_matches(&token, &header.token) {
        return Err(Refusal::Token);
    }
    Ok(header)
}

/// The header, its bytes consumed and nothing after them: what follows is the caller's.
async fn read_header(stream: &mut TcpStream) -> Result<Header, Refusal> {
    let mut buffer = [0u8; wire::MAX_LEN];
    loop {
        let peeked = stream
            .peek(&mut buffer)
            .await
            .map_err(|_| Refusal::Timeout)?;
        if peeked == 0 {
            return Err(Refusal::Timeout);
        }
        match Header::decode(&buffer[..peeked]) {
            Ok(Some((header, used))) => {
                stream
                    .read_exact(&mut buffer[..used])
                    .await
                    .map_err(|_| Refusal::Header)?;
                return Ok(header);
            }
            Ok(None) if peeked == buffer.len() => return Err(Refusal::Header),
            // Part of a header so far: wait for the rest (peek returns at once while bytes are
            // there, so pause instead of spinning).
            Ok(None) => tokio::time::sleep(Duration::from_millis(1)).await,
            Err(_) => return Err(Refusal::Header),
        }
    }
}

/// Peeks at the caller's first bytes (leaving them unread) until they tell what they are, or
/// [`SNIFF_WINDOW`] passes.
pub(super) async fn sniff(stream: &TcpStream, shutdown: &CancellationToken) -> Sniffed {
    let deadline = tokio::time::Instant::now() + SNIFF_WINDOW;
    let mut buffer = vec![0u8; SNIFF_BYTES];
    let mut seen = 0;
    loop {
        let peeked = tokio::select! {
            peeked = stream.peek(&mut buffer) => peeked,
            () = tokio::time::sleep_until(deadline) => return classify(&buffer[..seen], true)
                .unwrap_or(Sniffed::Other),
            () = shutdown.cancelled() => return Sniffed::Other,
        };
        match peeked {
            // Gone already: L4 passes the end on.
            Ok(0) | Err(_) => return classify(&buffer[..seen], true).unwrap_or(Sniffed::Other),
            Ok(read) => seen = read,
        }
        if let Some(sniffed) = classify(&buffer[..seen], seen == buffer.len()) {
            return sniffed;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// What `bytes` (a connection's first) are; `None`: more are needed to tell. `last`: no more
/// will come (the window passed, or the buffer is full), so a start that may still be either
/// is decided as well as it can be.
pub fn classify(bytes: &[u8], last: bool) -> Option<Sniffed> {
    let first = *bytes.first()?;
    if first == 0x16 {
        return classify_tls(bytes, last);
    }
    match request_line(bytes) {
        Line::Http => Some(Sniffed::Http),
        Line::Not => Some(Sniffed::Other),
        // A request line arriving slowly, or longer than the buffer: HTTP once its method and a
        // space are in.
        Line::Partial { method } if last => Some(if method {
            Sniffed::Http
        } else {
            Sniffed::Other
        }),
        Line::Partial { .. } => None,
    }
}

/// A TLS record header (`0x16 0x03 <minor> <length>`) with a ClientHello in it.
fn classify_tls(bytes: &[u8], last: bool) -> Option<Sniffed> {
    if bytes.len() >= 2 && bytes[1] != 0x03 {
        return Some(Sniffed::Other);
    }
    if bytes.len() < 5 {
        return last.then_some(Sniffed::Other);
    }
    let length = usize::from(u16::from_be_bytes([bytes[3], bytes[4]]));
    if length == 0 || length > MAX_RECORD {
        return Some(Sniffed::Other);
    }
    match bytes.get(5..5 + length) {
        Some(record) => Some(Sniffed::Tls {
            sni: server_name(record),
        }),
        None if last => Some(Sniffed::Tls {
            sni: server_name(&bytes[5..]),
        }),
        None => None,
    }
}

/// How far bytes look like an HTTP request line.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    Http,
    Not,
    /// Consistent so far; `method`: a method token and a space are in.
    Partial {
        method: bool,
    },
}

/// `METHOD SP target SP HTTP/1.x` up to the line's end, or the HTTP/2 preface's first line
/// (`PRI * HTTP/2.0`).
fn request_line(bytes: &[u8]) -> Line {
    let method_end = bytes.iter().position(|byte| !is_token(*byte));
    let Some(method_end) = method_end else {
        return if bytes.len() <= MAX_METHOD {
            Line::Partial { method: false }
        } else {
            Line::Not
        };
    };
    if method_end == 0 || method_end > MAX_METHOD || bytes[method_end] != b' ' {
        return Line::Not;
    }
    let rest = &bytes[method_end + 1..];
    let Some(line_end) = rest.iter().position(|byte| *byte == b'\n') else {
        // The target and version: visible characters and one more space.
        return if rest
            .iter()
            .all(|byte| byte.is_ascii_graphic() || *byte == b' ')
        {
            Line::Partial { method: true }
        } else {
            Line::Not
        };
    };
    let line = rest[..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&rest[..line_end]);
    let Some(space) = line.iter().rposition(|byte| *byte == b' ') else {
        return Line::Not;
    };
    let (target, version) = (&line[..space], &line[space + 1..]);
    let http2 = HTTP2_PREFACE.starts_with(&bytes[..method_end + 1 + line_end]);
    let version_ok = matches!(version, b"HTTP/1.0" | b"HTTP/1.1") || http2;
    if !target.is_empty() && target.iter().all(u8::is_ascii_graphic) && version_ok {
        Line::Http
    } else {
        Line::Not
    }
}

/// An HTTP token character (RFC 9110 `tchar`).
fn is_token(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// The server name (SNI) a TLS ClientHello asks for: `record` is the handshake message, whole
/// or cut (then `None` if the name is not in what is there). Only a DNS host name is returned.
pub fn server_name(record: &[u8]) -> Option<String> {
    let mut hello = Reader(record);
    if hello.take(1)? != [0x01] {
        return None;
    }
    let length = hello.number(3)?;
    let mut body = Reader(hello.0.get(..length).unwrap_or(hello.0));
    body.take(2 + 32)?; // version, random
    let session = body.number(1)?;
    body.take(session)?;
    let suites = body.number(2)?;
    body.take(suites)?;
    let compression = body.number(1)?;
    body.take(compression)?;
    let extensions = body.number(2)?;
    let mut extensions = Reader(body.0.get(..extensions).unwrap_or(body.0));
    while !extensions.0.is_empty() {
        let kind = extensions.number(2)?;
        let length = extensions.number(2)?;
        let data = extensions.take(length)?;
        if kind == 0 {
            return host_name(data);
        }
    }
    None
}

/// The `host_name` entry of a `server_name` extension.
fn host_name(extension: &[u8]) -> Option<String> {
    let mut list = Reader(extension);
    let length = list.number(2)?;
    let mut names = Reader(list.take(length)?);
    while !names.0.is_empty() {
        let kind = names.take(1)?[0];
        let length = names.number(2)?;
        let name = names.take(length)?;
        let valid = !name.is_empty()
            && name.len() <= 253
            && name
                .iter()
                .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'_'));
        if kind == 0 && valid {
            return Some(String::from_utf8_lossy(name).to_ascii_lowercase());
        }
    }
    None
}

/// A bounds-checked reader over a ClientHello.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Option<&'a [u8]> {
        let taken = self.0.get(..count)?;
        self.0 = &self.0[count..];
        Some(taken)
    }

    /// A big-endian number of `width` bytes.
    fn number(&mut self, width: usize) -> Option<usize> {
        Some(
            self.take(width)?
                .iter()
                .fold(0usize, |value, byte| (value << 8) | usize::from(*byte)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello record naming `name` (extensions: a dummy one, then `server_name`).
    pub(crate) fn client_hello(name: &str) -> Vec<u8> {
        let mut server_name = Vec::new();
        let entry_length = 1 + 2 + name.len();
        server_name.extend_from_slice(&(entry_length as u16).to_be_bytes());
        server_name.push(0);
        server_name.extend_from_slice(&(name.len() as u16).to_be_bytes());
        server_name.extend_from_slice(name.as_bytes());
        let mut extensions = vec![0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]; // ec_point_formats
        extensions.extend_from_slice(&[0x00, 0x00]);
        extensions.extend_from_slice(&(server_name.len() as u16).to_be_bytes());
        extensions.extend_from_slice(&server_name);
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[7; 32]);
        body.extend_from_slice(&[32]);
        body.extend_from_slice(&[9; 32]);
        body.extend_from_slice(&[0x00, 0x02, 0x13, 0x01]);
        body.extend_from_slice(&[0x01, 0x00]);
        body.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
        body.extend_from_slice(&extensions);
        let mut handshake = vec![0x01];
        handshake.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        handshake.extend_from_slice(&body);
        let mut record = vec![0x16, 0x03, 0x01];
        record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
        record.extend_from_slice(&handshake);
        record
    }

    #[test]
    fn http_request_lines_and_the_http2_preface_are_http() {
        assert_eq!(
            classify(b"GET /items/1 HTTP/1.1\r\nHost: item\r\n", false),
            Some(Sniffed::Http)
        );
        assert_eq!(
            classify(b"M-SEARCH * HTTP/1.0\r\n", false),
            Some(Sniffed::Http)
        );
        assert_eq!(classify(HTTP2_PREFACE, false), Some(Sniffed::Http));
        assert_eq!(classify(b"PRI * HTTP/2.0\r\n", false), Some(Sniffed::Http));
        // Not yet decided: a prefix of a request line.
        assert_eq!(classify(b"GE", false), None);
        assert_eq!(classify(b"POST /upload", false), None);
        // The window passed with a method and a space in: a slow HTTP client.
        assert_eq!(classify(b"POST /upl", true), Some(Sniffed::Http));
        assert_eq!(classify(b"POST", true), Some(Sniffed::Other));
    }

    #[test]
    fn other_protocols_are_l4() {
        // Redis (RESP), PostgreSQL's startup message, a Redis inline command, binary.
        assert_eq!(
            classify(b"*1\r\n$4\r\nPING\r\n", false),
            Some(Sniffed::Other)
        );
        assert_eq!(
            classify(&[0, 0, 0, 8, 4, 210, 22, 47], false),
            Some(Sniffed::Other)
        );
        assert_eq!(classify(b"PING\r\n", false), Some(Sniffed::Other));
        assert_eq!(classify(b"SET key value\r\n", false), Some(Sniffed::Other));
        assert_eq!(
            classify(b"GET /x HTTP/3.0\r\n", false),
            Some(Sniffed::Other)
        );
        assert_eq!(classify(b"", true), None, "nothing: the caller decides");
    }

    #[test]
    fn a_client_hello_is_tls_with_its_server_name() {
        let hello = client_hello("Db.Example.internal");
        assert_eq!(
            classify(&hello, false),
            Some(Sniffed::Tls {
                sni: Some("db.example.internal".into())
            })
        );
        // Cut: wait for the record, or decide without the name at the window's end.
        assert_eq!(classify(&hello[..20], false), None);
        assert_eq!(
            classify(&hello[..20], true),
            Some(Sniffed::Tls { sni: None })
        );
        // 0x16 not followed by a TLS version: something else.
        assert_eq!(classify(&[0x16, 0x00, 0x01], false), Some(Sniffed::Other));
    }

    #[test]
    fn the_server_name_parser_is_bounded() {
        let hello = client_hello("cache");
        let handshake = &hello[5..];
        assert_eq!(server_name(handshake).as_deref(), Some("cache"));
        for cut in 0..handshake.len() {
            // Never panics on a cut message; the name only when it is all there.
            let name = server_name(&handshake[..cut]);
            assert!(name.is_none() || name.as_deref() == Some("cache"));
        }
        assert_eq!(server_name(&[0x02, 0, 0, 0]), None, "not a ClientHello");
        let mut bad = client_hello("bad name");
        assert_eq!(server_name(&bad.split_off(5)), None, "not a host name");
    }
}
