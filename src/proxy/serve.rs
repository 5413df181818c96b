//! Listeners: accept loop with a connection cap, HTTP/1.1 connections with keep-alive, a header
//! read timeout and a bounded head size (hyper answers 400 to malformed heads and 431 to oversized
//! ones), upgrades, and graceful shutdown bounded by a grace period. Connections start on the fast
//! path ([`super::downstream`]) and move to hyper at the first request it does not serve; with
//! [`super::Limits::fast_path`] off they are hyper's from the start.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
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
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let open = match kind {
                Listener::Gateway => &shared.metrics.open_gateway,
                Listener::Mesh => &shared.metrics.open_mesh,
            };
            let _open = OpenConnection::new(open);
            if limits.fast_path {
                serve_connection(shared.clone(), stream, peer, kind, caller, limits, shutdown)
                    .await;
            } else {
                hyper_connection(shared.clone(), stream, peer, kind, caller, limits, shutdown)
                    .await;
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
