//! A trace as a text waterfall: one line per span, nested by parent, with a bar scaled to the
//! trace's duration, and (for `sandbox trace`) each span's log lines under it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use owo_colors::OwoColorize;

use crate::trace::logs::LogRecord;
use crate::trace::{Span, SpanId};

/// Width of the bar column in characters.
const BAR_WIDTH: usize = 32;

/// Renders `spans`; `link` (the UI's address of the trace) goes on the first line.
pub fn render(spans: &[Span], link: Option<&str>) -> String {
    render_with_logs(spans, link, &[], false)
}

/// Renders `spans` with each log line of `logs` under the span it was written in (by span id, else
/// the innermost span of its service that was open at the time); lines that fit no span follow the
/// waterfall. `colour` paints bars by service and errors red (for a terminal).
pub fn render_with_logs(
    spans: &[Span],
    link: Option<&str>,
    logs: &[LogRecord],
    colour: bool,
) -> String {
    if spans.is_empty() {
        let mut text = "(no spans recorded)\n".to_string();
        for log in logs {
            let _ = writeln!(text, "{}", super::logs::line(log));
        }
        return text;
    }
    let (start, end) = time_range(spans);
    let total = (end - start).max(1);
    let trace_id = spans[0].trace_id.to_string();
    let mut text = format!("trace {trace_id} ({})", micros(total));
    if let Some(link) = link {
        let _ = write!(text, " {link}");
    }
    text.push('\n');

    // Children by parent; a shared server span hangs under the client span with its id.
    let ids: std::collections::BTreeSet<SpanId> = spans.iter().map(|span| span.id).collect();
    let mut children: BTreeMap<Option<SpanId>, Vec<usize>> = BTreeMap::new();
    for (index, span) in spans.iter().enumerate() {
        let parent = if span.shared
            && spans
                .iter()
                .any(|other| other.id == span.id && !other.shared)
        {
            Some(span.id)
        } else {
            span.parent_id.filter(|parent| ids.contains(parent))
        };
        children.entry(parent).or_default().push(index);
    }
    for list in children.values_mut() {
        list.sort_by_key(|index| (spans[*index].timestamp.unwrap_or(0), spans[*index].shared));
    }
    let mut rows: Vec<(usize, usize)> = Vec::new();
    let mut stack: Vec<(usize, usize)> = children
        .get(&None)
        .into_iter()
        .flatten()
        .rev()
        .map(|index| (*index, 0))
        .collect();
    let mut visited = vec![false; spans.len()];
    while let Some((index, depth)) = stack.pop() {
        if std::mem::replace(&mut visited[index], true) {
            continue;
        }
        rows.push((index, depth));
        let span = &spans[index];
        let key = Some(span.id);
        if let Some(list) = children.get(&key) {
            for child in list.iter().rev() {
                if *child != index && !(spans[*child].id == span.id && span.shared) {
                    stack.push((*child, depth + 1));
                }
            }
        }
    }
    // Spans whose parent never arrived still show, at the top level.
    for (index, seen) in visited.iter().enumerate() {
        if !seen {
            rows.push((index, 0));
        }
    }
    let labels: Vec<String> = rows
        .iter()
        .map(|(index, depth)| {
            let span = &spans[*index];
            let service = span
                .local_endpoint
                .as_ref()
                .and_then(|endpoint| endpoint.service_name.clone())
                .unwrap_or_else(|| "?".into());
            let kind = span
                .kind
                .map(|kind| format!(" [{}]", format!("{kind:?}").to_lowercase()))
                .unwrap_or_default();
            format!(
                "{}{service} {}{kind}",
                "  ".repeat(*depth),
                span.name.clone().unwrap_or_default()
            )
        })
        .collect();
    let services: Vec<String> = {
        let mut names: Vec<String> = spans.iter().map(service_of).collect();
        names.sort();
        names.dedup();
        names
    };
    let mut placed = place_logs(spans, &rows, logs);
    let label_width = labels
        .iter()
        .map(|label| label.chars().count())
        .max()
        .unwrap_or(0);
    for (row, ((index, depth), label)) in rows.iter().zip(&labels).enumerate() {
        let span = &spans[*index];
        let offset = span.timestamp.unwrap_or(start).saturating_sub(start);
        let duration = span.duration.unwrap_or(0);
        let from = (offset as u128 * BAR_WIDTH as u128 / total as u128) as usize;
        let length =
            ((duration as u128 * BAR_WIDTH as u128).div_ceil(total as u128) as usize).max(1);
        let from = from.min(BAR_WIDTH - 1);
        let length = length.min(BAR_WIDTH - from);
        let bar = format!(
            "{}{}{}",
            " ".repeat(from),
            "█".repeat(length),
            " ".repeat(BAR_WIDTH - from - length)
        );
        let error = span
            .tags
            .get("error")
            .map(|error| format!("  error={error}"))
            .unwrap_or_default();
        let status = span
            .tags
            .get("http.status_code")
            .map(|status| format!("  {status}"))
            .unwrap_or_default();
        let pad = label_width - label.chars().count();
        let (label, bar, error) = if colour {
            let service = services
                .iter()
                .position(|name| *name == service_of(span))
                .unwrap_or(0);
            let label = if error.is_empty() {
                label.clone()
            } else {
                label.red().bold().to_string()
            };
            (label, super::paint(&bar, service), error.red().to_string())
        } else {
            (label.clone(), bar, error)
        };
        let _ = writeln!(
            text,
            "  {label}{} |{bar}| {:>9}{status}{error}",
            " ".repeat(pad),
            micros(duration)
        );
        for log in placed.remove(&Some(row)).unwrap_or_default() {
            let _ = writeln!(
                text,
                "  {}  │ {}",
                "  ".repeat(*depth),
                super::logs::line(log)
            );
        }
    }
    if let Some(rest) = placed.remove(&None) {
        text.push_str("  other lines on this trace:\n");
        for log in rest {
            let _ = writeln!(text, "    │ {}", super::logs::line(log));
        }
    }
    text
}

