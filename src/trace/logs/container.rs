//! A line a container wrote, as a log record: the service and replica it came from, its stream,
//! the engine's timestamp, and the trace it names ([`super::context`]).

use super::{context, LogRecord, LogSource, Stream};

/// One line of container output.
#[derive(Debug, Clone, Copy)]
pub struct ContainerLine<'a> {
    /// The service (`web`).
    pub service: &'a str,
    /// The container's name (`shop-web-1`).
    pub replica: &'a str,
    /// Which stream it was written to.
    pub stream: Stream,
    /// When the engine received it, epoch nanoseconds.
    pub time_unix_nano: u64,
    /// The line, without its end.
    pub text: &'a str,
}

impl ContainerLine<'_> {
    /// The record the log store keeps: no severity (a line's level is the program's business),
    /// joined to the trace the line names.
    pub fn record(&self) -> LogRecord {
        let (trace_id, span_id) = match context::find(self.text) {
            Some((trace_id, span_id)) => (Some(trace_id), span_id),
            None => (None, None),
        };
        LogRecord {
            time_unix_nano: self.time_unix_nano,
            severity_number: 0,
            severity_text: None,
            body: self.text.to_string(),
            attributes: Vec::new(),
            service: Some(self.service.to_string()),
            trace_id,
            span_id,
            source: LogSource::Container {
                replica: self.replica.to_string(),
                stream: self.stream,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::logs::LogQuery;
    use crate::trace::TraceId;

    #[test]
    fn a_line_with_a_trace_id_is_found_by_that_trace() {
        let store = super::super::LogStore::new(10);
        let line = |text| ContainerLine {
            service: "Web",
            replica: "shop-web-1",
            stream: Stream::Stderr,
            time_unix_nano: 5,
            text,
        };
        store.push(vec![
            line("GET / trace_id=4bf92f3577b34da6a3ce929d0e0e4736").record(),
            line("GET /health").record(),
        ]);
        let query = LogQuery {
            trace_id: Some(TraceId::parse("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()),
            ..LogQuery::default()
        };
        let found = store.search(&query);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].service.as_deref(), Some("web"));
        assert_eq!(
            found[0].source,
            LogSource::Container {
                replica: "shop-web-1".into(),
                stream: Stream::Stderr
            }
        );
    }
}
