//! Outgoing responses: the response model handlers return and the one function that writes it.

use std::io::{self, Write};
use std::time::Duration;

use super::{reason, Headers};

/// What a handler answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Extra header fields (framing and `Connection` are added when writing).
    pub headers: Headers,
    /// The body.
    pub body: Body,
    /// What the connection does after writing.
    pub then: Then,
}

/// A response body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// Bytes sent with `Content-Length`.
    Full(Vec<u8>),
    /// `n` bytes of a repeating alphabet, sent with `Content-Length` without buffering them.
    Pattern(u64),
    /// Lines sent as one chunk each with `Transfer-Encoding: chunked`, flushed, `interval` apart.
    Chunks {
        /// The lines, each ending in `\n`.
        lines: Vec<String>,
        /// Pause between chunks.
        interval: Duration,
    },
}

/// What happens to the connection after the response.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Then {
    /// Keep the connection if the request allows it.
    Continue,
    /// Close the connection.
    Close,
    /// Close and exit the process with this code.
    Exit(i32),
    /// Switch the connection to the WebSocket protocol.
    WebSocket,
}

impl Response {
    /// A response with `body` of `content_type`.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        let mut headers = Headers::default();
        headers.push("Content-Type", content_type);
        Self {
            status,
            headers,
            body: Body::Full(body.into()),
            then: Then::Continue,
        }
    }

    /// A JSON response.
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self::new(status, "application/json", body)
    }

    /// A JSON error body `{"error": message, "service": service}`.
    pub fn error(status: u16, message: &str, service: &str) -> Self {
        let body = crate::json::Object::new()
            .string("error", message)
            .string("service", service)
            .finish();
        Self::json(status, body)
    }

    /// Adds a header field.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push(name, value);
        self
    }

    /// Sets what happens after writing.
    pub fn then(mut self, then: Then) -> Self {
        self.then = then;
        self
    }
}

/// Writes `response`; `head_only` for HEAD requests, `close` adds `Connection: close`. Returns body bytes written.
pub fn write_response(
    writer: &mut impl Write,
    response: &Response,
    head_only: bool,
    close: bool,
) -> io::Result<u64> {
    let status = response.status;
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in &response.headers.0 {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let bodiless = status < 200 || status == 204 || status == 304;
    match &response.body {
        _ if bodiless => {}
        Body::Full(bytes) => head.push_str(&format!("Content-Length: {}\r\n", bytes.len())),
        Body::Pattern(size) => head.push_str(&format!("Content-Length: {size}\r\n")),
        Body::Chunks { .. } => head.push_str("Transfer-Encoding: chunked\r\n"),
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    writer.write_all(head.as_bytes())?;
    if head_only || bodiless {
        writer.flush()?;
        return Ok(0);
    }
    let written = write_body(writer, &response.body)?;
    writer.flush()?;
    Ok(written)
}

fn write_body(writer: &mut impl Write, body: &Body) -> io::Result<u64> {
    match body {
        Body::Full(bytes) => {
            writer.write_all(bytes)?;
            Ok(bytes.len() as u64)
        }
        Body::Pattern(size) => {
            let block: Vec<u8> = (0..16 * 1024)
                .map(|index| b"abcdefghijklmnopqrstuvwxyz"[index % 26])
                .collect();
            let mut remaining = *size;
            while remaining > 0 {
                let step = remaining.min(block.len() as u64);
                writer.write_all(&block[..step as usize])?;
                remaining -= step;
            }
            Ok(*size)
        }
        Body::Chunks { lines, interval } => {
            let mut written = 0;
            for (index, line) in lines.iter().enumerate() {
                if index > 0 {
                    std::thread::sleep(*interval);
                }
                write!(writer, "{:x}\r\n{line}\r\n", line.len())?;
                writer.flush()?;
                written += line.len() as u64;
            }
            writer.write_all(b"0\r\n\r\n")?;
            Ok(written)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(response: &Response, head_only: bool, close: bool) -> String {
        let mut out = Vec::new();
        write_response(&mut out, response, head_only, close).expect("write to memory");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn full_body_gets_content_length() {
        let response = Response::json(200, "{}");
        assert_eq!(
            written(&response, false, true),
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        );
        assert!(written(&response, true, false).ends_with("Content-Length: 2\r\n\r\n"));
    }

    #[test]
    fn chunks_are_framed_and_terminated() {
        let response = Response {
            body: Body::Chunks {
                lines: vec!["a\n".to_string(), "bc\n".to_string()],
                interval: Duration::ZERO,
            },
            ..Response::new(200, "text/plain", "")
        };
        assert!(written(&response, false, false)
            .ends_with("Transfer-Encoding: chunked\r\n\r\n2\r\na\n\r\n3\r\nbc\n\r\n0\r\n\r\n"));
    }

    #[test]
    fn pattern_and_no_content_bodies() {
        let pattern = Response {
            body: Body::Pattern(30),
            ..Response::new(200, "application/octet-stream", "")
        };
        assert!(written(&pattern, false, false).ends_with("\r\n\r\nabcdefghijklmnopqrstuvwxyzabcd"));
        let empty = written(&Response::json(204, "ignored"), false, false);
        assert!(!empty.contains("Content-Length") && empty.ends_with("\r\n\r\n"));
    }
}
