//! The Graph page's data: the services as nodes and the calls between them as edges, over a
//! window of traces, each edge with its call count, error count, p95 latency and its newest
//! traces.
//!
//! Edges are the trace server's dependency links ([`Linker`], the same rules as
//! `/api/v2/dependencies`: proxy, SDK and L4 connection spans alike), counted trace by trace so
//! each edge knows its traces. An edge's latency is the caller's view of the call (its client
//! spans to the callee), else the callee's server spans. Bounded: at most [`MAX_TRACES`] traces
//! are read (the newest), each edge keeps [`TRACES_PER_EDGE`] trace ids.

use std::collections::{BTreeSet, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::trace::dependencies::Linker;
use crate::trace::query::QueryRequest;
use crate::trace::{Kind, Span, Store};

/// The most traces one graph reads (the newest in the window).
pub const MAX_TRACES: usize = 10_000;
/// The trace ids an edge lists (its newest).
pub const TRACES_PER_EDGE: usize = 20;

/// The windows the page offers, by name, in milliseconds (`None`: everything held).
pub fn window(name: &str) -> Option<Option<u64>> {
    match name {
        "5m" => Some(Some(5 * 60_000)),
        "15m" => Some(Some(15 * 60_000)),
        "" | "1h" => Some(Some(3_600_000)),
        "all" => Some(None),
        _ => None,
    }
}

/// The services and the calls between them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Graph {
    /// Every service seen in the window's traces, sorted.
    pub services: Vec<String>,
    /// Caller → callee, in first-seen order.
    pub edges: Vec<Edge>,
    /// Traces read.
    pub traces: usize,
    /// True when the window held more than [`MAX_TRACES`] traces (the newest were read).
    pub truncated: bool,
}

/// Calls from one service to another.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Edge {
    /// The caller.
    pub parent: String,
    /// The callee.
    pub child: String,
    /// Traced calls.
    pub calls: u64,
    /// Traced calls in error.
    pub errors: u64,
    /// The 95th percentile of the calls' durations, microseconds (`None`: no span had one).
    pub p95_micros: Option<u64>,
    /// The newest traces with this call (hex ids), newest first.
    pub trace_ids: Vec<String>,
}

/// The graph of `traces` (newest first, each merged as the store serves it).
pub fn build(traces: &[Vec<Span>]) -> Graph {
    let mut services = BTreeSet::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    let mut edges: Vec<Edge> = Vec::new();
    let mut durations: Vec<Vec<u64>> = Vec::new();
    for spans in traces {
        services.extend(
            spans
                .iter()
                .filter_map(|span| span.local_service_name().map(str::to_owned)),
        );
        let mut linker = Linker::default();
        linker.put_trace(spans);
        for link in linker.links() {
            let key = (link.parent.clone(), link.child.clone());
            let at = *index.entry(key).or_insert_with(|| {
                edges.push(Edge {
                    parent: link.parent.clone(),
                    child: link.child.clone(),
                    ..Edge::default()
                });
                durations.push(Vec::new());
                edges.len() - 1
            });
            let edge = &mut edges[at];
            edge.calls += link.call_count;
            edge.errors += link.error_count;
            if edge.trace_ids.len() < TRACES_PER_EDGE {
                if let Some(span) = spans.first() {
                    edge.trace_ids.push(span.trace_id.to_string());
                }
            }
            durations[at].extend(call_durations(spans, &link.parent, &link.child));
            services.insert(link.parent);
            services.insert(link.child);
        }
    }
    for (edge, mut samples) in edges.iter_mut().zip(durations) {
        edge.p95_micros = percentile(&mut samples, 95);
    }
    Graph {
        services: services.into_iter().collect(),
        edges,
        traces: traces.len(),
        truncated: false,
    }
}

/// How long `parent`'s calls to `child` took in one trace: the caller's client spans to it, else
/// the callee's server spans.
fn call_durations<'a>(
    spans: &'a [Span],
    parent: &'a str,
    child: &'a str,
) -> impl Iterator<Item = u64> + 'a {
    let client = move |span: &&Span| {
        span.kind == Some(Kind::Client)
            && span.local_service_name() == Some(parent)
            && span.remote_service_name() == Some(child)
    };
    let server = move |span: &&Span| {
        span.kind == Some(Kind::Server)
            && span.local_service_name() == Some(child)
            && span
                .remote_service_name()
                .is_none_or(|remote| remote == parent)
    };
    let from_clients = spans.iter().any(|span| client(&span));
    spans
        .iter()
        .filter(move |span| {
            if from_clients {
                client(span)
            } else {
                server(span)
            }
        })
        .filter_map(|span| span.duration)
}

/// The `rank`th percentile (nearest rank) of `samples`; `None` when there are none.
fn percentile(samples: &mut [u64], rank: usize) -> Option<u64> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let position = (samples.len() * rank).div_ceil(100).max(1) - 1;
    samples.get(position).copied()
}

