//! Matching stored traces against a [`QueryRequest`], with the rules of the server's
//! `QueryRequest.test`: the service name, when given, constrains every other criterion to that
//! service's spans; all criteria are ANDed over the trace.

use super::compact::StoredSpan;
use super::StoredTrace;
use crate::trace::query::QueryRequest;
use crate::trace::symbols::{Symbol, Table};

/// A query with its names resolved to symbols.
pub(crate) struct Compiled<'q> {
    service: Option<Symbol>,
    remote: Option<Symbol>,
    span_name: Option<Symbol>,
    /// (key, key as a tag symbol if known, value; empty = any).
    annotations: Vec<(&'q str, Option<Symbol>, &'q str)>,
    min_duration: Option<u64>,
    max_duration: Option<u64>,
    pub(crate) window: (u64, u64),
}

impl<'q> Compiled<'q> {
    /// `None` when a required name was never seen, so nothing can match.
    pub(crate) fn new(request: &'q QueryRequest, table: &Table) -> Option<Self> {
        let resolve = |name: &Option<String>| -> Option<Option<Symbol>> {
            match name {
                None => Some(None),
                Some(name) => table.get(name).map(Some),
            }
        };
        Some(Compiled {
            service: resolve(&request.service_name)?,
            remote: resolve(&request.remote_service_name)?,
            span_name: resolve(&request.span_name)?,
            annotations: request
                .annotation_query
                .iter()
                .map(|(key, value)| (key.as_str(), table.get(key), value.as_str()))
                .collect(),
            min_duration: request.min_duration,
            max_duration: request.max_duration,
            window: request.window_micros(),
        })
    }

    /// Cheap pre-filter on the trace summary.
    pub(crate) fn candidate(&self, trace: &StoredTrace) -> bool {
        let timestamp = trace.query_timestamp();
        timestamp != 0
            && timestamp >= self.window.0
            && timestamp <= self.window.1
            && self.service.is_none_or(|s| trace.services.contains(&s))
    }

    fn duration_matches(&self, span: &StoredSpan) -> bool {
        match (self.min_duration, self.max_duration) {
            (Some(min), Some(max)) => span.duration >= min && span.duration <= max,
            (Some(min), None) => span.duration >= min,
            _ => true,
        }
    }

    /// The full test over the trace's spans.
    pub(crate) fn matches(&self, trace: &StoredTrace) -> bool {
        let mut remote_left = self.remote.is_some();
        let mut name_left = self.span_name.is_some();
        let mut duration_left = self.min_duration.is_some();
        let mut service_left = self.service.is_some();
        let mut remaining: Vec<bool> = vec![true; self.annotations.len()];
        for span in &trace.spans {
            if self.service.is_some_and(|s| s != span.local.service) {
                continue;
            }
            service_left = false;
            if remote_left && self.remote == Some(span.remote.service) {
                remote_left = false;
            }
            if name_left && self.span_name == Some(span.name) {
                name_left = false;
            }
            if duration_left && self.duration_matches(span) {
                duration_left = false;
            }
            for (left, (key, symbol, value)) in remaining.iter_mut().zip(&self.annotations) {
                if !*left {
                    continue;
                }
                let annotated = value.is_empty() && span.annotations().any(|(_, v)| v == *key);
                let tagged = symbol.is_some_and(|symbol| {
                    span.tags()
                        .any(|(k, v)| k == symbol && (value.is_empty() || v == *value))
                });
                *left = !(annotated || tagged);
            }
        }
        !service_left
            && !remote_left
            && !name_left
            && !duration_left
            && remaining.iter().all(|l| !l)
    }
}
