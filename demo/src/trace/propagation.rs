//! Reading and writing trace headers: B3 single (`b3`), B3 multi (`X-B3-*`) and W3C `traceparent`.
//! Precedence when several arrive: `b3`, then `X-B3-*`, then `traceparent`. Invalid headers are ignored.

use super::Context;
use crate::http::Headers;

/// The caller's trace context, if any. A sampling decision without ids (`b3: 0`) starts a new trace that
/// keeps the decision.
pub fn extract(headers: &Headers) -> Option<Context> {
    let tracestate = headers.get("tracestate").map(str::to_string);
    let context = headers
        .get("b3")
        .and_then(parse_b3_single)
        .or_else(|| parse_b3_multi(headers))
        .or_else(|| headers.get("traceparent").and_then(parse_traceparent))?;
    Some(Context {
        tracestate,
        ..context
    })
}

fn is_hex(text: &str, lengths: &[usize]) -> bool {
    lengths.contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_hexdigit())
        && text.bytes().any(|b| b != b'0')
}

fn sampling(text: &str) -> Option<(Option<bool>, bool)> {
    match text {
        "1" | "true" => Some((Some(true), false)),
        "0" | "false" => Some((Some(false), false)),
        "d" => Some((Some(true), true)),
        _ => None,
    }
}

fn joined(
    trace_id: &str,
    span_id: &str,
    parent_id: Option<&str>,
    sampled: Option<bool>,
    debug: bool,
) -> Context {
    Context {
        trace_id: trace_id.to_ascii_lowercase(),
        span_id: span_id.to_ascii_lowercase(),
        parent_id: parent_id.map(str::to_ascii_lowercase),
        sampled,
        debug,
        tracestate: None,
        shared: true,
    }
}

/// `{trace}-{span}[-{sampling}[-{parent}]]` or a lone sampling state.
fn parse_b3_single(value: &str) -> Option<Context> {
    let parts: Vec<&str> = value.trim().split('-').collect();
    match parts.as_slice() {
        [state] => {
            let (sampled, debug) = sampling(state)?;
            Some(Context {
                debug,
                ..Context::new_root(sampled)
            })
        }
        [trace, span, rest @ ..] if rest.len() <= 2 => {
            if !is_hex(trace, &[16, 32]) || !is_hex(span, &[16]) {
                return None;
            }
            let (sampled, debug) = match rest.first() {
                Some(state) => sampling(state)?,
                None => (None, false),
            };
            let parent = rest.get(1).copied();
            if parent.is_some_and(|parent| !is_hex(parent, &[16])) {
                return None;
            }
            Some(joined(trace, span, parent, sampled, debug))
        }
        _ => None,
    }
}

fn parse_b3_multi(headers: &Headers) -> Option<Context> {
    let debug = headers.get("x-b3-flags").map(str::trim) == Some("1");
    let sampled = headers
        .get("x-b3-sampled")
        .and_then(|value| sampling(value.trim()))
        .and_then(|(sampled, _)| sampled);
    let ids = headers.get("x-b3-traceid").zip(headers.get("x-b3-spanid"));
    match ids {
        Some((trace, span)) => {
            let (trace, span) = (trace.trim(), span.trim());
            let parent = headers.get("x-b3-parentspanid").map(str::trim);
            let valid = is_hex(trace, &[16, 32])
                && is_hex(span, &[16])
                && parent.is_none_or(|parent| is_hex(parent, &[16]));
            valid.then(|| joined(trace, span, parent, sampled, debug))
        }
        None if sampled.is_some() || debug => Some(Context {
            debug,
            ..Context::new_root(sampled)
        }),
        None => None,
    }
}