/// The earliest start and the latest end of `spans`, epoch microseconds.
pub fn time_range(spans: &[Span]) -> (u64, u64) {
    let start = spans
        .iter()
        .filter_map(|span| span.timestamp)
        .min()
        .unwrap_or(0);
    let end = spans
        .iter()
        .filter_map(|span| Some(span.timestamp? + span.duration.unwrap_or(0)))
        .max()
        .unwrap_or(start);
    (start, end)
}

fn service_of(span: &Span) -> String {
    span.local_endpoint
        .as_ref()
        .and_then(|endpoint| endpoint.service_name.clone())
        .unwrap_or_else(|| "?".into())
}

/// Which row each log line goes under (`None`: no span fits), in time order per row.
fn place_logs<'a>(
    spans: &[Span],
    rows: &[(usize, usize)],
    logs: &'a [LogRecord],
) -> BTreeMap<Option<usize>, Vec<&'a LogRecord>> {
    let mut placed: BTreeMap<Option<usize>, Vec<&LogRecord>> = BTreeMap::new();
    for log in logs {
        let service = log.service.as_deref();
        let of_service =
            |row: &&(usize, usize)| Some(service_of(&spans[row.0]).as_str()) == service;
        let by_id = log.span_id.and_then(|id| {
            let with_id = || rows.iter().filter(move |row| spans[row.0].id == id);
            with_id()
                .find(of_service)
                .or_else(|| with_id().next())
                .map(|row| row.0)
        });
        let time = log.time_unix_nano / 1000;
        let open_then = || {
            rows.iter()
                .filter(of_service)
                .filter(|row| {
                    let span = &spans[row.0];
                    span.timestamp.is_some_and(|start| {
                        start <= time && time <= start + span.duration.unwrap_or(0)
                    })
                })
                .max_by_key(|row| row.1)
                .map(|row| row.0)
        };
        let index = by_id.or_else(open_then);
        let row = index.and_then(|index| rows.iter().position(|row| row.0 == index));
        placed.entry(row).or_default().push(log);
    }
    placed
}

