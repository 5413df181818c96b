//! The fast upstream client: a bodiless HTTP/1.1 request written and its response read in the
//! requesting task (no connection task, no channels), over connections kept in [`super::pool`].
//! The response body reads the socket directly and gives the connection back when it ends.
//! Upgrades and requests with bodies use hyper's client instead (see `pool`).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::{Method, Request, Response};
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::body::{BoxError, ProxyBody};
use super::headers::Appended;
use super::pool::{Pool, SendError};
use super::wire::{self, Framing};

/// Largest upstream response head read.
const MAX_HEAD: usize = 64 * 1024;

/// An upstream connection with what was read past the last response.
pub struct Connection {
    pub stream: TcpStream,
    pub buffer: BytesMut,
    pub since: Instant,
}

impl Connection {
    pub fn new(stream: TcpStream) -> Connection {
        Connection {
            stream,
            buffer: BytesMut::with_capacity(8192),
            since: Instant::now(),
        }
    }

    /// Whether the upstream closed (or sent something unasked) while the connection was idle.
    pub fn is_stale(&self) -> bool {
        let mut probe = [0u8; 1];
        !self.buffer.is_empty()
            || !matches!(self.stream.try_read(&mut probe), Err(error) if error.kind() == std::io::ErrorKind::WouldBlock)
    }
}

/// Whether the fast client can send `request`.
pub fn handles<B: Body>(request: &Request<B>) -> bool {
    request.body().is_end_stream() && !request.headers().contains_key(http::header::UPGRADE)
}

/// One exchange on a pooled or new connection. A reused connection that the upstream closed before
/// answering is replaced once, for idempotent methods.
pub async fn send(
    pool: &Arc<Pool>,
    address: SocketAddr,
    request: Request<ProxyBody>,
    appended: &Appended,
) -> Result<Response<ProxyBody>, SendError> {
    let mut head = Vec::with_capacity(512);
    wire::write_request_head(
        &mut head,
        request.method(),
        request.uri(),
        request.headers(),
        appended.as_bytes(),
    );
    let (parts, _) = request.into_parts();
    let method = parts.method;
    wire::recycle(parts.headers);
    let (mut connection, mut reused) = match pool.checkout_raw(address) {
        Some(connection) => (connection, true),
        None => (pool.connect_raw(address).await?, false),
    };
    loop {
        match exchange(&mut connection, &head).await {
            Ok(response) => return finish(pool, address, &method, connection, response),
            Err(Failure::Before(_)) if reused && method.is_idempotent() => {
                connection = pool.connect_raw(address).await?;
                reused = false;
            }
            Err(Failure::Before(error) | Failure::After(error)) => return Err(error),
        }
    }
}

enum Failure {
    /// Nothing of a response arrived.
    Before(SendError),
    After(SendError),
}

async fn exchange(connection: &mut Connection, head: &[u8]) -> Result<wire::ResponseHead, Failure> {
    connection
        .stream
        .write_all(head)
        .await
        .map_err(|error| Failure::Before(SendError::Io(error)))?;
    loop {
        let read = tokio_util::io::read_buf(&mut connection.stream, &mut connection.buffer).await;
        match read {
            Ok(0) if connection.buffer.is_empty() => {
                return Err(Failure::Before(SendError::Closed));
            }
            Ok(0) => return Err(Failure::After(SendError::Closed)),
            Ok(_) => {}
            Err(error) if connection.buffer.is_empty() => {
                return Err(Failure::Before(SendError::Io(error)))
            }
            Err(error) => return Err(Failure::After(SendError::Io(error))),
        }
        match wire::parse_response(&mut connection.buffer) {
            Ok(Some(head)) => return Ok(head),
            Ok(None) if connection.buffer.len() > MAX_HEAD => {
                return Err(Failure::After(SendError::Invalid(
                    "response head too large".into(),
                )))
            }
            Ok(None) => connection.buffer.reserve(4096),
            Err(error) => return Err(Failure::After(SendError::Invalid(error.to_string()))),
        }
    }
}

fn finish(
    pool: &Arc<Pool>,
    address: SocketAddr,
    method: &Method,
    connection: Connection,
    head: wire::ResponseHead,
) -> Result<Response<ProxyBody>, SendError> {
    use http_body_util::BodyExt;
    let framing =
        Framing::of(method, &head).map_err(|error| SendError::Invalid(error.to_string()))?;
    let reusable = head.keep_alive && head.status != http::StatusCode::SWITCHING_PROTOCOLS;
    let mut body = RawBody {
        connection: Some(connection),
        framing,
        reusable,
        pool: pool.clone(),
        address,
    };
    if framing == Framing::Empty {
        body.release();
    }
    let mut response = Response::new(body.boxed_unsync());
    *response.status_mut() = head.status;
    *response.headers_mut() = head.headers;
    if let Some(raw) = head.raw {
        response.extensions_mut().insert(raw);
    }
    Ok(response)
}

/// A response body read straight from the upstream connection.
struct RawBody {
    connection: Option<Connection>,
    framing: Framing,
    reusable: bool,
    pool: Arc<Pool>,
    address: SocketAddr,
}

impl RawBody {
    /// The body ended: the connection goes back to the pool when nothing else was sent on it.
    fn release(&mut self) {
        self.framing = Framing::Empty;
        if let Some(connection) = self.connection.take() {
            if self.reusable && connection.buffer.is_empty() {
                self.pool.give_back_raw(self.address, connection);
            }
        }
    }

    /// The next piece of body already in the buffer, if any.
    fn decode(&mut self) -> Result<Option<Bytes>, BoxError> {
        let Some(connection) = self.connection.as_mut() else {
            return Ok(None);
        };
        let buffer = &mut connection.buffer;
        match &mut self.framing {
            Framing::Empty => Ok(None),
            Framing::Length(left) => {
                if buffer.is_empty() {
                    return Ok(None);
                }
                let take = (*left).min(buffer.len() as u64) as usize;
                *left -= take as u64;
                let data = buffer.split_to(take).freeze();
                if *left == 0 {
                    self.release();
                }
                Ok(Some(data))
            }
            Framing::Chunked(state) => {
                let data = state.decode(buffer)?;
                if *state == wire::Chunked::Done {
                    self.release();
                }
                Ok(data)
            }
            Framing::Close => Ok((!buffer.is_empty()).then(|| buffer.split().freeze())),
        }
    }
}

impl Body for RawBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            match this.decode() {
                Ok(Some(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                Ok(None) => {}
                Err(error) => {
                    this.connection = None;
                    return Poll::Ready(Some(Err(error)));
                }
            }
            let Some(connection) = this.connection.as_mut() else {
                return Poll::Ready(None);
            };
            if connection.buffer.capacity() - connection.buffer.len() < 1024 {
                connection.buffer.reserve(16 * 1024);
            }
            let read = ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut connection.stream),
                context,
                &mut connection.buffer
            ));
            match read {
                Ok(0) if this.framing == Framing::Close => {
                    this.connection = None;
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    this.connection = None;
                    return Poll::Ready(Some(Err(Box::new(SendError::Closed))));
                }
                Ok(_) => {}
                Err(error) => {
                    this.connection = None;
                    return Poll::Ready(Some(Err(Box::new(error))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.connection.is_none() || self.framing == Framing::Empty
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing {
            Framing::Empty => SizeHint::with_exact(0),
            Framing::Length(left) => SizeHint::with_exact(left),
            _ => SizeHint::default(),
        }
    }
}
