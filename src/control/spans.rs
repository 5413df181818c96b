//! The proxy's spans into the trace store, off the data plane: [`StoreRecorder::record`] (on a
//! data-plane worker thread) only queues the [`ProxySpan`]; one task on the control plane's runtime
//! ([`SpanDrain`]) converts spans to Zipkin [`Span`]s and ingests them in batches.
//!
//! - **Never blocking**: a record is a `try_send`. When the queue is full the span is dropped and
//!   counted: `zipkin_collector_spans_dropped_total{transport="proxy"}` at the trace server's
//!   `/prometheus`, beside `zipkin_collector_spans_total` and `zipkin_collector_messages_total`
//!   (batches) with the same label.
//! - **Bounded**: at most [`QUEUE_SPANS`] spans wait (a proxy span with its strings and tags is
//!   about 1 KiB, so about 16 MiB at most); a batch is at most [`BATCH_SPANS`].
//! - **Prompt, without a wakeup per request**: the task sleeps on the queue while it is empty
//!   and ingests whatever is there as soon as a span wakes it, so the first span after a quiet
//!   moment is queryable right after its record. After each batch smaller than [`BATCH_SPANS`]
//!   it rests for [`REST`] before looking again: meanwhile spans queue up without waking it, so
//!   steady traffic wakes the control plane about once per [`REST`] rather than once per span,
//!   and a span waits at most about [`REST`] plus a batch, except for readers: every read of
//!   the store through the trace server settles the queue first ([`Store::settle`]: the task
//!   ingests what is queued and answers), so a query right after a request sees its spans. Waking it per span cost the data
//!   plane about four context switches per mesh request at 1000 requests/s (two spans, each
//!   waking a runtime thread, which woke another to steal the task), and on two cores those
//!   threads preempt the worker serving the request. A full batch is followed at once.
//! - **Shutdown**: [`SpanDrain::finish`] (after the data plane has stopped) ingests what is queued;
//!   spans recorded after it are dropped and counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::proxy::{ProxySpan, SpanKind, SpanRecorder};
use crate::trace::{Annotation, Endpoint, Kind, Pending, Span, SpanId, Store, TraceId};

/// Spans the queue holds at most.
pub const QUEUE_SPANS: usize = 16 * 1024;
/// Spans ingested at most at once (a batch costs about 1–2 µs per span, so about 1 ms of the
/// control plane's time).
pub const BATCH_SPANS: usize = 512;
/// How long the drain task rests after a batch that was not full.
pub const REST: Duration = Duration::from_millis(5);

/// Queues the proxy's spans for the store; what the data plane calls.
pub struct StoreRecorder {
    sender: mpsc::Sender<ProxySpan>,
    store: Store,
}

/// The task that ingests queued spans into the store.
pub struct SpanDrain {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// Reads wait on this ([`Store::settle`]): it asks the drain task to ingest what is queued now
/// and waits for its answer.
struct Flusher {
    requests: mpsc::Sender<oneshot::Sender<()>>,
}

/// Flush requests waiting at once at most (each is a reader waiting; more wait to send).
const FLUSH_REQUESTS: usize = 64;

impl Pending for Flusher {
    fn settle(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let (done, answered) = oneshot::channel();
            // The task is gone (shutdown): there is nothing left to wait for.
            if self.requests.send(done).await.is_ok() {
                let _ = answered.await;
            }
        })
    }
}

impl StoreRecorder {
    /// A recorder into `store` with a queue of `capacity` spans (at least 1) and its drain task,
    /// spawned on the current Tokio runtime (the control plane's). The store's reads settle the
    /// queue first ([`Store::settle`]).
    pub fn start(store: Store, capacity: usize) -> (StoreRecorder, SpanDrain) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let (requests, flushes) = mpsc::channel(FLUSH_REQUESTS);
        let stop = CancellationToken::new();
        let task = tokio::spawn(drain(receiver, flushes, store.clone(), stop.clone()));
        store.set_pending(Arc::new(Flusher { requests }));
        (StoreRecorder { sender, store }, SpanDrain { stop, task })
    }
}

impl SpanRecorder for StoreRecorder {
    fn record(&self, span: ProxySpan) {
        match self.sender.try_send(span) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Closed(_)) => {
                add(&self.store.in_process().spans_dropped, 1);
            }
        }
    }
}

