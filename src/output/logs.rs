//! Log records as lines: `12:34:56.789 shop-web-1 stderr | text` (container output) or
//! `12:34:56.789 web WARN | text` (OTLP), times in UTC.

use crate::trace::logs::{LogRecord, LogSource};

/// One record as one line (a multi-line body is joined with `⏎`).
pub fn line(log: &LogRecord) -> String {
    let origin = match &log.source {
        LogSource::Container { replica, stream } => match stream {
            crate::trace::logs::Stream::Stderr => format!("{replica} stderr"),
            crate::trace::logs::Stream::Stdout => replica.clone(),
        },
        LogSource::Otlp { .. } => {
            let service = log.service.as_deref().unwrap_or("?");
            match &log.severity_text {
                Some(severity) => format!("{service} {severity}"),
                None => service.to_string(),
            }
        }
    };
    format!(
        "{} {origin} | {}",
        clock(log.time_unix_nano),
        log.body.trim_end().replace('\n', " ⏎ ")
    )
}

/// Epoch nanoseconds as `HH:MM:SS.mmm` (UTC).
pub fn clock(nanos: u64) -> String {
    let millis = nanos / 1_000_000;
    let seconds = millis / 1000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
        millis % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::logs::Stream;

    fn record(source: LogSource) -> LogRecord {
        LogRecord {
            time_unix_nano: 1_714_566_896_789_000_000,
            severity_number: 13,
            severity_text: Some("WARN".into()),
            body: "slow\nanswer\n".into(),
            attributes: Vec::new(),
            service: Some("web".into()),
            trace_id: None,
            span_id: None,
            source,
        }
    }

    #[test]
    fn container_and_otlp_lines() {
        let container = record(LogSource::Container {
            replica: "shop-web-1".into(),
            stream: Stream::Stderr,
        });
        assert_eq!(
            line(&container),
            "12:34:56.789 shop-web-1 stderr | slow ⏎ answer"
        );
        let otlp = record(LogSource::Otlp { scope: None });
        assert_eq!(line(&otlp), "12:34:56.789 web WARN | slow ⏎ answer");
    }
}
