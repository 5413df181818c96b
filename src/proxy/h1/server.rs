//! One client connection on the accelerator: request heads read and parsed here (`httparse`),
//! each request answered in this task by the [`Service`] it is given (the proxy's is
//! `hyper_server::Downstream`, which runs the request phases) and its response written with one
//! `write` when the body is already there. The first request the fast path does not serve (a
//! body, `Connection`, `Upgrade`, `Expect`, HTTP/1.0, a malformed or oversized head, a bare LF,
//! …) hands the connection, with the bytes read so far, back to the service
//! ([`Service::hand_over`]: hyper, which answers exactly as before: 400, 431, upgrades); so does
//! a connection that opens with the HTTP/2 preface. With [`crate::proxy::Limits::fast_path`] off
//! this module is not used.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::header;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Empty};
use hyper::body::Body;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::codec::{self, is_http2_preface, Parsed};
use crate::proxy::body::ProxyBody;
use crate::proxy::deadline::Deadline;
use crate::proxy::message::Headers;
use crate::proxy::Limits;

/// Body pieces up to this size are copied next to the head (one write); larger ones are written
/// on their own.
const COPY_LIMIT: usize = 16 * 1024;

/// What answers a connection's requests (as hyper's `service_fn` does for hyper's server), and
/// takes the connection over when the fast path declines a request.
pub trait Service: Send + 'static {
    /// Answers one request: the response (its map left empty) and its headers. `timer` is the
    /// connection's, free while the request is handled (it can time the route timeout).
    fn respond(
        &self,
        request: Request<Empty<Bytes>>,
        timer: &mut Deadline,
    ) -> impl Future<Output = (Response<ProxyBody>, Headers)> + Send;

    /// Serves the rest of the connection, the bytes read so far in front: HTTP/2 when `http2`
    /// (it opened with the preface), else HTTP/1.1.
    fn hand_over(self, io: Rewind, http2: bool) -> impl Future<Output = ()> + Send;
}

/// Serves `stream` until the client closes, the header read timeout passes or shutdown is asked
/// for (between requests).
pub async fn serve_connection<S: Service>(
    mut stream: TcpStream,
    service: S,
    limits: &Limits,
    shutdown: CancellationToken,
) {
    let mut buffer = BytesMut::with_capacity(8192);
    let mut out = Vec::with_capacity(1024);
    let mut timer = Deadline::default();
    let cancelled = shutdown.clone().cancelled_owned();
    tokio::pin!(cancelled);
    // A head this large goes to hyper, whose read bound and the phases' 431 apply to it.
    let max_head = limits.max_header_bytes.max(8192);
    // The HTTP/2 preface can only open a connection.
    let mut first = true;
    loop {
        timer.start(limits.header_read_timeout);
        let request = loop {
            if !buffer.is_empty() {
                match codec::read_request(&mut buffer, Empty::<Bytes>::new()) {
                    Parsed::Simple(request) => break Some(request),
                    Parsed::Other => break None,
                    Parsed::Partial if buffer.len() >= max_head => break None,
                    Parsed::Partial => {}
                }
            }
            if buffer.capacity() - buffer.len() < 1024 {
                buffer.reserve(8192);
            }
            let read = tokio::select! {
                biased;
                read = tokio_util::io::read_buf(&mut stream, &mut buffer) => read,
                () = timer.expired() => return,
                () = &mut cancelled, if buffer.is_empty() => return,
            };
            match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        let Some(request) = request else {
            let http2 = first && is_http2_preface(&buffer);
            let io = Rewind {
                prefix: buffer.freeze(),
                stream,
            };
            return service.hand_over(io, http2).await;
        };
        first = false;
        let head_request = request.method() == Method::HEAD;
        let (response, headers) = service.respond(request, &mut timer).await;
        let keep_alive =
            write_response(&mut stream, &mut out, response, headers, head_request).await;
        if !keep_alive || shutdown.is_cancelled() {
            return;
        }
    }
}

/// How the response body goes on the wire.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    None,
    Raw,
    Chunked,
}

