//! Merging node trees by the Compose Specification's rules (several `-f` files, override files,
//! `extends`).
//!
//! Maps merge key by key; lists are appended; `command`, `entrypoint` and `healthcheck.test` are
//! replaced; `ports`, `volumes`, `secrets` and `configs` keep one entry per unique key (the later
//! file's entry wins); the fields compose accepts as a map or a `KEY=VALUE` list (`environment`,
//! `labels`, `build.args`, ...) merge by key whatever form each file uses; `!reset` removes a value
//! and `!override` replaces it whole. Every node keeps the place it was written, so errors found
//! after merging still point into the right file.

use std::collections::HashMap;
use std::rc::Rc;

use super::node::{Node, Tag, Value};

/// Service fields whose later value replaces the earlier one.
const REPLACED: &[&str] = &["command", "entrypoint"];
/// Service fields written as a map or as a `KEY=VALUE` / `KEY:VALUE` list, merged by key.
const KEYED: &[(&str, char)] = &[
    ("environment", '='),
    ("labels", '='),
    ("annotations", '='),
    ("sysctls", '='),
    ("extra_hosts", ':'),
];
/// Service fields that are lists of unique entries (merged by their key).
const UNIQUE: &[&str] = &["ports", "volumes", "secrets", "configs"];
/// Service fields written as a list or a map of names (`networks`, `depends_on`).
const NAMES: &[&str] = &["networks", "depends_on"];
/// Service fields that may be one string or a list of strings.
const STRING_OR_LIST: &[&str] = &[
    "dns",
    "dns_search",
    "env_file",
    "tmpfs",
    "cap_add",
    "cap_drop",
    "security_opt",
    "expose",
    "profiles",
];

/// Merges `over` onto `base`, where `path` is where both sit (`["services", "web"]`). Returns
/// `None` when the result is removed (`!reset`).
pub fn merge(base: &Rc<Node>, over: &Rc<Node>, path: &[&str]) -> Option<Rc<Node>> {
    match over.tag {
        Some(Tag::Reset) => return None,
        Some(Tag::Override) => return Some(strip(over)),
        None => {}
    }
    if path.len() == 4 && path[0] == "services" {
        match path[2..] {
            ["healthcheck", "test"] => return Some(strip(over)),
            ["build", "args" | "labels"] => return Some(merge_keyed(base, over, '=', path)),
            ["build", "extra_hosts"] => return Some(merge_keyed(base, over, ':', path)),
            _ => {}
        }
    }
    if let Some(field) = service_field(path) {
        if REPLACED.contains(&field) {
            return Some(strip(over));
        }
        if let Some((_, separator)) = KEYED.iter().find(|(name, _)| *name == field) {
            return Some(merge_keyed(base, over, *separator, path));
        }
        if UNIQUE.contains(&field) {
            return Some(merge_unique(base, over, field));
        }
        if NAMES.contains(&field) {
            return Some(merge_names(base, over, path));
        }
        if STRING_OR_LIST.contains(&field) {
            return Some(append(&as_list(base), &as_list(over)));
        }
        if field == "build" && path.len() == 3 {
            return Some(merge_maps(&build_map(base), &build_map(over), path));
        }
    }
    match (&base.value, &over.value) {
        (Value::Mapping(_), Value::Mapping(_)) => Some(merge_maps(base, over, path)),
        (Value::Sequence(_), Value::Sequence(_)) => Some(append(base, over)),
        _ => Some(strip(over)),
    }
}

/// The service field `path` points at (`["services", "web", "ports"]` → `ports`); `None` deeper
/// or elsewhere.
fn service_field<'a>(path: &[&'a str]) -> Option<&'a str> {
    (path.len() == 3 && path[0] == "services").then(|| path[2])
}

/// Removes `!reset` values left in a tree that had nothing to reset (the first file's), and the
/// tags of the rest. Shared nodes (aliases) are visited once, so alias chains cannot blow up.
pub fn strip(node: &Rc<Node>) -> Rc<Node> {
    Stripper::default().strip(node)
}

#[derive(Default)]
struct Stripper {
    /// Whether a node or anything under it has a tag, by address.
    tagged: HashMap<*const Node, bool>,
    stripped: HashMap<*const Node, Rc<Node>>,
}

