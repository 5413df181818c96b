//! YAML text → a tree of spanned nodes (scalar / list / map, each with its line and column).
//!
//! Built from yaml-rust2's event parser without recursion, so no input can overflow the stack:
//! nesting is capped at [`MAX_DEPTH`]. Anchors and aliases share nodes (`Rc`), so aliases never copy;
//! `<<` merge keys are resolved here (explicit keys win, earlier merge sources win over later ones).
//! Duplicate keys are reported. Values are not interpreted here: no types, no interpolation.
//!
//! Compose reads YAML with Go's yaml.v3 (a libyaml port), which is laxer than yaml-rust2 in two
//! places real files rely on: lines inside a flow collection or a multi-line quoted scalar may sit
//! at any indentation (`command: [` … `]` with the bracket under the key), and a tab may follow `:`.
//! [`parse`] repairs exactly the lines the scanner refuses for those reasons (indenting them, or the
//! tab made a space) and parses again, keeping every column as the user wrote it.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Deepest list/map nesting accepted; a manifest needs about six.
const MAX_DEPTH: usize = 64;
/// Most map entries `<<` merges may copy in one file (guards against merge bombs).
const MAX_MERGED_ENTRIES: usize = 100_000;

/// Most repairs of lax lines (see the module docs) made in one file before giving up.
const MAX_REPAIRS: usize = 2_000;

/// A place in one of the files read, 1-based; `file` indexes the loader's file table (0 is the
/// first file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Span {
    pub file: usize,
    pub line: usize,
    pub column: usize,
}

/// A YAML tag compose gives a meaning to when files are merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// `!reset`: the value is removed from the merged result.
    Reset,
    /// `!override`: the value replaces, instead of merging with, the one before it.
    Override,
}

/// A YAML node with the place it starts.
#[derive(Debug, PartialEq)]
pub struct Node {
    pub span: Span,
    pub value: Value,
    /// `!reset` / `!override`, for merging files; other tags are not kept.
    pub tag: Option<Tag>,
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
    /// Whether the node is YAML's null: nothing written, `~` or `null` (unquoted).
    pub fn is_null(&self) -> bool {
        matches!(
            &self.value,
            Value::Scalar { text, quoted: false } if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL")
        )
    }

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
        tag: Option<Tag>,
        items: Vec<Rc<Node>>,
    },
    Mapping {
        span: Span,
        anchor: usize,
        tag: Option<Tag>,
        entries: Entries,
        key: Option<Rc<Node>>,
    },
}

#[derive(Default)]
struct Builder {
    file: usize,
    /// Spaces added at the start of a line by a repair: (line, count), subtracted from columns.
    shifts: HashMap<usize, usize>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Rc<Node>>,
    root: Option<Rc<Node>>,
    documents: usize,
    merged_entries: usize,
    issues: Vec<Issue>,
}

/// Reads one YAML document of file `file` (its index in the loader's file table).
pub fn parse(source: &str, file: usize) -> Parsed {
    let mut text = std::borrow::Cow::Borrowed(source);
    let mut shifts = HashMap::new();
    let mut last_failure = None;
    for _ in 0..=MAX_REPAIRS {
        let mut builder = Builder {
            file,
            shifts: shifts.clone(),
            ..Builder::default()
        };
        match builder.read(&text) {
            Ok(()) => {
                return Parsed {
                    root: builder.root.take(),
                    issues: builder.issues,
                }
            }
            Err(Failure::Scanner { line, column, info }) => {
                last_failure = Some(builder.failed_at(line, column, &info));
                match repair(&text, line, column, &info) {
                    Some((repaired, repaired_line, added)) => {
                        *shifts.entry(repaired_line).or_insert(0) += added;
                        text = std::borrow::Cow::Owned(repaired);
                    }
                    None => break,
                }
            }
            Err(Failure::Tree(issue)) => {
                builder.issues.push(issue);
                return builder.failed();
            }
        }
    }
    last_failure.unwrap_or_else(|| Parsed {
        root: None,
        issues: Vec::new(),
    })
}

/// Why a parse stopped.
enum Failure {
    /// The scanner refused the text at this place (1-based line, 0-based column).
    Scanner {
        line: usize,
        column: usize,
        info: String,
    },
    /// The tree cannot be built (depth, alias, several documents, merge).
    Tree(Issue),
}

