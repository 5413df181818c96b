//! Service dependency links derived from traces, with the rules of the server's `DependencyLinker`:
//! the span tree is walked breadth-first; server and consumer spans link from their caller (the remote
//! endpoint, or the nearest remote ancestor); client and producer spans at the bottom of the tree link
//! to their remote service (uninstrumented callees); messaging spans link through the broker;
//! a span is an error when it has an `error` tag (or its client parent has).

use std::collections::{HashMap, VecDeque};

use crate::trace::model::{Kind, Span, SpanId};

/// A parent → child edge with its call and error counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyLink {
    /// Caller: client, producer or broker.
    pub parent: String,
    /// Callee: server, consumer or broker.
    pub child: String,
    /// Traced calls.
    pub call_count: u64,
    /// Traced calls known to be in error.
    pub error_count: u64,
}

/// Accumulates links over many traces, keeping first-seen order.
#[derive(Default)]
pub struct Linker {
    index: HashMap<(String, String), usize>,
    links: Vec<DependencyLink>,
}

/// One trace as a tree: `parents[i]` is the index of span i's parent, `None` at the top.
struct Tree<'a> {
    spans: &'a [Span],
    parents: Vec<Option<usize>>,
    children: Vec<Vec<usize>>,
    /// The single root, when the trace has exactly one top-level span.
    root: Option<usize>,
}

impl<'a> Tree<'a> {
    fn build(spans: &'a [Span]) -> Self {
        let mut by_key: HashMap<(SpanId, bool), Vec<usize>> = HashMap::new();
        for (index, span) in spans.iter().enumerate() {
            by_key
                .entry((span.id, span.shared))
                .or_default()
                .push(index);
        }
        let find = |id: SpanId, shared: bool, service: Option<&str>| -> Option<usize> {
            let candidates = by_key.get(&(id, shared))?;
            candidates
                .iter()
                .copied()
                .find(|&i| service.is_none() || spans[i].local_service_name() == service)
                .or_else(|| candidates.first().copied())
        };
        let parents: Vec<Option<usize>> = spans
            .iter()
            .map(|span| {
                if span.shared {
                    // The server half's parent is the client half with the same id.
                    if let Some(client) = find(span.id, false, None) {
                        return Some(client);
                    }
                }
                let parent = span.parent_id?;
                // Prefer the server half of the parent id on our own host, then its client half.
                let service = span.local_service_name();
                by_key
                    .get(&(parent, true))
                    .and_then(|c| {
                        c.iter()
                            .copied()
                            .find(|&i| spans[i].local_service_name() == service)
                    })
                    .or_else(|| find(parent, false, None))
                    .or_else(|| find(parent, true, None))
            })
            .collect();
        let mut children = vec![Vec::new(); spans.len()];
        let mut tops = Vec::new();
        for (index, parent) in parents.iter().enumerate() {
            match parent {
                Some(parent) if *parent != index => children[*parent].push(index),
                _ => tops.push(index),
            }
        }
        Tree {
            spans,
            root: (tops.len() == 1).then(|| tops[0]),
            parents,
            children,
        }
    }

    fn breadth_first(&self) -> Vec<usize> {
        let mut order = Vec::with_capacity(self.spans.len());
        let mut queue: VecDeque<usize> = (0..self.spans.len())
            .filter(|&i| self.parents[i].is_none_or(|p| p == i))
            .collect();
        let mut seen = vec![false; self.spans.len()];
        while let Some(index) = queue.pop_front() {
            if std::mem::replace(&mut seen[index], true) {
                continue;
            }
            order.push(index);
            queue.extend(self.children[index].iter().copied());
        }
        order
    }

    fn first_remote_ancestor(&self, index: usize) -> Option<&'a Span> {
        let mut current = self.parents[index];
        let mut steps = 0;
        while let Some(ancestor) = current {
            if self.spans[ancestor].kind.is_some() {
                return Some(&self.spans[ancestor]);
            }
            current = self.parents[ancestor].filter(|p| *p != ancestor);
            steps += 1;
            if steps > self.spans.len() {
                return None; // a parent cycle
            }
        }
        None
    }
}

impl Linker {
    /// Adds the links of one trace (spans already merged, all with the same trace id).
    pub fn put_trace(&mut self, spans: &[Span]) {
        if spans.is_empty() {
            return;
        }
        let tree = Tree::build(spans);
        for index in tree.breadth_first() {
            self.link_span(&tree, index);
        }
    }

    fn link_span(&mut self, tree: &Tree<'_>, index: usize) {
        let span = &tree.spans[index];
        let mut kind = span.kind;
        // For a client with children, the server side names the link.
        if kind == Some(Kind::Client) && !tree.children[index].is_empty() {
            return;
        }
        let service = span.local_service_name();
        let remote = span.remote_service_name();
        if kind.is_none() {
            if service.is_some() && remote.is_some() {
                kind = Some(Kind::Client);
            } else {
                return;
            }
        }
        let (mut parent, child) = match kind {
            Some(Kind::Server | Kind::Consumer) => {
                if tree.root == Some(index) && remote.is_none() {
                    return; // the root's caller is unknown
                }
                (remote, service)
            }
            _ => (service, remote),
        };
        let mut is_error = span.tags.contains_key("error");
        if matches!(kind, Some(Kind::Producer | Kind::Consumer)) {
            if let (Some(parent), Some(child)) = (parent, child) {
                self.add(parent, child, is_error);
            }
            return;
        }
        if let Some(ancestor) = tree.first_remote_ancestor(index) {
            if let Some(ancestor_name) = ancestor.local_service_name() {
                // Backfill a link to a client span whose service differs from its remote ancestor.
                if kind == Some(Kind::Client) && service.is_some_and(|s| s != ancestor_name) {
                    self.add(ancestor_name, service.unwrap_or_default(), false);
                }
                if kind == Some(Kind::Server) || parent.is_none() {
                    parent = Some(ancestor_name);
                }
                if !is_error
                    && ancestor.kind == Some(Kind::Client)
                    && span.parent_id.is_some()
                    && span.parent_id == Some(ancestor.id)
                {
                    is_error = ancestor.tags.contains_key("error");
                }
            }
        }
        if let (Some(parent), Some(child)) = (parent, child) {
            self.add(parent, child, is_error);
        }
    }