impl Stripper {
    fn strip(&mut self, node: &Rc<Node>) -> Rc<Node> {
        if !self.has_tags(node) {
            return Rc::clone(node);
        }
        if let Some(done) = self.stripped.get(&Rc::as_ptr(node)) {
            return Rc::clone(done);
        }
        let value = match &node.value {
            Value::Mapping(entries) => Value::Mapping(
                entries
                    .iter()
                    .filter(|(_, value)| value.tag != Some(Tag::Reset))
                    .map(|(key, value)| (Rc::clone(key), self.strip(value)))
                    .collect(),
            ),
            Value::Sequence(items) => Value::Sequence(
                items
                    .iter()
                    .filter(|item| item.tag != Some(Tag::Reset))
                    .map(|item| self.strip(item))
                    .collect(),
            ),
            scalar => clone_value(scalar),
        };
        let stripped = with_value(node, value);
        self.stripped.insert(Rc::as_ptr(node), Rc::clone(&stripped));
        stripped
    }

    fn has_tags(&mut self, node: &Rc<Node>) -> bool {
        if let Some(known) = self.tagged.get(&Rc::as_ptr(node)) {
            return *known;
        }
        let tagged = node.tag.is_some()
            || match &node.value {
                Value::Mapping(entries) => entries.iter().any(|(_, value)| self.has_tags(value)),
                Value::Sequence(items) => items.iter().any(|item| self.has_tags(item)),
                Value::Scalar { .. } => false,
            };
        self.tagged.insert(Rc::as_ptr(node), tagged);
        tagged
    }
}

fn clone_value(value: &Value) -> Value {
    match value {
        Value::Scalar { text, quoted } => Value::Scalar {
            text: text.clone(),
            quoted: *quoted,
        },
        Value::Sequence(items) => Value::Sequence(items.clone()),
        Value::Mapping(entries) => Value::Mapping(entries.clone()),
    }
}

/// A node like `node` (same place) with another value and no tag.
fn with_value(node: &Node, value: Value) -> Rc<Node> {
    Rc::new(Node {
        span: node.span,
        value,
        tag: None,
    })
}

fn merge_maps(base: &Rc<Node>, over: &Rc<Node>, path: &[&str]) -> Rc<Node> {
    let (Value::Mapping(base_entries), Value::Mapping(over_entries)) = (&base.value, &over.value)
    else {
        return strip(over);
    };
    let mut entries: Vec<(Rc<Node>, Option<Rc<Node>>)> = base_entries
        .iter()
        .map(|(key, value)| (Rc::clone(key), Some(Rc::clone(value))))
        .collect();
    for (key, value) in over_entries {
        let name = key.scalar_text().unwrap_or_default();
        let existing = entries
            .iter_mut()
            .find(|(existing, _)| existing.scalar_text() == Some(name));
        match existing {
            Some((_, slot)) => {
                let mut inner = path.to_vec();
                inner.push(name);
                *slot = match slot {
                    Some(previous) => merge(previous, value, &inner),
                    None => (value.tag != Some(Tag::Reset)).then(|| strip(value)),
                };
            }
            None if value.tag == Some(Tag::Reset) => {}
            None => entries.push((Rc::clone(key), Some(strip(value)))),
        }
    }
    with_value(
        base,
        Value::Mapping(
            entries
                .into_iter()
                .filter_map(|(key, value)| Some((key, value?)))
                .collect(),
        ),
    )
}

fn append(base: &Rc<Node>, over: &Rc<Node>) -> Rc<Node> {
    let items = |node: &Rc<Node>| match &node.value {
        Value::Sequence(items) => items.clone(),
        _ => vec![Rc::clone(node)],
    };
    let mut merged = items(base);
    for item in items(over) {
        if item.tag == Some(Tag::Reset) {
            continue;
        }
        let duplicate = item.scalar_text().is_some()
            && merged
                .iter()
                .any(|existing| existing.scalar_text() == item.scalar_text());
        if !duplicate {
            merged.push(strip(&item));
        }
    }
    with_value(base, Value::Sequence(merged))
}

/// A scalar as a one-item list (`dns: 8.8.8.8`), a list as it is.
fn as_list(node: &Rc<Node>) -> Rc<Node> {
    match &node.value {
        Value::Sequence(_) => Rc::clone(node),
        _ => with_value(node, Value::Sequence(vec![Rc::clone(node)])),
    }
}

