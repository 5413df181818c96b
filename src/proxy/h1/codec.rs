//! HTTP/1.1 on the wire for the fast path (the accelerator's codec): request heads parsed with `httparse` into `http` types
//! (header values share the read buffer), response and request heads written into one buffer, and
//! the framing of upstream response bodies (length, chunked, until close). Pure; tested beside
//! itself. Anything unusual is not handled here: the caller falls back to hyper.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Uri, Version};

use super::line_ends::has_bare_lf;
use crate::proxy::headers::is_hop_by_hop_name;
use crate::proxy::message::{recycle, take_map, Headers, RawLines, RawLinesBuilder, RAW_LINES};

/// Headers a head may have on the fast path (hyper's default limit too).
pub const MAX_HEADERS: usize = 100;
/// Headers most heads fit in: parsed first with this many slots, to keep the stack small.
const FEW_HEADERS: usize = 24;

/// What the bytes read so far hold.
// Returned by value once per request and matched at once: boxing the request would only add an
// allocation.
#[allow(clippy::large_enum_variant)]
pub enum Parsed<B> {
    /// Not a whole head yet.
    Partial,
    /// A request the fast path serves: a bodiless HTTP/1.1 request without connection-level
    /// headers. Its head was taken from the buffer.
    Simple(Request<B>),
    /// Anything else (malformed, a body, `Connection`, `Upgrade`, `Expect`, HTTP/1.0, …): hyper's.
    /// The buffer is left as it was.
    Other,
}

/// The first bytes of every HTTP/2 connection (RFC 9113 §3.4); `PRI` is no HTTP/1.1 method a
/// client sends, so its request line alone tells the protocols apart.
pub const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether the bytes read so far open an HTTP/2 connection (the request line is enough).
pub fn is_http2_preface(bytes: &[u8]) -> bool {
    bytes.starts_with(&HTTP2_PREFACE[..12])
}

/// Byte ranges of a header's name and value in the buffer.
type Ranges = (usize, usize, usize, usize);

/// Reads the request head at the start of `buffer`, once: classified, then built with header
/// values sharing the head's bytes.
pub fn read_request<B>(buffer: &mut BytesMut, body: B) -> Parsed<B> {
    let parsed = match read_request_with::<FEW_HEADERS>(buffer) {
        Err(httparse::Error::TooManyHeaders) => read_request_with::<MAX_HEADERS>(buffer),
        parsed => parsed,
    };
    match parsed {
        Ok(Parsed::Simple(request)) => Parsed::Simple(request.map(|()| body)),
        Ok(Parsed::Partial) => Parsed::Partial,
        Ok(Parsed::Other) | Err(_) => Parsed::Other,
    }
}

fn read_request_with<const N: usize>(buffer: &mut BytesMut) -> Result<Parsed<()>, httparse::Error> {
    let mut slots = [const { MaybeUninit::uninit() }; N];
    let mut ranges: [Ranges; N] = [(0, 0, 0, 0); N];
    let mut parsed = httparse::Request::new(&mut []);
    let length = match parsed.parse_with_uninit_headers(buffer, &mut slots) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(error) => return Err(error),
    };
    let (Some(method), Some(path)) = (parsed.method, parsed.path) else {
        return Ok(Parsed::Other);
    };
    // A bare LF line end: hyper answers it (400, see `line_ends`).
    if parsed.version != Some(1) || method == "CONNECT" || has_bare_lf(&buffer[..length]) {
        return Ok(Parsed::Other);
    }
    let base = buffer.as_ptr() as usize;
    let offset = |slice: &[u8]| slice.as_ptr() as usize - base;
    let mut count = 0;
    for header in parsed.headers.iter() {
        if !simple_header(header) {
            return Ok(Parsed::Other);
        }
        let (name, value) = (header.name.as_bytes(), header.value);
        ranges[count] = (offset(name), name.len(), offset(value), value.len());
        count += 1;
    }
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return Ok(Parsed::Other);
    };
    let path = (offset(path.as_bytes()), path.len());
    let head = buffer.split_to(length).freeze();
    let Ok(uri) = Uri::from_maybe_shared(head.slice(path.0..path.0 + path.1)) else {
        *buffer = rejoin(&head, buffer);
        return Ok(Parsed::Other);
    };
    let mut headers = take_map();
    for &(name_at, name_length, value_at, value_length) in &ranges[..count] {
        let name = HeaderName::from_bytes(&head[name_at..name_at + name_length]);
        let value = HeaderValue::from_maybe_shared(head.slice(value_at..value_at + value_length));
        match (name, value) {
            (Ok(name), Ok(value)) => {
                headers.append(name, value);
            }
            _ => {
                // `http` refused what `httparse` accepted: hyper answers it.
                recycle(headers);
                *buffer = rejoin(&head, buffer);
                return Ok(Parsed::Other);
            }
        }
    }
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    Ok(Parsed::Simple(request))
}

