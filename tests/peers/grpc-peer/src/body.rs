//! A response or request body fed from a channel, frame by frame (data, then trailers), so a
//! handler streams messages as it makes them.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame};
use tokio::sync::mpsc;

/// The sending side of a [`ChannelBody`].
pub type Sender = mpsc::Sender<Frame<Bytes>>;

/// A body whose frames come from a channel; it ends when every sender is dropped.
pub struct ChannelBody(mpsc::Receiver<Frame<Bytes>>);

/// A body and the sender that feeds it.
pub fn channel() -> (Sender, ChannelBody) {
    let (sender, receiver) = mpsc::channel(16);
    (sender, ChannelBody(receiver))
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(context).map(|frame| frame.map(Ok))
    }
}