/// `build: ./dir` as `{context: ./dir}`, so it merges with a map.
fn build_map(node: &Rc<Node>) -> Rc<Node> {
    match &node.value {
        Value::Scalar { .. } => with_value(
            node,
            Value::Mapping(vec![(scalar_at(node, "context"), Rc::clone(node))]),
        ),
        _ => Rc::clone(node),
    }
}

fn scalar_at(node: &Node, text: &str) -> Rc<Node> {
    with_value(
        node,
        Value::Scalar {
            text: text.to_string(),
            quoted: false,
        },
    )
}

/// A map, or a list of `KEY<separator>VALUE` items, as (key, value node) pairs; a list item without
/// a separator has a null value (compose: taken from the environment).
fn keyed_entries(node: &Rc<Node>, separator: char) -> Vec<(Rc<Node>, Rc<Node>)> {
    match &node.value {
        Value::Mapping(entries) => entries.clone(),
        Value::Sequence(items) => items
            .iter()
            .map(|item| {
                let text = item.scalar_text().unwrap_or_default();
                match text.split_once(separator) {
                    Some((key, value)) => (
                        scalar_at(item, key.trim()),
                        with_value(
                            item,
                            Value::Scalar {
                                text: value.to_string(),
                                quoted: true,
                            },
                        ),
                    ),
                    None => (scalar_at(item, text), scalar_at(item, "")),
                }
            })
            .collect(),
        Value::Scalar { .. } => Vec::new(),
    }
}

fn merge_keyed(base: &Rc<Node>, over: &Rc<Node>, separator: char, path: &[&str]) -> Rc<Node> {
    if let (Value::Mapping(_), Value::Mapping(_)) = (&base.value, &over.value) {
        return merge_maps(base, over, path);
    }
    let base_map = with_value(base, Value::Mapping(keyed_entries(base, separator)));
    let over_map = with_value(over, Value::Mapping(keyed_entries(over, separator)));
    merge_maps(&base_map, &over_map, path)
}

/// The unique key of a `ports`/`volumes`/`secrets`/`configs` entry (its target, or for ports its
/// whole text); `None` for entries that cannot be keyed (kept as they are).
fn unique_key(item: &Node, field: &str) -> Option<String> {
    let get = |key: &str| match &item.value {
        Value::Mapping(entries) => entries
            .iter()
            .find(|(name, _)| name.scalar_text() == Some(key))
            .and_then(|(_, value)| value.scalar_text().map(str::to_string)),
        _ => None,
    };
    match (&item.value, field) {
        (Value::Scalar { text, .. }, "ports") => Some(text.clone()),
        (Value::Scalar { text, .. }, "volumes") => {
            let mut parts = text.split(':');
            let first = parts.next()?;
            Some(parts.next().unwrap_or(first).to_string())
        }
        (Value::Scalar { text, .. }, _) => Some(text.clone()),
        (Value::Mapping(_), "ports") => Some(format!(
            "{}:{}:{}/{}",
            get("host_ip").unwrap_or_default(),
            get("published").unwrap_or_default(),
            get("target").unwrap_or_default(),
            get("protocol").unwrap_or_else(|| "tcp".into())
        )),
        (Value::Mapping(_), "volumes") => get("target"),
        (Value::Mapping(_), _) => get("target").or_else(|| get("source")),
        _ => None,
    }
}

fn merge_unique(base: &Rc<Node>, over: &Rc<Node>, field: &str) -> Rc<Node> {
    let (Value::Sequence(base_items), Value::Sequence(over_items)) = (&base.value, &over.value)
    else {
        return strip(over);
    };
    let mut merged = base_items.clone();
    for item in over_items {
        if item.tag == Some(Tag::Reset) {
            continue;
        }
        let key = unique_key(item, field);
        let existing = key.as_ref().and_then(|key| {
            merged
                .iter()
                .position(|existing| unique_key(existing, field).as_ref() == Some(key))
        });
        match existing {
            Some(index) => merged[index] = strip(item),
            None => merged.push(strip(item)),
        }
    }
    with_value(base, Value::Sequence(merged))
}

/// `networks`/`depends_on`: lists of names or maps by name; mixed forms merge as maps.
fn merge_names(base: &Rc<Node>, over: &Rc<Node>, path: &[&str]) -> Rc<Node> {
    match (&base.value, &over.value) {
        (Value::Sequence(_), Value::Sequence(_)) => append(base, over),
        _ => merge_maps(&names_map(base), &names_map(over), path),
    }
}

