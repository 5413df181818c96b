//! The reference upstream client for HTTP/1.1: hyper's connection API over connections kept in
//! an [`IdlePool`]. It sends what the fast client ([`super::h1::client`]) does not: bodies,
//! upgrades, and everything when [`super::Limits::fast_path`] is off. A connection goes back to
//! the pool when its response body ends (inside that poll: no task per request, unlike
//! hyper-util's legacy client), is dropped when the body is abandoned, and is never reused after
//! an upgrade. A pooled connection that fails is handled by [`super::clients::may_resend`].

use std::error::Error as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;

use super::body::{BoxError, ProxyBody};
use super::clients::{self, innermost, may_resend, UpstreamError, UpstreamRequest};
use super::idle_pool::{IdlePool, Pooled};

/// A pooled hyper connection: its request sender (the connection runs in its own task).
pub struct Sender(SendRequest<ProxyBody>);

impl Pooled for Sender {
    fn is_usable(&self) -> bool {
        !self.0.is_closed()
    }
}

/// The HTTP/1.1 reference client.
pub struct Client {
    idle: Arc<IdlePool<Sender>>,
    connect_timeout: Duration,
}

impl Client {
    pub fn new(idle: Arc<IdlePool<Sender>>, connect_timeout: Duration) -> Client {
        Client {
            idle,
            connect_timeout,
        }
    }

    /// Sends `request` to `address` on a pooled or new connection.
    pub async fn send(
        &self,
        address: SocketAddr,
        request: UpstreamRequest,
    ) -> Result<Response<ProxyBody>, UpstreamError> {
        use http_body_util::BodyExt;
        let mut request = into_http(request);
        if let Some(mut sender) = self.checkout(address).await {
            // What it takes to send the request again once it was written: only kept for those
            // the rule allows.
            let replay =
                may_resend(request.method(), request.body().is_end_stream(), true).then(|| {
                    (
                        request.method().clone(),
                        request.uri().clone(),
                        request.headers().clone(),
                    )
                });
            match sender.try_send_request(request).await {
                Ok(response) => {
                    return Ok(self
                        .wrap(address, sender, response)
                        .map(|body| body.boxed_unsync()))
                }
                Err(mut error) => {
                    let returned = error.take_message();
                    let error = error.into_error();
                    request = match (returned, replay) {
                        // Never written.
                        (Some(returned), _) => returned,
                        (None, Some((method, uri, headers)))
                            if matches!(
                                upstream_error(&error, false),
                                UpstreamError::ClosedBeforeResponse(_)
                            ) =>
                        {
                            let mut again = Request::new(super::body::empty());
                            *again.method_mut() = method;
                            *again.uri_mut() = uri;
                            *again.headers_mut() = headers;
                            again
                        }
                        (None, _) => return Err(upstream_error(&error, false)),
                    };
                }
            }
        }
        let mut sender = self.connect(address).await?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| upstream_error(&error, false))?;
        Ok(self
            .wrap(address, sender, response)
            .map(|body| body.boxed_unsync()))
    }

    fn wrap(
        &self,
        address: SocketAddr,
        sender: SendRequest<ProxyBody>,
        response: Response<Incoming>,
    ) -> Response<PooledBody> {
        let reusable = response.status() != http::StatusCode::SWITCHING_PROTOCOLS;
        let pool = self.idle.clone();
        response.map(|inner| PooledBody {
            inner,
            give_back: reusable.then_some((pool, address, sender)),
        })
    }

    /// A pooled connection that is ready for a request.
    async fn checkout(&self, address: SocketAddr) -> Option<SendRequest<ProxyBody>> {
        loop {
            let Sender(mut sender) = self.idle.checkout(address)?;
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    async fn connect(&self, address: SocketAddr) -> Result<SendRequest<ProxyBody>, UpstreamError> {
        let stream = clients::connect(address, self.connect_timeout).await?;
        let (sender, connection) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|error| upstream_error(&error, false))?;
        tokio::spawn(async move {
            if let Err(error) = connection.with_upgrades().await {
                tracing::debug!(target: "sandbox::proxy", %address, %error, "upstream connection ended");
            }
        });
        Ok(sender)
    }
}

/// `request` as hyper's clients take it.
pub fn into_http(request: UpstreamRequest) -> Request<ProxyBody> {
    let mut http = Request::new(request.body);
    *http.method_mut() = request.method;
    *http.uri_mut() = request.uri;
    *http.headers_mut() = request.headers.into_header_map();
    http
}

/// A hyper client error (HTTP/1.1, or the HTTP/2 cause of hyper-util's) in the shared vocabulary.
pub fn upstream_error(error: &hyper::Error, http2: bool) -> UpstreamError {
    let detail = hyper_detail(error);
    let cause = error
        .source()
        .and_then(|source| source.downcast_ref::<hyper::Error>());
    if error.is_user() {
        // `error from user's Body stream`, caused by the server side's body error (also a
        // `hyper::Error`, e.g. `Invalid chunk size line`): the client's request body failed.
        if let Some(cause) = cause {
            return UpstreamError::RequestBody(cause.to_string());
        }
    }
    if error.is_parse() || error.is_parse_status() {
        return UpstreamError::Malformed(detail);
    }
    if error.is_incomplete_message() {
        return UpstreamError::ClosedBeforeResponse(detail);
    }
    if error.is_canceled() {
        // A queued request canceled by the connection's own error.
        return match cause {
            Some(cause) if cause.is_parse() => UpstreamError::Malformed(detail),
            Some(cause) if cause.is_incomplete_message() || has_io_source(cause) => {
                UpstreamError::ClosedBeforeResponse(detail)
            }
            // Bytes an upstream sent before it was asked anything (hyper's "unexpected
            // message", which has no predicate of its own): garbage, not a reset.
            Some(_) => UpstreamError::Malformed(detail),
            None => UpstreamError::ClosedBeforeResponse(detail),
        };
    }
    if has_io_source(error) && !http2 {
        return UpstreamError::ClosedBeforeResponse(detail);
    }
    UpstreamError::Reset(detail)
}

fn has_io_source(error: &hyper::Error) -> bool {
    error
        .source()
        .is_some_and(|source| source.downcast_ref::<std::io::Error>().is_some())
}

/// hyper's message with its cause: `invalid HTTP version parsed`, `connection closed before
/// message completed`.
fn hyper_detail(error: &hyper::Error) -> String {
    match error.source() {
        Some(source) => format!("{error}: {}", innermost(source)),
        None => error.to_string(),
    }
}

/// A response body that returns its connection to the pool when it ends.
pub struct PooledBody {
    inner: Incoming,
    give_back: Option<(Arc<IdlePool<Sender>>, SocketAddr, SendRequest<ProxyBody>)>,
}

impl PooledBody {
    fn release(&mut self) {
        if let Some((pool, address, sender)) = self.give_back.take() {
            if !sender.is_closed() {
                pool.give_back(address, Sender(sender));
            }
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(context) {
            Poll::Ready(Some(Ok(frame))) => {
                if this.inner.is_end_stream() {
                    this.release();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                this.release();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(error))) => {
                this.give_back = None;
                Poll::Ready(Some(Err(error.into())))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
