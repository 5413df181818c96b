//! The mesh intake: connections the forwarders hand over. Each opens with a PROXY v2 header
//! (`sandbox_forwarder::wire`: the caller's address, the address it dialed, the mesh token, the
//! service), read here without reading past it (peeked, then exactly its bytes consumed), within
//! [`HEADER_TIMEOUT`] and at most `wire::MAX_LEN` bytes. A bad header or a wrong token closes
//! the connection (counted in `sandbox_proxy_intake_refusals_total`, logged at debug without the
//! token). What the caller's first bytes are (`sandbox_forwarder::sniff`) decides what follows:
//! - an HTTP/1.x request line or the HTTP/2 preface: the connection is served as the mesh's are
//!   (`serve::serve_http`: fast path, hyper, h2), each request's target fixed to the header's
//!   service and sent to the chosen replica's IP at the port dialed;
//! - a TLS ClientHello (its SNI on the span), anything else, or nothing within
//!   [`SNIFF_WINDOW`] (server-first protocols: MySQL, SMTP, …): L4 ([`super::l4`]).
//!
//! The forwarder sniffs and says what it found in the header's sniffed TLV; then an L4
//! connection's bytes never come here: the intake answers with the replicas to connect and
//! follows the forwarder's reports (`l4::serve_remote`). A forwarder on the engine's host hands
//! an HTTP connection over whole instead ([`super::handoff`], [`serve_handoff`]): the same header,
//! checked the same way, then the caller's own socket served here. A header without the TLV (a forwarder
//! image from before it) is sniffed here ([`sniff`]: the caller's bytes peeked, left unread) and
//! an L4 connection spliced here (`l4::serve`).

use std::sync::Arc;
use std::time::Duration;

use sandbox_forwarder::sniff::{self, classify, Sniffed};
use sandbox_forwarder::wire::{self, Header};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::hyper_server::Downstream;
use super::l4;
use super::serve::serve_http;
use super::session::{Called, Listener};
use super::{Limits, Shared};

/// A forwarder writes its header as soon as it connects: one that has not within this time is
/// not one.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the intake waits for the caller's first bytes before it splices at L4: clients of
/// server-first protocols (MySQL, SMTP, …) send nothing until the server greets them.
pub const SNIFF_WINDOW: Duration = sniff::WINDOW;

/// Why a forwarder's connection was refused (the metric's `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// No header within [`HEADER_TIMEOUT`] (or the peer went away first).
    Timeout,
    /// Not a PROXY v2 header of ours (or one asking to dial, which forwarders receive).
    Header,
    /// The token does not match the sandbox's (or none is set).
    Token,
}

impl Refusal {
    fn reason(self) -> &'static str {
        match self {
            Refusal::Timeout => "timeout",
            Refusal::Header => "header",
            Refusal::Token => "token",
        }
    }
}

/// Serves one connection accepted on the intake.
pub(super) async fn serve_connection(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let peer = stream.peer_addr().ok();
    let header = match accept(&shared, &mut stream).await {
        Ok(header) => header,
        Err(refusal) => {
            shared.metrics.record_intake_refusal(refusal.reason());
            tracing::debug!(target: "sandbox::proxy", ?peer, reason = refusal.reason(), "mesh intake connection refused");
            return;
        }
    };
    serve_accepted(shared, stream, header, limits, shutdown).await;
}

