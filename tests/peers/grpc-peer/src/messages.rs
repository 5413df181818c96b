//! A body (a request's on the server, a response's on the client) read as gRPC messages as they
//! complete, keeping the trailers.

use std::collections::VecDeque;

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::BodyExt;

use crate::frame::Decoder;

/// A body read as gRPC messages, and its trailers once it has ended.
pub struct Messages<B> {
    body: B,
    decoder: Decoder,
    ready: VecDeque<Bytes>,
    done: bool,
    /// The body's trailers (a response's `grpc-status`), once read.
    pub trailers: Option<HeaderMap>,
}

impl<B> Messages<B>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    pub fn new(body: B) -> Self {
        Messages {
            body,
            decoder: Decoder::default(),
            ready: Default::default(),
            done: false,
            trailers: None,
        }
    }

    /// The next whole message, `None` at the end of the body.
    pub async fn next(&mut self) -> Result<Option<Bytes>, String> {
        loop {
            if let Some(message) = self.ready.pop_front() {
                return Ok(Some(message));
            }
            if self.done {
                return Ok(None);
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        self.ready.extend(self.decoder.push(data)?);
                    } else if let Some(trailers) = frame.trailers_ref() {
                        self.trailers = Some(trailers.clone());
                    }
                }
                Some(Err(error)) => return Err(format!("reading the stream: {error}")),
                None => {
                    self.done = true;
                    self.decoder.finish()?;
                }
            }
        }
    }

    /// Every message up to the end of the body.
    pub async fn all(&mut self) -> Result<Vec<Bytes>, String> {
        let mut messages = Vec::new();
        while let Some(message) = self.next().await? {
            messages.push(message);
        }
        Ok(messages)
    }
}
