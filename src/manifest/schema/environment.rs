//! Key/value sections: `environment`, `env_file`, `labels`, build `args`. Each is a map or a list of
//! `KEY=VALUE`; a key without a value takes it from the environment (and is left out when unset).

use std::collections::BTreeMap;
use std::path::Path;

use super::super::interpolate::parse_env_file;
use super::super::node::{Node, Value};
use super::check::{describe, join, Checker, Kind};

/// Label keys the engine uses to find its containers.
const RESERVED_LABEL_PREFIX: &str = "dev.sandbox.";

/// Where the value of a key written without one (`KEY:` or `- KEY`) comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Bare {
    /// From the environment; left out when unset (`environment`, build `args`).
    FromEnvironment,
    /// The empty string (`labels`).
    Empty,
}

/// `KEY: value` pairs or `KEY=value` items; see [`Bare`] for `KEY:` and `KEY`.
pub fn read_pairs(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
    bare: Bare,
) -> BTreeMap<String, String> {
    let mut pairs = BTreeMap::new();
    match &node.value {
        Value::Mapping(_) => {
            for entry in checker.entries(node, field, "a map").unwrap_or_default() {
                let item_field = join(field, entry.key);
                let Some(scalar) =
                    checker.scalar(entry.value, &item_field, "a string, number or boolean")
                else {
                    continue;
                };
                let value = match scalar.kind {
                    Kind::Null => bare_value(checker, entry.key, bare),
                    _ => Some(scalar.text),
                };
                if let Some(value) = value {
                    pairs.insert(entry.key.to_string(), value);
                }
            }
        }
        Value::Sequence(items) => {
            for (index, item) in items.iter().enumerate() {
                let item_field = format!("{field}[{index}]");
                let Some(text) = checker.string(item, &item_field) else {
                    continue;
                };
                match text.split_once('=') {
                    Some((key, value)) => {
                        pairs.insert(key.to_string(), value.to_string());
                    }
                    None => {
                        if let Some(value) = bare_value(checker, &text, bare) {
                            pairs.insert(text, value);
                        }
                    }
                }
            }
        }
        Value::Scalar { .. } => {
            let found = describe(node);
            checker.error_with_hint(
                node,
                field,
                format!("expected a map or a list of `KEY=VALUE`, found {found}"),
                "write `KEY: value` lines under it, or `- KEY=value` items",
            );
        }
    }
    pairs
}

fn bare_value(checker: &Checker<'_>, key: &str, bare: Bare) -> Option<String> {
    match bare {
        Bare::FromEnvironment => checker.variables.get(key).cloned(),
        Bare::Empty => Some(String::new()),
    }
}

/// `labels:`; keys under `dev.sandbox.` are reserved for the engine.
pub fn read_labels(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
) -> BTreeMap<String, String> {
    let mut labels = read_pairs(checker, node, field, Bare::Empty);
    let reserved: Vec<String> = labels
        .keys()
        .filter(|key| key.starts_with(RESERVED_LABEL_PREFIX))
        .cloned()
        .collect();
    for key in reserved {
        labels.remove(&key);
        let place = label_node(node, &key).unwrap_or(node);
        checker.error_with_hint(
            place,
            &join(field, &key),
            format!("label `{key}` is reserved"),
            format!("sandbox uses `{RESERVED_LABEL_PREFIX}*` labels to find its containers; choose another prefix"),
        );
    }
    labels
}

/// The node that wrote label `key` (a map key or a list item), for error places.
fn label_node<'n>(node: &'n Node, key: &str) -> Option<&'n Node> {
    match &node.value {
        Value::Mapping(entries) => entries
            .iter()
            .find(|(name, _)| name.scalar_text() == Some(key))
            .map(|(name, _)| name.as_ref()),
        Value::Sequence(items) => items
            .iter()
            .find(|item| {
                item.scalar_text()
                    .is_some_and(|text| text.split('=').next() == Some(key))
            })
            .map(AsRef::as_ref),
        Value::Scalar { .. } => None,
    }
}

/// A map of strings (numbers and booleans taken as written): `driver_opts`, `ipam.options`.
pub fn read_string_map(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
    expected: &str,
) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    for entry in checker.entries(node, field, expected).unwrap_or_default() {
        if let Some(value) = checker.string(entry.value, &join(field, entry.key)) {
            values.insert(entry.key.to_string(), value);
        }
    }
    values
}

