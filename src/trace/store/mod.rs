//! The bounded in-memory span store.
//!
//! Traces are sharded by trace id; each shard is an `RwLock`, so ingest into one shard never stalls
//! queries on the others, and critical sections are short (spans are compacted before a lock is
//! taken). Names are interned ([`crate::trace::symbols`]).
//!
//! **Bound**: at most `max_spans` spans. When an ingest goes over, whole traces are evicted in the
//! order they were first seen (oldest first), a deliberate difference from the server, which
//! evicts by span timestamp: ingest order is what a developer expects on a laptop (a late trace with
//! an old clock is not dropped at once), and it needs no global sorted index.
//!
//! The store also holds the [`LogStore`] (OTLP log records, container output), so every server
//! and the proxy that share a `Store` share its logs too.
//!
//! Trace ids are strict, as the server's default `STRICT_TRACE_ID=true`: a 64-bit and a 128-bit id
//! with the same low bits are different traces.

mod compact;
mod search;

use std::collections::hash_map::Entry;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use compact::{kind_code, StoredSpan};
use foldhash::HashMap;

use crate::trace::dependencies::{DependencyLink, Linker};
use crate::trace::forward::Forwarder;
use crate::trace::logs::{LogStore, DEFAULT_MAX_LOGS};
use crate::trace::merge::merge;
use crate::trace::metrics::InProcess;
use crate::trace::model::{Kind, Span, TraceId};
use crate::trace::query::{window_micros, QueryRequest};
use crate::trace::symbols::{Symbol, Symbols};

const SHARDS: usize = 32;

pub(crate) struct StoredTrace {
    /// Ingest order of the trace's first span; eviction goes by it.
    sequence: u64,
    spans: Vec<StoredSpan>,
    /// Timestamp of the first root span seen, else 0.
    root_timestamp: u64,
    /// Smallest span timestamp, else 0.
    min_timestamp: u64,
    /// Local service names of its spans.
    services: Vec<Symbol>,
}

impl StoredTrace {
    /// The trace's timestamp for search: the root's, else the earliest (as the server's test).
    fn query_timestamp(&self) -> u64 {
        if self.root_timestamp != 0 {
            self.root_timestamp
        } else {
            self.min_timestamp
        }
    }

    fn add(&mut self, span: StoredSpan) {
        if span.timestamp != 0 {
            if span.parent == 0 && self.root_timestamp == 0 {
                self.root_timestamp = span.timestamp;
            }
            if self.min_timestamp == 0 || span.timestamp < self.min_timestamp {
                self.min_timestamp = span.timestamp;
            }
        }
        if span.local.service != 0 && !self.services.contains(&span.local.service) {
            self.services.push(span.local.service);
        }
        self.spans.push(span);
    }
}

/// (service, span name, kind code) → spans; (service, remote service) → spans.
#[derive(Default)]
struct Shard {
    traces: HashMap<u128, StoredTrace>,
    names: HashMap<(Symbol, Symbol, u8), u32>,
    remotes: HashMap<(Symbol, Symbol), u32>,
}

impl Shard {
    /// Counts a span in (`added`) or out of the indexes; a key whose count reaches 0 goes.
    fn count(&mut self, span: &StoredSpan, added: bool) {
        if span.local.service == 0 {
            return;
        }
        bump(
            &mut self.names,
            (span.local.service, span.name, span.kind),
            added,
        );
        if span.remote.service != 0 {
            bump(
                &mut self.remotes,
                (span.local.service, span.remote.service),
                added,
            );
        }
    }
}

/// One lookup per count in the common case; a removal only when a count reaches 0.
fn bump<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, u32>, key: K, added: bool) {
    match counts.entry(key) {
        Entry::Occupied(mut entry) if !added => {
            *entry.get_mut() -= 1;
            if *entry.get() == 0 {
                entry.remove();
            }
        }
        Entry::Occupied(mut entry) => *entry.get_mut() += 1,
        Entry::Vacant(entry) if added => {
            entry.insert(1);
        }
        Entry::Vacant(_) => {}
    }
}

