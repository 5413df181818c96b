//! One client connection on the fast path: request heads read and parsed here (`httparse`), each
//! request handled in this task ([`super::phases::handle`]) and its response written with one
//! `write` when the body is already there. The first request the fast path does not serve (a
//! body, `Connection`, `Upgrade`, `Expect`, HTTP/1.0, a malformed or oversized head, a bare LF,
//! …) hands the connection, with the bytes read so far, to hyper for the rest of its life
//! ([`super::serve::hyper_connection`]), which answers exactly as before (400, 431, upgrades);
//! a connection that opens with the HTTP/2 preface goes to [`super::serve::http2_connection`].
//! With [`super::Limits::fast_path`] off this module is not used.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::header;
use http::{Method, Response};
use http_body_util::{BodyExt, Empty};
use hyper::body::Body;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use tokio_util::sync::CancellationToken;

use super::body::ProxyBody;
use super::deadline::Deadline;
use super::headers::Appended;
use super::phases::{respond, Listener};
use super::serve::{http2_connection, hyper_connection, is_http2_preface};
use super::status::Caller;
use super::wire::{self, Parsed};
use super::{Limits, Shared};

/// Body pieces up to this size are copied next to the head (one write); larger ones are written
/// on their own.
const COPY_LIMIT: usize = 16 * 1024;

/// Serves `stream` until the client closes, the header read timeout passes or shutdown is asked
/// for (between requests).
pub async fn serve_connection(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    peer: SocketAddr,
    kind: Listener,
    caller: Option<Caller>,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let mut buffer = BytesMut::with_capacity(8192);
    let mut out = Vec::with_capacity(1024);
    let mut timer = Deadline::default();
    let cancelled = shutdown.clone().cancelled_owned();
    tokio::pin!(cancelled);
    let max_head = limits.max_header_bytes.max(8192);
    // The HTTP/2 preface can only open a connection.
    let mut first = true;
    loop {
        timer.start(limits.header_read_timeout);
        let request = loop {
            if !buffer.is_empty() {
                match wire::read_request(&mut buffer, Empty::<Bytes>::new()) {
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
            if http2 {
                return http2_connection(shared, io, peer, kind, caller, shutdown).await;
            }
            return hyper_connection(shared, io, peer, kind, caller, limits, shutdown).await;
        };
        first = false;
        let head_request = request.method() == Method::HEAD;
        let (response, appended) = respond(
            shared.clone(),
            kind,
            peer,
            caller.clone(),
            request,
            Some(&mut timer),
        )
        .await;
        let keep_alive =
            write_response(&mut stream, &mut out, response, &appended, head_request).await;
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
async fn write_response(
    stream: &mut TcpStream,
    out: &mut Vec<u8>,
    response: Response<ProxyBody>,
    appended: &Appended,
    head_request: bool,
) -> bool {
    let (parts, mut body) = response.into_parts();
    let close = parts
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .any(|value| value.as_bytes().eq_ignore_ascii_case(b"close"));
    out.clear();
    let raw = parts.extensions.get::<wire::RawHeaders>();
    wire::write_response_head(out, parts.status, &parts.headers, raw);
    out.extend_from_slice(appended.as_bytes());
    let code = parts.status.as_u16();
    let mode = if head_request || code < 200 || code == 204 || code == 304 {
        Mode::None
    } else if parts.headers.contains_key(header::CONTENT_LENGTH)
        || raw.is_some_and(|raw| raw.content_length().is_some())
    {
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
    wire::recycle(parts.headers);
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
struct Rewind {
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