/// Writes the response; `false` when the connection must close (an error mid-body, a write
/// failure, or `Connection: close`).
async fn write_response<W: AsyncWrite + Unpin>(
    stream: &mut W,
    out: &mut Vec<u8>,
    response: Response<ProxyBody>,
    headers: Headers,
    head_request: bool,
) -> bool {
    let (parts, mut body) = response.into_parts();
    let close = headers
        .get(&header::CONNECTION)
        .is_some_and(|value| value.eq_ignore_ascii_case(b"close"));
    out.clear();
    codec::write_response_head(out, parts.status, &headers);
    let code = parts.status.as_u16();
    let mode = if head_request || code < 200 || code == 204 || code == 304 {
        Mode::None
    } else if headers.contains(&header::CONTENT_LENGTH) {
        Mode::Raw
    } else if body.is_end_stream() {
        out.extend_from_slice(b"content-length: 0\r\n");
        Mode::None
    } else if let Some(length) = body.size_hint().exact() {
        out.extend_from_slice(format!("content-length: {length}\r\n").as_bytes());
        Mode::Raw
    } else {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
        Mode::Chunked
    };
    out.extend_from_slice(b"\r\n");
    headers.recycle();
    if mode == Mode::None {
        drop(body);
        return stream.write_all(out).await.is_ok() && !close;
    }
    loop {
        let mut next = body.frame();
        let frame = match futures_util::poll!(&mut next) {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                // Nothing yet: let the client have what is ready (the head, earlier pieces).
                if !out.is_empty() {
                    if stream.write_all(out).await.is_err() {
                        return false;
                    }
                    out.clear();
                }
                next.await
            }
        };
        let data = match frame {
            None => break,
            Some(Err(_)) => {
                // As hyper: what was written stays written, and the connection closes.
                let _ = stream.write_all(out).await;
                return false;
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
        };
        if data.is_empty() {
            continue;
        }
        if mode == Mode::Chunked {
            out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
        }
        if data.len() <= COPY_LIMIT {
            out.extend_from_slice(&data);
        } else {
            if stream.write_all(out).await.is_err() || stream.write_all(&data).await.is_err() {
                return false;
            }
            out.clear();
        }
        if mode == Mode::Chunked {
            out.extend_from_slice(b"\r\n");
        }
        if body.is_end_stream() {
            break;
        }
    }
    drop(body);
    if mode == Mode::Chunked {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    stream.write_all(out).await.is_ok() && !close
}

/// The client stream with the bytes already read in front, for hyper.
pub struct Rewind {
    prefix: Bytes,
    stream: TcpStream,
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let count = self.prefix.len().min(buffer.remaining());
            buffer.put_slice(&self.prefix[..count]);
            self.prefix.advance(count);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(context, buffer)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(context, buffer)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(context)
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderName, HeaderValue, StatusCode};
    use http_body_util::StreamBody;

    use super::*;
    use crate::proxy::body::{empty, full};

    /// What the fast writer sends for `response` with `headers`, and whether it keeps the
    /// connection.
    async fn written(
        status: StatusCode,
        body: ProxyBody,
        headers: Headers,
        head_request: bool,
    ) -> (String, bool) {
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let (mut wire, mut out) = (Vec::new(), Vec::new());
        let keep_alive = write_response(&mut wire, &mut out, response, headers, head_request).await;
        (String::from_utf8_lossy(&wire).into_owned(), keep_alive)
    }

    fn with(name: &'static str, value: &'static str) -> Headers {
        let mut headers = Headers::default();
        headers.append(
            &HeaderName::from_static(name),
            &HeaderValue::from_static(value),
        );
        headers
    }

    #[tokio::test]
    async fn bodiless_responses_send_no_body() {
        let (wire, keep_alive) = written(
            StatusCode::OK,
            full("hello"),
            with("content-length", "5"),
            true,
        )
        .await;
        assert!(wire.starts_with("HTTP/1.1 200 OK\r\n"), "{wire}");
        assert!(wire.contains("content-length: 5\r\n") && wire.ends_with("\r\n\r\n"));
        assert!(keep_alive);
        for status in [StatusCode::NO_CONTENT, StatusCode::NOT_MODIFIED] {
            let (wire, _) = written(status, full("x"), Headers::default(), false).await;
            assert!(wire.ends_with("\r\n\r\n"), "{wire}");
            assert!(!wire.contains("content-length") && !wire.contains("transfer-encoding"));
        }
    }

    #[tokio::test]
    async fn lengths_are_given_or_the_body_is_chunked() {
        let (wire, _) = written(StatusCode::OK, empty(), Headers::default(), false).await;
        assert!(wire.contains("content-length: 0\r\n"), "{wire}");
        assert!(wire.contains("date: "), "a Date when none was given");
        let (wire, _) = written(StatusCode::OK, full("hello"), Headers::default(), false).await;
        assert!(wire.ends_with("content-length: 5\r\n\r\nhello"), "{wire}");
        let pieces = futures_util::stream::iter(["ab", "cde"].map(|piece| {
            Ok::<_, crate::proxy::body::BoxError>(hyper::body::Frame::data(Bytes::from(piece)))
        }));
        let (wire, keep_alive) = written(
            StatusCode::OK,
            StreamBody::new(pieces).boxed_unsync(),
            Headers::default(),
            false,
        )
        .await;
        assert!(
            wire.ends_with("transfer-encoding: chunked\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"),
            "{wire}"
        );
        assert!(keep_alive);
    }

    #[tokio::test]
    async fn connection_close_ends_the_connection() {
        let (wire, keep_alive) =
            written(StatusCode::OK, empty(), with("connection", "close"), false).await;
        assert!(wire.contains("connection: close\r\n"), "{wire}");
        assert!(!keep_alive);
    }
}