/// The text with the refused line made acceptable the way libyaml reads it, that line's number and
/// the spaces added to its start; `None` when the refusal is not one of libyaml's laxities.
fn repair(text: &str, line: usize, column: usize, info: &str) -> Option<(String, usize, usize)> {
    let start = line_start(text, line)?;
    let end = text[start..]
        .find('\n')
        .map_or(text.len(), |end| start + end);
    let content = &text[start..end];
    if info.contains("must be followed by a valid YAML whitespace") {
        // `key:\tvalue`: the tab after the colon becomes a space (same width, no shift). The marker
        // sits at or just past the colon.
        let colon = content
            .match_indices(":\t")
            .map(|(index, _)| index)
            .filter(|index| *index <= column + 1)
            .last()?;
        let at = start + colon + 1;
        return Some((format!("{} {}", &text[..at], &text[at + 1..]), line, 0));
    }
    if info.contains("invalid indentation in quoted scalar") {
        // The marker is at the scalar's start: the refused line is the first one after it that is
        // not indented past the line the scalar starts on.
        let base = indentation(content);
        let mut offset = end + 1;
        while offset < text.len() {
            let line_end = text[offset..]
                .find('\n')
                .map_or(text.len(), |end| offset + end);
            let next = &text[offset..line_end];
            if !next.trim().is_empty() && indentation(next) <= base {
                let next_line = line + text[start..offset].matches('\n').count();
                let (repaired, added) = indent(text, offset, base + 1 - indentation(next));
                return Some((repaired, next_line, added));
            }
            offset = line_end + 1;
        }
        return None;
    }
    if !info.contains("invalid indentation") {
        return None;
    }
    // Indent the line one past the line before it: that line was accepted, so its indentation is
    // at least the enclosing block's, and one more is inside it.
    let previous = text[..start.saturating_sub(1)]
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())?;
    let wanted = indentation(previous) + 1;
    let current = indentation(content);
    if wanted <= current {
        return None;
    }
    let (repaired, added) = indent(text, start, wanted - current);
    Some((repaired, line, added))
}

/// `text` with `added` spaces put at byte offset `start` (a line's start).
fn indent(text: &str, start: usize, added: usize) -> (String, usize) {
    let mut repaired = String::with_capacity(text.len() + added);
    repaired.push_str(&text[..start]);
    repaired.extend(std::iter::repeat_n(' ', added));
    repaired.push_str(&text[start..]);
    (repaired, added)
}

/// Byte offset where 1-based `line` starts.
fn line_start(text: &str, line: usize) -> Option<usize> {
    if line == 1 {
        return Some(0);
    }
    text.match_indices('\n')
        .nth(line - 2)
        .map(|(index, _)| index + 1)
}

