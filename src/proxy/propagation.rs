//! Trace context propagation: B3 multi (`X-B3-*`), B3 single (`b3`) and W3C (`traceparent`,
//! `tracestate`). Parses what a request brings, makes the child context the proxy forwards, and
//! writes it back in all three forms. Pure; tested beside itself (shape after linkerd2-proxy's
//! `trace-context/src/propagation/b3.rs`).

use http::{HeaderMap, HeaderName};

use super::message::Headers;

/// A trace context as the proxy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 (or 16, when a B3 client sent a 64-bit id) lower-case hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    pub parent_id: Option<String>,
    pub sampled: Option<bool>,
    /// W3C `tracestate`, passed on unchanged.
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// The incoming context: B3 single, then B3 multi, then W3C.
    pub fn extract(headers: &HeaderMap) -> Option<TraceContext> {
        if !has_trace_headers(headers) {
            return None;
        }
        let text = |index: usize| {
            headers
                .get(&NAMES[index])
                .and_then(|value| value.to_str().ok())
        };
        let mut context = text(5)
            .and_then(parse_b3_single)
            .or_else(|| parse_b3_multi(&text))
            .or_else(|| text(6).and_then(parse_traceparent))?;
        context.tracestate = text(7).map(str::to_string);
        Some(context)
    }

    /// A new root context; `sampled` is the sampling decision.
    pub fn root(sampled: bool) -> TraceContext {
        TraceContext {
            trace_id: hex(super::ids::random_u128(), 32),
            span_id: new_span_id(),
            parent_id: None,
            sampled: Some(sampled),
            tracestate: None,
        }
    }

    /// The context for the proxy's own span: same trace, a new span, this span as parent.
    pub fn child(&self) -> TraceContext {
        TraceContext {
            trace_id: self.trace_id.clone(),
            span_id: new_span_id(),
            parent_id: Some(self.span_id.clone()),
            sampled: self.sampled,
            tracestate: self.tracestate.clone(),
        }
    }

    /// Replaces any trace headers with this context in all three forms.
    pub fn inject(&self, headers: &mut Headers) {
        for name in &NAMES {
            headers.remove(name);
        }
        self.append_to(headers);
    }

    /// This context in all three forms, added to a message that has no trace headers.
    pub fn append_to(&self, appended: &mut Headers) {
        let sampled = self.sampled.unwrap_or(true);
        let flag: &[u8] = if sampled { b"1" } else { b"0" };
        let trace_id = self.trace_id.as_bytes();
        let span_id = self.span_id.as_bytes();
        appended.append_text(&NAMES[0], &[trace_id]);
        appended.append_text(&NAMES[1], &[span_id]);
        match &self.parent_id {
            Some(parent) => {
                appended.append_text(&NAMES[2], &[parent.as_bytes()]);
                let single = [trace_id, b"-", span_id, b"-", flag, b"-", parent.as_bytes()];
                appended.append_text(&NAMES[5], &single);
            }
            None => appended.append_text(&NAMES[5], &[trace_id, b"-", span_id, b"-", flag]),
        }
        appended.append_text(&NAMES[3], &[flag]);
        let padding = &b"00000000000000000000000000000000"[self.trace_id.len().min(32)..];
        let flags: &[u8] = if sampled { b"-01" } else { b"-00" };
        appended.append_text(
            &NAMES[6],
            &[b"00-", padding, trace_id, b"-", span_id, flags],
        );
        if let Some(state) = &self.tracestate {
            appended.append_text(&NAMES[7], &[state.as_bytes()]);
        }
    }
}

/// Every header this module reads or writes.
static NAMES: [HeaderName; 8] = [
    HeaderName::from_static("x-b3-traceid"),
    HeaderName::from_static("x-b3-spanid"),
    HeaderName::from_static("x-b3-parentspanid"),
    HeaderName::from_static("x-b3-sampled"),
    HeaderName::from_static("x-b3-flags"),
    HeaderName::from_static("b3"),
    HeaderName::from_static("traceparent"),
    HeaderName::from_static("tracestate"),
];

/// Whether any header this module reads or writes is there (one pass over the names, no lookups).
fn has_trace_headers(headers: &HeaderMap) -> bool {
    headers.keys().any(|name| is_trace_header(name.as_str()))
}

/// Whether `name` (lower case) is a header this module reads or writes.
pub fn is_trace_header(name: &str) -> bool {
    // Every name here starts with `x`, `b` or `t`: most names are ruled out by one byte.
    matches!(name.as_bytes().first(), Some(b'x' | b'b' | b't'))
        && NAMES.iter().any(|known| known.as_str() == name)
}

fn hex(value: u128, digits: usize) -> String {
    let mut text = [0u8; 32];
    let text = &mut text[..digits.min(32)];
    super::ids::hex_into(value, text);
    std::str::from_utf8(text).unwrap_or_default().to_string()
}

pub fn new_span_id() -> String {
    loop {
        let id = super::ids::random_u64();
        if id != 0 {
            return hex(u128::from(id), 16);
        }
    }
}

fn hex_id(text: &str, lengths: &[usize]) -> Option<String> {
    let valid = lengths.contains(&text.len())
        && text.bytes().all(|byte| byte.is_ascii_hexdigit())
        && text.bytes().any(|byte| byte != b'0');
    valid.then(|| text.to_ascii_lowercase())
}