    fn add(&mut self, parent: &str, child: &str, is_error: bool) {
        let key = (parent.to_owned(), child.to_owned());
        let index = *self.index.entry(key).or_insert_with(|| {
            self.links.push(DependencyLink {
                parent: parent.to_owned(),
                child: child.to_owned(),
                call_count: 0,
                error_count: 0,
            });
            self.links.len() - 1
        });
        self.links[index].call_count += 1;
        self.links[index].error_count += u64::from(is_error);
    }

    /// The links so far.
    pub fn links(self) -> Vec<DependencyLink> {
        self.links
    }
}

/// Encodes links as the server's JSON (`parent`, `child`, `callCount`, `errorCount` when non-zero).
pub fn encode(links: &[DependencyLink]) -> Vec<u8> {
    let mut out = Vec::with_capacity(links.len() * 64 + 2);
    out.push(b'[');
    for (index, link) in links.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"parent\":");
        crate::trace::codec::json::write_str(&mut out, &link.parent);
        out.extend_from_slice(b",\"child\":");
        crate::trace::codec::json::write_str(&mut out, &link.child);
        out.extend_from_slice(format!(",\"callCount\":{}", link.call_count).as_bytes());
        if link.error_count > 0 {
            out.extend_from_slice(format!(",\"errorCount\":{}", link.error_count).as_bytes());
        }
        out.push(b'}');
    }
    out.push(b']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::merge::merge;
    use crate::trace::model::{Endpoint, TraceId};

    fn span(
        id: u64,
        parent: Option<u64>,
        kind: Option<Kind>,
        service: &str,
        remote: Option<&str>,
    ) -> Span {
        let mut span = Span::new(TraceId(9), SpanId(id));
        span.parent_id = parent.map(SpanId);
        span.kind = kind;
        span.local_endpoint = Some(Endpoint::service(service));
        span.remote_endpoint = remote.map(Endpoint::service);
        span
    }

    fn links(spans: Vec<Span>) -> Vec<(String, String, u64, u64)> {
        let mut linker = Linker::default();
        linker.put_trace(&merge(spans));
        linker
            .links()
            .into_iter()
            .map(|l| (l.parent, l.child, l.call_count, l.error_count))
            .collect()
    }

    fn link(parent: &str, child: &str, calls: u64, errors: u64) -> (String, String, u64, u64) {
        (parent.into(), child.into(), calls, errors)
    }

    #[test]
    fn shared_span_ids_between_client_and_server_count_once() {
        let mut server = span(2, Some(1), Some(Kind::Server), "back", None);
        server.tags.insert("error".into(), "500".into());
        let spans = vec![
            span(1, None, Some(Kind::Server), "front", None),
            span(2, Some(1), Some(Kind::Client), "front", Some("back")),
            server,
        ];
        assert_eq!(links(spans), vec![link("front", "back", 1, 1)]);
    }

    #[test]
    fn client_error_counts_for_the_server_link_with_separate_ids() {
        let mut client = span(2, Some(1), Some(Kind::Client), "front", Some("back"));
        client.tags.insert("error".into(), "timeout".into());
        let spans = vec![
            span(1, None, Some(Kind::Server), "front", None),
            client,
            span(3, Some(2), Some(Kind::Server), "back", None),
        ];
        assert_eq!(links(spans), vec![link("front", "back", 1, 1)]);
    }

    #[test]
    fn separate_span_ids_and_uninstrumented_leaf() {
        let spans = vec![
            span(1, None, Some(Kind::Server), "front", Some("browser")),
            span(2, Some(1), Some(Kind::Client), "front", Some("back")),
            span(3, Some(2), Some(Kind::Server), "back", None),
            span(4, Some(3), None, "back", None),
            span(5, Some(4), Some(Kind::Client), "back", Some("mysql")),
        ];
        assert_eq!(
            links(spans),
            vec![
                link("browser", "front", 1, 0),
                link("front", "back", 1, 0),
                link("back", "mysql", 1, 0)
            ]
        );
    }

    #[test]
    fn messaging_links_go_through_the_broker() {
        let spans = vec![
            span(1, None, Some(Kind::Producer), "orders", Some("kafka")),
            span(2, Some(1), Some(Kind::Consumer), "billing", Some("kafka")),
        ];
        assert_eq!(
            links(spans),
            vec![
                link("orders", "kafka", 1, 0),
                link("kafka", "billing", 1, 0)
            ]
        );
    }

    #[test]
    fn root_server_without_caller_makes_no_link() {
        assert!(links(vec![span(1, None, Some(Kind::Server), "front", None)]).is_empty());
    }
}
