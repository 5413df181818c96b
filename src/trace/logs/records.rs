//! The records the log store holds, oldest first, and the two bounds on them: `max_logs` in all,
//! and for container output a cap per service ([`super::SERVICE_SHARE_PERCENT`] of `max_logs`), so
//! one service that writes without pause evicts its own old lines, not every other service's.
//!
//! A line evicted by its service's cap leaves a hole in the queue (removing it from the middle
//! would move every later record); holes are skipped by readers, dropped when they reach the
//! front, and swept out whenever they outnumber the records, so the queue stays under twice
//! `max_logs` entries.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::{LogRecord, LogSource};

/// The store's contents under its lock.
pub(super) struct Records {
    max_logs: usize,
    per_service: usize,
    /// (sequence, record), sequences increasing; `None` is a hole.
    entries: VecDeque<(u64, Option<Arc<LogRecord>>)>,
    /// Records held (entries that are not holes).
    live: usize,
    /// The sequences of each service's container lines held, oldest first.
    lines: HashMap<String, VecDeque<u64>>,
    next_sequence: u64,
}

/// The service whose container-line cap a record counts against, if any.
fn capped_service(record: &LogRecord) -> Option<&str> {
    match record.source {
        LogSource::Container { .. } => record.service.as_deref(),
        LogSource::Otlp { .. } => None,
    }
}

impl Records {
    /// Empty, bounded at `max_logs` records and `per_service` container lines per service.
    pub(super) fn new(max_logs: usize, per_service: usize) -> Self {
        Records {
            max_logs: max_logs.max(1),
            per_service: per_service.max(1),
            entries: VecDeque::new(),
            live: 0,
            lines: HashMap::new(),
            next_sequence: 0,
        }
    }

    /// The sequence the next record pushed gets.
    pub(super) fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    /// Records held.
    pub(super) fn len(&self) -> usize {
        self.live
    }

    /// The records held with their sequences, oldest first.
    pub(super) fn iter(&self) -> impl DoubleEndedIterator<Item = (u64, &Arc<LogRecord>)> {
        self.entries
            .iter()
            .filter_map(|(sequence, record)| Some((*sequence, record.as_ref()?)))
    }

    /// Keeps `record`; returns how many records were evicted to stay within the bounds.
    pub(super) fn push(&mut self, record: Arc<LogRecord>) -> u64 {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let mut evicted = 0;
        if let Some(service) = capped_service(&record) {
            let held = match self.lines.get_mut(service) {
                Some(held) => held,
                None => self.lines.entry(service.to_owned()).or_default(),
            };
            held.push_back(sequence);
            if held.len() > self.per_service {
                if let Some(oldest) = held.pop_front() {
                    evicted += self.punch(oldest);
                }
            }
        }
        self.entries.push_back((sequence, Some(record)));
        self.live += 1;
        while self.live > self.max_logs {
            evicted += self.pop_oldest();
        }
        self.trim();
        evicted
    }

    /// Turns the record with `sequence` into a hole; 1 if it was held.
    fn punch(&mut self, sequence: u64) -> u64 {
        let Ok(index) = self
            .entries
            .binary_search_by_key(&sequence, |entry| entry.0)
        else {
            return 0;
        };
        if self.entries[index].1.take().is_none() {
            return 0;
        }
        self.live -= 1;
        1
    }

    /// Drops the oldest record (and the holes before it); 1 if there was one.
    fn pop_oldest(&mut self) -> u64 {
        while let Some((sequence, record)) = self.entries.pop_front() {
            let Some(record) = record else {
                continue;
            };
            self.live -= 1;
            if let Some(service) = capped_service(&record) {
                if let Some(held) = self.lines.get_mut(service) {
                    if held.front() == Some(&sequence) {
                        held.pop_front();
                    }
                    if held.is_empty() {
                        self.lines.remove(service);
                    }
                }
            }
            return 1;
        }
        0
    }

    /// Drops holes at the front, and sweeps the rest out once they outnumber the records.
    fn trim(&mut self) {
        while self.entries.front().is_some_and(|entry| entry.1.is_none()) {
            self.entries.pop_front();
        }
        if self.entries.len() - self.live > self.live.max(16) {
            self.entries.retain(|entry| entry.1.is_some());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::logs::tests::record;
    use crate::trace::logs::Stream;

    fn line(service: &str, body: &str) -> Arc<LogRecord> {
        let mut record = record(service, 1, body);
        record.source = LogSource::Container {
            replica: format!("shop-{service}-1"),
            stream: Stream::Stdout,
        };
        Arc::new(record)
    }

    fn bodies(records: &Records) -> Vec<&str> {
        records.iter().map(|(_, r)| r.body.as_str()).collect()
    }

    #[test]
    fn a_noisy_service_evicts_its_own_lines_not_the_others() {
        let mut records = Records::new(10, 3);
        records.push(line("db", "db 1"));
        records.push(line("web", "web 1"));
        for n in 0..1000 {
            records.push(line("worker", &format!("worker {n}")));
        }
        assert_eq!(
            bodies(&records),
            ["db 1", "web 1", "worker 997", "worker 998", "worker 999"]
        );
        assert_eq!(records.len(), 5);
        assert!(records.entries.len() <= 2 * 10 + 16, "holes are swept out");
    }

    #[test]
    fn the_total_bound_still_evicts_the_oldest_first() {
        let mut records = Records::new(4, 3);
        let otlp = |body: &str| Arc::new(record("api", 1, body));
        let mut evicted = 0;
        evicted += records.push(line("web", "web 1"));
        evicted += records.push(otlp("api 1"));
        evicted += records.push(line("db", "db 1"));
        evicted += records.push(otlp("api 2"));
        evicted += records.push(otlp("api 3"));
        evicted += records.push(line("web", "web 2"));
        assert_eq!(bodies(&records), ["db 1", "api 2", "api 3", "web 2"]);
        assert_eq!(evicted, 2);
        assert!(!records.lines.contains_key("nobody"));
        assert_eq!(records.lines["web"].len(), 1, "web 1 left web's count");
    }

    #[test]
    fn otlp_records_are_not_capped_per_service() {
        let mut records = Records::new(10, 2);
        for n in 0..5 {
            records.push(Arc::new(record("api", 1, &n.to_string())));
        }
        assert_eq!(records.len(), 5);
    }
}
