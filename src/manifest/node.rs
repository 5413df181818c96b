//! YAML text → a tree of spanned nodes (scalar / list / map, each with its line and column).
//!
//! Built from yaml-rust2's event parser without recursion, so no input can overflow the stack:
//! nesting is capped at [`MAX_DEPTH`]. Anchors and aliases share nodes (`Rc`), so aliases never copy;
//! `<<` merge keys are resolved here (explicit keys win, earlier merge sources win over later ones).
//! Duplicate keys are reported. Values are not interpreted here: no types, no interpolation.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Deepest list/map nesting accepted; a manifest needs about six.
const MAX_DEPTH: usize = 64;
/// Most map entries `<<` merges may copy in one file (guards against merge bombs).
const MAX_MERGED_ENTRIES: usize = 100_000;

/// A place in the file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span {
    pub line: usize,
    pub column: usize,
}

impl Span {
    fn of(marker: Marker) -> Span {
        Span {
            line: marker.line(),
            column: marker.col() + 1,
        }
    }
}

/// A YAML node with the place it starts.
#[derive(Debug, PartialEq)]
pub struct Node {
    pub span: Span,
    pub value: Value,
}

/// A map's key/value pairs in file order.
pub type Entries = Vec<(Rc<Node>, Rc<Node>)>;

#[derive(Debug, PartialEq)]
pub enum Value {
    /// The text as written; `quoted` for any non-plain style or a `!!str` tag (never typed as a number).
    Scalar {
        text: String,
        quoted: bool,
    },
    Sequence(Vec<Rc<Node>>),
    /// Entries in file order, merges resolved.
    Mapping(Entries),
}

impl Node {
    /// The text of a scalar node.
    pub fn scalar_text(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }
}

/// A problem found while reading the YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub span: Option<Span>,
    pub message: String,
    pub hint: Option<String>,
}

/// The tree (absent when the text is not YAML, or empty) and every problem found.
#[derive(Debug)]
pub struct Parsed {
    pub root: Option<Rc<Node>>,
    pub issues: Vec<Issue>,
}

enum Frame {
    Sequence {
        span: Span,
        anchor: usize,
        items: Vec<Rc<Node>>,
    },
    Mapping {
        span: Span,
        anchor: usize,
        entries: Entries,
        key: Option<Rc<Node>>,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Rc<Node>>,
    root: Option<Rc<Node>>,
    documents: usize,
    merged_entries: usize,
    issues: Vec<Issue>,
}

/// Reads one YAML document.
pub fn parse(source: &str) -> Parsed {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(source);
    loop {
        match parser.next_token() {
            Ok((Event::StreamEnd, _)) => break,
            Ok((event, marker)) => {
                if let Err(issue) = builder.on_event(event, marker) {
                    builder.issues.push(issue);
                    return builder.failed();
                }
            }
            Err(error) => {
                builder.issues.push(Issue {
                    span: Some(Span::of(*error.marker())),
                    message: format!("invalid YAML: {}", error.info()),
                    hint: None,
                });
                return builder.failed();
            }
        }
    }
    Parsed {
        root: builder.root.take(),
        issues: builder.issues,
    }
}

impl Builder {
    /// After a fatal problem only that one is reported: the rest of the tree is unreliable.
    fn failed(mut self) -> Parsed {
        Parsed {
            root: None,
            issues: self.issues.pop().into_iter().collect(),
        }
    }

