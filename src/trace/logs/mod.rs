//! The bounded log store: OTLP log records now, container output later (a `push` of records whose
//! [`LogSource`] is [`LogSource::Container`]), each joined to its trace by trace id.
//!
//! **Bound**: at most `max_logs` records; the oldest are evicted first. Container output is capped
//! per service as well: a service's lines take at most [`SERVICE_SHARE_PERCENT`] of `max_logs`,
//! past which its own oldest line goes, so one noisy service cannot evict every other service's
//! lines ([`records`]). Each record is bounded too: the body is cut at [`MAX_BODY_BYTES`], at most
//! [`MAX_ATTRIBUTES`] attributes are kept, each key and value cut at [`MAX_ATTRIBUTE_BYTES`], so
//! the store's memory has a ceiling whatever clients send.
//!
//! Owns the records and their search ([`query`]); knows nothing of OTLP or HTTP.

pub mod container;
pub mod context;
pub mod query;
mod records;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

pub use query::LogQuery;
use records::Records;

use crate::trace::model::{SpanId, TraceId};

/// Records kept when the manifest says nothing (`tracing: {max_logs}`).
pub const DEFAULT_MAX_LOGS: usize = 100_000;
/// The share of `max_logs`, in percent, that one service's container output may hold.
pub const SERVICE_SHARE_PERCENT: usize = 25;
/// Longest body kept, in bytes; a longer one is cut (at a character boundary) and marked `…`.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Most attributes kept per record.
pub const MAX_ATTRIBUTES: usize = 64;
/// Longest attribute key or value kept, in bytes.
pub const MAX_ATTRIBUTE_BYTES: usize = 1024;

/// Where a record came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSource {
    /// An OTLP log exporter; `scope` is the instrumentation scope's name.
    Otlp {
        /// The logger's name.
        scope: Option<String>,
    },
    /// A line a container wrote.
    Container {
        /// The container's name (`shop-web-1`).
        replica: String,
        /// Which stream it wrote to.
        stream: Stream,
    },
}

/// A container's output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// When it happened, epoch nanoseconds (its observed or arrival time when it carried none).
    pub time_unix_nano: u64,
    /// OTLP `SeverityNumber`: 1–24, 0 unspecified (9 is INFO, 13 WARN, 17 ERROR).
    pub severity_number: u8,
    /// The severity as the source wrote it.
    pub severity_text: Option<String>,
    /// The message, as text.
    pub body: String,
    /// Attributes, values as text, in the order sent.
    pub attributes: Vec<(String, String)>,
    /// Lower-case service name (the resource's `service.name`, or the container's service).
    pub service: Option<String>,
    /// The trace it belongs to.
    pub trace_id: Option<TraceId>,
    /// The span it was written in.
    pub span_id: Option<SpanId>,
    /// Where it came from.
    pub source: LogSource,
}

impl LogRecord {
    /// Applies the per-record bounds and lower-cases the service name.
    fn bound(&mut self) {
        cut(&mut self.body, MAX_BODY_BYTES);
        self.attributes.truncate(MAX_ATTRIBUTES);
        for (key, value) in &mut self.attributes {
            cut(key, MAX_ATTRIBUTE_BYTES);
            cut(value, MAX_ATTRIBUTE_BYTES);
        }
        if let Some(service) = &mut self.service {
            if service.bytes().any(|b| b.is_ascii_uppercase()) || !service.is_ascii() {
                *service = service.to_lowercase();
            }
        }
    }
}

/// Cuts `text` to at most `max` bytes at a character boundary, ending it with `…`.
fn cut(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push('…');
}

struct Inner {
    max_logs: usize,
    records: RwLock<Records>,
    evicted: AtomicU64,
}

/// A cloneable handle on the log store; all clones share the same records.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore")
            .field("max_logs", &self.inner.max_logs)
            .field("len", &self.len())
            .finish()
    }
}

impl LogStore {
    /// A store keeping at most `max_logs` records (at least 1), and of each service's container
    /// output at most [`SERVICE_SHARE_PERCENT`] of them.
    pub fn new(max_logs: usize) -> Self {
        let max_logs = max_logs.max(1);
        LogStore {
            inner: Arc::new(Inner {
                max_logs,
                records: RwLock::new(Records::new(
                    max_logs,
                    max_logs * SERVICE_SHARE_PERCENT / 100,
                )),
                evicted: AtomicU64::new(0),
            }),
        }
    }

