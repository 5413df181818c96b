//! The fast upstream client (the accelerator's): a bodiless HTTP/1.1 request written and its
//! response read in the requesting task (no connection task, no channels), over connections kept
//! in an [`IdlePool`]. The response body reads the socket directly and gives the connection back
//! when it ends. Upgrades and requests with bodies go to hyper's client instead
//! ([`crate::proxy::clients`] decides). A pooled connection that fails is handled by
//! [`may_resend`], the rule both HTTP/1.1 clients share.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Method, Response};
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::codec::{self, Framing};
use crate::proxy::body::{BoxError, ProxyBody};
use crate::proxy::clients::{self, may_resend, UpstreamError, UpstreamRequest};
use crate::proxy::idle_pool::{IdlePool, Pooled};

/// Largest upstream response head read.
const MAX_HEAD: usize = 64 * 1024;

/// What hyper says when a connection ends before the message does; the fast client says the same.
const CLOSED: &str = "connection closed before message completed";

/// An upstream connection with what was read past the last response.
pub struct Connection {
    stream: TcpStream,
    buffer: BytesMut,
}

impl Connection {
    fn new(stream: TcpStream) -> Connection {
        Connection {
            stream,
            buffer: BytesMut::with_capacity(8192),
        }
    }
}

impl Pooled for Connection {
    /// Whether the upstream did not close (or send something unasked) while the connection was
    /// idle: one non-blocking read.
    fn is_usable(&self) -> bool {
        let mut probe = [0u8; 1];
        self.buffer.is_empty()
            && matches!(self.stream.try_read(&mut probe), Err(error) if error.kind() == std::io::ErrorKind::WouldBlock)
    }
}

/// The fast HTTP/1.1 client.
pub struct Client {
    idle: Arc<IdlePool<Connection>>,
    connect_timeout: Duration,
}

impl Client {
    pub fn new(idle: Arc<IdlePool<Connection>>, connect_timeout: Duration) -> Client {
        Client {
            idle,
            connect_timeout,
        }
    }

    /// One exchange on a pooled or new connection (`request` is bodiless and no upgrade).
    pub async fn send(
        &self,
        address: SocketAddr,
        request: UpstreamRequest,
    ) -> Result<Response<ProxyBody>, UpstreamError> {
        let mut head = Vec::with_capacity(512);
        codec::write_request_head(&mut head, &request.method, &request.uri, &request.headers);
        request.headers.recycle();
        let method = request.method;
        let (mut connection, mut reused) = match self.idle.checkout(address) {
            Some(connection) => (connection, true),
            None => (self.connect(address).await?, false),
        };
        loop {
            match exchange(&mut connection, &head).await {
                Ok(response) => return self.finish(address, &method, connection, response),
                Err(Failure::Before { error, written })
                    if reused && may_resend(&method, true, written) =>
                {
                    tracing::debug!(target: "sandbox::proxy", %address, %error, "stale pooled connection, sending again");
                    connection = self.connect(address).await?;
                    reused = false;
                }
                Err(Failure::Before { error, .. } | Failure::After(error)) => return Err(error),
            }
        }
    }

    async fn connect(&self, address: SocketAddr) -> Result<Connection, UpstreamError> {
        Ok(Connection::new(
            clients::connect(address, self.connect_timeout).await?,
        ))
    }

    fn finish(
        &self,
        address: SocketAddr,
        method: &Method,
        connection: Connection,
        head: codec::ResponseHead,
    ) -> Result<Response<ProxyBody>, UpstreamError> {
        use http_body_util::BodyExt;
        let framing = Framing::of(method, &head)
            .map_err(|error| UpstreamError::Malformed(error.to_string()))?;
        let reusable = head.keep_alive && head.status != http::StatusCode::SWITCHING_PROTOCOLS;
        let mut body = RawBody {
            connection: Some(connection),
            framing,
            reusable,
            pool: self.idle.clone(),
            address,
        };
        if framing == Framing::Empty {
            body.release();
        }
        let mut response = Response::new(body.boxed_unsync());
        *response.status_mut() = head.status;
        *response.headers_mut() = head.headers;
        if let Some(raw) = head.raw {
            crate::proxy::message::with_raw_lines(&mut response, raw);
        }
        Ok(response)
    }
}

enum Failure {
    /// Nothing of a response arrived; `written`: some of the request may have reached the socket.
    Before {
        error: UpstreamError,
        written: bool,
    },
    After(UpstreamError),
}

async fn exchange(
    connection: &mut Connection,
    head: &[u8],
) -> Result<codec::ResponseHead, Failure> {
    write_head(&mut connection.stream, head).await?;
    loop {
        let read = tokio_util::io::read_buf(&mut connection.stream, &mut connection.buffer).await;
        let before = |error| Failure::Before {
            error,
            written: true,
        };
        match read {
            Ok(0) if connection.buffer.is_empty() => {
                return Err(before(UpstreamError::ClosedBeforeResponse(CLOSED.into())));
            }
            Ok(0) => return Err(Failure::After(UpstreamError::Reset(CLOSED.into()))),
            Ok(_) => {}
            Err(error) if connection.buffer.is_empty() => {
                return Err(before(UpstreamError::ClosedBeforeResponse(
                    error.to_string(),
                )))
            }
            Err(error) => return Err(Failure::After(UpstreamError::Reset(error.to_string()))),
        }
        match codec::parse_response(&mut connection.buffer) {
            Ok(Some(head)) => return Ok(head),
            Ok(None) if connection.buffer.len() > MAX_HEAD => {
                return Err(Failure::After(UpstreamError::Malformed(
                    "response head too large".into(),
                )))
            }
            Ok(None) => connection.buffer.reserve(4096),
            Err(error) => return Err(Failure::After(UpstreamError::Malformed(error.to_string()))),
        }
    }
}

/// Writes the request head; a first write that fails wrote nothing (`written` false).
async fn write_head(stream: &mut TcpStream, head: &[u8]) -> Result<(), Failure> {
    let failed = |error: std::io::Error, written| Failure::Before {
        error: UpstreamError::ClosedBeforeResponse(error.to_string()),
        written,
    };
    let first = match stream.write(head).await {
        Ok(0) => return Err(failed(std::io::ErrorKind::WriteZero.into(), false)),
        Ok(count) => count,
        Err(error) => return Err(failed(error, false)),
    };
    stream
        .write_all(&head[first..])
        .await
        .map_err(|error| failed(error, true))
}

/// A response body read straight from the upstream connection.
struct RawBody {
    connection: Option<Connection>,
    framing: Framing,
    reusable: bool,
    pool: Arc<IdlePool<Connection>>,
    address: SocketAddr,
}

impl RawBody {
    /// The body ended: the connection goes back to the pool when nothing else was sent on it.
    fn release(&mut self) {
        self.framing = Framing::Empty;
        if let Some(connection) = self.connection.take() {
            if self.reusable && connection.buffer.is_empty() {
                self.pool.give_back(self.address, connection);
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
                if *state == codec::Chunked::Done {
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
                    return Poll::Ready(Some(Err(Box::new(UpstreamError::Reset(CLOSED.into())))));
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