    fn on_event(&mut self, event: Event, marker: Marker) -> Result<(), Issue> {
        let span = Span::of(marker);
        match event {
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(fatal(span, "the manifest must be a single YAML document"));
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let quoted = style != TScalarStyle::Plain
                    || tag.is_some_and(|tag| tag.suffix == "str" || tag.suffix.ends_with(":str"));
                let node = Rc::new(Node {
                    span,
                    value: Value::Scalar { text, quoted },
                });
                self.complete(node, anchor);
            }
            Event::Alias(id) => {
                let node = self.anchors.get(&id).cloned().ok_or_else(|| {
                    fatal(
                        span,
                        "this alias refers to an anchor that is not defined before it",
                    )
                })?;
                self.complete(node, 0);
            }
            Event::SequenceStart(anchor, _) => {
                self.enter(span)?;
                self.stack.push(Frame::Sequence {
                    span,
                    anchor,
                    items: Vec::new(),
                });
            }
            Event::MappingStart(anchor, _) => {
                self.enter(span)?;
                self.stack.push(Frame::Mapping {
                    span,
                    anchor,
                    entries: Vec::new(),
                    key: None,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => self.close()?,
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
        Ok(())
    }

    fn enter(&self, span: Span) -> Result<(), Issue> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(fatal(
                span,
                &format!("lists and maps are nested more than {MAX_DEPTH} levels deep"),
            ));
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), Issue> {
        match self.stack.pop() {
            Some(Frame::Sequence {
                span,
                anchor,
                items,
            }) => {
                let node = Rc::new(Node {
                    span,
                    value: Value::Sequence(items),
                });
                self.complete(node, anchor);
            }
            Some(Frame::Mapping {
                span,
                anchor,
                entries,
                ..
            }) => {
                // A block map's start event sits at its first `:`; the map starts at its first key.
                let span = entries.first().map_or(span, |(key, _)| span.min(key.span));
                let entries = self.resolve_merges(entries)?;
                let node = Rc::new(Node {
                    span,
                    value: Value::Mapping(entries),
                });
                self.complete(node, anchor);
            }
            None => {}
        }
        Ok(())
    }

    /// A finished node goes into its parent (or becomes the root) and under its anchor.
    fn complete(&mut self, node: Rc<Node>, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, Rc::clone(&node));
        }
        match self.stack.last_mut() {
            Some(Frame::Sequence { items, .. }) => items.push(node),
            Some(Frame::Mapping { entries, key, .. }) => match key.take() {
                Some(key) => entries.push((key, node)),
                None => *key = Some(node),
            },
            None => self.root = Some(node),
        }
    }