/// Serves a connection handed over on the handoff socket ([`super::handoff`]): its header read
/// and checked as on the intake's port (in time, bounded, the token), then the caller's
/// connection that came with it served as a relayed one is. The forwarder hands over only what
/// it sniffed as HTTP.
#[cfg(unix)]
pub(super) async fn serve_handoff(
    shared: Arc<Shared>,
    handoff: tokio::net::UnixStream,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let received = tokio::time::timeout(HEADER_TIMEOUT, super::handoff::receive(&handoff)).await;
    drop(handoff);
    let checked = match received {
        Err(_) => Err(Refusal::Timeout),
        Ok(Err(error)) => {
            tracing::debug!(target: "sandbox::proxy", %error, "mesh handoff not taken");
            Err(Refusal::Header)
        }
        Ok(Ok((header, stream))) if header.sniffed == Some(Sniffed::Http) => {
            check(&shared, &header).map(|()| (header, stream))
        }
        Ok(Ok(_)) => Err(Refusal::Header),
    };
    let (header, stream) = match checked.and_then(|(header, stream)| {
        TcpStream::from_std(stream)
            .map(|stream| (header, stream))
            .map_err(|_| Refusal::Header)
    }) {
        Ok(taken) => taken,
        Err(refusal) => {
            shared.metrics.record_intake_refusal(refusal.reason());
            tracing::debug!(target: "sandbox::proxy", reason = refusal.reason(), "mesh handoff refused");
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    shared
        .metrics
        .intake_handoffs
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    serve_accepted(shared, stream, header, limits, shutdown).await;
}

/// Serves a forwarder's connection whose header has been taken: HTTP at L7, anything else at L4.
async fn serve_accepted(
    shared: Arc<Shared>,
    stream: TcpStream,
    header: Header,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let caller = shared.caller(header.source.ip());
    let called = Called {
        service: header.service.as_str().into(),
        port: header.destination.port(),
    };
    let (sniffed, remote) = match header.sniffed.clone() {
        Some(sniffed) => (sniffed, true),
        None => (sniff(&stream, &shutdown).await, false),
    };
    let (tls, sni) = match sniffed {
        Sniffed::Http => {
            let downstream = Downstream {
                shared: shared.clone(),
                kind: Listener::Intake,
                peer: header.source,
                caller,
                called: Some(called),
                limits: limits.clone(),
                shutdown: shutdown.clone(),
                tls: false,
            };
            serve_http(stream, downstream, &limits, shutdown).await;
            return;
        }
        Sniffed::Tls { sni } => (true, sni),
        Sniffed::Other => (false, None),
    };
    let connection = l4::Connection {
        source: header.source,
        caller,
        called,
        tls,
        sni,
    };
    if remote {
        l4::serve_remote(shared, stream, connection, shutdown).await;
    } else {
        l4::serve(shared, stream, connection, shutdown).await;
    }
}

/// Reads the PROXY header (in time, bounded) and checks its token.
async fn accept(shared: &Shared, stream: &mut TcpStream) -> Result<Header, Refusal> {
    let header = tokio::time::timeout(HEADER_TIMEOUT, read_header(stream))
        .await
        .map_err(|_| Refusal::Timeout)??;
    check(shared, &header)?;
    Ok(header)
}

/// Whether a header read is one the intake takes: a forwarder's (not a dial request) with the
/// sandbox's token.
fn check(shared: &Shared, header: &Header) -> Result<(), Refusal> {
    if header.dial {
        return Err(Refusal::Header);
    }
    let token = shared.mesh_token().ok_or(Refusal::Token)?;
    if !wire::token_matches(&token, &header.token) {
        return Err(Refusal::Token);
    }
    Ok(())
}

/// The header, its bytes consumed and nothing after them: what follows is the caller's.
async fn read_header(stream: &mut TcpStream) -> Result<Header, Refusal> {
    let mut buffer = [0u8; wire::MAX_LEN];
    loop {
        let peeked = stream
            .peek(&mut buffer)
            .await
            .map_err(|_| Refusal::Timeout)?;
        if peeked == 0 {
            return Err(Refusal::Timeout);
        }
        match Header::decode(&buffer[..peeked]) {
            Ok(Some((header, used))) => {
                stream
                    .read_exact(&mut buffer[..used])
                    .await
                    .map_err(|_| Refusal::Header)?;
                return Ok(header);
            }
            Ok(None) if peeked == buffer.len() => return Err(Refusal::Header),
            // Part of a header so far: wait for the rest (peek returns at once while bytes are
            // there, so pause instead of spinning).
            Ok(None) => tokio::time::sleep(Duration::from_millis(1)).await,
            Err(_) => return Err(Refusal::Header),
        }
    }
}

/// Peeks at the caller's first bytes (leaving them unread) until they tell what they are, or
/// [`SNIFF_WINDOW`] passes.
pub(super) async fn sniff(stream: &TcpStream, shutdown: &CancellationToken) -> Sniffed {
    let deadline = tokio::time::Instant::now() + SNIFF_WINDOW;
    let mut buffer = vec![0u8; sniff::MAX_BYTES];
    let mut seen = 0;
    loop {
        let peeked = tokio::select! {
            peeked = stream.peek(&mut buffer) => peeked,
            () = tokio::time::sleep_until(deadline) => return classify(&buffer[..seen], true)
                .unwrap_or(Sniffed::Other),
            () = shutdown.cancelled() => return Sniffed::Other,
        };
        match peeked {
            // Gone already: L4 passes the end on.
            Ok(0) | Err(_) => return classify(&buffer[..seen], true).unwrap_or(Sniffed::Other),
            Ok(read) => seen = read,
        }
        if let Some(sniffed) = classify(&buffer[..seen], seen == buffer.len()) {
            return sniffed;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
