//! Server-sent events: `event: resources` with the whole snapshot as JSON, first at once and then
//! on every change (the snapshot is small; the page replaces what it shows); and `event: logs`,
//! the log lines matching a search as a JSON array, first the newest [`LOG_BACKLOG`] and then
//! the new ones as they arrive (the log store is looked at every [`LOG_TICK`]; a stream sends
//! nothing while nothing new matches). A comment line every [`KEEPALIVE`] keeps idle proxies
//! from closing a stream. Memory per stream is bounded: a [`watch`] channel holds only the latest
//! snapshot, and a slow reader skips intermediate ones; a log stream holds at most
//! [`LOG_BATCH`] records and waits for a slow reader (its place in the store is a sequence
//! number, so it skips nothing that is still held). At most [`MAX_STREAMS`] streams are open at
//! once; one more is answered 503.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit};

use super::model::Resources;
use crate::trace::logs::{self, LogQuery, LogStore};

/// How often an idle stream gets a comment line.
pub const KEEPALIVE: Duration = Duration::from_secs(15);

/// Log lines sent when a log stream opens.
pub const LOG_BACKLOG: usize = 500;
/// The most log lines in one later event.
pub const LOG_BATCH: usize = 1000;
/// How often a log stream looks for new lines.
pub const LOG_TICK: Duration = Duration::from_millis(200);
/// Event streams open at once, all kinds together: each is a task with a small buffer, so a
/// page (or a script) opening streams without closing them meets a limit, not a growing cost.
pub const MAX_STREAMS: usize = 64;

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
pub fn resources(
    mut changes: watch::Receiver<Arc<Resources>>,
    place: OwnedSemaphorePermit,
) -> EventBody {
    let (sender, receiver) = mpsc::channel::<Bytes>(2);
    tokio::spawn(async move {
        let _place = place;
        loop {
            let snapshot = changes.borrow_and_update().clone();
            let json = serde_json::to_string(&*snapshot).unwrap_or_else(|_| "{}".into());
            if sender.send(message("resources", &json)).await.is_err() {
                return;
            }
            loop {
                tokio::select! {
                    // The client went away: end now, giving the stream's place back.
                    () = sender.closed() => return,
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

/// A stream of `logs` events: the lines `query` matches (its `limit` is ignored), the newest
/// [`LOG_BACKLOG`] at once (an empty array when there are none, so the page knows it is live),
/// then new ones within [`LOG_TICK`] of their arrival. Ends when the client goes away.
pub fn logs(store: LogStore, query: LogQuery, place: OwnedSemaphorePermit) -> EventBody {
    let (sender, receiver) = mpsc::channel::<Bytes>(2);
    tokio::spawn(async move {
        let _place = place;
        let backlog = LogQuery {
            limit: LOG_BACKLOG,
            ..query.clone()
        };
        let (records, mut next) = store.after(0, &backlog);
        if sender.send(log_message(&records)).await.is_err() {
            return;
        }
        let batch = LogQuery {
            limit: LOG_BATCH,
            ..query
        };
        let mut idle = Duration::ZERO;
        loop {
            tokio::select! {
                () = sender.closed() => return,
                () = tokio::time::sleep(LOG_TICK) => {}
            }
            let (records, after) = store.after(next, &batch);
            next = after;
            idle += LOG_TICK;
            let chunk = if !records.is_empty() {
                log_message(&records)
            } else if idle >= KEEPALIVE {
                Bytes::from_static(b": keepalive\n\n")
            } else {
                continue;
            };
            idle = Duration::ZERO;
            if sender.send(chunk).await.is_err() {
                return;
            }
        }
    });
    EventBody { receiver }
}

fn log_message(records: &[Arc<logs::LogRecord>]) -> Bytes {
    message(
        "logs",
        &String::from_utf8_lossy(&logs::query::encode(records)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn place() -> OwnedSemaphorePermit {
        Arc::new(tokio::sync::Semaphore::new(1))
            .try_acquire_owned()
            .expect("a place")
    }

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
        let mut body = resources(receiver, place());
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

    #[tokio::test]
    async fn a_log_stream_sends_the_backlog_then_only_new_matching_lines() {
        use crate::trace::logs::{LogRecord, LogSource};
        let record = |service: &str, body: &str| LogRecord {
            time_unix_nano: 1,
            severity_number: 9,
            severity_text: None,
            body: body.into(),
            attributes: Vec::new(),
            service: Some(service.into()),
            trace_id: None,
            span_id: None,
            source: LogSource::Otlp { scope: None },
        };
        let store = LogStore::new(100);
        store.push(vec![record("web", "before"), record("api", "other")]);
        let query = LogQuery {
            service: Some("web".into()),
            ..LogQuery::default()
        };
        let mut body = logs(store.clone(), query, place());
        let next = |frame: Option<Result<Frame<Bytes>, Infallible>>| {
            let data = frame
                .expect("a frame")
                .expect("data")
                .into_data()
                .expect("data");
            String::from_utf8(data.to_vec()).expect("utf-8")
        };
        let first = next(body.frame().await);
        assert!(
            first.starts_with("event: logs\n") && first.contains("\"before\""),
            "{first}"
        );
        assert!(!first.contains("other"), "{first}");
        store.push(vec![record("api", "skipped"), record("web", "after")]);
        let second = next(body.frame().await);
        assert!(
            second.contains("\"after\"") && !second.contains("before"),
            "{second}"
        );
        assert!(!second.contains("skipped"), "{second}");
    }
}