    /// Keeps `records` (bounded one by one), evicting the oldest past the bound and a service's
    /// oldest container line past its share; they are searchable when this returns.
    pub fn push(&self, records: Vec<LogRecord>) {
        let records: Vec<Arc<LogRecord>> = records
            .into_iter()
            .map(|mut record| {
                record.bound();
                Arc::new(record)
            })
            .collect();
        let mut stored = self
            .inner
            .records
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let evicted: u64 = records.into_iter().map(|record| stored.push(record)).sum();
        drop(stored);
        if evicted > 0 {
            self.inner.evicted.fetch_add(evicted, Ordering::Relaxed);
        }
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.inner
            .records
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// True when no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records evicted to stay within the bounds, since start.
    pub fn evicted(&self) -> u64 {
        self.inner.evicted.load(Ordering::Relaxed)
    }

    /// The newest `query.limit` records that match, in time order (ties in arrival order).
    pub fn search(&self, query: &LogQuery) -> Vec<Arc<LogRecord>> {
        let mut found: Vec<(u64, Arc<LogRecord>)> = {
            let stored = self.inner.records.read().unwrap_or_else(|e| e.into_inner());
            stored
                .iter()
                .rev()
                .filter(|(_, record)| query.matches(record))
                .take(query.limit)
                .map(|(sequence, record)| (sequence, record.clone()))
                .collect()
        };
        found.sort_by_key(|(sequence, record)| (record.time_unix_nano, *sequence));
        found.into_iter().map(|(_, record)| record).collect()
    }

    /// The records that arrived at or after `sequence` and match `query` (the newest
    /// `query.limit` of them, in arrival order), and the sequence to ask from next time; what a
    /// live view follows. `sequence` 0 is the beginning.
    pub fn after(&self, sequence: u64, query: &LogQuery) -> (Vec<Arc<LogRecord>>, u64) {
        let stored = self.inner.records.read().unwrap_or_else(|e| e.into_inner());
        let next = stored.next_sequence();
        let mut found: Vec<Arc<LogRecord>> = stored
            .iter()
            .rev()
            .take_while(|(at, _)| *at >= sequence)
            .filter(|(_, record)| query.matches(record))
            .take(query.limit)
            .map(|(_, record)| record.clone())
            .collect();
        found.reverse();
        (found, next)
    }

    /// The sequence the next record will get ([`LogStore::after`] from it sees only new ones).
    pub fn next_sequence(&self) -> u64 {
        self.inner
            .records
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .next_sequence()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn record(service: &str, time: u64, body: &str) -> LogRecord {
        LogRecord {
            time_unix_nano: time,
            severity_number: 9,
            severity_text: Some("INFO".into()),
            body: body.into(),
            attributes: Vec::new(),
            service: Some(service.into()),
            trace_id: None,
            span_id: None,
            source: LogSource::Otlp { scope: None },
        }
    }

    #[test]
    fn the_oldest_records_are_evicted_past_the_bound() {
        let store = LogStore::new(3);
        store.push((1..=5).map(|t| record("web", t, &t.to_string())).collect());
        assert_eq!(store.len(), 3);
        assert_eq!(store.evicted(), 2);
        let bodies: Vec<String> = store
            .search(&LogQuery::default())
            .iter()
            .map(|r| r.body.clone())
            .collect();
        assert_eq!(bodies, ["3", "4", "5"]);
    }

    #[test]
    fn one_services_container_output_holds_at_most_its_share() {
        let store = LogStore::new(100);
        let line = |service: &str, n: usize| {
            let mut line = record(service, n as u64, &format!("{service} {n}"));
            line.source = LogSource::Container {
                replica: format!("shop-{service}-1"),
                stream: Stream::Stdout,
            };
            line
        };
        store.push(vec![line("web", 0), line("db", 0)]);
        store.push((1..=1000).map(|n| line("worker", n)).collect());
        let share = 100 * SERVICE_SHARE_PERCENT / 100;
        assert_eq!(store.len(), 2 + share);
        assert_eq!(store.evicted(), (1000 - share) as u64);
        let of = |service: &str| LogQuery {
            service: Some(service.into()),
            ..LogQuery::default()
        };
        assert_eq!(store.search(&of("web"))[0].body, "web 0");
        assert_eq!(store.search(&of("db"))[0].body, "db 0");
        let worker = store.search(&of("worker"));
        assert_eq!(worker.len(), share);
        assert_eq!(worker[0].body, format!("worker {}", 1001 - share));
    }

    #[test]
    fn records_are_bounded_one_by_one() {
        let store = LogStore::new(10);
        let mut big = record("Web", 1, &"é".repeat(MAX_BODY_BYTES));
        big.attributes = (0..100)
            .map(|i| (format!("k{i}"), "v".repeat(5000)))
            .collect();
        store.push(vec![big]);
        let kept = &store.search(&LogQuery::default())[0];
        assert!(kept.body.len() <= MAX_BODY_BYTES && kept.body.ends_with('…'));
        assert_eq!(kept.attributes.len(), MAX_ATTRIBUTES);
        assert!(kept.attributes[0].1.len() <= MAX_ATTRIBUTE_BYTES);
        assert_eq!(kept.service.as_deref(), Some("web"));
    }

    #[test]
    fn after_gives_only_the_records_since_a_sequence_that_match() {
        let store = LogStore::new(100);
        store.push(vec![record("web", 1, "old")]);
        let from = store.next_sequence();
        store.push(vec![
            record("web", 2, "a"),
            record("api", 3, "x"),
            record("web", 4, "b"),
            record("web", 5, "c"),
        ]);
        let query = LogQuery {
            service: Some("web".into()),
            limit: 2,
            ..LogQuery::default()
        };
        let (found, next) = store.after(from, &query);
        let bodies: Vec<&str> = found.iter().map(|r| r.body.as_str()).collect();
        assert_eq!(bodies, ["b", "c"], "the newest `limit`, in arrival order");
        assert_eq!(next, 5);
        assert!(store.after(next, &query).0.is_empty());
        store.push(vec![record("web", 6, "d")]);
        let (found, next) = store.after(next, &query);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].body.as_str(), next), ("d", 6));
    }

    #[test]
    fn search_returns_the_newest_matches_in_time_order() {
        let store = LogStore::new(100);
        store.push(vec![
            record("web", 30, "c"),
            record("api", 10, "x"),
            record("web", 20, "b"),
            record("web", 10, "a"),
        ]);
        let query = LogQuery {
            service: Some("web".into()),
            limit: 2,
            ..LogQuery::default()
        };
        let bodies: Vec<String> = store
            .search(&query)
            .iter()
            .map(|r| r.body.clone())
            .collect();
        assert_eq!(bodies, ["a", "b"]);
    }
}
