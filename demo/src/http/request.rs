//! Incoming requests: the head (request line + headers) and the body framing decided from it.

use std::io::BufRead;

use super::{read_chunked, read_head, Headers, ReadError};

/// Largest request head accepted (else 431).
pub const HEAD_LIMIT: usize = 64 * 1024;
/// Largest request body accepted (else 413).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// A request as read from the connection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    /// Method as sent (methods are case-sensitive).
    pub method: String,
    /// Path part of the target, not decoded.
    pub path: String,
    /// Query part of the target without `?`, not decoded.
    pub query: String,
    /// `HTTP/1.0` (keep-alive only on request) rather than `HTTP/1.1`.
    pub http10: bool,
    /// Header fields.
    pub headers: Headers,
    /// Body, de-chunked.
    pub body: Vec<u8>,
}

/// How the body of a request is delimited.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Framing {
    /// No body.
    Empty,
    /// `Content-Length` bytes.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

impl Request {
    /// The value of query parameter `name` (first occurrence, not decoded).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .split('&')
            .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
    }

    /// Whether the connection stays open after this request.
    pub fn keep_alive(&self) -> bool {
        if self.headers.has_token("connection", "close") {
            false
        } else if self.http10 {
            self.headers.has_token("connection", "keep-alive")
        } else {
            true
        }
    }

    /// How the body is delimited; rejects ambiguous or oversized framing.
    pub fn framing(&self) -> Result<Framing, ReadError> {
        let invalid = |status, message: &str| Err(ReadError::Invalid(status, message.to_string()));
        let length = self.headers.get("content-length");
        match self.headers.get("transfer-encoding") {
            Some(_) if length.is_some() => {
                invalid(400, "both Content-Length and Transfer-Encoding")
            }
            Some(encoding) if encoding.trim().eq_ignore_ascii_case("chunked") => {
                Ok(Framing::Chunked)
            }
            Some(_) => invalid(501, "only chunked transfer-encoding is supported"),
            None => match length.map(|text| text.trim().parse::<usize>()) {
                None => Ok(Framing::Empty),
                Some(Err(_)) => invalid(400, "invalid Content-Length"),
                Some(Ok(size)) if size > BODY_LIMIT => invalid(413, "body exceeds 1 MiB"),
                Some(Ok(0)) => Ok(Framing::Empty),
                Some(Ok(size)) => Ok(Framing::Length(size)),
            },
        }
    }

    /// Whether the client waits for `100 Continue` before sending the body.
    pub fn expects_continue(&self) -> bool {
        self.headers.has_token("expect", "100-continue")
    }
}

/// Reads the head of the next request; the body is left on the reader (see [`read_body`]).
pub fn read_request_head(reader: &mut impl BufRead) -> Result<Request, ReadError> {
    let (line, headers) = read_head(reader, HEAD_LIMIT)?;
    let invalid = || ReadError::Invalid(400, format!("invalid request line `{line}`"));
    let mut words = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(invalid());
    };
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => {
            return Err(ReadError::Invalid(
                505,
                format!("unsupported version `{version}`"),
            ))
        }
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-') {
        return Err(invalid());
    }
    let target = strip_origin(target);
    if !target.starts_with('/') && target != "*" {
        return Err(invalid());
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Ok(Request {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        http10,
        headers,
        body: Vec::new(),
    })
}

/// `http://host/path` (absolute form, as proxies send) → `/path`.
fn strip_origin(target: &str) -> &str {
    match target.strip_prefix("http://") {
        Some(rest) => rest.find('/').map_or("/", |slash| &rest[slash..]),
        None => target,
    }
}

/// Reads the body framed as `framing` into `request.body`.
pub fn read_body(
    reader: &mut impl BufRead,
    request: &mut Request,
    framing: Framing,
) -> Result<(), ReadError> {
    request.body = match framing {
        Framing::Empty => Vec::new(),
        Framing::Length(size) => {
            let mut body = vec![0; size];
            reader.read_exact(&mut body)?;
            body
        }
        Framing::Chunked => read_chunked(reader, BODY_LIMIT)?,
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Request, ReadError> {
        read_request_head(&mut text.as_bytes())
    }

    #[test]
    fn splits_target_into_path_and_query() {
        let request = head("GET /echo/x?a=1&b&c=3 HTTP/1.1\r\n\r\n").expect("valid");
        assert_eq!(
            (request.path.as_str(), request.query.as_str()),
            ("/echo/x", "a=1&b&c=3")
        );
        assert_eq!(request.query_param("c"), Some("3"));
        assert_eq!(request.query_param("b"), Some(""));
        assert_eq!(request.query_param("d"), None);
        let absolute = head("GET http://user:8080/users/1 HTTP/1.1\r\n\r\n").expect("valid");
        assert_eq!(absolute.path, "/users/1");
    }

    #[test]
    fn keep_alive_follows_version_and_connection_header() {
        assert!(head("GET / HTTP/1.1\r\n\r\n").expect("valid").keep_alive());
        assert!(!head("GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            .expect("valid")
            .keep_alive());
        assert!(!head("GET / HTTP/1.0\r\n\r\n").expect("valid").keep_alive());
        assert!(head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            .expect("valid")
            .keep_alive());
    }

    #[test]
    fn framing_rejects_ambiguity_and_oversize() {
        let framing = |headers: &str| {
            head(&format!("POST / HTTP/1.1\r\n{headers}\r\n"))
                .expect("valid")
                .framing()
        };
        assert_eq!(
            framing("Content-Length: 5\r\n").ok(),
            Some(Framing::Length(5))
        );
        assert_eq!(
            framing("Transfer-Encoding: chunked\r\n").ok(),
            Some(Framing::Chunked)
        );
        assert_eq!(framing("").ok(), Some(Framing::Empty));
        assert!(matches!(
            framing("Content-Length: 2000000\r\n"),
            Err(ReadError::Invalid(413, _))
        ));
        assert!(matches!(
            framing("Content-Length: x\r\n"),
            Err(ReadError::Invalid(400, _))
        ));
        assert!(matches!(
            framing("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"),
            Err(ReadError::Invalid(400, _))
        ));
    }

    #[test]
    fn rejects_bad_request_lines() {
        assert!(matches!(
            head("GET /\r\n\r\n"),
            Err(ReadError::Invalid(400, _))
        ));
        assert!(matches!(
            head("GET / HTTP/2.0\r\n\r\n"),
            Err(ReadError::Invalid(505, _))
        ));
        assert!(matches!(
            head("GET nope HTTP/1.1\r\n\r\n"),
            Err(ReadError::Invalid(400, _))
        ));
    }

    #[test]
    fn reads_both_body_framings() {
        let mut input: &[u8] = b"hello";
        let mut request = Request::default();
        read_body(&mut input, &mut request, Framing::Length(5)).expect("body");
        assert_eq!(request.body, b"hello");
        let mut chunked: &[u8] = b"3\r\nabc\r\n0\r\n\r\n";
        read_body(&mut chunked, &mut request, Framing::Chunked).expect("body");
        assert_eq!(request.body, b"abc");
    }
}
