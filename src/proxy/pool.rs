//! HTTP/1.1 connections to replicas, kept alive and reused. A connection goes back to the pool
//! when its response body ends (inside that poll: no task per request, unlike hyper-util's
//! legacy client), is dropped when the body is abandoned, and is never reused after an upgrade.
//! A request that a stale pooled connection refused before sending is retried once on a fresh
//! connection.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::body::{BoxError, ProxyBody};
use super::client;
use super::fasthash::FastMap;
use super::headers::Appended;

/// Idle connections kept per replica.
const MAX_IDLE_PER_REPLICA: usize = 256;
/// Idle connections older than this are closed instead of reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a request could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{0}")]
    Connect(std::io::Error),
    #[error("connect timed out after {0:?}")]
    ConnectTimeout(Duration),
    #[error(transparent)]
    Http(#[from] hyper::Error),
    /// The fast client's connection failed.
    #[error("{0}")]
    Io(std::io::Error),
    #[error("connection closed before message completed")]
    Closed,
    /// The fast client could not read the response.
    #[error("{0}")]
    Invalid(String),
}

struct Idle {
    sender: SendRequest<ProxyBody>,
    since: Instant,
}

/// The pool, shared by every request.
pub struct Pool {
    idle: Mutex<FastMap<SocketAddr, Vec<Idle>>>,
    /// Connections of the fast client ([`super::client`]).
    raw_idle: Mutex<FastMap<SocketAddr, Vec<client::Connection>>>,
    connect_timeout: Duration,
}

impl Pool {
    pub fn new(connect_timeout: Duration) -> Arc<Pool> {
        Arc::new(Pool {
            idle: Mutex::new(FastMap::default()),
            raw_idle: Mutex::new(FastMap::default()),
            connect_timeout,
        })
    }

    /// Sends `request` to `address` on a pooled or new connection: bodiless requests with the fast
    /// client when `fast_path` is on, the others (bodies, upgrades) with hyper's.
    pub async fn send(
        self: &Arc<Self>,
        address: SocketAddr,
        mut request: Request<ProxyBody>,
        appended: &Appended,
        fast_path: bool,
    ) -> Result<Response<ProxyBody>, SendError> {
        use http_body_util::BodyExt;
        if fast_path && client::handles(&request) {
            return client::send(self, address, request, appended).await;
        }
        appended.merge_into(request.headers_mut());
        let response = self.send_hyper(address, request).await?;
        Ok(response.map(|body| body.boxed_unsync()))
    }

    /// A connection for the fast client, if a live one is idle.
    pub(crate) fn checkout_raw(&self, address: SocketAddr) -> Option<client::Connection> {
        let mut idle = self
            .raw_idle
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let list = idle.get_mut(&address)?;
        while let Some(connection) = list.pop() {
            if !connection.is_stale() && connection.since.elapsed() <= IDLE_TIMEOUT {
                return Some(connection);
            }
        }
        None
    }

    /// A new connection for the fast client.
    pub(crate) async fn connect_raw(
        &self,
        address: SocketAddr,
    ) -> Result<client::Connection, SendError> {
        Ok(client::Connection::new(self.open(address).await?))
    }

    pub(crate) fn give_back_raw(&self, address: SocketAddr, mut connection: client::Connection) {
        let mut idle = self
            .raw_idle
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let list = idle.entry(address).or_default();
        if list.len() < MAX_IDLE_PER_REPLICA {
            connection.since = Instant::now();
            list.push(connection);
        }
    }

    async fn open(&self, address: SocketAddr) -> Result<TcpStream, SendError> {
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(address))
            .await
            .map_err(|_| SendError::ConnectTimeout(self.connect_timeout))?
            .map_err(SendError::Connect)?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    async fn send_hyper(
        self: &Arc<Self>,
        address: SocketAddr,
        request: Request<ProxyBody>,
    ) -> Result<Response<PooledBody>, SendError> {
        let mut request = request;
        if let Some(mut sender) = self.checkout(address).await {
            match sender.try_send_request(request).await {
                Ok(response) => return Ok(self.wrap(address, sender, response)),
                Err(mut error) => match error.take_message() {
                    // Never written: the connection was stale; try once more on a fresh one.
                    Some(returned) => request = returned,
                    None => return Err(SendError::Http(error.into_error())),
                },
            }
        }
        let mut sender = self.connect(address).await?;
        let response = sender.send_request(request).await?;
        Ok(self.wrap(address, sender, response))
    }

    fn wrap(
        self: &Arc<Self>,
        address: SocketAddr,
        sender: SendRequest<ProxyBody>,
        response: Response<Incoming>,
    ) -> Response<PooledBody> {
        let reusable = response.status() != http::StatusCode::SWITCHING_PROTOCOLS;
        let pool = self.clone();
        response.map(|inner| PooledBody {
            inner,
            give_back: reusable.then_some((pool, address, sender)),
        })
    }

    async fn checkout(&self, address: SocketAddr) -> Option<SendRequest<ProxyBody>> {
        loop {
            let idle = {
                let mut idle = self
                    .idle
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner());
                idle.get_mut(&address)?.pop()?
            };
            if idle.sender.is_closed() || idle.since.elapsed() > IDLE_TIMEOUT {
                continue;
            }
            let mut sender = idle.sender;
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    async fn connect(&self, address: SocketAddr) -> Result<SendRequest<ProxyBody>, SendError> {
        let stream = self.open(address).await?;
        let (sender, connection) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await?;
        tokio::spawn(async move {
            if let Err(error) = connection.with_upgrades().await {
                tracing::debug!(target: "sandbox::proxy", %address, %error, "upstream connection ended");
            }
        });
        Ok(sender)
    }

    fn give_back(&self, address: SocketAddr, sender: SendRequest<ProxyBody>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let list = idle.entry(address).or_default();
        if list.len() < MAX_IDLE_PER_REPLICA {
            list.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }
}

/// A response body that returns its connection to the pool when it ends.
pub struct PooledBody {
    inner: Incoming,
    give_back: Option<(Arc<Pool>, SocketAddr, SendRequest<ProxyBody>)>,
}

impl PooledBody {
    fn release(&mut self) {
        if let Some((pool, address, sender)) = self.give_back.take() {
            pool.give_back(address, sender);
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