/// Microseconds for people: `850µs`, `12.0ms`, `1.20s`.
pub fn micros(value: u64) -> String {
    if value >= 1_000_000 {
        format!("{:.2}s", value as f64 / 1_000_000.0)
    } else if value >= 1000 {
        format!("{:.1}ms", value as f64 / 1000.0)
    } else {
        format!("{value}µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{Endpoint, Kind, TraceId};

    fn span(
        id: &str,
        parent: Option<&str>,
        service: &str,
        name: &str,
        kind: Kind,
        (start, duration): (u64, u64),
        shared: bool,
    ) -> Span {
        let mut span = Span::new(
            TraceId::parse("463ac35c9f6413ad48485a3953bb6124").unwrap(),
            SpanId::parse(id).unwrap(),
        );
        span.parent_id = parent.map(|parent| SpanId::parse(parent).unwrap());
        span.kind = Some(kind);
        span.name = Some(name.to_string());
        span.timestamp = Some(1_700_000_000_000_000 + start);
        span.duration = Some(duration);
        span.shared = shared;
        span.local_endpoint = Some(Endpoint {
            service_name: Some(service.to_string()),
            ..Endpoint::default()
        });
        span
    }

    /// The gateway's client span and the user's side of it (one shared id).
    fn gateway_and_user() -> [Span; 2] {
        [
            span(
                "0000000000000001",
                None,
                "gateway",
                "get /users/1",
                Kind::Client,
                (0, 12_000),
                false,
            ),
            span(
                "0000000000000001",
                None,
                "user",
                "get /users/{id}",
                Kind::Server,
                (500, 11_000),
                true,
            ),
        ]
    }

    #[test]
    fn a_gateway_user_item_trace_nests_by_parent() {
        let mut failing = span(
            "0000000000000004",
            Some("0000000000000003"),
            "item",
            "get /items/{id}",
            Kind::Server,
            (6_000, 2_000),
            true,
        );
        failing.tags.insert("http.status_code".into(), "500".into());
        failing.tags.insert("error".into(), "500".into());
        let [gateway, user] = gateway_and_user();
        let spans = vec![
            gateway,
            user,
            span(
                "0000000000000003",
                Some("0000000000000001"),
                "user",
                "get /items/{id}",
                Kind::Client,
                (5_000, 4_000),
                false,
            ),
            failing,
        ];
        insta::assert_snapshot!(render(
            &spans,
            Some("http://127.0.0.1:9411/zipkin/#/trace/463ac35c9f6413ad48485a3953bb6124")
        ));
    }

    fn log(service: &str, span: Option<&str>, offset: u64, body: &str) -> LogRecord {
        LogRecord {
            time_unix_nano: (1_700_000_000_000_000 + offset) * 1000,
            severity_number: 0,
            severity_text: None,
            body: body.into(),
            attributes: Vec::new(),
            service: Some(service.into()),
            trace_id: None,
            span_id: span.map(|id| SpanId::parse(id).unwrap()),
            source: crate::trace::logs::LogSource::Container {
                replica: format!("shop-{service}-1"),
                stream: crate::trace::logs::Stream::Stdout,
            },
        }
    }

    #[test]
    fn log_lines_sit_under_the_span_they_were_written_in() {
        let [gateway, user] = gateway_and_user();
        let spans = vec![
            gateway,
            user,
            span(
                "0000000000000003",
                Some("0000000000000001"),
                "item",
                "get /items/{id}",
                Kind::Server,
                (5_000, 4_000),
                false,
            ),
        ];
        let logs = [
            // By span id: the user's side of the shared span, not the gateway's.
            log(
                "user",
                Some("0000000000000001"),
                600,
                "GET /users/1 started",
            ),
            // No span id: the innermost span of its service open at the time.
            log("item", None, 6_000, "item 1 found"),
            // No span of its service: after the waterfall.
            log("audit", None, 7_000, "read by user 1"),
        ];
        insta::assert_snapshot!(render_with_logs(&spans, None, &logs, false));
        let coloured = render_with_logs(&spans, None, &logs, true);
        assert!(coloured.contains('\u{1b}'), "colours on a terminal");
    }

    #[test]
    fn no_spans_say_so() {
        assert_eq!(render(&[], None), "(no spans recorded)\n");
    }
}