/// The buffer as it was before `head` was taken from it.
fn rejoin(head: &[u8], rest: &[u8]) -> BytesMut {
    let mut whole = BytesMut::with_capacity(head.len() + rest.len());
    whole.extend_from_slice(head);
    whole.extend_from_slice(rest);
    whole
}

fn simple_header(header: &httparse::Header<'_>) -> bool {
    let name = header.name;
    if name.eq_ignore_ascii_case("content-length") {
        return header.value == b"0";
    }
    !(name.eq_ignore_ascii_case("connection")
        || name.eq_ignore_ascii_case("transfer-encoding")
        || name.eq_ignore_ascii_case("upgrade")
        || name.eq_ignore_ascii_case("expect")
        || name.eq_ignore_ascii_case("te"))
}

/// Writes the status line and the header lines; a `Date` when the headers have none.
pub fn write_response_head(out: &mut Vec<u8>, status: StatusCode, headers: &Headers) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    headers.write_h1(out);
    if !headers.contains(&header::DATE) {
        out.extend_from_slice(b"date: ");
        with_date(|date| out.extend_from_slice(date));
        out.extend_from_slice(b"\r\n");
    }
}

/// Writes a bodiless request head: request line, header lines, the final empty line.
pub fn write_request_head(out: &mut Vec<u8>, method: &Method, uri: &Uri, headers: &Headers) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(
        uri.path_and_query()
            .map_or("/", |path| path.as_str())
            .as_bytes(),
    );
    out.extend_from_slice(b" HTTP/1.1\r\n");
    headers.write_h1(out);
    out.extend_from_slice(b"\r\n");
}

/// Calls `write` with the current `Date` value, formatted at most once a second.
fn with_date(write: impl FnOnce(&[u8])) {
    thread_local! {
        static CACHE: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
    }
    let now = SystemTime::now();
    let second = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != second || cache.1.is_empty() {
            *cache = (second, httpdate::fmt_http_date(now));
        }
        write(cache.1.as_bytes());
    });
}

/// A parsed upstream response head.
pub struct ResponseHead {
    pub status: StatusCode,
    /// Empty when the headers are kept as `raw` lines.
    pub headers: HeaderMap,
    pub raw: Option<Box<RawLines>>,
    /// The connection may carry another request once the body is read.
    pub keep_alive: bool,
}

/// Why an upstream response could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("invalid HTTP response: {0}")]
    Invalid(String),
}

fn invalid(detail: impl Into<String>) -> WireError {
    WireError::Invalid(detail.into())
}

/// Parses the response head at the start of `buffer`: `Ok(None)` until it is whole; informational
/// (1xx other than 101) heads are skipped. Consumes the head from `buffer`.
pub fn parse_response(buffer: &mut BytesMut) -> Result<Option<ResponseHead>, WireError> {
    match parse_response_with::<FEW_HEADERS>(buffer) {
        Err(httparse::Error::TooManyHeaders) => parse_response_with::<MAX_HEADERS>(buffer),
        parsed => parsed,
    }
    .map_err(|error| invalid(error.to_string()))
}

fn parse_response_with<const N: usize>(
    buffer: &mut BytesMut,
) -> Result<Option<ResponseHead>, httparse::Error> {
    loop {
        let mut slots = [const { MaybeUninit::uninit() }; N];
        let mut ranges: [Ranges; N] = [(0, 0, 0, 0); N];
        let mut parsed = httparse::Response::new(&mut []);
        let config = httparse::ParserConfig::default();
        let length =
            match config.parse_response_with_uninit_headers(&mut parsed, buffer, &mut slots)? {
                httparse::Status::Complete(length) => length,
                httparse::Status::Partial => return Ok(None),
            };
        let code = parsed.code.unwrap_or(0);
        if (100..200).contains(&code) && code != 101 {
            buffer.advance(length);
            continue;
        }
        let status = StatusCode::from_u16(code).map_err(|_| httparse::Error::Status)?;
        let version = parsed.version;
        let base = buffer.as_ptr() as usize;
        let mut count = 0;
        for header in parsed.headers.iter() {
            let (name, value) = (header.name.as_bytes(), header.value);
            ranges[count] = (
                name.as_ptr() as usize - base,
                name.len(),
                value.as_ptr() as usize - base,
                value.len(),
            );
            count += 1;
        }
        let head = buffer.split_to(length).freeze();
        if code != 101 {
            if let Some((raw, keep_alive)) = raw_lines(&head, &ranges[..count], version) {
                return Ok(Some(ResponseHead {
                    status,
                    headers: HeaderMap::new(),
                    raw: Some(raw),
                    keep_alive,
                }));
            }
        }
        let mut keep_alive = version == Some(1);
        let mut headers = take_map();
        for &(name_at, name_length, value_at, value_length) in &ranges[..count] {
            let name = HeaderName::from_bytes(&head[name_at..name_at + name_length])
                .map_err(|_| httparse::Error::HeaderName)?;
            let value =
                HeaderValue::from_maybe_shared(head.slice(value_at..value_at + value_length))
                    .map_err(|_| httparse::Error::HeaderValue)?;
            if name == header::CONNECTION {
                keep_alive = keep_alive_after(value.as_bytes(), version, keep_alive);
            }
            headers.append(name, value);
        }
        return Ok(Some(ResponseHead {
            status,
            headers,
            raw: None,
            keep_alive,
        }));
    }
}

