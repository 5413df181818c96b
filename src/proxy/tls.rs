//! HTTPS at the gateway (`gateway: {tls: true}`): rustls (ring, no OpenSSL) terminates TLS, ALPN
//! offers `h2` and `http/1.1`, and the decrypted stream goes to hyper: `h2` to the HTTP/2 server
//! ([`Downstream::http2`]), anything else to the HTTP/1.1 server
//! ([`Downstream::http1`]). The fast path stays on cleartext connections.
//!
//! One port, both schemes: a gateway connection whose first byte is `0x16` (a TLS handshake
//! record; no HTTP/1.1 method nor the HTTP/2 preface starts so) is TLS, any other is served as
//! before (HTTP/1.1 or h2c), so `http://` URLs, scripts and smoke checks keep working when TLS is
//! turned on. The handshake must finish within the header read timeout, and counts as an open
//! connection (the listener's connection cap bounds concurrent handshakes). A failed handshake
//! (an untrusted certificate, a client speaking garbage) closes that connection only.
//!
//! Certificates: the control plane gives a default one (for `localhost`, `127.0.0.1`, `::1`) and
//! a way to issue more ([`Issue`]); a client asking by SNI for a name under `localhost`
//! (`api.localhost`) gets a certificate for that name, issued once and kept. The proxy does not
//! know where the CA is.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;

use super::hyper_server::Downstream;

/// The first byte of a TLS handshake record (RFC 8446 §5.1, `ContentType.handshake`).
const TLS_HANDSHAKE: u8 = 0x16;
/// Names issued on demand and kept; past this, other names get the default certificate.
const MAX_ISSUED: usize = 256;

/// Issues a certificate for a DNS name under `localhost`; `None` when it cannot.
pub type Issue =
    dyn Fn(&str) -> Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> + Send + Sync;

/// Why a TLS configuration could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("the gateway's certificate or key is not usable: {0}")]
    Certificate(#[from] rustls::Error),
}

/// A server configuration for the gateway: `chain` and `key` by default, `issue` for names
/// under `localhost` asked for by SNI, ALPN `h2` then `http/1.1`.
pub fn tls_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    issue: Option<Box<Issue>>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let default = Arc::new(CertifiedKey::from_der(chain, key, &provider)?);
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(LocalNames {
            default,
            issue,
            issued: Mutex::new(HashMap::new()),
        }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Picks the certificate for a client hello (see the module doc).
struct LocalNames {
    default: Arc<CertifiedKey>,
    issue: Option<Box<Issue>>,
    issued: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for LocalNames {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("LocalNames")
    }
}

impl ResolvesServerCert for LocalNames {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let Some(issue) = &self.issue else {
            return Some(self.default.clone());
        };
        let name = match hello.server_name() {
            Some(name) if name.ends_with(".localhost") => name.to_ascii_lowercase(),
            _ => return Some(self.default.clone()),
        };
        let mut issued = self
            .issued
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(key) = issued.get(&name) {
            return Some(key.clone());
        }
        if issued.len() >= MAX_ISSUED {
            return Some(self.default.clone());
        }
        let provider = rustls::crypto::ring::default_provider();
        let key = issue(&name)
            .and_then(|(chain, key)| CertifiedKey::from_der(chain, key, &provider).ok())
            .map(Arc::new);
        match key {
            Some(key) => {
                issued.insert(name, key.clone());
                Some(key)
            }
            None => {
                tracing::warn!(target: "sandbox::proxy", %name, "cannot issue a certificate");
                Some(self.default.clone())
            }
        }
    }
}

/// Serves `stream` as HTTPS when its first byte opens a TLS handshake; otherwise gives it back,
/// unread, for the cleartext path. `None`: done with it (served, or closed because the client
/// sent nothing within the header read timeout, failed the handshake, or shutdown was asked for).
pub(super) async fn serve_if_tls(
    config: Arc<rustls::ServerConfig>,
    downstream: Downstream,
    stream: TcpStream,
) -> Option<(Downstream, TcpStream)> {
    let deadline = tokio::time::Instant::now() + downstream.limits.header_read_timeout;
    let peer = downstream.peer;
    let mut first = [0u8; 1];
    let peeked = tokio::select! {
        peeked = stream.peek(&mut first) => peeked,
        () = tokio::time::sleep_until(deadline) => return None,
        () = downstream.shutdown.cancelled() => return None,
    };
    match peeked {
        Ok(0) | Err(_) => return None,
        Ok(_) if first[0] != TLS_HANDSHAKE => return Some((downstream, stream)),
        Ok(_) => {}
    }
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let handshake = tokio::select! {
        handshake = tokio::time::timeout_at(deadline, acceptor.accept(stream)) => handshake,
        () = downstream.shutdown.cancelled() => return None,
    };
    let stream = match handshake {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::debug!(target: "sandbox::proxy", %peer, %error, "TLS handshake failed");
            downstream
                .shared
                .metrics
                .failed_handshakes
                .fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Err(_) => {
            tracing::debug!(target: "sandbox::proxy", %peer, "TLS handshake timed out");
            downstream
                .shared
                .metrics
                .failed_handshakes
                .fetch_add(1, Ordering::Relaxed);
            return None;
        }
    };
    let downstream = Downstream {
        tls: true,
        ..downstream
    };
    if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
        downstream.http2(stream).await;
    } else {
        downstream.http1(stream).await;
    }
    None
}
