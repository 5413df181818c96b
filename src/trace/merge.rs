//! Read-side clean-up of one trace, with the rules of the server's `Trace.merge`: fragments of the
//! same span (same id, same side, compatible local endpoint) are merged into one; a server half that
//! shares its id with a client half gets `shared` and, if missing, the client's parent id; spans of a
//! trace reported with both 64- and 128-bit ids take the 128-bit id.

use std::cmp::Ordering;

use crate::trace::model::{Endpoint, Kind, Span};

fn side_order(left: &Span, right: &Span) -> Ordering {
    match (left.shared, right.shared) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => {
            let client = |span: &Span| span.kind != Some(Kind::Client);
            client(left).cmp(&client(right))
        }
    }
}

fn endpoint_order(left: Option<&Endpoint>, right: Option<&Endpoint>) -> Ordering {
    match (left, right) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        // Absent fields sort last, as the server's nullSafeCompareTo does.
        (Some(l), Some(r)) => {
            let key = |e: &Endpoint| {
                (
                    e.service_name.is_none(),
                    e.service_name.clone(),
                    e.ipv4.is_none(),
                    e.ipv4,
                    e.ipv6.is_none(),
                    e.ipv6,
                )
            };
            key(l).cmp(&key(r))
        }
    }
}

fn conflict<T: PartialEq>(a: &Option<T>, b: &Option<T>) -> bool {
    matches!((a, b), (Some(x), Some(y)) if x != y)
}

/// Tracks the identity of a local endpoint across fragments; refuses conflicting fields.
#[derive(Default)]
struct EndpointTracker(Endpoint);

impl EndpointTracker {
    fn try_merge(&mut self, endpoint: Option<&Endpoint>) -> bool {
        let Some(endpoint) = endpoint else {
            return true;
        };
        let mine = &self.0;
        if conflict(&mine.service_name, &endpoint.service_name)
            || conflict(&mine.ipv4, &endpoint.ipv4)
            || conflict(&mine.ipv6, &endpoint.ipv6)
            || conflict(&mine.port, &endpoint.port)
        {
            return false;
        }
        self.0.merge(endpoint);
        true
    }
}

/// Merges the spans of one trace as the server does before presenting or linking them.
pub fn merge(mut spans: Vec<Span>) -> Vec<Span> {
    if spans.len() <= 1 {
        return spans;
    }
    spans.sort_by(|l, r| {
        l.id.cmp(&r.id)
            .then_with(|| side_order(l, r))
            .then_with(|| endpoint_order(l.local_endpoint.as_ref(), r.local_endpoint.as_ref()))
    });
    let widest = spans.iter().map(|s| s.trace_id).find(|id| id.high() != 0);
    let mut result: Vec<Span> = Vec::with_capacity(spans.len());
    let mut iter = spans.into_iter().peekable();
    while let Some(mut span) = iter.next() {
        if let Some(widest) = widest {
            span.trace_id = widest;
        }
        let mut tracker = EndpointTracker::default();
        tracker.try_merge(span.local_endpoint.as_ref());
        while let Some(next) = iter.next_if(|next| {
            next.id == span.id
                && next.shared == span.shared
                && tracker.try_merge(next.local_endpoint.as_ref())
        }) {
            span.merge(&next);
        }
        if let Some(last) = result.last() {
            if last.id == span.id {
                if last.kind == Some(Kind::Client) && span.kind == Some(Kind::Server) {
                    span.shared = true;
                }
                if span.shared && span.parent_id.is_none() {
                    span.parent_id = last.parent_id;
                }
            }
        }
        result.push(span);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::model::{SpanId, TraceId};

    fn span(id: u64, kind: Option<Kind>, service: &str) -> Span {
        let mut span = Span::new(TraceId(1), SpanId(id));
        span.kind = kind;
        span.local_endpoint = Some(Endpoint::service(service));
        span
    }

    #[test]
    fn fragments_of_one_span_are_merged() {
        let mut first = span(2, Some(Kind::Client), "a");
        first.timestamp = Some(10);
        let mut late = span(2, None, "a");
        late.tags.insert("error".into(), "boom".into());
        late.duration = Some(5);
        let merged = merge(vec![late, first]);
        assert_eq!(merged.len(), 1);
        assert_eq!(
            (merged[0].timestamp, merged[0].duration),
            (Some(10), Some(5))
        );
        assert_eq!(merged[0].tags["error"], "boom");
    }

    #[test]
    fn client_and_server_halves_stay_apart_and_server_is_backfilled() {
        let mut client = span(2, Some(Kind::Client), "a");
        client.parent_id = Some(SpanId(1));
        let server = span(2, Some(Kind::Server), "b");
        let merged = merge(vec![server, client]);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].kind, Some(Kind::Client));
        assert!(merged[1].shared);
        assert_eq!(merged[1].parent_id, Some(SpanId(1)));
    }

    #[test]
    fn the_128_bit_trace_id_wins() {
        let narrow = span(2, None, "a");
        let mut wide = span(3, None, "a");
        wide.trace_id = TraceId((5u128 << 64) | 1);
        let merged = merge(vec![narrow, wide]);
        assert!(merged.iter().all(|s| s.trace_id.high() == 5));
    }
}