/// The header lines of `head` as [`RawLines`] with the keep-alive verdict, unless a header
/// needs the proxy's attention (hop-by-hop headers other than a `Connection` about the hop,
/// `Connection` naming others, an unreadable or conflicting `Content-Length`) or there are many.
fn raw_lines(
    head: &Bytes,
    ranges: &[Ranges],
    version: Option<u8>,
) -> Option<(Box<RawLines>, bool)> {
    if ranges.len() > RAW_LINES {
        return None;
    }
    let mut keep_alive = version == Some(1);
    let mut raw = RawLinesBuilder::with_capacity(head.len());
    for &(name_at, name_length, value_at, value_length) in ranges {
        let name = &head[name_at..name_at + name_length];
        let value = &head[value_at..value_at + value_length];
        if name.eq_ignore_ascii_case(b"connection") {
            keep_alive = keep_alive_after(value, version, keep_alive);
            if !about_this_hop(value) {
                return None;
            }
            continue;
        }
        if is_hop_by_hop_name(name) || name.eq_ignore_ascii_case(b"upgrade") {
            return None;
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            let length: u64 = std::str::from_utf8(value).ok()?.trim().parse().ok()?;
            if raw
                .recorded_length()
                .is_some_and(|previous| previous != length)
            {
                return None;
            }
            raw.content_length(length);
        }
        let line = &head[name_at..value_at + value_length];
        if !raw.push(line, name_length, value_at - name_at) {
            return None;
        }
    }
    Some((raw.finish(), keep_alive))
}

/// Whether a `Connection` value only says whether to keep the connection (names no header).
fn about_this_hop(value: &[u8]) -> bool {
    // The usual value, without splitting.
    if value.eq_ignore_ascii_case(b"keep-alive") {
        return true;
    }
    value.split(|byte| *byte == b',').all(|token| {
        let token = token.trim_ascii();
        token.eq_ignore_ascii_case(b"keep-alive") || token.eq_ignore_ascii_case(b"close")
    })
}

/// The keep-alive verdict once a `Connection` header says `value`.
fn keep_alive_after(value: &[u8], version: Option<u8>, keep_alive: bool) -> bool {
    // The usual value, without splitting: the same verdict as the general case below.
    if value.eq_ignore_ascii_case(b"keep-alive") {
        return keep_alive || version == Some(0);
    }
    if contains_token(value, b"close") {
        false
    } else if contains_token(value, b"keep-alive") && version == Some(0) {
        true
    } else {
        keep_alive
    }
}

fn contains_token(text: &[u8], token: &[u8]) -> bool {
    text.split(|byte| *byte == b',')
        .any(|part| part.trim_ascii().eq_ignore_ascii_case(token))
}

/// How an upstream response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD, 1xx, 204, 304).
    Empty,
    /// `Content-Length` bytes left.
    Length(u64),
    Chunked(Chunked),
    /// Until the upstream closes the connection.
    Close,
}