/// One item or a list of them, each with its field path (`env_file`, `env_file[1]`, ...).
fn one_or_many<'n>(node: &'n Node, field: &str) -> Vec<(&'n Node, String)> {
    match &node.value {
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| (item.as_ref(), format!("{field}[{index}]")))
            .collect(),
        _ => vec![(node, field.to_string())],
    }
}

/// `env_file:` — one path or a list (a list item may be `{path, required, format}`), read in order.
pub fn read_env_files(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
) -> BTreeMap<String, String> {
    let mut pairs = BTreeMap::new();
    let items = one_or_many(node, field);
    for (item, item_field) in items {
        let (path, required, raw) = match &item.value {
            Value::Mapping(_) => {
                let Some(fields) = checker.fields(
                    item,
                    &item_field,
                    "an env file",
                    &["path", "required", "format"],
                ) else {
                    continue;
                };
                let Some(path_node) = fields.get("path") else {
                    checker.error(item, &item_field, "missing field `path`");
                    continue;
                };
                let path = checker.string(path_node, &join(&item_field, "path"));
                let required = fields
                    .get("required")
                    .and_then(|required| checker.boolean(required, &join(&item_field, "required")))
                    .unwrap_or(true);
                let raw = match fields.get("format") {
                    Some(format) => {
                        let format_field = join(&item_field, "format");
                        match checker.string(format, &format_field).as_deref() {
                            Some("raw") => true,
                            Some(other) => {
                                checker.error_with_hint(
                                    format,
                                    &format_field,
                                    format!("unknown env file format `{other}`"),
                                    "leave `format` out for `KEY=VALUE` lines with quotes, or write `format: raw` to take values as written",
                                );
                                false
                            }
                            None => false,
                        }
                    }
                    None => false,
                };
                (path, required, raw)
            }
            _ => (checker.string(item, &item_field), true, false),
        };
        if let Some(path) = path {
            let file = EnvFile {
                path: &path,
                required,
                raw,
            };
            read_env_file(checker, item, &item_field, &file, &mut pairs);
        }
    }
    pairs
}

/// `label_file:` — one path or a list, each of `KEY=VALUE` lines as in an env file, read in order
/// (a later file wins).
pub fn read_label_files(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
) -> BTreeMap<String, String> {
    let mut pairs = BTreeMap::new();
    let items = one_or_many(node, field);
    for (item, item_field) in items {
        let Some(path) = checker.string(item, &item_field) else {
            continue;
        };
        if !checker.directory_of(item).join(&path).is_file() {
            checker.error_with_hint(
                item,
                &item_field,
                format!("label file `{path}` not found"),
                "paths are relative to the manifest's folder",
            );
            continue;
        }
        let file = EnvFile {
            path: &path,
            required: true,
            raw: false,
        };
        read_env_file(checker, item, &item_field, &file, &mut pairs);
    }
    pairs
}

/// One `env_file` entry.
struct EnvFile<'a> {
    path: &'a str,
    required: bool,
    /// `format: raw`: every `KEY=VALUE` line taken as written, quotes and all.
    raw: bool,
}

fn read_env_file(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
    file: &EnvFile<'_>,
    pairs: &mut BTreeMap<String, String>,
) {
    let (path, required) = (file.path, file.required);
    let resolved = checker.directory_of(node).join(Path::new(path));
    let text = match std::fs::File::open(&resolved).and_then(super::super::read_bounded) {
        Ok(bytes) if bytes.len() as u64 > super::super::MAX_MANIFEST_BYTES => {
            checker.error(
                node,
                field,
                format!("env file `{path}` is larger than 4 MiB"),
            );
            return;
        }
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if required {
                let hint = "paths are relative to the manifest's folder; use `{path: FILE, required: false}` for an optional file";
                checker.error_with_hint(node, field, format!("env file `{path}` not found"), hint);
            }
            return;
        }
        Err(error) => {
            checker.error(
                node,
                field,
                format!("cannot read env file `{path}`: {error}"),
            );
            return;
        }
    };
    if file.raw {
        for line in text.lines() {
            if let Some((key, value)) = line.split_once('=') {
                if !key.trim().is_empty() && !key.trim_start().starts_with('#') {
                    pairs.insert(key.trim().to_string(), value.to_string());
                }
            }
        }
        return;
    }
    match parse_env_file(&text) {
        Ok(entries) => {
            for (key, value) in entries {
                let value = value.or_else(|| checker.variables.get(&key).cloned());
                if let Some(value) = value {
                    pairs.insert(key, value);
                }
            }
        }
        Err(error) => checker.error(
            node,
            field,
            format!("env file `{path}` line {}: {}", error.line, error.message),
        ),
    }
}
