//! Listeners: accept loop with a connection cap, HTTP/1.1 connections with keep-alive, a header
//! read timeout and a bounded head size (hyper answers 400 to malformed heads and 431 to oversized
//! ones), upgrades, and graceful shutdown bounded by a grace period. Connections start on the fast
//! path ([`super::h1::server`]) and move to hyper ([`super::hyper_server`]) at the first request
//! it does not serve; with [`super::Limits::fast_path`] off they are hyper's from the start. A
//! connection that opens with the HTTP/2 preface (cleartext prior knowledge, h2c: what gRPC
//! clients send) is served by hyper's HTTP/2 server through the same request pipeline, on either
//! path. On a gateway with TLS configured, a connection that opens with a TLS handshake goes to
//! [`super::tls`] (and from there to hyper) before any of this. On the mesh intake, a
//! connection starts with a forwarder's PROXY header and is served by [`super::intake`], which
//! comes back here ([`serve_http`]) for HTTP and splices other bytes ([`super::l4`]); on the
//! mesh's handoff socket each connection brings a header and a caller's connection itself
//! ([`super::handoff`]), served by the intake the same way.

use std::io;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::h1::server::serve_connection;
use super::hyper_server::Downstream;
use super::session::Listener;
use super::{Limits, Metrics, Shared};

/// How long in-flight requests get to finish after shutdown is asked for.
const GRACE: Duration = Duration::from_secs(5);

/// What a listener serves connections from.
pub enum Listening {
    /// A TCP port.
    Tcp(TcpListener),
    /// The mesh's handoff socket ([`super::handoff`]): each connection on it brings a caller's.
    #[cfg(unix)]
    Handoff(tokio::net::UnixListener),
}

/// A connection as accepted.
enum Accepted {
    Tcp(TcpStream, std::net::SocketAddr),
    #[cfg(unix)]
    Handoff(tokio::net::UnixStream),
}

impl Listening {
    async fn accept(&self) -> io::Result<Accepted> {
        match self {
            Listening::Tcp(listener) => {
                let (stream, peer) = listener.accept().await?;
                Ok(Accepted::Tcp(stream, peer))
            }
            #[cfg(unix)]
            Listening::Handoff(listener) => {
                let (stream, _) = listener.accept().await?;
                Ok(Accepted::Handoff(stream))
            }
        }
    }
}

pub async fn serve(
    shared: Arc<Shared>,
    listener: Listening,
    shutdown: CancellationToken,
    kind: Listener,
) -> io::Result<()> {
    let tracker = TaskTracker::new();
    let open = open_connections(&shared.metrics, kind);
    loop {
        let accepted = tokio::select! {
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
            drop(accepted);
            continue;
        }
        let (stream, peer) = match accepted {
            Accepted::Tcp(stream, peer) => (stream, peer),
            #[cfg(unix)]
            Accepted::Handoff(handoff) => {
                let shared = shared.clone();
                let shutdown = shutdown.clone();
                tracker.spawn(async move {
                    let metrics = shared.metrics.clone();
                    let _open = OpenConnection::new(open_connections(&metrics, kind));
                    super::intake::serve_handoff(shared, handoff, limits, shutdown).await;
                });
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        // On the intake, the caller is known from the PROXY header (`intake`).
        let caller = match kind {
            Listener::Mesh => shared.caller(peer.ip()),
            Listener::Gateway | Listener::Intake => None,
        };
        let tls = match kind {
            Listener::Gateway => shared.tls(),
            Listener::Mesh | Listener::Intake => None,
        };
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let metrics = shared.metrics.clone();
            let _open = OpenConnection::new(open_connections(&metrics, kind));
            if kind == Listener::Intake {
                return super::intake::serve_connection(shared, stream, limits, shutdown).await;
            }
            let downstream = Downstream {
                shared: shared.clone(),
                kind,
                peer,
                caller,
                called: None,
                limits: limits.clone(),
                shutdown: shutdown.clone(),
                tls: false,
            };
            // HTTPS on the gateway: served here when the first byte opens a TLS handshake.
            let (downstream, stream) = match tls {
                Some(config) => match super::tls::serve_if_tls(config, downstream, stream).await {
                    Some(cleartext) => cleartext,
                    None => return,
                },
                None => (downstream, stream),
            };
            serve_http(stream, downstream, &limits, shutdown).await;
        });
    }
    tracker.close();
    let _ = tokio::time::timeout(GRACE, tracker.wait()).await;
    Ok(())
}

/// Serves an HTTP connection (HTTP/1.1, or HTTP/2 when it opens with the preface): on the fast
/// path when it is on, else with hyper.
pub(super) async fn serve_http(
    stream: TcpStream,
    downstream: Downstream,
    limits: &Limits,
    shutdown: CancellationToken,
) {
    if limits.fast_path {
        // The fast path reads the first bytes itself and hands HTTP/2 to hyper.
        serve_connection(stream, downstream, limits, shutdown).await;
    } else {
        downstream.serve(stream).await;
    }
}

/// The gauge of `kind`'s open connections.
fn open_connections(metrics: &Metrics, kind: Listener) -> &AtomicI64 {
    match kind {
        Listener::Gateway => &metrics.open_gateway,
        Listener::Mesh => &metrics.open_mesh,
        Listener::Intake => &metrics.open_intake,
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