/// The graph of the traces in the last `lookback` milliseconds (`None`: all held).
pub fn of_store(store: &Store, lookback: Option<u64>) -> Graph {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |elapsed| elapsed.as_millis() as u64);
    let request = QueryRequest {
        service_name: None,
        remote_service_name: None,
        span_name: None,
        annotation_query: Vec::new(),
        min_duration: None,
        max_duration: None,
        // A minute ahead: spans from clocks a little ahead of this one still count.
        end_ts: now + 60_000,
        lookback: lookback.map_or(now + 60_000, |lookback| lookback + 60_000),
        limit: MAX_TRACES + 1,
    };
    let mut traces = store.search(&request);
    let truncated = traces.len() > MAX_TRACES;
    traces.truncate(MAX_TRACES);
    Graph {
        truncated,
        ..build(&traces)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{Endpoint, SpanId, TraceId};

    fn span(
        trace: u128,
        id: u64,
        parent: Option<u64>,
        kind: Kind,
        service: &str,
        remote: Option<&str>,
        duration: u64,
    ) -> Span {
        let mut span = Span::new(TraceId(trace), SpanId(id));
        span.parent_id = parent.map(SpanId);
        span.kind = Some(kind);
        span.local_endpoint = Some(Endpoint::service(service));
        span.remote_endpoint = remote.map(Endpoint::service);
        span.timestamp = Some(1_000 + id);
        span.duration = Some(duration);
        span
    }

    /// gateway → user → item, as the proxy records it; `slow` is item's call time.
    fn chain(trace: u128, slow: u64, failed: bool) -> Vec<Span> {
        let mut item_client = span(trace, 3, Some(2), Kind::Client, "user", Some("item"), slow);
        if failed {
            item_client.tags.insert("error".into(), "503".into());
        }
        vec![
            span(
                trace,
                1,
                None,
                Kind::Client,
                "gateway",
                Some("user"),
                slow + 100,
            ),
            span(
                trace,
                2,
                Some(1),
                Kind::Server,
                "user",
                Some("gateway"),
                slow + 90,
            ),
            item_client,
            span(
                trace,
                4,
                Some(3),
                Kind::Server,
                "item",
                Some("user"),
                slow - 10,
            ),
        ]
    }

    #[test]
    fn edges_carry_counts_errors_p95_and_their_traces() {
        let traces: Vec<Vec<Span>> = (1..=20u64)
            .map(|n| chain(n as u128, n * 100, n == 7))
            .collect();
        let graph = build(&traces);
        assert_eq!(graph.services, ["gateway", "item", "user"]);
        assert_eq!(graph.traces, 20);
        let edge = |parent: &str, child: &str| {
            graph
                .edges
                .iter()
                .find(|edge| edge.parent == parent && edge.child == child)
                .cloned()
                .unwrap_or_else(|| panic!("no edge {parent} → {child}: {graph:?}"))
        };
        let front = edge("gateway", "user");
        assert_eq!((front.calls, front.errors), (20, 0));
        // Durations 200..=2100 by 100: the 19th of 20 is 2000.
        assert_eq!(front.p95_micros, Some(2000));
        let back = edge("user", "item");
        assert_eq!((back.calls, back.errors), (20, 1));
        assert_eq!(back.p95_micros, Some(1900));
        assert_eq!(back.trace_ids.len(), TRACES_PER_EDGE);
        assert_eq!(back.trace_ids[0], TraceId(1).to_string());
        assert_eq!(graph.edges.len(), 2);
    }

    #[test]
    fn without_client_spans_the_server_spans_time_the_call() {
        let traces = vec![vec![
            span(1, 1, None, Kind::Server, "user", Some("browser"), 900),
            span(1, 2, Some(1), Kind::Server, "item", Some("user"), 400),
        ]];
        let graph = build(&traces);
        let edge = graph
            .edges
            .iter()
            .find(|edge| edge.child == "item")
            .expect("user → item");
        assert_eq!((edge.parent.as_str(), edge.p95_micros), ("user", Some(400)));
    }

    #[test]
    fn an_l4_connection_is_an_edge_with_its_error() {
        // As the proxy records a TCP connection: a client span and the shared server half (with
        // the same tags), in a trace of their own.
        let connection = |trace: u128, failed: bool| {
            let mut client = span(trace, 1, None, Kind::Client, "app", Some("db"), 700);
            let mut server = span(trace, 1, None, Kind::Server, "db", Some("app"), 700);
            server.shared = true;
            if failed {
                client.tags.insert("error".into(), "refused".into());
                server.tags.insert("error".into(), "refused".into());
            }
            vec![client, server]
        };
        let graph = build(&[connection(1, false), connection(2, true)]);
        assert_eq!(graph.edges.len(), 1, "{graph:?}");
        let edge = &graph.edges[0];
        assert_eq!(
            (
                edge.parent.as_str(),
                edge.child.as_str(),
                edge.calls,
                edge.errors
            ),
            ("app", "db", 2, 1)
        );
        assert_eq!(edge.p95_micros, Some(700));
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        assert_eq!(percentile(&mut [], 95), None);
        assert_eq!(percentile(&mut [7], 95), Some(7));
        assert_eq!(percentile(&mut [3, 1, 2], 50), Some(2));
        let mut hundred: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(percentile(&mut hundred, 95), Some(95));
    }

    #[test]
    fn the_windows_the_page_offers() {
        assert_eq!(window("5m"), Some(Some(300_000)));
        assert_eq!(window("all"), Some(None));
        assert_eq!(window("1h"), window(""));
        assert_eq!(window("2d"), None);
    }

    #[test]
    fn a_store_graph_reads_the_stored_traces() {
        let store = Store::new(1000);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_micros() as u64;
        let mut spans = chain(5, 500, false);
        for span in &mut spans {
            span.timestamp = Some(now);
        }
        store.ingest(spans);
        let graph = of_store(&store, Some(300_000));
        assert_eq!(graph.traces, 1);
        assert!(!graph.truncated);
        assert_eq!(graph.edges.len(), 2, "{graph:?}");
    }
}
