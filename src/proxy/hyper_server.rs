//! The reference downstream transport: client connections served by hyper, HTTP/1.1
//! ([`Downstream::http1`]: keep-alive, a header read timeout, a bounded head size with hyper's
//! 400 and 431, upgrades) and HTTP/2 with prior knowledge (h2c, what gRPC clients send:
//! [`Downstream::http2`]), each request through [`phases::handle`]. With
//! [`super::Limits::fast_path`] on, connections start on the accelerator ([`super::h1::server`])
//! instead, and come here, with the bytes read so far, at the first request it does not serve.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Empty;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::body::ProxyBody;
use super::deadline::Deadline;
use super::h1::codec::{is_http2_preface, HTTP2_PREFACE};
use super::h1::line_ends::StrictLineEnds;
use super::h1::server::{Rewind, Service};
use super::message::Headers;
use super::phases::{self, handle};
use super::session::{Called, Listener, OverTls};
use super::status::Caller;
use super::{Limits, Shared};

/// `request`, marked ([`OverTls`]) when its connection came over TLS.
fn over_tls<B>(mut request: http::Request<B>, tls: bool) -> http::Request<B> {
    if tls {
        request.extensions_mut().insert(OverTls);
    }
    request
}

/// One accepted client connection: who it is and what it is served with.
pub(super) struct Downstream {
    pub shared: Arc<Shared>,
    pub kind: Listener,
    pub peer: SocketAddr,
    pub caller: Option<Caller>,
    /// On the intake: the service and port the caller dialed.
    pub called: Option<Called>,
    pub limits: Limits,
    pub shutdown: CancellationToken,
    /// Whether the connection came over TLS (its requests say so: `X-Forwarded-Proto: https`).
    pub tls: bool,
}

/// What serves a connection's requests: the request phases, with the connection's facts.
struct Requests {
    shared: Arc<Shared>,
    kind: Listener,
    peer: SocketAddr,
    caller: Option<Caller>,
    called: Option<Called>,
    tls: bool,
}

impl Requests {
    fn handle(
        &self,
        request: http::Request<hyper::body::Incoming>,
    ) -> impl std::future::Future<
        Output = Result<http::Response<super::ProxyBody>, std::convert::Infallible>,
    > {
        handle(
            self.shared.clone(),
            self.kind,
            self.peer,
            self.caller.clone(),
            self.called.clone(),
            over_tls(request, self.tls),
        )
    }
}

impl Downstream {
    /// The requests' side, and the connection's limits and shutdown.
    fn split(self) -> (Requests, Limits, CancellationToken) {
        let Downstream {
            shared,
            kind,
            peer,
            caller,
            called,
            limits,
            shutdown,
            tls,
        } = self;
        let requests = Requests {
            shared,
            kind,
            peer,
            caller,
            called,
            tls,
        };
        (requests, limits, shutdown)
    }

    /// Serves `stream` with hyper from its first byte: HTTP/2 when it opens with the preface,
    /// else HTTP/1.1.
    pub async fn serve(self, stream: TcpStream) {
        match starts_http2(&stream, self.limits.header_read_timeout, &self.shutdown).await {
            Some(true) => self.http2(stream).await,
            Some(false) => self.http1(stream).await,
            None => {}
        }
    }

    /// An HTTP/1.1 connection served by hyper (also what the fast path hands over).
    pub async fn http1<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (requests, limits, shutdown) = self.split();
        let peer = requests.peer;
        let service = service_fn(move |request| requests.handle(request));
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(limits.head_read_bound())
            // A client that shuts its sending side after the request (`nc`, HTTP/1.0 clients)
            // still gets the answer.
            .half_close(true)
            .keep_alive(true);
        let io = StrictLineEnds::new(io, limits.head_read_bound());
        let connection = builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(connection);
        let result = tokio::select! {
            result = connection.as_mut() => result,
            _ = shutdown.cancelled() => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(error) = result {
            tracing::debug!(target: "sandbox::proxy", %peer, %error, "connection ended with an error");
        }
    }

    /// A connection served by hyper's HTTP/2 server (h2c with prior knowledge): each stream is
    /// one request through [`handle`]; trailers and streamed bodies pass both ways.
    pub async fn http2<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (requests, limits, shutdown) = self.split();
        let peer = requests.peer;
        let service = service_fn(move |request| requests.handle(request));
        let mut builder = http2::Builder::new(TokioExecutor::new());
        // As for HTTP/1.1: room for a header list over the limit, so the request phases answer
        // it with the proxy's 431 (hyper's default, 16 KiB, ends the connection with an error).
        let header_list = limits.head_read_bound();
        builder
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(header_list).unwrap_or(u32::MAX));
        let connection = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        let result = tokio::select! {
            result = connection.as_mut() => result,
            _ = shutdown.cancelled() => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(error) = result {
            tracing::debug!(
                target: "sandbox::proxy", %peer, %error, "HTTP/2 connection ended with an error"
            );
        }
    }
}

/// The accelerator's view of a connection: requests go through the phases, and the connection
/// comes back here when the fast path declines one.
impl Service for Downstream {
    // Inlined into the fast server's loop, so that the large request future is built where it is
    // awaited instead of being returned and copied (measured: ~1.5k instructions per request).
    #[inline(always)]
    fn respond(
        &self,
        request: Request<Empty<Bytes>>,
        timer: &mut Deadline,
    ) -> impl std::future::Future<Output = (Response<ProxyBody>, Headers)> + Send {
        phases::respond(
            self.shared.clone(),
            self.kind,
            self.peer,
            self.caller.clone(),
            self.called.clone(),
            request,
            Some(timer),
        )
    }

    async fn hand_over(self, io: Rewind, http2: bool) {
        if http2 {
            self.http2(io).await
        } else {
            self.http1(io).await
        }
    }
}

/// Whether `stream` opens with the HTTP/2 preface, peeked (left unread) until its request line is
/// in or differs from the preface's. `None`: close it, as hyper would, because the client sent
/// nothing within the header read `timeout`, went away, or shutdown was asked for.
async fn starts_http2(
    stream: &TcpStream,
    timeout: Duration,
    shutdown: &CancellationToken,
) -> Option<bool> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut first = [0u8; 12];
    loop {
        let peeked = tokio::select! {
            peeked = stream.peek(&mut first) => peeked,
            () = tokio::time::sleep_until(deadline) => return None,
            () = shutdown.cancelled() => return None,
        };
        match peeked {
            Ok(0) | Err(_) => return None,
            Ok(read) if read == first.len() => return Some(is_http2_preface(&first)),
            Ok(read) if !HTTP2_PREFACE.starts_with(&first[..read]) => return Some(false),
            // A prefix of the preface so far: wait for the rest (peek returns at once while
            // bytes are there, so pause instead of spinning).
            Ok(_) => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
}
