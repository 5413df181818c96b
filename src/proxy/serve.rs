//! Listeners: accept loop with a connection cap, HTTP/1.1 connections with keep-alive, a header
//! read timeout and a bounded head size (hyper answers 400 to malformed heads and 431 to oversized
//! ones), upgrades, and graceful shutdown bounded by a grace period. Connections start on the fast
//! path ([`super::downstream`]) and move to hyper at the first request it does not serve; with
//! [`super::Limits::fast_path`] off they are hyper's from the start. A connection that opens with
//! the HTTP/2 preface (cleartext prior knowledge, h2c: what gRPC clients send) is served by hyper's
//! HTTP/2 server ([`http2_connection`]) through the same request pipeline, on either path. On a
//! gateway with TLS configured, a connection that opens with a TLS handshake goes to
//! [`super::tls`] (and from there to hyper) before any of this.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::downstream::serve_connection;
use super::line_ends::StrictLineEnds;
use super::phases::{handle, Listener};
use super::status::Caller;
use super::Shared;

/// How long in-flight requests get to finish after shutdown is asked for.
const GRACE: Duration = Duration::from_secs(5);

/// The first bytes of every HTTP/2 connection (RFC 9113 §3.4); `PRI` is no HTTP/1.1 method a
/// client sends, so its request line alone tells the protocols apart.
pub(super) const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether the bytes read so far open an HTTP/2 connection (the request line is enough).
pub(super) fn is_http2_preface(bytes: &[u8]) -> bool {
    bytes.starts_with(&HTTP2_PREFACE[..12])
}

pub async fn serve(
    shared: Arc<Shared>,
    listener: TcpListener,
    shutdown: CancellationToken,
    kind: Listener,
) -> io::Result<()> {
    let tracker = TaskTracker::new();
    let open = match kind {
        Listener::Gateway => &shared.metrics.open_gateway,
        Listener::Mesh => &shared.metrics.open_mesh,
    };
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Runtime error (out of descriptors, aborted handshake): report and carry on.
                    tracing::warn!(target: "sandbox::proxy", %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if let Some(accepted) = &shared.worker {
            accepted.fetch_add(1, Ordering::Relaxed);
        }
        let limits = shared.config().limits.clone();
        if open.load(Ordering::Relaxed) >= limits.max_connections as i64 {
            shared
                .metrics
                .refused_connections
                .fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let caller = match kind {
            Listener::Gateway => None,
            Listener::Mesh => shared.caller(peer.ip()),
        };
        let tls = match kind {
            Listener::Gateway => shared.tls(),
            Listener::Mesh => None,
        };
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let open = match kind {
                Listener::Gateway => &shared.metrics.open_gateway,
                Listener::Mesh => &shared.metrics.open_mesh,
            };
            let _open = OpenConnection::new(open);
            // HTTPS on the gateway: served here when the first byte opens a TLS handshake.
            let stream = match tls {
                Some(config) => {
                    let (shared, caller) = (shared.clone(), caller.clone());
                    let served = super::tls::serve_if_tls(
                        config, shared, stream, peer, kind, caller, &limits, &shutdown,
                    );
                    match served.await {
                        Some(cleartext) => cleartext,
                        None => return,
                    }
                }
                None => stream,
            };
            if limits.fast_path {
                // The fast path reads the first bytes itself and hands HTTP/2 to hyper.
                serve_connection(shared.clone(), stream, peer, kind, caller, limits, shutdown)
                    .await;
            } else {
                match starts_http2(&stream, limits.header_read_timeout, &shutdown).await {
                    Some(true) => {
                        http2_connection(shared.clone(), stream, peer, kind, caller, shutdown).await
                    }
                    Some(false) => {
                        hyper_connection(
                            shared.clone(),
                            stream,
                            peer,
                            kind,
                            caller,
                            limits,
                            shutdown,
                        )
                        .await
                    }
                    None => {}
                }
            }
        });
    }
    tracker.close();
    let _ = tokio::time::timeout(GRACE, tracker.wait()).await;
    Ok(())
}

/// A connection served by hyper: what the fast path ([`super::downstream`]) hands over.
pub(super) async fn hyper_connection<I>(
    shared: Arc<Shared>,
    io: I,
    peer: SocketAddr,
    kind: Listener,
    caller: Option<Caller>,
    limits: super::Limits,
    shutdown: CancellationToken,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service =
        service_fn(move |request| handle(shared.clone(), kind, peer, caller.clone(), request));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // Room for a head somewhat over the limit, so the request phases answer it with the
        // proxy's own 431 page (and its headers); beyond twice the limit hyper's bare 431 stops
        // the read, which keeps the buffer bounded.
        .max_buf_size((limits.max_header_bytes * 2).max(8192))
        .keep_alive(true);
    let io = StrictLineEnds::new(io, limits.max_header_bytes * 2);
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

/// Whether `stream` opens with the HTTP/2 preface, peeked (left unread) until its request line is
/// in or differs from the preface's. `None`: close it, as hyper would, because the client sent
/// nothing within the header read `timeout`, went away, or shutdown was asked for.
async fn starts_http2(
    stream: &tokio::net::TcpStream,
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

/// A connection served by hyper's HTTP/2 server (h2c with prior knowledge): each stream is one
/// request through [`handle`]; trailers and streamed bodies pass both ways.
pub(super) async fn http2_connection<I>(
    shared: Arc<Shared>,
    io: I,
    peer: SocketAddr,
    kind: Listener,
    caller: Option<Caller>,
    shutdown: CancellationToken,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service =
        service_fn(move |request| handle(shared.clone(), kind, peer, caller.clone(), request));
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder.timer(TokioTimer::new());
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

/// Counts an open connection in the metrics while it lives.
struct OpenConnection<'a>(&'a AtomicI64);

impl<'a> OpenConnection<'a> {
    fn new(counter: &'a AtomicI64) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        OpenConnection(counter)
    }
}

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
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
}