fn names_map(node: &Rc<Node>) -> Rc<Node> {
    match &node.value {
        Value::Sequence(items) => with_value(
            node,
            Value::Mapping(
                items
                    .iter()
                    .map(|item| (Rc::clone(item), scalar_at(item, "")))
                    .collect(),
            ),
        ),
        _ => Rc::clone(node),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::node::parse;

    fn tree(source: &str) -> Rc<Node> {
        let parsed = parse(source, 0);
        assert!(parsed.issues.is_empty(), "{:?}", parsed.issues);
        parsed.root.expect("root")
    }

    /// The tree as compact text, for comparing.
    fn show(node: &Node) -> String {
        match &node.value {
            Value::Scalar { text, .. } => text.clone(),
            Value::Sequence(items) => format!(
                "[{}]",
                items
                    .iter()
                    .map(|item| show(item))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Value::Mapping(entries) => format!(
                "{{{}}}",
                entries
                    .iter()
                    .map(|(key, value)| format!("{}: {}", show(key), show(value)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    fn merged(base: &str, over: &str) -> String {
        merge(&tree(base), &tree(over), &[])
            .map(|node| show(&node))
            .unwrap_or_default()
    }

    #[test]
    fn maps_merge_and_scalars_are_replaced() {
        assert_eq!(
            merged(
                "services: {foo: {image: a, key1: v1, key2: v2}}",
                "services: {foo: {key2: V, key3: v3}}"
            ),
            "{services: {foo: {image: a, key1: v1, key2: V, key3: v3}}}"
        );
    }

    #[test]
    fn lists_append_but_commands_are_replaced() {
        assert_eq!(
            merged(
                "services: {foo: {dns: [1.1.1.1], command: [echo, foo], healthcheck: {test: [CMD, a], retries: 3}}}",
                "services: {foo: {dns: 8.8.8.8, command: [echo, bar], healthcheck: {test: [CMD, b]}}}"
            ),
            "{services: {foo: {dns: [1.1.1.1, 8.8.8.8], command: [echo, bar], healthcheck: {test: [CMD, b], retries: 3}}}}"
        );
    }

    #[test]
    fn unique_resources_keep_one_entry_per_target() {
        assert_eq!(
            merged(
                "services: {foo: {volumes: ['foo:/work', '/data'], ports: ['8080:80']}}",
                "services: {foo: {volumes: ['bar:/work', {type: volume, source: x, target: /data}], ports: ['8080:80', '9090:90']}}"
            ),
            "{services: {foo: {volumes: [bar:/work, {type: volume, source: x, target: /data}], ports: [8080:80, 9090:90]}}}"
        );
    }

    #[test]
    fn environment_merges_by_key_across_list_and_map_forms() {
        assert_eq!(
            merged(
                "services: {foo: {environment: [A=1, B=2], labels: {x: 1}}}",
                "services: {foo: {environment: {B: 3, C: 4}, labels: [y=2]}}"
            ),
            "{services: {foo: {environment: {A: 1, B: 3, C: 4}, labels: {x: 1, y: 2}}}}"
        );
    }

    #[test]
    fn reset_removes_and_override_replaces() {
        assert_eq!(
            merged(
                "services: {app: {image: a, ports: ['8080:80'], environment: {FOO: BAR, KEEP: 1}}}",
                "services: {app: {ports: !reset [], environment: {FOO: !reset null}}}"
            ),
            "{services: {app: {image: a, environment: {KEEP: 1}}}}"
        );
        assert_eq!(
            merged(
                "services: {app: {ports: ['8080:80']}}",
                "services: {app: {ports: !override ['8443:443']}}"
            ),
            "{services: {app: {ports: [8443:443]}}}"
        );
    }

    #[test]
    fn names_and_build_merge_across_forms() {
        assert_eq!(
            merged(
                "services: {a: {build: ./dir, depends_on: [db], networks: [front]}}",
                "services: {a: {build: {target: dev}, depends_on: {cache: {condition: service_healthy}}, networks: [back]}}"
            ),
            "{services: {a: {build: {context: ./dir, target: dev}, depends_on: {db: , cache: {condition: service_healthy}}, networks: [front, back]}}}"
        );
    }
}
