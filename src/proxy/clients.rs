//! The one upstream dispatch, after linkerd2-proxy's `Client::{H2, Http1, …}`: each request goes
//! to one of three clients ([`Client`]), and every failure comes back in one vocabulary
//! ([`UpstreamError`]) that `forward::classify` matches on.
//!
//! - [`Client::FastH1`]: the accelerator ([`super::h1::client`]), bodiless HTTP/1.1 requests
//!   without an upgrade, when [`super::Limits::fast_path`] is on;
//! - [`Client::HyperH1`]: the reference ([`super::hyper_client`]), every other HTTP/1.1 request;
//! - [`Client::H2`]: hyper-util's pooled client for h2c replicas (`http2: true`; one multiplexed
//!   connection per replica).
//!
//! All three open connections with [`connect`] (`upstream::connect`: straight, or through a
//! forwarder's dial port where the host cannot connect containers).
//!
//! Both HTTP/1.1 clients keep their connections in an [`IdlePool`] and follow one rule for a
//! pooled connection that turns out stale (see [`may_resend`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Response, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use super::body::ProxyBody;
use super::config::Limits;
use super::h1;
use super::hyper_client;
use super::idle_pool::{IdlePool, IDLE_TIMEOUT, MAX_IDLE_PER_REPLICA};
use super::message::Headers;

/// A request for one try, as `upstream_request_filter` and `forward` prepared it.
pub struct UpstreamRequest {
    pub method: Method,
    /// Origin form (`/path?query`) for HTTP/1.1, absolute form for h2c.
    pub uri: Uri,
    pub headers: Headers,
    pub body: ProxyBody,
}

/// Which client sends a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    FastH1,
    HyperH1,
    H2,
}

impl Client {
    /// The client for `request` to a replica that speaks h2c when `http2`.
    pub fn for_request(http2: bool, fast_path: bool, request: &UpstreamRequest) -> Client {
        use hyper::body::Body;
        if http2 {
            Client::H2
        } else if fast_path
            && request.body.is_end_stream()
            && !request.headers.contains(&http::header::UPGRADE)
        {
            Client::FastH1
        } else {
            Client::HyperH1
        }
    }
}

/// Why an exchange with a replica failed: one vocabulary for the three clients.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The connection could not be opened (refused, unreachable).
    #[error("{0}")]
    Connect(String),
    #[error("connect timed out after {0:?}")]
    ConnectTimeout(Duration),
    /// The connection closed or was reset before any byte of the response arrived.
    #[error("{0}")]
    ClosedBeforeResponse(String),
    /// The connection failed while the response was arriving, or the stream was reset.
    #[error("{0}")]
    Reset(String),
    /// What the replica sent is not an HTTP response (or came before it was asked anything).
    #[error("{0}")]
    Malformed(String),
    /// The client's request body failed while it was being sent: the client's fault.
    #[error("{0}")]
    RequestBody(String),
}

/// The rule for a request that failed on a connection taken from the idle pool, for both
/// HTTP/1.1 clients: it is sent once more, on a fresh connection, when nothing of the response
/// arrived and either nothing of the request was written (`written` false: the upstream cannot
/// have seen it) or the request is idempotent and bodiless (sending it again repeats nothing the
/// upstream may have half done, and needs nothing kept; RFC 9110 §9.2.2). A POST that was written
/// is never sent twice: the upstream may have acted on it before it closed the connection.
pub fn may_resend(method: &Method, bodiless: bool, written: bool) -> bool {
    !written || (method.is_idempotent() && bodiless)
}

/// The upstream clients, shared by every request.
pub struct Clients {
    fast: h1::client::Client,
    hyper: hyper_client::Client,
    http2: hyper_util::client::legacy::Client<Connector, ProxyBody>,
}

/// hyper-util's connector for h2c replicas: [`connect`], as the other clients open theirs (so
/// a replica reached through its forwarder's dial port is reached so over h2c too).
#[derive(Debug, Clone, Copy)]
pub struct Connector {
    timeout: Duration,
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<TcpStream>;
    type Error = UpstreamError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, UpstreamError>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), UpstreamError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let timeout = self.timeout;
        Box::pin(async move {
            // Requests to replicas carry their address as the authority.
            let address: SocketAddr = uri
                .authority()
                .and_then(|authority| authority.as_str().parse().ok())
                .ok_or_else(|| UpstreamError::Connect(format!("`{uri}` names no address")))?;
            connect(address, timeout).await.map(TokioIo::new)
        })
    }
}

impl Clients {
    pub fn new(limits: &Limits) -> Clients {
        let connector = Connector {
            timeout: limits.connect_timeout,
        };
        Clients {
            fast: h1::client::Client::new(
                Arc::new(IdlePool::new(MAX_IDLE_PER_REPLICA, IDLE_TIMEOUT)),
                limits.connect_timeout,
            ),
            hyper: hyper_client::Client::new(
                Arc::new(IdlePool::new(MAX_IDLE_PER_REPLICA, IDLE_TIMEOUT)),
                limits.connect_timeout,
            ),
            http2: hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                .pool_timer(TokioTimer::new())
                .pool_idle_timeout(IDLE_TIMEOUT)
                .http2_only(true)
                .build(connector),
        }
    }

    /// One exchange with the replica at `address`, by the client [`Client::for_request`] picks.
    pub async fn send(
        &self,
        http2: bool,
        fast_path: bool,
        address: SocketAddr,
        request: UpstreamRequest,
    ) -> Result<Response<ProxyBody>, UpstreamError> {
        match Client::for_request(http2, fast_path, &request) {
            Client::FastH1 => self.fast.send(address, request).await,
            Client::HyperH1 => self.hyper.send(address, request).await,
            Client::H2 => self.send_h2(request).await,
        }
    }

    async fn send_h2(
        &self,
        request: UpstreamRequest,
    ) -> Result<Response<ProxyBody>, UpstreamError> {
        use http_body_util::BodyExt;
        let response = self
            .http2
            .request(hyper_client::into_http(request))
            .await
            .map_err(h2_error)?;
        Ok(response.map(|body| body.map_err(Into::into).boxed_unsync()))
    }
}

/// Opens a connection to `address` within `timeout`.
pub async fn connect(address: SocketAddr, timeout: Duration) -> Result<TcpStream, UpstreamError> {
    let stream = tokio::time::timeout(timeout, super::upstream::connect(address))
        .await
        .map_err(|_| UpstreamError::ConnectTimeout(timeout))?
        .map_err(|error| UpstreamError::Connect(error.to_string()))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// hyper-util's error, in the shared vocabulary.
fn h2_error(error: hyper_util::client::legacy::Error) -> UpstreamError {
    use std::error::Error as _;
    if error.is_connect() {
        return UpstreamError::Connect(innermost(&error));
    }
    match error
        .source()
        .and_then(|source| source.downcast_ref::<hyper::Error>())
    {
        Some(hyper_error) => hyper_client::upstream_error(hyper_error, true),
        None => UpstreamError::Reset(innermost(&error)),
    }
}

/// The most specific message in an error chain, like `Connection refused (os error 111)`.
pub fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_post_is_never_sent_twice() {
        assert!(!may_resend(&Method::POST, true, true));
        assert!(may_resend(&Method::POST, false, false), "never written");
        assert!(may_resend(&Method::GET, true, true));
        assert!(!may_resend(&Method::PUT, false, true), "a body is not kept");
    }
}
