//! Body types: one boxed body for both directions, the request body kept for retries when small,
//! and the response body wrapper that counts bytes and runs the `logging` phase when it ends.
//! Frames pass as they come, trailer frames too (gRPC's `grpc-status` travels in them).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full};
use hyper::body::{Body, Frame, SizeHint};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every body the proxy sends, either way.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> ProxyBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// Runs when a response body is finished or dropped (the client went away).
pub trait OnFinish: Send + 'static {
    fn finish(self: Box<Self>, bytes: u64, completed: bool);

    /// Sees the response's trailers as they pass (gRPC's status is there).
    fn trailers(&mut self, _trailers: &http::HeaderMap) {}
}

/// Wraps a response body: counts bytes, calls [`OnFinish`] exactly once.
pub struct Tracked {
    inner: ProxyBody,
    bytes: u64,
    completed: bool,
    finish: Option<Box<dyn OnFinish>>,
}

impl Tracked {
    pub fn new(inner: ProxyBody, finish: Box<dyn OnFinish>) -> Tracked {
        Tracked {
            inner,
            bytes: 0,
            completed: false,
            finish: Some(finish),
        }
    }

    fn done(&mut self) {
        if let Some(finish) = self.finish.take() {
            finish.finish(self.bytes, self.completed);
        }
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_frame(context);
        match &poll {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                } else if let (Some(trailers), Some(finish)) =
                    (frame.trailers_ref(), this.finish.as_mut())
                {
                    finish.trailers(trailers);
                }
                if this.inner.is_end_stream() {
                    this.completed = true;
                    this.done();
                }
            }
            Poll::Ready(None) => {
                this.completed = true;
                this.done();
            }
            Poll::Ready(Some(Err(_))) => this.done(),
            Poll::Pending => {}
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if self.inner.is_end_stream() {
            self.completed = true;
        }
        self.done();
    }
}
