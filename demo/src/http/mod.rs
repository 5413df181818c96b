//! HTTP/1.1 on blocking std sockets: message heads, bodies (Content-Length and chunked), responses, and a
//! minimal `http://` client. Owns the wire format only; what to answer is `crate::server`'s business.

pub mod client;
pub mod request;
pub mod response;

use std::io::{self, BufRead, Read};

/// Header fields in arrival order; lookups ignore ASCII case.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Whether any `name` field lists `token` (comma-separated, case-insensitive), as `Connection: close`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.0
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            .flat_map(|(_, value)| value.split(','))
            .any(|item| item.trim().eq_ignore_ascii_case(token))
    }

    /// Adds a field.
    pub fn push(&mut self, name: &str, value: &str) {
        self.0.push((name.to_string(), value.to_string()));
    }
}

/// Why a message could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed the connection before sending a byte: a normal end of keep-alive.
    Closed,
    /// A socket error, including read timeouts.
    Io(io::Error),
    /// The message is malformed or too large; answer with this status and close.
    Invalid(u16, String),
}

impl From<io::Error> for ReadError {
    fn from(error: io::Error) -> Self {
        ReadError::Io(error)
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Closed => write!(formatter, "connection closed"),
            ReadError::Io(error) => write!(formatter, "{error}"),
            ReadError::Invalid(status, message) => write!(formatter, "{message} ({status})"),
        }
    }
}

/// Reads a start line and header fields, at most `limit` bytes in all (else 431). Lines may end in CRLF or LF.
pub fn read_head(reader: &mut impl BufRead, limit: usize) -> Result<(String, Headers), ReadError> {
    let mut budget = limit;
    let mut start_line = read_line(reader, &mut budget)?;
    while start_line.is_empty() {
        start_line = read_line(reader, &mut budget)?; // RFC 9112 §2.2: ignore leading empty lines
    }
    let mut headers = Headers::default();
    loop {
        let line = read_line(reader, &mut budget).map_err(truncated)?;
        if line.is_empty() {
            return Ok((start_line, headers));
        }
        let invalid = |why: &str| ReadError::Invalid(400, format!("{why}: `{line}`"));
        if line.starts_with([' ', '\t']) {
            return Err(invalid("obsolete line folding is not supported"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid("header without `:`"))?;
        if name.is_empty() || name.contains([' ', '\t']) {
            return Err(invalid("invalid header name"));
        }
        headers.push(name, value.trim());
    }
}

/// A connection closed in the middle of a message is an I/O error, not a clean close.
fn truncated(error: ReadError) -> ReadError {
    match error {
        ReadError::Closed => ReadError::Io(io::ErrorKind::UnexpectedEof.into()),
        other => other,
    }
}

/// One line without its line ending, charged against `budget`.
fn read_line(reader: &mut impl BufRead, budget: &mut usize) -> Result<String, ReadError> {
    let mut line = Vec::new();
    let read = reader
        .take(*budget as u64 + 1)
        .read_until(b'\n', &mut line)?;
    if read == 0 {
        return Err(ReadError::Closed);
    }
    if read > *budget {
        return Err(ReadError::Invalid(
            431,
            "request header fields too large".to_string(),
        ));
    }
    *budget -= read;
    if line.last() != Some(&b'\n') {
        return Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into()));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| ReadError::Invalid(400, "header is not UTF-8".to_string()))
}

/// Decodes a chunked body (RFC 9112 §7.1) of at most `limit` bytes (else 413); trailers are discarded.
pub fn read_chunked(reader: &mut impl BufRead, limit: usize) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        let mut line_budget = 4096;
        let line = read_line(reader, &mut line_budget).map_err(truncated)?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| ReadError::Invalid(400, format!("invalid chunk size `{size_text}`")))?;
        if size == 0 {
            let mut trailer_budget = 16 * 1024;
            while !read_line(reader, &mut trailer_budget)
                .map_err(truncated)?
                .is_empty()
            {}
            return Ok(body);
        }
        if body.len().saturating_add(size) > limit {
            return Err(ReadError::Invalid(
                413,
                format!("body exceeds {limit} bytes"),
            ));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf_budget = 2;
        if !read_line(reader, &mut crlf_budget)
            .map_err(truncated)?
            .is_empty()
        {
            return Err(ReadError::Invalid(
                400,
                "chunk data not followed by CRLF".to_string(),
            ));
        }
    }
}

/// The standard reason phrase of `status`.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        418 => "I'm a teapot",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_head_with_mixed_line_endings() {
        let mut input: &[u8] = b"\r\nGET /a?b=1 HTTP/1.1\r\nHost: x\nX-Two:  a, b \r\n\r\nBODY";
        let (start, headers) = read_head(&mut input, 1024).expect("valid head");
        assert_eq!(start, "GET /a?b=1 HTTP/1.1");
        assert_eq!(headers.get("host"), Some("x"));
        assert_eq!(headers.get("x-two"), Some("a, b"));
        assert!(headers.has_token("X-TWO", "B"));
        assert_eq!(input, b"BODY");
    }

    #[test]
    fn head_over_the_limit_is_431() {
        let mut input: &[u8] =
            b"GET / HTTP/1.1\r\nX-Big: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        assert!(matches!(
            read_head(&mut input, 32),
            Err(ReadError::Invalid(431, _))
        ));
    }

    #[test]
    fn malformed_headers_are_400_and_empty_input_is_closed() {
        let mut folded: &[u8] = b"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n";
        assert!(matches!(
            read_head(&mut folded, 1024),
            Err(ReadError::Invalid(400, _))
        ));
        let mut spaced: &[u8] = b"GET / HTTP/1.1\r\nA b: c\r\n\r\n";
        assert!(matches!(
            read_head(&mut spaced, 1024),
            Err(ReadError::Invalid(400, _))
        ));
        let mut empty: &[u8] = b"";
        assert!(matches!(
            read_head(&mut empty, 1024),
            Err(ReadError::Closed)
        ));
    }

    #[test]
    fn decodes_chunked_bodies_with_extensions_and_trailers() {
        let mut input: &[u8] = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        let body = read_chunked(&mut input, 1024).expect("valid chunked body");
        assert_eq!(body, b"Wikipedia in\r\n\r\nchunks.");
        assert_eq!(input, b"NEXT");
    }

    #[test]
    fn chunked_body_over_the_limit_is_413_and_bad_sizes_are_400() {
        let mut big: &[u8] = b"10\r\n0123456789abcdef\r\n0\r\n\r\n";
        assert!(matches!(
            read_chunked(&mut big, 8),
            Err(ReadError::Invalid(413, _))
        ));
        let mut bad: &[u8] = b"zz\r\n";
        assert!(matches!(
            read_chunked(&mut bad, 8),
            Err(ReadError::Invalid(400, _))
        ));
        let mut truncated: &[u8] = b"5\r\nab";
        assert!(matches!(
            read_chunked(&mut truncated, 8),
            Err(ReadError::Io(_))
        ));
    }
}