/// `00-{32 hex trace}-{16 hex parent}-{2 hex flags}` (later versions may append fields).
fn parse_traceparent(value: &str) -> Option<Context> {
    let parts: Vec<&str> = value.trim().split('-').collect();
    let [version, trace, span, flags, rest @ ..] = parts.as_slice() else {
        return None;
    };
    let version_ok =
        version.len() == 2 && version.bytes().all(|b| b.is_ascii_hexdigit()) && *version != "ff";
    if !version_ok
        || (*version == "00" && !rest.is_empty())
        || !is_hex(trace, &[32])
        || !is_hex(span, &[16])
    {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16)
        .ok()
        .filter(|_| flags.len() == 2)?;
    Some(joined(trace, span, None, Some(flags & 1 == 1), false))
}

/// Writes all three header forms for `context`.
pub fn inject(context: &Context, headers: &mut Headers) {
    headers.push("X-B3-TraceId", &context.trace_id);
    headers.push("X-B3-SpanId", &context.span_id);
    if let Some(parent) = &context.parent_id {
        headers.push("X-B3-ParentSpanId", parent);
    }
    if context.debug {
        headers.push("X-B3-Flags", "1");
    } else if let Some(sampled) = context.sampled {
        headers.push("X-B3-Sampled", if sampled { "1" } else { "0" });
    }
    let mut single = format!("{}-{}", context.trace_id, context.span_id);
    let state = match (context.debug, context.sampled) {
        (true, _) => Some("d"),
        (false, Some(true)) => Some("1"),
        (false, Some(false)) => Some("0"),
        (false, None) => None,
    };
    if let Some(state) = state {
        single.push('-');
        single.push_str(state);
        if let Some(parent) = &context.parent_id {
            single.push('-');
            single.push_str(parent);
        }
    }
    headers.push("b3", &single);
    let flags = if context.debug || context.sampled == Some(true) {
        "01"
    } else {
        "00"
    };
    headers.push(
        "traceparent",
        &format!("00-{:0>32}-{}-{flags}", context.trace_id, context.span_id),
    );
    if let Some(state) = &context.tracestate {
        headers.push("tracestate", state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "463ac35c9f6413ad48485a3953bb6124";
    const SPAN: &str = "a2fb4a1d1a96d312";
    const PARENT: &str = "0020000000000001";

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        Headers(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn reads_b3_multi_headers() {
        let context = extract(&headers(&[
            ("X-B3-TraceId", TRACE),
            ("X-B3-SpanId", SPAN),
            ("X-B3-ParentSpanId", PARENT),
            ("X-B3-Sampled", "1"),
        ]))
        .expect("context");
        assert_eq!(context.trace_id, TRACE);
        assert_eq!(context.span_id, SPAN);
        assert_eq!(context.parent_id.as_deref(), Some(PARENT));
        assert_eq!(
            (context.sampled, context.debug, context.shared),
            (Some(true), false, true)
        );
        let debug = extract(&headers(&[
            ("x-b3-traceid", "48485a3953bb6124"),
            ("x-b3-spanid", SPAN),
            ("x-b3-flags", "1"),
        ]))
        .expect("context");
        assert_eq!(
            (debug.trace_id.as_str(), debug.debug, debug.reportable()),
            ("48485a3953bb6124", true, true)
        );
    }

    #[test]
    fn reads_b3_single_in_all_lengths() {
        let full =
            extract(&headers(&[("b3", &format!("{TRACE}-{SPAN}-1-{PARENT}"))])).expect("context");
        assert_eq!(
            (full.parent_id.as_deref(), full.sampled),
            (Some(PARENT), Some(true))
        );
        let ids_only = extract(&headers(&[("b3", &format!("{TRACE}-{SPAN}"))])).expect("context");
        assert_eq!((ids_only.sampled, ids_only.parent_id), (None, None));
        let debug = extract(&headers(&[("b3", &format!("{TRACE}-{SPAN}-d"))])).expect("context");
        assert!(debug.debug);
        let deny = extract(&headers(&[("b3", "0")])).expect("decision");
        assert_eq!(
            (deny.sampled, deny.shared, deny.reportable()),
            (Some(false), false, false)
        );
        assert_eq!(deny.trace_id.len(), 32);
    }

    #[test]
    fn reads_traceparent_and_keeps_tracestate() {
        let context = extract(&headers(&[
            ("traceparent", &format!("00-{TRACE}-{SPAN}-01")),
            ("tracestate", "vendor=x"),
        ]))
        .expect("context");
        assert_eq!(
            (context.trace_id.as_str(), context.span_id.as_str()),
            (TRACE, SPAN)
        );
        assert_eq!(
            (context.sampled, context.tracestate.as_deref()),
            (Some(true), Some("vendor=x"))
        );
        let unsampled = extract(&headers(&[(
            "traceparent",
            &format!("00-{TRACE}-{SPAN}-00"),
        )]))
        .expect("context");
        assert_eq!(unsampled.sampled, Some(false));
    }

    #[test]
    fn ignores_invalid_headers() {
        for pairs in [
            vec![("b3", "xyz-abc")],
            vec![("b3", &*format!("{TRACE}-{SPAN}-maybe"))],
            vec![
                ("X-B3-TraceId", "00000000000000000000000000000000"),
                ("X-B3-SpanId", SPAN),
            ],
            vec![("X-B3-TraceId", TRACE), ("X-B3-SpanId", "short")],
            vec![("traceparent", &*format!("ff-{TRACE}-{SPAN}-01"))],
            vec![("traceparent", &*format!("00-{TRACE}-0000000000000000-01"))],
            vec![("traceparent", &*format!("00-{TRACE}-{SPAN}-01-extra"))],
        ] {
            assert_eq!(extract(&headers(&pairs)), None, "{pairs:?}");
        }
    }

    #[test]
    fn b3_single_wins_over_multi_and_traceparent() {
        let context = extract(&headers(&[
            ("traceparent", &format!("00-{TRACE}-{PARENT}-01")),
            ("X-B3-TraceId", TRACE),
            ("X-B3-SpanId", PARENT),
            ("b3", &format!("{TRACE}-{SPAN}")),
        ]))
        .expect("context");
        assert_eq!(context.span_id, SPAN);
    }

    #[test]
    fn writes_all_three_forms_for_a_child() {
        let parent =
            extract(&headers(&[("b3", &format!("48485a3953bb6124-{SPAN}-1"))])).expect("context");
        let child = parent.child();
        assert_eq!(child.parent_id.as_deref(), Some(SPAN));
        assert_ne!(child.span_id, SPAN);
        let mut out = Headers::default();
        child.inject(&mut out);
        let id = &child.span_id;
        assert_eq!(out.get("X-B3-TraceId"), Some("48485a3953bb6124"));
        assert_eq!(out.get("X-B3-SpanId"), Some(id.as_str()));
        assert_eq!(out.get("X-B3-ParentSpanId"), Some(SPAN));
        assert_eq!(out.get("X-B3-Sampled"), Some("1"));
        assert_eq!(
            out.get("b3"),
            Some(format!("48485a3953bb6124-{id}-1-{SPAN}").as_str())
        );
        assert_eq!(
            out.get("traceparent"),
            Some(format!("00-000000000000000048485a3953bb6124-{id}-01").as_str())
        );
        // what we write, we read back
        assert_eq!(
            extract(&out).map(|context| context.span_id),
            Some(id.clone())
        );
    }

    #[test]
    fn unsampled_and_undecided_contexts_are_written_faithfully() {
        let mut undecided = Headers::default();
        extract(&headers(&[("b3", &format!("{TRACE}-{SPAN}"))]))
            .expect("context")
            .inject(&mut undecided);
        assert_eq!(
            undecided.get("b3"),
            Some(format!("{TRACE}-{SPAN}").as_str())
        );
        assert_eq!(undecided.get("X-B3-Sampled"), None);
        let mut denied = Headers::default();
        extract(&headers(&[("b3", &format!("{TRACE}-{SPAN}-0"))]))
            .expect("context")
            .inject(&mut denied);
        assert_eq!(denied.get("X-B3-Sampled"), Some("0"));
        assert!(denied
            .get("traceparent")
            .is_some_and(|value| value.ends_with("-00")));
    }
}