impl SpanDrain {
    /// Ingests what is queued, then ends the task. Call it once the data plane has stopped.
    pub async fn finish(self) {
        self.stop.cancel();
        if let Err(error) = self.task.await {
            tracing::error!(%error, "the span drain task failed");
        }
    }
}

/// Ingests batches until `stop`, then what is left. A flush request (a reader settling the
/// store) ingests what is queued at once, resting or not, and is then answered.
async fn drain(
    mut receiver: mpsc::Receiver<ProxySpan>,
    mut flushes: mpsc::Receiver<oneshot::Sender<()>>,
    store: Store,
    stop: CancellationToken,
) {
    let mut batch = Vec::with_capacity(BATCH_SPANS);
    loop {
        let received = tokio::select! {
            received = receiver.recv_many(&mut batch, BATCH_SPANS) => received,
            Some(done) = flushes.recv() => {
                flush(&mut receiver, &store, &mut batch, done);
                continue;
            }
            () = stop.cancelled() => break,
        };
        if received == 0 {
            return; // every sender is gone and the queue is empty
        }
        ingest(&store, &mut batch);
        if received < BATCH_SPANS {
            let rest = tokio::time::sleep(REST);
            tokio::pin!(rest);
            loop {
                tokio::select! {
                    () = &mut rest => break,
                    Some(done) = flushes.recv() => flush(&mut receiver, &store, &mut batch, done),
                    () = stop.cancelled() => break,
                }
            }
            if stop.is_cancelled() {
                break;
            }
        }
    }
    receiver.close();
    while receiver.recv_many(&mut batch, BATCH_SPANS).await > 0 {
        ingest(&store, &mut batch);
    }
}

/// Ingests every span queued now, then answers `done`.
fn flush(
    receiver: &mut mpsc::Receiver<ProxySpan>,
    store: &Store,
    batch: &mut Vec<ProxySpan>,
    done: oneshot::Sender<()>,
) {
    while let Ok(span) = receiver.try_recv() {
        batch.push(span);
        if batch.len() == BATCH_SPANS {
            ingest(store, batch);
        }
    }
    if !batch.is_empty() {
        ingest(store, batch);
    }
    let _ = done.send(());
}

/// Converts and ingests `batch`, leaving it empty (its capacity kept).
fn ingest(store: &Store, batch: &mut Vec<ProxySpan>) {
    let received = batch.len();
    let spans: Vec<Span> = batch.drain(..).filter_map(convert).collect();
    let counters = store.in_process();
    add(&counters.spans_dropped, (received - spans.len()) as u64);
    add(&counters.spans, spans.len() as u64);
    add(&counters.messages, 1);
    store.ingest(spans);
}

fn add(counter: &AtomicU64, n: u64) {
    if n > 0 {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// `None` when the ids are not valid hex (the proxy makes valid ones; a caller's may not be).
/// Names are lower-cased and annotations sorted by [`Store::ingest`], as every span's.
pub fn convert(span: ProxySpan) -> Option<Span> {
    let mut converted = Span::new(
        TraceId::parse(&span.trace_id).ok()?,
        SpanId::parse(&span.id).ok()?,
    );
    converted.parent_id = match &span.parent_id {
        Some(parent) => Some(SpanId::parse(parent).ok()?),
        None => None,
    };
    converted.kind = Some(match span.kind {
        SpanKind::Client => Kind::Client,
        SpanKind::Server => Kind::Server,
    });
    converted.shared = span.shared;
    converted.name = Some(span.name);
    converted.timestamp = Some(span.start_micros);
    converted.duration = Some(span.duration_micros.max(1));
    converted.local_endpoint = Some(Endpoint {
        service_name: Some(span.local_service),
        ..Endpoint::default()
    });
    let mut remote = Endpoint {
        service_name: Some(span.remote_service),
        ..Endpoint::default()
    };
    if let Some(address) = span.remote_address {
        match address.ip() {
            std::net::IpAddr::V4(ip) => remote.ipv4 = Some(ip),
            std::net::IpAddr::V6(ip) => remote.ipv6 = Some(ip),
        }
        remote.port = Some(address.port()).filter(|port| *port != 0);
    }
    converted.remote_endpoint = Some(remote);
    converted.tags = span
        .tags
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
    if let Some(replica) = span.remote_replica {
        converted.tags.insert("sandbox.replica".to_owned(), replica);
    }
    converted.annotations = span
        .annotations
        .into_iter()
        .map(|(timestamp, value)| Annotation { timestamp, value })
        .collect();
    Some(converted)
}

#[cfg(test)]
mod tests;