struct Inner {
    max_spans: usize,
    shards: Vec<RwLock<Shard>>,
    symbols: Symbols,
    /// (trace id, sequence) in first-seen order.
    order: Mutex<VecDeque<(u128, u64)>>,
    span_count: AtomicUsize,
    next_sequence: AtomicU64,
    evicted_spans: AtomicU64,
    in_process: InProcess,
    forwarder: OnceLock<Forwarder>,
    /// What still holds spans on their way in ([`Store::settle`]): the proxy's span queue.
    pending: OnceLock<Arc<dyn Pending>>,
    logs: LogStore,
}

/// Spans on their way into a store that a reader must see: recorded before the read began, but
/// not ingested yet (the proxy's span queue batches its ingests).
pub trait Pending: Send + Sync {
    /// Completes once everything recorded before the call is in the store.
    fn settle(&self) -> futures_util::future::BoxFuture<'_, ()>;
}

/// A cloneable handle on the store; all clones share the same spans.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("max_spans", &self.inner.max_spans)
            .field("span_count", &self.span_count())
            .finish()
    }
}

fn shard_of(trace_id: u128) -> usize {
    let mixed = ((trace_id as u64) ^ ((trace_id >> 64) as u64)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (mixed >> 59) as usize % SHARDS
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort_unstable();
    names.dedup();
    names
}

impl Store {
    /// A store holding at most `max_spans` spans (at least 1) and the default number of logs.
    pub fn new(max_spans: usize) -> Self {
        Self::with_max_logs(max_spans, DEFAULT_MAX_LOGS)
    }

    /// A store holding at most `max_spans` spans and `max_logs` log records (each at least 1).
    pub fn with_max_logs(max_spans: usize, max_logs: usize) -> Self {
        Store {
            inner: Arc::new(Inner {
                max_spans: max_spans.max(1),
                shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
                symbols: Symbols::default(),
                order: Mutex::default(),
                span_count: AtomicUsize::new(0),
                next_sequence: AtomicU64::new(0),
                evicted_spans: AtomicU64::new(0),
                in_process: InProcess::default(),
                forwarder: OnceLock::new(),
                pending: OnceLock::new(),
                logs: LogStore::new(max_logs),
            }),
        }
    }

    fn read(&self, shard: usize) -> RwLockReadGuard<'_, Shard> {
        self.inner.shards[shard]
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self, shard: usize) -> RwLockWriteGuard<'_, Shard> {
        self.inner.shards[shard]
            .write()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The log records kept beside the spans.
    pub fn logs(&self) -> &LogStore {
        &self.inner.logs
    }

    /// Sends every span ingested from now on to `forwarder` as well; only the first call counts.
    pub(crate) fn forward_to(&self, forwarder: Forwarder) {
        let _ = self.inner.forwarder.set(forwarder);
    }

    /// Makes [`Store::settle`] wait for `pending`; only the first call counts.
    pub fn set_pending(&self, pending: Arc<dyn Pending>) {
        let _ = self.inner.pending.set(pending);
    }

    /// Waits until every span recorded before the call, but still queued on its way in (the
    /// proxy's spans, ingested in batches), is stored: a query made right after a request sees
    /// that request's spans.
    pub async fn settle(&self) {
        if let Some(pending) = self.inner.pending.get() {
            pending.settle().await;
        }
    }

    /// Stores spans (normalising them as the server does); they are queryable when this returns.
    /// Evicts the oldest traces when over the bound.
    pub fn ingest(&self, mut spans: Vec<Span>) {
        spans.iter_mut().for_each(Span::normalize);
        if let Some(forwarder) = self.inner.forwarder.get() {
            forwarder.offer(&spans);
        }
        // Compacted under the symbols' read lock; only spans with names new to the table are
        // compacted again, once those are interned.
        let symbols = &self.inner.symbols;
        let mut compacted: Vec<Option<StoredSpan>> = {
            let table = symbols.read();
            spans
                .iter()
                .map(|span| StoredSpan::from_span(span, &table))
                .collect()
        };
        if compacted.iter().any(Option::is_none) {
            symbols.intern_all(
                spans
                    .iter()
                    .zip(&compacted)
                    .filter(|(_, stored)| stored.is_none())
                    .flat_map(|(span, _)| StoredSpan::names(span)),
            );
            let table = symbols.read();
            for (span, stored) in spans.iter().zip(&mut compacted) {
                if stored.is_none() {
                    // Always `Some` now: the table only grows.
                    *stored = StoredSpan::from_span(span, &table);
                }
            }
        }
        let mut by_shard: Vec<Vec<(u128, StoredSpan)>> = (0..SHARDS).map(|_| Vec::new()).collect();
        for (span, stored) in spans.iter().zip(compacted) {
            if let Some(stored) = stored {
                by_shard[shard_of(span.trace_id.0)].push((span.trace_id.0, stored));
            }
        }
        let mut new_traces = Vec::new();
        for (index, batch) in by_shard.into_iter().enumerate() {
            if batch.is_empty() {
                continue;
            }
            let added = batch.len();
            let mut shard = self.write(index);
            for (trace_id, span) in batch {
                shard.count(&span, true);
                let trace = shard.traces.entry(trace_id).or_insert_with(|| {
                    let sequence = self.inner.next_sequence.fetch_add(1, Ordering::Relaxed);
                    new_traces.push((trace_id, sequence));
                    StoredTrace {
                        sequence,
                        spans: Vec::with_capacity(1),
                        root_timestamp: 0,
                        min_timestamp: 0,
                        services: Vec::new(),
                    }
                });
                trace.add(span);
            }
            self.inner.span_count.fetch_add(added, Ordering::Relaxed);
        }
        new_traces.sort_unstable_by_key(|(_, sequence)| *sequence);
        self.inner
            .order
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(new_traces);
        self.evict();
    }

    fn evict(&self) {
        while self.inner.span_count.load(Ordering::Relaxed) > self.inner.max_spans {
            let next = self
                .inner
                .order
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front();
            let Some((trace_id, sequence)) = next else {
                return;
            };
            let evicted = {
                let mut shard = self.write(shard_of(trace_id));
                let current = shard.traces.get(&trace_id);
                if current.is_none_or(|t| t.sequence != sequence) {
                    continue; // already gone, or re-created after an earlier eviction
                }
                let Some(trace) = shard.traces.remove(&trace_id) else {
                    continue;
                };
                for span in &trace.spans {
                    shard.count(span, false);
                }
                trace
            };
            let spans = evicted.spans.len();
            self.inner.span_count.fetch_sub(spans, Ordering::Relaxed);
            self.inner
                .evicted_spans
                .fetch_add(spans as u64, Ordering::Relaxed);
            drop(evicted); // freed outside the shard lock
        }
    }

    /// The counters of spans handed over in process (the proxy's), for `/prometheus`.
    pub fn in_process(&self) -> &InProcess {
        &self.inner.in_process
    }

    /// Spans currently stored.
    pub fn span_count(&self) -> usize {
        self.inner.span_count.load(Ordering::Relaxed)
    }

    /// Spans evicted so far to stay within the bound.
    pub fn evicted_span_count(&self) -> u64 {
        self.inner.evicted_spans.load(Ordering::Relaxed)
    }

    fn collect_names(&self, pick: impl Fn(&Shard, &mut Vec<Symbol>)) -> Vec<String> {
        let mut symbols = Vec::new();
        for index in 0..SHARDS {
            pick(&self.read(index), &mut symbols);
        }
        let table = self.inner.symbols.read();
        sorted(
            symbols
                .into_iter()
                .filter_map(|s| table.name(s).map(str::to_owned))
                .collect(),
        )
    }

    /// Local service names, sorted.
    pub fn service_names(&self) -> Vec<String> {
        self.collect_names(|shard, out| out.extend(shard.names.keys().map(|k| k.0)))
    }

    /// Remote service names seen from `service`, sorted.
    pub fn remote_service_names(&self, service: &str) -> Vec<String> {
        let Some(service) = self.inner.symbols.read().get(&service.to_lowercase()) else {
            return Vec::new();
        };
        self.collect_names(|shard, out| {
            out.extend(shard.remotes.keys().filter(|k| k.0 == service).map(|k| k.1))
        })
    }

    /// Span names recorded by `service` (optionally only spans of `kind`), sorted.
    pub fn span_names(&self, service: &str, kind: Option<Kind>) -> Vec<String> {
        let Some(service) = self.inner.symbols.read().get(&service.to_lowercase()) else {
            return Vec::new();
        };
        let kind = kind.map(|k| kind_code(Some(k)));
        self.collect_names(|shard, out| {
            out.extend(
                shard
                    .names
                    .keys()
                    .filter(|k| k.0 == service && k.1 != 0 && kind.is_none_or(|kind| k.2 == kind))
                    .map(|k| k.1),
            )
        })
    }

    fn materialize(&self, trace_id: u128, trace: &StoredTrace) -> Vec<Span> {
        let table = self.inner.symbols.read();
        trace
            .spans
            .iter()
            .map(|s| s.to_span(TraceId(trace_id), &table))
            .collect()
    }

    /// One trace, merged as the server presents it; `None` when absent.
    pub fn trace(&self, trace_id: TraceId) -> Option<Vec<Span>> {
        let spans = {
            let shard = self.read(shard_of(trace_id.0));
            self.materialize(trace_id.0, shard.traces.get(&trace_id.0)?)
        };
        Some(merge(spans))
    }

    /// The traces among `trace_ids` that exist, in request order.
    pub fn traces_by_id(&self, trace_ids: &[TraceId]) -> Vec<Vec<Span>> {
        trace_ids.iter().filter_map(|id| self.trace(*id)).collect()
    }

    /// Traces matching `request`, newest first, at most `request.limit`.
    pub fn search(&self, request: &QueryRequest) -> Vec<Vec<Span>> {
        let compiled = {
            let table = self.inner.symbols.read();
            match search::Compiled::new(request, &table) {
                Some(compiled) => compiled,
                None => return Vec::new(),
            }
        };
        let mut candidates: Vec<(u64, u128)> = Vec::new();
        for index in 0..SHARDS {
            let shard = self.read(index);
            candidates.extend(
                shard
                    .traces
                    .iter()
                    .filter(|(_, trace)| compiled.candidate(trace))
                    .map(|(id, trace)| (trace.query_timestamp(), *id)),
            );
        }
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        let mut result = Vec::new();
        for (_, trace_id) in candidates {
            if result.len() >= request.limit {
                break;
            }
            let shard = self.read(shard_of(trace_id));
            let Some(trace) = shard.traces.get(&trace_id) else {
                continue;
            };
            if compiled.matches(trace) {
                let spans = self.materialize(trace_id, trace);
                drop(shard);
                result.push(merge(spans));
            }
        }
        result
    }

    /// Dependency links from traces whose timestamp falls in `[end_ts - lookback, end_ts]` (ms).
    pub fn dependencies(&self, end_ts: u64, lookback: u64) -> Vec<DependencyLink> {
        let (begin, end) = window_micros(end_ts, lookback);
        let mut linker = Linker::default();
        for index in 0..SHARDS {
            let traces: Vec<Vec<Span>> = {
                let shard = self.read(index);
                shard
                    .traces
                    .iter()
                    .filter(|(_, t)| (begin..=end).contains(&t.query_timestamp()))
                    .map(|(id, trace)| self.materialize(*id, trace))
                    .collect()
            };
            for trace in traces {
                linker.put_trace(&merge(trace));
            }
        }
        linker.links()
    }

    /// Distinct values of tag `key`, sorted (for `/api/v2/autocompleteValues`).
    pub fn tag_values(&self, key: &str) -> Vec<String> {
        let Some(key) = self.inner.symbols.read().get(key) else {
            return Vec::new();
        };
        let mut values = std::collections::BTreeSet::new();
        for index in 0..SHARDS {
            let shard = self.read(index);
            for span in shard.traces.values().flat_map(|t| &t.spans) {
                for (_, value) in span.tags().filter(|(k, _)| *k == key) {
                    if !values.contains(value) {
                        values.insert(value.to_owned());
                    }
                }
            }
        }
        values.into_iter().collect()
    }
}

#[cfg(test)]
mod tests;
