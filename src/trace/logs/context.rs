//! The trace a line of output names: W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`, with or
//! without its header name), B3 (`X-B3-TraceId: <hex>`, the single header `b3: <trace>-<span>`),
//! and the keys logging libraries write (`trace_id=`, `"trace_id":"…"`, `traceId`, `trace-id`,
//! with `span_id`/`spanId` beside them).
//!
//! Pure and bounded: one pass over at most [`MAX_SCANNED`] bytes of the line; never fails (a line
//! with no valid id names no trace).

use crate::trace::model::{SpanId, TraceId};

/// Bytes of a line looked at; ids later in a longer line are not found.
pub const MAX_SCANNED: usize = 4096;

/// Keys whose value is a trace id (lower case; matched ignoring case).
const TRACE_KEYS: [&str; 5] = [
    "x-b3-traceid",
    "trace_id",
    "traceid",
    "trace-id",
    "trace.id",
];
/// Keys whose value is a span id.
const SPAN_KEYS: [&str; 5] = ["x-b3-spanid", "span_id", "spanid", "span-id", "span.id"];

/// The trace (and span, when the line names one) of `line`.
pub fn find(line: &str) -> Option<(TraceId, Option<SpanId>)> {
    let mut end = line.len().min(MAX_SCANNED);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    let text = line[..end].to_ascii_lowercase();
    if let Some(found) = traceparent(&text) {
        return Some(found);
    }
    if let Some(found) = b3_single(&text) {
        return Some(found);
    }
    let trace_id = TRACE_KEYS
        .iter()
        .find_map(|key| value_of(&text, key).and_then(trace_id))?;
    let span_id = SPAN_KEYS
        .iter()
        .find_map(|key| value_of(&text, key).and_then(span_id));
    Some((trace_id, span_id))
}

/// `<2 hex>-<32 hex>-<16 hex>-<2 hex>` anywhere, standing alone.
fn traceparent(text: &str) -> Option<(TraceId, Option<SpanId>)> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(offset) = text[from..].find('-') {
        let dash = from + offset;
        from = dash + 1;
        let Some(start) = dash.checked_sub(2) else {
            continue;
        };
        if start + 55 > text.len() {
            return None;
        }
        let Some(candidate) = text.get(start..start + 55) else {
            continue;
        };
        let parts: Vec<&str> = candidate.split('-').collect();
        let standalone = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
        let ends = bytes
            .get(start + 55)
            .is_none_or(|byte| !byte.is_ascii_alphanumeric());
        if standalone
            && ends
            && parts.len() == 4
            && [2, 32, 16, 2]
                == [
                    parts[0].len(),
                    parts[1].len(),
                    parts[2].len(),
                    parts[3].len(),
                ]
            && parts.iter().all(|part| is_hex(part))
        {
            if let Some(trace) = trace_id(parts[1]) {
                return Some((trace, span_id(parts[2])));
            }
        }
    }
    None
}

/// `b3: <trace>-<span>[-<sampled>[-<parent>]]` (also `b3=`, `"b3":"…"`).
fn b3_single(text: &str) -> Option<(TraceId, Option<SpanId>)> {
    let value = value_span(text, "b3")?;
    let mut parts = value.split('-');
    let trace = trace_id(parts.next()?)?;
    Some((trace, parts.next().and_then(span_id)))
}

/// The hex run after `key` (standing alone), a separator (`=` or `:`) and optional quotes/space.
fn value_of<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let value = value_span(text, key)?;
    let end = value
        .find(|c: char| !c.is_ascii_hexdigit())
        .unwrap_or(value.len());
    Some(&value[..end])
}

/// What follows `key` and its separator, up to a quote, space, comma or brace.
fn value_span<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(offset) = text[from..].find(key) {
        let start = from + offset;
        from = start + key.len();
        if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
            continue;
        }
        let rest = text[from..].trim_start_matches(['"', '\'', ' ']);
        let Some(rest) = rest.strip_prefix(['=', ':']) else {
            continue;
        };
        let rest = rest.trim_start_matches(['"', '\'', ' ']);
        let end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '}' | ';' | '&'))
            .unwrap_or(rest.len());
        if end > 0 {
            return Some(&rest[..end]);
        }
    }
    None
}

fn is_hex(text: &str) -> bool {
    text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// 16 or 32 lower-case hex digits, not all zero.
fn trace_id(text: &str) -> Option<TraceId> {
    (matches!(text.len(), 16 | 32) && is_hex(text))
        .then(|| TraceId::parse(text).ok())
        .flatten()
}

/// 16 hex digits, not all zero.
fn span_id(text: &str) -> Option<SpanId> {
    (text.len() == 16 && is_hex(text))
        .then(|| SpanId::parse(text).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN: &str = "00f067aa0ba902b7";

    fn ids(line: &str) -> Option<(String, Option<String>)> {
        find(line).map(|(trace, span)| (trace.to_string(), span.map(|span| span.to_string())))
    }

    fn both() -> Option<(String, Option<String>)> {
        Some((TRACE.into(), Some(SPAN.into())))
    }

    #[test]
    fn w3c_traceparent_with_or_without_its_name() {
        assert_eq!(
            ids(&format!("GET / traceparent=00-{TRACE}-{SPAN}-01")),
            both()
        );
        assert_eq!(ids(&format!("[00-{TRACE}-{SPAN}-01] handled")), both());
        assert_eq!(
            ids(&format!(
                "Traceparent: 00-{}-{SPAN}-01",
                TRACE.to_uppercase()
            )),
            both()
        );
    }

    #[test]
    fn b3_multi_and_single_headers() {
        assert_eq!(
            ids(&format!("X-B3-TraceId: {TRACE} X-B3-SpanId: {SPAN}")),
            both()
        );
        assert_eq!(ids(&format!("b3={TRACE}-{SPAN}-1")), both());
        assert_eq!(
            ids("b3: 463ac35c9f6413ad-a2fb4a1d1a96d312"),
            Some(("463ac35c9f6413ad".into(), Some("a2fb4a1d1a96d312".into())))
        );
    }

    #[test]
    fn keys_of_json_and_key_value_logs() {
        assert_eq!(
            ids(&format!(
                r#"{{"level":"info","trace_id":"{TRACE}","span_id":"{SPAN}","msg":"ok"}}"#
            )),
            both()
        );
        assert_eq!(
            ids(&format!(r#"{{"traceId": "{TRACE}"}}"#)),
            Some((TRACE.into(), None))
        );
        assert_eq!(
            ids(&format!("level=info trace_id={TRACE} span_id={SPAN}")),
            both()
        );
    }

    #[test]
    fn lines_without_a_valid_id_name_no_trace() {
        assert_eq!(ids("GET /health 200 3ms"), None);
        assert_eq!(ids("trace_id=00000000000000000000000000000000"), None);
        assert_eq!(ids("trace_id=abc"), None);
        assert_eq!(ids("mytrace_id=4bf92f3577b34da6"), None);
        assert_eq!(ids(&format!("x00-{TRACE}-{SPAN}-01")), None);
        assert_eq!(ids("b3=zz"), None);
        assert_eq!(ids("é-ü-"), None);
        assert_eq!(ids(&"é".repeat(MAX_SCANNED)), None);
    }
}
