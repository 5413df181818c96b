//! What a connection's first bytes are: an HTTP request (served at L7 by the control plane's
//! mesh pipeline), a TLS ClientHello (passed through at L4, its server name recorded), or
//! anything else (L4). The one implementation: the forwarder sniffs each caller's connection
//! with it ([`peek`]), the control plane's intake classifies the connections of forwarders that
//! do not (`classify` on bytes it peeked itself).
//!
//! The bytes are only peeked (`MSG_PEEK`): they stay unread in the socket for whoever reads the
//! connection next. At most [`MAX_BYTES`] are looked at, for at most [`WINDOW`]: clients of
//! server-first protocols (MySQL, SMTP, …) send nothing until the server greets them.

use std::io;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

/// How long a sniffer waits for the caller's first bytes before it decides on what it has.
pub const WINDOW: Duration = Duration::from_millis(150);
/// The most a sniffer peeks at: one whole TLS record (a ClientHello with its SNI).
pub const MAX_BYTES: usize = 5 + MAX_RECORD;
/// The largest TLS record a peer may send (2^14 plus room for expansion).
const MAX_RECORD: usize = 16 * 1024 + 2048;
/// Longest method token taken for an HTTP request line.
const MAX_METHOD: usize = 32;
/// The HTTP/2 connection preface (RFC 9113 §3.4).
pub const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The longest server name taken from a ClientHello (a DNS name's limit).
pub const MAX_SERVER_NAME: usize = 253;

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

impl Sniffed {
    /// Whether the connection goes to L4 (bytes passed through untouched).
    pub fn is_l4(&self) -> bool {
        !matches!(self, Sniffed::Http)
    }
}

/// Peeks at `stream`'s first bytes (leaving them unread) until they tell what they are, or
/// `window` passes, or the caller ends its side. The stream's read timeout is cleared after.
pub fn peek(stream: &TcpStream, window: Duration) -> Sniffed {
    let deadline = Instant::now() + window;
    let mut buffer = vec![0u8; MAX_BYTES];
    let mut seen = 0;
    let sniffed = loop {
        let Some(left) = deadline
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
        else {
            break None;
        };
        if stream.set_read_timeout(Some(left)).is_err() {
            break None;
        }
        match stream.peek(&mut buffer) {
            // Gone already: L4 passes the end on.
            Ok(0) => break None,
            Ok(read) => seen = read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            // The window passed (`WouldBlock`/`TimedOut`) or the caller failed.
            Err(_) => break None,
        }
        if let Some(sniffed) = classify(&buffer[..seen], seen == buffer.len()) {
            break Some(sniffed);
        }
        // Part of a start so far: peek returns at once while bytes are there, so pause instead
        // of spinning.
        thread::sleep(Duration::from_millis(1).min(left));
    };
    let _ = stream.set_read_timeout(None);
    sniffed.unwrap_or_else(|| classify(&buffer[..seen], true).unwrap_or(Sniffed::Other))
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
        if kind == 0 && valid_server_name(name) {
            return Some(String::from_utf8_lossy(name).to_ascii_lowercase());
        }
    }
    None
}

/// Whether `name` is taken as a server name: a DNS host name of at most [`MAX_SERVER_NAME`]
/// bytes (letters, digits, `.`, `-`, `_`).
pub fn valid_server_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SERVER_NAME
        && name
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'_'))
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
    use crate::splice::tests::pair;
    use std::io::Write;
    use std::net::Shutdown;

    /// A ClientHello record naming `name` (extensions: a dummy one, then `server_name`).
    fn client_hello(name: &str) -> Vec<u8> {
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

    #[test]
    fn peeking_leaves_the_bytes_in_the_socket() {
        let (mut caller, accepted) = pair();
        caller.write_all(b"GET /items/1 HTTP/1.1\r\n").unwrap();
        let started = Instant::now();
        assert_eq!(peek(&accepted, Duration::from_secs(5)), Sniffed::Http);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "decided at once"
        );
        let mut read = [0u8; 23];
        std::io::Read::read_exact(&mut &accepted, &mut read).unwrap();
        assert_eq!(&read, b"GET /items/1 HTTP/1.1\r\n", "still unread");
        assert_eq!(accepted.read_timeout().unwrap(), None, "timeout cleared");
    }

    #[test]
    fn silence_is_l4_after_the_window_and_an_early_end_at_once() {
        let (_caller, accepted) = pair();
        let started = Instant::now();
        assert_eq!(peek(&accepted, Duration::from_millis(50)), Sniffed::Other);
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(accepted.read_timeout().unwrap(), None);

        let (caller, accepted) = pair();
        caller.shutdown(Shutdown::Write).unwrap();
        let started = Instant::now();
        assert_eq!(peek(&accepted, Duration::from_secs(5)), Sniffed::Other);
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_slow_request_line_is_decided_at_the_window() {
        let (mut caller, accepted) = pair();
        caller.write_all(b"POST /upl").unwrap();
        assert_eq!(peek(&accepted, Duration::from_millis(50)), Sniffed::Http);
        let (mut caller, accepted) = pair();
        caller
            .write_all(&client_hello("db.internal")[..20])
            .unwrap();
        assert_eq!(
            peek(&accepted, Duration::from_millis(50)),
            Sniffed::Tls { sni: None }
        );
    }
}
