//! `sandbox traces`: one line per trace — when it started, its root span, the services it passed
//! through, its duration and span count, and `✘` when a span has an error.

use std::collections::BTreeSet;

use crate::trace::Span;

/// What one line says about a trace.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceSummary {
    pub trace_id: String,
    /// Epoch microseconds of the earliest span.
    #[serde(rename = "timestamp")]
    pub start: u64,
    /// Microseconds from the earliest start to the latest end.
    pub duration: u64,
    /// `service span-name` of the root (the span without a parent, the earliest if several).
    pub root: String,
    /// Sorted, unique.
    pub services: Vec<String>,
    pub spans: usize,
    /// Spans with an `error` tag.
    pub errors: usize,
}

impl TraceSummary {
    /// The summary of one trace's spans (`None` for no spans).
    pub fn of(spans: &[Span]) -> Option<TraceSummary> {
        let first = spans.first()?;
        let (start, end) = super::waterfall::time_range(spans);
        let ids: BTreeSet<_> = spans.iter().map(|span| span.id).collect();
        let root = spans
            .iter()
            .filter(|span| span.parent_id.is_none_or(|parent| !ids.contains(&parent)))
            .filter(|span| !span.shared)
            .min_by_key(|span| span.timestamp.unwrap_or(u64::MAX))
            .unwrap_or(first);
        let service = |span: &Span| {
            span.local_endpoint
                .as_ref()
                .and_then(|endpoint| endpoint.service_name.clone())
        };
        Some(TraceSummary {
            trace_id: first.trace_id.to_string(),
            start,
            duration: end - start,
            root: format!(
                "{} {}",
                service(root).unwrap_or_else(|| "?".into()),
                root.name.clone().unwrap_or_default()
            ),
            services: spans
                .iter()
                .filter_map(service)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            spans: spans.len(),
            errors: spans
                .iter()
                .filter(|span| span.tags.contains_key("error"))
                .count(),
        })
    }

    /// `12:34:56.789  4bf92f3577b34da6…  gateway get /users/1  12.0ms  4 spans  gateway,user  ✘ 1 error`
    pub fn line(&self) -> String {
        let error = match self.errors {
            0 => String::new(),
            1 => "  ✘ 1 error".into(),
            n => format!("  ✘ {n} errors"),
        };
        format!(
            "{}  {:<32}  {:>9}  {:>3} spans  {}  {}{error}",
            super::logs::clock(self.start * 1000),
            self.trace_id,
            super::waterfall::micros(self.duration),
            self.spans,
            self.root,
            self.services.join(","),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{Endpoint, SpanId, TraceId};

    fn span(id: u64, parent: Option<u64>, service: &str, start: u64, error: bool) -> Span {
        let mut span = Span::new(TraceId(0x4bf92f3577b34da6a3ce929d0e0e4736), SpanId(id));
        span.parent_id = parent.map(SpanId);
        span.name = Some(format!("get /{service}"));
        span.timestamp = Some(1_714_566_896_000_000 + start);
        span.duration = Some(1_000);
        span.local_endpoint = Some(Endpoint {
            service_name: Some(service.into()),
            ..Endpoint::default()
        });
        if error {
            span.tags.insert("error".into(), "500".into());
        }
        span
    }

    #[test]
    fn a_line_names_the_root_services_and_errors() {
        let spans = [
            span(2, Some(1), "user", 500, true),
            span(1, None, "gateway", 0, false),
        ];
        let summary = TraceSummary::of(&spans).unwrap();
        assert_eq!(summary.root, "gateway get /gateway");
        insta::assert_snapshot!(summary.line(), @"12:34:56.000  4bf92f3577b34da6a3ce929d0e0e4736      1.5ms    2 spans  gateway get /gateway  gateway,user  ✘ 1 error");
        assert_eq!(TraceSummary::of(&[]), None);
    }
}