fn sampled_flag(text: &str) -> Option<bool> {
    match text {
        "1" | "d" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

/// `{trace}-{span}[-{sampled}[-{parent}]]`, or a lone sampling decision (`0`) which starts nothing.
pub fn parse_b3_single(text: &str) -> Option<TraceContext> {
    let mut parts = text.trim().split('-');
    let trace_id = hex_id(parts.next()?, &[16, 32])?;
    let span_id = hex_id(parts.next()?, &[16])?;
    let sampled = parts.next().and_then(sampled_flag);
    let parent_id = parts.next().and_then(|parent| hex_id(parent, &[16]));
    Some(TraceContext {
        trace_id,
        span_id,
        parent_id,
        sampled,
        tracestate: None,
    })
}

fn parse_b3_multi<'a>(text: &impl Fn(usize) -> Option<&'a str>) -> Option<TraceContext> {
    let trace_id = hex_id(text(0)?.trim(), &[16, 32])?;
    let span_id = hex_id(text(1)?.trim(), &[16])?;
    let debug = text(4) == Some("1");
    let sampled = text(3).and_then(sampled_flag).or(debug.then_some(true));
    Some(TraceContext {
        trace_id,
        span_id,
        parent_id: text(2).and_then(|parent| hex_id(parent.trim(), &[16])),
        sampled,
        tracestate: None,
    })
}

/// `00-{trace 32}-{span 16}-{flags 2}`.
pub fn parse_traceparent(text: &str) -> Option<TraceContext> {
    let parts: Vec<&str> = text.trim().split('-').collect();
    let [version, trace, span, flags, ..] = parts.as_slice() else {
        return None;
    };
    if version.len() != 2 || *version == "ff" || flags.len() != 2 {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some(TraceContext {
        trace_id: hex_id(trace, &[32])?,
        span_id: hex_id(span, &[16])?,
        parent_id: None,
        sampled: Some(flags & 1 == 1),
        tracestate: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const TRACE: &str = "463ac35c9f6413ad48485a3953bb6124";
    const SPAN: &str = "a2fb4a1d1a96d312";

    #[test]
    fn b3_single_forms() {
        let context = parse_b3_single(&format!("{TRACE}-{SPAN}-1-0020000000000001")).expect("b3");
        assert_eq!(context.trace_id, TRACE);
        assert_eq!(context.sampled, Some(true));
        assert_eq!(context.parent_id.as_deref(), Some("0020000000000001"));
        assert_eq!(
            parse_b3_single(&format!("{TRACE}-{SPAN}"))
                .expect("b3")
                .sampled,
            None
        );
        assert!(parse_b3_single("0").is_none());
        assert!(parse_b3_single("xyz-abc").is_none());
        assert!(parse_b3_single(&format!("{}-{SPAN}", "0".repeat(32))).is_none());
    }

    #[test]
    fn b3_multi_and_precedence() {
        let mut headers = HeaderMap::new();
        headers.insert("x-b3-traceid", HeaderValue::from_static("80f198ee56343ba8"));
        headers.insert("x-b3-spanid", HeaderValue::from_static("e457b5a2e4d86bd1"));
        headers.insert("x-b3-sampled", HeaderValue::from_static("0"));
        let context = TraceContext::extract(&headers).expect("multi");
        assert_eq!(context.trace_id, "80f198ee56343ba8");
        assert_eq!(context.sampled, Some(false));
        headers.insert(
            "b3",
            HeaderValue::from_str(&format!("{TRACE}-{SPAN}-1")).expect("value"),
        );
        assert_eq!(
            TraceContext::extract(&headers).expect("single").trace_id,
            TRACE
        );
    }

    #[test]
    fn traceparent() {
        let context = parse_traceparent(&format!("00-{TRACE}-{SPAN}-01")).expect("w3c");
        assert_eq!(
            (context.trace_id.as_str(), context.sampled),
            (TRACE, Some(true))
        );
        assert!(parse_traceparent(&format!("ff-{TRACE}-{SPAN}-01")).is_none());
        assert!(parse_traceparent("00-abc-def-01").is_none());
    }

    #[test]
    fn inject_writes_all_three_forms() {
        let context = TraceContext {
            trace_id: "80f198ee56343ba8".into(),
            span_id: SPAN.into(),
            parent_id: Some("e457b5a2e4d86bd1".into()),
            sampled: Some(true),
            tracestate: Some("a=b".into()),
        };
        let mut headers = Headers::default();
        headers.append_text(&NAMES[0], &[b"stale"]);
        context.inject(&mut headers);
        let headers = headers.into_header_map();
        assert_eq!(headers.get_all("x-b3-traceid").iter().count(), 1);
        assert_eq!(headers["x-b3-traceid"], "80f198ee56343ba8");
        assert_eq!(headers["x-b3-parentspanid"], "e457b5a2e4d86bd1");
        assert_eq!(
            headers["b3"],
            format!("80f198ee56343ba8-{SPAN}-1-e457b5a2e4d86bd1").as_str()
        );
        assert_eq!(
            headers["traceparent"],
            format!("00-000000000000000080f198ee56343ba8-{SPAN}-01").as_str()
        );
        assert_eq!(headers["tracestate"], "a=b");
        assert_eq!(
            TraceContext::extract(&headers).expect("round trip").span_id,
            SPAN
        );
    }
}