fn indentation(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

impl Builder {
    fn read(&mut self, text: &str) -> Result<(), Failure> {
        let mut parser = Parser::new_from_str(text);
        loop {
            match parser.next_token() {
                Ok((Event::StreamEnd, _)) => return Ok(()),
                Ok((event, marker)) => self.on_event(event, marker).map_err(Failure::Tree)?,
                Err(error) => {
                    return Err(Failure::Scanner {
                        line: error.marker().line(),
                        column: error.marker().col(),
                        info: error.info().to_string(),
                    })
                }
            }
        }
    }

    /// The place of a scanner refusal, as the user wrote the line.
    fn failed_at(&self, line: usize, column: usize, info: &str) -> Parsed {
        let shift = self.shifts.get(&line).copied().unwrap_or(0);
        Parsed {
            root: None,
            issues: vec![Issue {
                span: Some(Span {
                    file: self.file,
                    line,
                    column: column.saturating_sub(shift) + 1,
                }),
                message: format!("invalid YAML: {info}"),
                hint: None,
            }],
        }
    }

    /// The place of a marker, in the text as the user wrote it.
    fn span(&self, marker: Marker) -> Span {
        let shift = self.shifts.get(&marker.line()).copied().unwrap_or(0);
        Span {
            file: self.file,
            line: marker.line(),
            column: marker.col().saturating_sub(shift) + 1,
        }
    }

    /// After a fatal problem only that one is reported: the rest of the tree is unreliable.
    fn failed(mut self) -> Parsed {
        Parsed {
            root: None,
            issues: self.issues.pop().into_iter().collect(),
        }
    }

    fn on_event(&mut self, event: Event, marker: Marker) -> Result<(), Issue> {
        let span = self.span(marker);
        match event {
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(fatal(span, "the manifest must be a single YAML document"));
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let merge_tag = tag.as_ref().and_then(merge_tag);
                let quoted = style != TScalarStyle::Plain
                    || tag.is_some_and(|tag| tag.suffix == "str" || tag.suffix.ends_with(":str"));
                let node = Rc::new(Node {
                    span,
                    value: Value::Scalar { text, quoted },
                    tag: merge_tag,
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
            Event::SequenceStart(anchor, tag) => {
                self.enter(span)?;
                self.stack.push(Frame::Sequence {
                    span,
                    anchor,
                    tag: tag.as_ref().and_then(merge_tag),
                    items: Vec::new(),
                });
            }
            Event::MappingStart(anchor, tag) => {
                self.enter(span)?;
                self.stack.push(Frame::Mapping {
                    span,
                    anchor,
                    tag: tag.as_ref().and_then(merge_tag),
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
                tag,
                items,
            }) => {
                let node = Rc::new(Node {
                    span,
                    value: Value::Sequence(items),
                    tag,
                });
                self.complete(node, anchor);
            }
            Some(Frame::Mapping {
                span,
                anchor,
                tag,
                entries,
                ..
            }) => {
                // A block map's start event sits at its first `:`; the map starts at its first key.
                let span = entries.first().map_or(span, |(key, _)| span.min(key.span));
                let entries = self.resolve_merges(entries)?;
                let node = Rc::new(Node {
                    span,
                    value: Value::Mapping(entries),
                    tag,
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

/// compose's merge tags (`!reset`, `!override`); other tags are left to the schema.
fn merge_tag(tag: &yaml_rust2::parser::Tag) -> Option<Tag> {
    match (tag.handle.as_str(), tag.suffix.as_str()) {
        ("!", "reset") => Some(Tag::Reset),
        ("!", "override") => Some(Tag::Override),
        _ => None,
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
        let parsed = parse(source, 0);
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
        assert_eq!(
            key.span,
            Span {
                file: 0,
                line: 1,
                column: 1
            }
        );
        let Value::Mapping(inner) = &value.value else {
            panic!()
        };
        assert_eq!(
            inner[0].0.span,
            Span {
                file: 0,
                line: 2,
                column: 3
            }
        );
        assert_eq!(
            inner[0].1.span,
            Span {
                file: 0,
                line: 2,
                column: 6
            }
        );
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
        let parsed = parse("a: 1\nb: 2\na: 3\n", 0);
        assert_eq!(parsed.issues.len(), 1);
        assert_eq!(parsed.issues[0].message, "duplicate key `a`");
        assert_eq!(
            parsed.issues[0].span,
            Some(Span {
                file: 0,
                line: 3,
                column: 1
            })
        );
    }

    #[test]
    fn syntax_errors_have_a_place() {
        let parsed = parse("a: [1, 2\nb: 3\n", 0);
        assert!(parsed.root.is_none());
        assert_eq!(parsed.issues.len(), 1);
        assert!(parsed.issues[0].span.is_some());
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let source = "[".repeat(100_000);
        let parsed = parse(&source, 0);
        assert!(parsed.root.is_none());
        assert_eq!(parsed.issues.len(), 1);
    }

    #[test]
    fn several_documents_are_refused() {
        let parsed = parse("a: 1\n---\nb: 2\n", 0);
        assert!(parsed.root.is_none());
        assert!(parsed.issues[0].message.contains("single YAML document"));
    }

    #[test]
    fn empty_text_has_no_root() {
        let parsed = parse("", 0);
        assert!(parsed.root.is_none());
        assert!(parsed.issues.is_empty());
    }

    fn scalars(node: &Node) -> Vec<String> {
        match &node.value {
            Value::Scalar { text, .. } => vec![text.clone()],
            Value::Sequence(items) => items.iter().flat_map(|item| scalars(item)).collect(),
            Value::Mapping(entries) => entries
                .iter()
                .flat_map(|(key, value)| scalars(key).into_iter().chain(scalars(value)))
                .collect(),
        }
    }

    #[test]
    fn flow_collections_and_quoted_lines_at_any_indentation_as_libyaml_reads_them() {
        for source in [
            "services:\n  web:\n    command: [\n      \"a\",\n      \"b\"\n    ]\n",
            "services:\n  web:\n    command: [\n      \"a\",\n      \"b\"\n  ]\n",
            "services:\n  web:\n    command: [\n\"a\",\n\"b\"\n]\n",
            "services:\n  web:\n    command: \"a\n  b\"\n",
            "services:\n  web:\n    command:\t[a, b]\n",
        ] {
            let node = root(source);
            let text = scalars(&node).join(" ");
            assert!(
                text == "services web command a b",
                "{source:?} gave {text:?}"
            );
        }
    }

    #[test]
    fn repaired_lines_keep_the_columns_as_written() {
        let node = root("a:\n  b: [\n1,\n  x]\n");
        let Value::Mapping(entries) = &node.value else {
            panic!()
        };
        let Value::Mapping(inner) = &entries[0].1.value else {
            panic!()
        };
        let Value::Sequence(items) = &inner[0].1.value else {
            panic!()
        };
        assert_eq!((items[0].span.line, items[0].span.column), (3, 1));
        assert_eq!((items[1].span.line, items[1].span.column), (4, 3));
    }

    #[test]
    fn merge_tags_are_kept() {
        let node = root("a: !reset []\nb: !override {c: 1}\nd: !reset null\n");
        let Value::Mapping(entries) = &node.value else {
            panic!()
        };
        let tags: Vec<Option<Tag>> = entries.iter().map(|(_, value)| value.tag).collect();
        assert_eq!(
            tags,
            [Some(Tag::Reset), Some(Tag::Override), Some(Tag::Reset)]
        );
    }
}