impl Framing {
    /// The framing of a response to `method`.
    pub fn of(method: &Method, head: &ResponseHead) -> Result<Framing, WireError> {
        let code = head.status.as_u16();
        if method == Method::HEAD || code < 200 || code == 204 || code == 304 {
            return Ok(Framing::Empty);
        }
        if let Some(raw) = &head.raw {
            // No `Transfer-Encoding` there (hop-by-hop), and the length was read.
            return Ok(match raw.content_length() {
                Some(0) => Framing::Empty,
                Some(length) => Framing::Length(length),
                None => Framing::Close,
            });
        }
        if let Some(encoding) = head
            .headers
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .next_back()
        {
            let last = encoding.as_bytes().rsplit(|byte| *byte == b',').next();
            return Ok(match last {
                Some(last) if last.trim_ascii().eq_ignore_ascii_case(b"chunked") => {
                    Framing::Chunked(Chunked::Size)
                }
                _ => Framing::Close,
            });
        }
        let mut length = None;
        for value in head.headers.get_all(header::CONTENT_LENGTH) {
            let parsed: u64 = std::str::from_utf8(value.as_bytes())
                .ok()
                .and_then(|text| text.trim().parse().ok())
                .ok_or_else(|| invalid("invalid content-length"))?;
            if length.is_some_and(|previous| previous != parsed) {
                return Err(invalid("conflicting content-length"));
            }
            length = Some(parsed);
        }
        Ok(match length {
            Some(0) => Framing::Empty,
            Some(length) => Framing::Length(length),
            None => Framing::Close,
        })
    }
}

/// Where a chunked decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunked {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk: bytes left.
    Data(u64),
    /// After a chunk's data: expecting its CRLF.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailers,
    Done,
}

/// Longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 8192;

impl Chunked {
    /// Decodes from `buffer`: `Ok(Some(data))` for a piece of a chunk, `Ok(None)` when more bytes
    /// are needed or the body ended ([`Chunked::Done`]).
    pub fn decode(&mut self, buffer: &mut BytesMut) -> Result<Option<Bytes>, WireError> {
        loop {
            match *self {
                Chunked::Done => return Ok(None),
                Chunked::Data(left) => {
                    if buffer.is_empty() {
                        return Ok(None);
                    }
                    let take = (left.min(buffer.len() as u64)) as usize;
                    let data = buffer.split_to(take).freeze();
                    *self = match left - take as u64 {
                        0 => Chunked::DataEnd,
                        left => Chunked::Data(left),
                    };
                    return Ok(Some(data));
                }
                Chunked::Size | Chunked::DataEnd | Chunked::Trailers => {
                    let Some(end) = buffer.iter().position(|byte| *byte == b'\n') else {
                        if buffer.len() > MAX_LINE {
                            return Err(invalid("chunk line too long"));
                        }
                        return Ok(None);
                    };
                    let line = buffer.split_to(end + 1);
                    let line = line[..end].strip_suffix(b"\r").unwrap_or(&line[..end]);
                    *self = match *self {
                        Chunked::DataEnd if line.is_empty() => Chunked::Size,
                        Chunked::DataEnd => return Err(invalid("missing CRLF after chunk")),
                        Chunked::Trailers if line.is_empty() => Chunked::Done,
                        Chunked::Trailers => Chunked::Trailers,
                        _ => match chunk_size(line)? {
                            0 => Chunked::Trailers,
                            size => Chunked::Data(size),
                        },
                    };
                }
            }
        }
    }
}

