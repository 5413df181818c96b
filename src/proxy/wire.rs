//! HTTP/1.1 on the wire for the fast path: request heads parsed with `httparse` into `http` types
//! (header values share the read buffer), response and request heads written into one buffer, and
//! the framing of upstream response bodies (length, chunked, until close). Pure; tested beside
//! itself. Anything unusual is not handled here: the caller falls back to hyper.

use std::cell::RefCell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Uri, Version};

/// Headers a head may have on the fast path (hyper's default limit too).
pub const MAX_HEADERS: usize = 100;

/// What the bytes read so far hold.
pub enum Parsed {
    /// Not a whole head yet.
    Partial,
    /// A head the fast path serves: a bodiless HTTP/1.1 request without connection-level headers.
    Simple { length: usize },
    /// Anything else (malformed, a body, `Connection`, `Upgrade`, `Expect`, HTTP/1.0, …): hyper's.
    Other,
}

/// Classifies the head at the start of `buffer`.
pub fn parse_request(buffer: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let length = match request.parse(buffer) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Other,
    };
    if request.version != Some(1) || request.method == Some("CONNECT") {
        return Parsed::Other;
    }
    let simple = request.headers.iter().all(|header| {
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            return header.value == b"0";
        }
        !(name.eq_ignore_ascii_case("connection")
            || name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("upgrade")
            || name.eq_ignore_ascii_case("expect")
            || name.eq_ignore_ascii_case("te"))
    });
    if simple {
        Parsed::Simple { length }
    } else {
        Parsed::Other
    }
}

/// The request in `head` (a whole head that [`parse_request`] called simple), with `body`.
/// `None` when `http` rejects a part that `httparse` accepted.
pub fn build_request<B>(head: &Bytes, body: B) -> Option<Request<B>> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut slots);
    parsed.parse(head).ok()?;
    let mut request = Request::new(body);
    *request.method_mut() = Method::from_bytes(parsed.method?.as_bytes()).ok()?;
    *request.uri_mut() = Uri::from_maybe_shared(head.slice_ref(parsed.path?.as_bytes())).ok()?;
    *request.version_mut() = Version::HTTP_11;
    let headers = request.headers_mut();
    headers.reserve(parsed.headers.len());
    for header in parsed.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes()).ok()?;
        let value = HeaderValue::from_maybe_shared(head.slice_ref(header.value)).ok()?;
        headers.append(name, value);
    }
    Some(request)
}

/// Writes `HTTP/1.1 <status>` and the headers (adding `Date` when missing), without the final
/// empty line.
pub fn write_response_head(out: &mut Vec<u8>, status: StatusCode, headers: &HeaderMap) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    write_headers(out, headers);
    if !headers.contains_key(header::DATE) {
        out.extend_from_slice(b"date: ");
        with_date(|date| out.extend_from_slice(date));
        out.extend_from_slice(b"\r\n");
    }
}

/// Writes a bodiless request head, with the final empty line.
pub fn write_request_head(out: &mut Vec<u8>, method: &Method, uri: &Uri, headers: &HeaderMap) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(
        uri.path_and_query()
            .map_or("/", |path| path.as_str())
            .as_bytes(),
    );
    out.extend_from_slice(b" HTTP/1.1\r\n");
    write_headers(out, headers);
    out.extend_from_slice(b"\r\n");
}

fn write_headers(out: &mut Vec<u8>, headers: &HeaderMap) {
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
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
    pub headers: HeaderMap,
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
    loop {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut slots);
        let length = match parsed.parse(buffer) {
            Ok(httparse::Status::Complete(length)) => length,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(error) => return Err(invalid(error.to_string())),
        };
        let code = parsed.code.unwrap_or(0);
        if (100..200).contains(&code) && code != 101 {
            buffer.advance(length);
            continue;
        }
        let status = StatusCode::from_u16(code).map_err(|error| invalid(error.to_string()))?;
        let mut keep_alive = parsed.version == Some(1);
        let head = buffer.split_to(length).freeze();
        // Re-parse over the frozen head so that header values share it.
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut slots);
        parsed
            .parse(&head)
            .map_err(|error| invalid(error.to_string()))?;
        let mut headers = HeaderMap::with_capacity(parsed.headers.len());
        for header in parsed.headers.iter() {
            let name = HeaderName::from_bytes(header.name.as_bytes())
                .map_err(|error| invalid(error.to_string()))?;
            let value = HeaderValue::from_maybe_shared(head.slice_ref(header.value))
                .map_err(|error| invalid(error.to_string()))?;
            if name == header::CONNECTION {
                let text = value.as_bytes();
                if contains_token(text, b"close") {
                    keep_alive = false;
                } else if contains_token(text, b"keep-alive") && parsed.version == Some(0) {
                    keep_alive = true;
                }
            }
            headers.append(name, value);
        }
        return Ok(Some(ResponseHead {
            status,
            headers,
            keep_alive,
        }));
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
        if let Some(encoding) = head
            .headers
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .last()
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
    fn simple_heads_only() {
        let simple = b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\nGET";
        assert!(
            matches!(parse_request(simple), Parsed::Simple { length } if length == simple.len() - 3)
        );
        assert!(matches!(
            parse_request(b"GET / HTTP/1.1\r\nHost: x\r\n"),
            Parsed::Partial
        ));
        for other in [
            &b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"[..],
            b"GET / HTTP/1.0\r\n\r\n",
            b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
            b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        ] {
            assert!(matches!(parse_request(other), Parsed::Other), "{other:?}");
        }
        let head =
            Bytes::from_static(b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nX-A: 2\r\n\r\n");
        let request = build_request(&head, ()).expect("request");
        assert_eq!(request.uri().path(), "/a");
        assert_eq!(request.headers().get_all("x-a").iter().count(), 2);
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
