//! Sends spans to a Zipkin endpoint from a background thread: a bounded queue (full → drop), batches of up
//! to 100 spans gathered for at most 100 ms, failures logged at most once a minute. Reporting never blocks
//! a request beyond the enqueue.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::span::{encode, Span};
use crate::http::client::{self, Url};
use crate::http::Headers;
use crate::log;

const QUEUE: usize = 1000;
const BATCH: usize = 100;
const LINGER: Duration = Duration::from_millis(100);
const QUIET: Duration = Duration::from_secs(60);

/// The handle requests use to report spans.
#[derive(Debug, Clone)]
pub struct Reporter {
    queue: SyncSender<Span>,
    /// Spans enqueued and not yet sent (or failed); lets shutdown wait for them briefly.
    pending: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
}

impl Reporter {
    /// Starts the sending thread for `endpoint` (a full `http://…/api/v2/spans` URL).
    pub fn start(endpoint: Url) -> Self {
        let (queue, receiver) = mpsc::sync_channel(QUEUE);
        let pending = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicUsize::new(0));
        let sender = Sender {
            endpoint,
            pending: pending.clone(),
            dropped: dropped.clone(),
            last_logged: None,
        };
        std::thread::Builder::new()
            .name("zipkin".to_string())
            .spawn(move || sender.run(receiver))
            .map_err(|error| {
                log::warn(&format!(
                    "zipkin: cannot start the reporter thread: {error}"
                ))
            })
            .ok();
        Self {
            queue,
            pending,
            dropped,
        }
    }

    /// Enqueues `span`; drops it when the queue is full.
    pub fn report(&self, span: Span) {
        self.pending.fetch_add(1, Ordering::SeqCst);
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.queue.try_send(span)
        {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits up to `timeout` for enqueued spans to be sent.
    pub fn flush(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.pending.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

struct Sender {
    endpoint: Url,
    pending: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
    last_logged: Option<Instant>,
}

impl Sender {
    fn run(mut self, receiver: Receiver<Span>) {
        while let Ok(first) = receiver.recv() {
            let mut batch = vec![first];
            let deadline = Instant::now() + LINGER;
            while batch.len() < BATCH {
                let wait = deadline.saturating_duration_since(Instant::now());
                match receiver.recv_timeout(wait) {
                    Ok(span) => batch.push(span),
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                }
            }
            let result = self.post(&batch);
            self.pending.fetch_sub(batch.len(), Ordering::SeqCst);
            let dropped = self.dropped.swap(0, Ordering::Relaxed);
            match result {
                Err(error) => self.warn(&format!(
                    "zipkin: sending {} spans to {} failed: {error}",
                    batch.len(),
                    self.endpoint_text()
                )),
                Ok(()) if dropped > 0 => {
                    self.warn(&format!("zipkin: dropped {dropped} spans (queue full)"))
                }
                Ok(()) => {}
            }
        }
    }

    fn post(&self, batch: &[Span]) -> Result<(), String> {
        let mut headers = Headers::default();
        headers.push("Content-Type", "application/json");
        let response = client::send(
            "POST",
            &self.endpoint,
            &headers,
            encode(batch).as_bytes(),
            Duration::from_secs(5),
        )?;
        if (200..300).contains(&response.status) {
            Ok(())
        } else {
            Err(format!("status {}", response.status))
        }
    }

    fn endpoint_text(&self) -> String {
        format!(
            "http://{}{}",
            self.endpoint.authority(),
            self.endpoint.target
        )
    }

    fn warn(&mut self, message: &str) {
        if self.last_logged.is_none_or(|last| last.elapsed() >= QUIET) {
            self.last_logged = Some(Instant::now());
            log::warn(&format!(
                "{message} (further reporting errors are silenced for 60 s)"
            ));
        }
    }
}
