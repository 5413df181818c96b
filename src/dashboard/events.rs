//! Server-sent events: `event: resources` with the whole snapshot as JSON, first at once and then
//! on every change (the snapshot is small; the page replaces what it shows). A comment line every
//! [`KEEPALIVE`] keeps idle proxies from closing the stream. Memory per stream is bounded: a
//! [`watch`] channel holds only the latest snapshot, and a slow reader skips intermediate ones.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame};
use tokio::sync::{mpsc, watch};

use super::model::Resources;

/// How often an idle stream gets a comment line.
pub const KEEPALIVE: Duration = Duration::from_secs(15);

/// A streamed response body fed by a task.
pub struct EventBody {
    receiver: mpsc::Receiver<Bytes>,
}

impl Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.receiver
            .poll_recv(context)
            .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }
}

/// One SSE message.
pub fn message(event: &str, data: &str) -> Bytes {
    let mut text = format!("event: {event}\n");
    for line in data.lines() {
        text.push_str("data: ");
        text.push_str(line);
        text.push('\n');
    }
    text.push('\n');
    Bytes::from(text)
}

/// A stream of `resources` events from `changes`; ends when the client goes away or the sender
/// is dropped.
pub fn resources(mut changes: watch::Receiver<Arc<Resources>>) -> EventBody {
    let (sender, receiver) = mpsc::channel::<Bytes>(2);
    tokio::spawn(async move {
        loop {
            let snapshot = changes.borrow_and_update().clone();
            let json = serde_json::to_string(&*snapshot).unwrap_or_else(|_| "{}".into());
            if sender.send(message("resources", &json)).await.is_err() {
                return;
            }
            loop {
                tokio::select! {
                    changed = changes.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        break;
                    }
                    () = tokio::time::sleep(KEEPALIVE) => {
                        if sender.send(Bytes::from_static(b": keepalive\n\n")).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    });
    EventBody { receiver }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn a_message_puts_each_line_in_a_data_field() {
        assert_eq!(
            message("resources", "{\"a\":1}\n{}"),
            Bytes::from_static(b"event: resources\ndata: {\"a\":1}\ndata: {}\n\n")
        );
    }

    #[tokio::test]
    async fn the_stream_sends_the_snapshot_then_each_change() {
        let (sender, receiver) = watch::channel(Arc::new(Resources::default()));
        let mut body = resources(receiver);
        let first = body.frame().await.expect("a frame").expect("data");
        let first = first.into_data().expect("data");
        assert!(first.starts_with(b"event: resources\ndata: {\"project\":\"\""));
        sender.send_replace(Arc::new(Resources {
            project: "shop".into(),
            services: Vec::new(),
        }));
        let second = body.frame().await.expect("a frame").expect("data");
        let second = String::from_utf8(second.into_data().expect("data").to_vec()).expect("utf-8");
        assert!(second.contains("\"project\":\"shop\""), "{second}");
        drop(sender);
        assert!(body.frame().await.is_none(), "ends with its source");
    }
}