    /// Reports duplicate keys and applies `<<` merges.
    fn resolve_merges(&mut self, entries: Entries) -> Result<Entries, Issue> {
        let mut seen: HashMap<String, Span> = HashMap::new();
        let mut result = Vec::with_capacity(entries.len());
        let mut sources = Vec::new();
        for (key, value) in entries {
            match &key.value {
                Value::Scalar {
                    text,
                    quoted: false,
                } if text == "<<" => sources.push(value),
                Value::Scalar { text, .. } => {
                    if let Some(first) = seen.insert(text.clone(), key.span) {
                        self.issues.push(Issue {
                            span: Some(key.span),
                            message: format!("duplicate key `{text}`"),
                            hint: Some(format!("it is first set on line {}", first.line)),
                        });
                        seen.insert(text.clone(), first);
                        continue;
                    }
                    result.push((key, value));
                }
                _ => result.push((key, value)),
            }
        }
        let mut merged: HashSet<String> = seen.into_keys().collect();
        for source in sources {
            for map in merge_sources(&source)? {
                let Value::Mapping(map_entries) = &map.value else {
                    return Err(merge_error(map.span));
                };
                self.merged_entries += map_entries.len();
                if self.merged_entries > MAX_MERGED_ENTRIES {
                    return Err(fatal(map.span, "too many keys merged with `<<`"));
                }
                for (key, value) in map_entries {
                    let text = key.scalar_text().unwrap_or_default().to_string();
                    if merged.insert(text) {
                        result.push((Rc::clone(key), Rc::clone(value)));
                    }
                }
            }
        }
        Ok(result)
    }
}

/// The maps a `<<` value names: one map, or a list of maps.
fn merge_sources(value: &Rc<Node>) -> Result<Vec<Rc<Node>>, Issue> {
    match &value.value {
        Value::Mapping(_) => Ok(vec![Rc::clone(value)]),
        Value::Sequence(items) => Ok(items.clone()),
        Value::Scalar { .. } => Err(merge_error(value.span)),
    }
}

fn merge_error(span: Span) -> Issue {
    Issue {
        span: Some(span),
        message: "a `<<` merge key needs a map or a list of maps".to_string(),
        hint: Some("write `<<: *anchor` where `&anchor` marks a map".to_string()),
    }
}

fn fatal(span: Span, message: &str) -> Issue {
    Issue {
        span: Some(span),
        message: message.to_string(),
        hint: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(source: &str) -> Rc<Node> {
        let parsed = parse(source);
        assert!(parsed.issues.is_empty(), "{:?}", parsed.issues);
        parsed.root.expect("a root node")
    }

    fn keys(node: &Node) -> Vec<String> {
        match &node.value {
            Value::Mapping(entries) => entries
                .iter()
                .map(|(key, value)| {
                    format!(
                        "{}={}",
                        key.scalar_text().unwrap_or("?"),
                        value.scalar_text().unwrap_or("?")
                    )
                })
                .collect(),
            _ => panic!("not a map"),
        }
    }

    #[test]
    fn records_lines_and_columns() {
        let node = root("a:\n  b: 1\n");
        let Value::Mapping(entries) = &node.value else {
            panic!()
        };
        let (key, value) = &entries[0];
        assert_eq!(key.span, Span { line: 1, column: 1 });
        let Value::Mapping(inner) = &value.value else {
            panic!()
        };
        assert_eq!(inner[0].0.span, Span { line: 2, column: 3 });
        assert_eq!(inner[0].1.span, Span { line: 2, column: 6 });
    }

    #[test]
    fn quoted_scalars_are_marked() {
        let node = root("- 1\n- '1'\n- !!str 1\n");
        let Value::Sequence(items) = &node.value else {
            panic!()
        };
        let quoted: Vec<bool> = items
            .iter()
            .map(|item| matches!(item.value, Value::Scalar { quoted: true, .. }))
            .collect();
        assert_eq!(quoted, [false, true, true]);
    }

    #[test]
    fn merge_keys_and_aliases() {
        let node = root(
            "base: &base {a: 1, b: 2}\nother: &other {c: 3, a: 9}\nmerged:\n  <<: [*base, *other]\n  b: 5\n",
        );
        let Value::Mapping(entries) = &node.value else {
            panic!()
        };
        assert_eq!(keys(&entries[2].1), ["b=5", "a=1", "c=3"]);
    }

    #[test]
    fn duplicate_keys_are_reported() {
        let parsed = parse("a: 1\nb: 2\na: 3\n");
        assert_eq!(parsed.issues.len(), 1);
        assert_eq!(parsed.issues[0].message, "duplicate key `a`");
        assert_eq!(parsed.issues[0].span, Some(Span { line: 3, column: 1 }));
    }

    #[test]
    fn syntax_errors_have_a_place() {
        let parsed = parse("a: [1, 2\nb: 3\n");
        assert!(parsed.root.is_none());
        assert_eq!(parsed.issues.len(), 1);
        assert!(parsed.issues[0].span.is_some());
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let source = "[".repeat(100_000);
        let parsed = parse(&source);
        assert!(parsed.root.is_none());
        assert_eq!(parsed.issues.len(), 1);
    }

    #[test]
    fn several_documents_are_refused() {
        let parsed = parse("a: 1\n---\nb: 2\n");
        assert!(parsed.root.is_none());
        assert!(parsed.issues[0].message.contains("single YAML document"));
    }

    #[test]
    fn empty_text_has_no_root() {
        let parsed = parse("");
        assert!(parsed.root.is_none());
        assert!(parsed.issues.is_empty());
    }
}