fn chunk_size(line: &[u8]) -> Result<u64, WireError> {
    let digits = line
        .split(|byte| *byte == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    std::str::from_utf8(digits)
        .ok()
        .filter(|digits| !digits.is_empty() && digits.len() <= 16)
        .and_then(|digits| u64::from_str_radix(digits, 16).ok())
        .ok_or_else(|| invalid("invalid chunk size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_line_of_the_preface_is_enough() {
        assert!(is_http2_preface(HTTP2_PREFACE));
        assert!(is_http2_preface(b"PRI * HTTP/2.0\r\n"));
        assert!(!is_http2_preface(b"POST / HTTP/1.1\r\n"));
        assert!(!is_http2_preface(b"PRI * HTTP/1.1\r\n"));
    }

    #[test]
    fn simple_heads_only() {
        let mut buffer = BytesMut::from(
            &b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nX-A: 2\r\nContent-Length: 0\r\n\r\nGET"
                [..],
        );
        let Parsed::Simple(request) = read_request(&mut buffer, ()) else {
            panic!("a simple request");
        };
        assert_eq!(request.uri().path(), "/a");
        assert_eq!(request.headers().get_all("x-a").iter().count(), 2);
        assert_eq!(&buffer[..], b"GET");
        assert!(matches!(read_request(&mut buffer, ()), Parsed::Partial));
        for other in [
            &b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"[..],
            b"GET / HTTP/1.0\r\n\r\n",
            b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
            b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        ] {
            let mut buffer = BytesMut::from(other);
            assert!(
                matches!(read_request(&mut buffer, ()), Parsed::Other),
                "{other:?}"
            );
            assert_eq!(&buffer[..], other, "the buffer is left as it was");
        }
    }

    #[test]
    fn response_heads_and_framing() {
        let mut buffer = BytesMut::from(
            &b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"[..],
        );
        let head = parse_response(&mut buffer).expect("valid").expect("whole");
        assert_eq!(head.status, 200);
        assert!(head.keep_alive);
        assert_eq!(
            Framing::of(&Method::GET, &head).expect("framing"),
            Framing::Length(5)
        );
        assert_eq!(
            Framing::of(&Method::HEAD, &head).expect("framing"),
            Framing::Empty
        );
        assert_eq!(&buffer[..], b"hello");
        let mut buffer = BytesMut::from(&b"HTTP/1.0 200 OK\r\n\r\nbody"[..]);
        let head = parse_response(&mut buffer).expect("valid").expect("whole");
        assert!(!head.keep_alive);
        assert_eq!(
            Framing::of(&Method::GET, &head).expect("framing"),
            Framing::Close
        );
        assert!(parse_response(&mut BytesMut::from(&b"SMTP READY\r\n\r\n"[..])).is_err());
    }

    #[test]
    fn connection_values_give_the_keep_alive_verdict() {
        // (value, version, verdict before, verdict after); `keep-alive` as it is usually sent
        // takes a shortcut, the rest the token scan.
        for (value, version, before, after) in [
            (&b"keep-alive"[..], Some(1), true, true),
            (b"Keep-Alive", Some(0), false, true),
            (b"keep-alive", Some(1), false, false),
            (b" keep-alive , foo", Some(0), false, true),
            (b"close", Some(1), true, false),
            (b"keep-alive, close", Some(0), true, false),
            (b"upgrade", Some(1), true, true),
        ] {
            assert_eq!(keep_alive_after(value, version, before), after, "{value:?}");
        }
        assert!(about_this_hop(b"Keep-Alive") && about_this_hop(b"close, keep-alive"));
        assert!(!about_this_hop(b"keep-alive, x-secret"));
    }

    #[test]
    fn clean_response_heads_stay_raw() {
        let mut buffer = BytesMut::from(
            &b"HTTP/1.1 200 OK\r\nServer: up\r\nConnection: keep-alive\r\ncontent-length:3\r\nX-Id:  7 \r\n\r\nabc"[..],
        );
        let head = parse_response(&mut buffer).expect("valid").expect("whole");
        let raw = head.raw.clone().expect("raw lines");
        assert!(head.headers.is_empty());
        assert_eq!(
            raw.as_bytes(),
            b"Server: up\r\ncontent-length:3\r\nX-Id:  7\r\n",
            "Connection about the hop dropped, the rest as sent"
        );
        assert_eq!(
            Framing::of(&Method::GET, &head).expect("framing"),
            Framing::Length(3)
        );
        let mut response = http::Response::new(());
        response.extensions_mut().insert(raw);
        let headers = Headers::take_from(&mut response);
        let has = |name: &'static str| headers.contains(&HeaderName::from_static(name));
        assert!(has("x-id") && has("server") && !has("connection"));
        let map = headers.into_header_map();
        assert_eq!(
            (map.len(), &map["x-id"]),
            (3, &HeaderValue::from_static("7"))
        );

        let mut buffer = BytesMut::from(
            &b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc"[..],
        );
        let head = parse_response(&mut buffer).expect("valid").expect("whole");
        assert!(head.raw.is_some() && !head.keep_alive);
    }

    #[test]
    fn response_heads_with_hop_by_hop_headers_get_a_map() {
        for wire in [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nConnection: x-secret\r\nX-Secret: 1\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        ] {
            let head = parse_response(&mut BytesMut::from(wire))
                .expect("valid")
                .expect("whole");
            assert!(head.raw.is_none(), "{}", String::from_utf8_lossy(wire));
            assert!(!head.headers.is_empty());
        }
    }

    #[test]
    fn chunked_bodies_decode_across_reads() {
        let wire = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n";
        for split in 1..wire.len() {
            let mut state = Chunked::Size;
            let mut buffer = BytesMut::new();
            let mut body = Vec::new();
            for part in [&wire[..split], &wire[split..]] {
                buffer.extend_from_slice(part);
                while let Some(data) = state.decode(&mut buffer).expect("valid") {
                    body.extend_from_slice(&data);
                }
            }
            assert_eq!(
                (body.as_slice(), state),
                (&b"hello world"[..], Chunked::Done)
            );
        }
        let mut state = Chunked::Size;
        assert!(state.decode(&mut BytesMut::from(&b"zz\r\n"[..])).is_err());
    }
}
