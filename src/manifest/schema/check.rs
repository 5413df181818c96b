//! The [`Checker`]: reads typed values out of nodes, interpolating scalars, and collects errors
//! instead of stopping at the first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::super::error::ManifestError;
use super::super::files::SourceFile;
use super::super::interpolate::{interpolate, InterpolationError};
use super::super::node::{Node, Span, Value};
use super::super::suggest;

/// A place in the manifest with its dotted field path, kept for checks across services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub span: Span,
    pub field: String,
}

/// What a scalar turned out to be (YAML 1.2 core schema for plain scalars; text once quoted or
/// interpolated).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Integer(i64),
    Float,
    Text,
}

/// An interpolated scalar: its text and its kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub text: String,
    pub kind: Kind,
}

/// Collects errors while the schema walks the tree.
pub struct Checker<'a> {
    /// The manifest as the user named it.
    pub file: PathBuf,
    /// Absolute folder of the manifest.
    pub directory: &'a Path,
    /// `.env` overridden by the process environment.
    pub variables: &'a BTreeMap<String, String>,
    /// Every file read (a node's `span.file` indexes it): where its relative paths resolve and
    /// which variables interpolate it. Empty in tests of a single tree: then `file`, `directory`
    /// and `variables` serve every node.
    pub sources: &'a [SourceFile],
    pub errors: Vec<ManifestError>,
    /// Keys accepted without effect (see [`Checker::warning`]).
    pub warnings: Vec<ManifestError>,
}

/// The entries of a map whose keys were checked against a known list.
pub struct Fields<'n> {
    entries: Vec<(&'n str, &'n Node)>,
}

impl<'n> Fields<'n> {
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, node)| *node)
    }
}

/// One entry of a free-form map (services, environment, labels, ...).
pub struct Entry<'n> {
    pub key: &'n str,
    pub key_node: &'n Node,
    pub value: &'n Node,
}

impl Checker<'_> {
    /// Records an error at `node`.
    pub fn error(&mut self, node: &Node, field: &str, message: impl Into<String>) {
        self.error_at(Some(node.span), field, message, None);
    }

    /// Records an error at `node` with a hint.
    pub fn error_with_hint(
        &mut self,
        node: &Node,
        field: &str,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.error_at(Some(node.span), field, message, Some(hint.into()));
    }

    /// Records a warning at `node`: a key that is accepted but does nothing here, and `why`.
    pub fn warning(
        &mut self,
        node: &Node,
        field: &str,
        message: impl Into<String>,
        why: impl Into<String>,
    ) {
        self.warning_at(Some(node.span), field, message, why);
    }

    /// Records a warning at a place kept from an earlier walk (see [`Checker::warning`]).
    pub fn warning_at(
        &mut self,
        span: Option<Span>,
        field: &str,
        message: impl Into<String>,
        why: impl Into<String>,
    ) {
        let error = self.problem(span, field, message, Some(why.into()));
        self.warnings.push(error);
    }

    pub fn error_at(
        &mut self,
        span: Option<Span>,
        field: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let error = self.problem(span, field, message, hint);
        self.errors.push(error);
    }

    /// The folder relative paths written at `node` resolve against (its file's project folder).
    pub fn directory_of(&self, node: &Node) -> &Path {
        self.sources
            .get(node.span.file)
            .map_or(self.directory, |source| source.directory.as_path())
    }

    fn variables_of(&self, node: &Node) -> &BTreeMap<String, String> {
        self.sources
            .get(node.span.file)
            .map_or(self.variables, |source| source.variables.as_ref())
    }

    fn problem(
        &self,
        span: Option<Span>,
        field: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> ManifestError {
        let file = span
            .and_then(|span| self.sources.get(span.file))
            .map_or_else(|| self.file.clone(), |source| source.display.clone());
        ManifestError {
            file,
            line: span.map(|span| span.line),
            column: span.map(|span| span.column),
            field: field.to_string(),
            message: message.into(),
            hint,
        }
    }

    /// A scalar value, interpolated; reports lists and maps as "expected {expected}".
    pub fn scalar(&mut self, node: &Node, field: &str, expected: &str) -> Option<Scalar> {
        let Value::Scalar { text, quoted } = &node.value else {
            let found = describe(node);
            self.error(node, field, format!("expected {expected}, found {found}"));
            return None;
        };
        if text.contains('$') {
            return match interpolate(text, self.variables_of(node)) {
                Ok(text) => Some(Scalar {
                    text,
                    kind: Kind::Text,
                }),
                Err(error) => {
                    self.interpolation_error(node, field, error);
                    None
                }
            };
        }
        let kind = if *quoted { Kind::Text } else { kind_of(text) };
        Some(Scalar {
            text: text.clone(),
            kind,
        })
    }

    fn interpolation_error(&mut self, node: &Node, field: &str, error: InterpolationError) {
        let (message, hint) = error.explain();
        self.error_with_hint(node, field, message, hint);
    }

    /// A string; numbers and booleans are taken as they are written.
    pub fn string(&mut self, node: &Node, field: &str) -> Option<String> {
        let scalar = self.scalar(node, field, "a string")?;
        if scalar.kind == Kind::Null {
            self.error(node, field, "expected a string, found nothing");
            return None;
        }
        Some(scalar.text)
    }

    /// An integer (a quoted or interpolated one too).
    pub fn integer(&mut self, node: &Node, field: &str) -> Option<i64> {
        let scalar = self.scalar(node, field, "an integer")?;
        match scalar.kind {
            Kind::Integer(value) => Some(value),
            Kind::Text => match scalar.text.trim().parse() {
                Ok(value) => Some(value),
                Err(_) => {
                    self.error(
                        node,
                        field,
                        format!("expected an integer, found `{}`", scalar.text),
                    );
                    None
                }
            },
            _ => {
                let found = describe_scalar(&scalar);
                self.error(node, field, format!("expected an integer, found {found}"));
                None
            }
        }
    }

    /// An integer within `range`.
    pub fn integer_in(
        &mut self,
        node: &Node,
        field: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<i64> {
        let value = self.integer(node, field)?;
        if !range.contains(&value) {
            let message = format!(
                "{value} is out of range: expected {} to {}",
                range.start(),
                range.end()
            );
            self.error(node, field, message);
            return None;
        }
        Some(value)
    }

    /// `true` or `false` (also as text).
    pub fn boolean(&mut self, node: &Node, field: &str) -> Option<bool> {
        let scalar = self.scalar(node, field, "`true` or `false`")?;
        match (scalar.kind, scalar.text.as_str()) {
            (Kind::Bool(value), _) => Some(value),
            (Kind::Text, "true") => Some(true),
            (Kind::Text, "false") => Some(false),
            _ => {
                let found = describe_scalar(&scalar);
                self.error(
                    node,
                    field,
                    format!("expected `true` or `false`, found {found}"),
                );
                None
            }
        }
    }

    /// A list of strings; `one_string` also allows a single string (returned as one item).
    pub fn strings(&mut self, node: &Node, field: &str, one_string: bool) -> Option<Vec<String>> {
        match &node.value {
            Value::Sequence(items) => {
                let mut strings = Vec::with_capacity(items.len());
                let mut ok = true;
                for (index, item) in items.iter().enumerate() {
                    match self.string(item, &format!("{field}[{index}]")) {
                        Some(text) => strings.push(text),
                        None => ok = false,
                    }
                }
                ok.then_some(strings)
            }
            Value::Scalar { .. } if one_string => self.string(node, field).map(|text| vec![text]),
            _ => {
                let expected = if one_string {
                    "a string or a list of strings"
                } else {
                    "a list of strings"
                };
                let found = describe(node);
                self.error(node, field, format!("expected {expected}, found {found}"));
                None
            }
        }
    }

    /// The strings of a list, each with its node and its place (`field[index]`); items that are
    /// not strings are reported and left out.
    pub fn listed<'n>(
        &mut self,
        items: &'n [std::rc::Rc<Node>],
        field: &str,
    ) -> Vec<(String, &'n Node, Place)> {
        let mut listed = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let item_field = format!("{field}[{index}]");
            if let Some(text) = self.string(item, &item_field) {
                let place = Place {
                    span: item.span,
                    field: item_field,
                };
                listed.push((text, item.as_ref(), place));
            }
        }
        listed
    }

    /// The entries of a free-form map, keys as written (not interpolated).
    pub fn entries<'n>(
        &mut self,
        node: &'n Node,
        field: &str,
        expected: &str,
    ) -> Option<Vec<Entry<'n>>> {
        let Value::Mapping(pairs) = &node.value else {
            let found = describe(node);
            self.error(node, field, format!("expected {expected}, found {found}"));
            return None;
        };
        let mut entries = Vec::with_capacity(pairs.len());
        for (key, value) in pairs {
            match key.scalar_text() {
                Some(text) => entries.push(Entry {
                    key: text,
                    key_node: key,
                    value,
                }),
                None => self.error(key, field, "map keys must be plain names"),
            }
        }
        Some(entries)
    }

    /// A map with a fixed set of keys: unknown keys are reported with a suggestion. Keys starting with
    /// `x-` are extension fields and ignored (as in compose).
    pub fn fields<'n>(
        &mut self,
        node: &'n Node,
        field: &str,
        what: &str,
        keys: &[&str],
    ) -> Option<Fields<'n>> {
        let expected = format!("a map for {what}");
        let entries = self.entries(node, field, &expected)?;
        let mut fields = Fields {
            entries: Vec::with_capacity(entries.len()),
        };
        for entry in entries {
            if keys.contains(&entry.key) {
                fields.entries.push((entry.key, entry.value));
            } else if !entry.key.starts_with("x-") {
                self.unknown_field(&entry, field, what, keys);
            }
        }
        Some(fields)
    }

    fn unknown_field(&mut self, entry: &Entry<'_>, field: &str, what: &str, keys: &[&str]) {
        let hint = match suggest::did_you_mean(entry.key, keys.iter().copied()) {
            Some(suggestion) => format!("did you mean `{suggestion}`?"),
            None if keys.len() > 16 => format!(
                "`{}` is neither a Compose Specification key nor one of sandbox's; extension fields start with `x-`",
                entry.key
            ),
            None => format!("valid fields: {}", suggest::list(keys)),
        };
        let message = format!("unknown field `{}` in {what}", entry.key);
        self.error_with_hint(entry.key_node, &join(field, entry.key), message, hint);
    }
}

/// `services.user` + `image` → `services.user.image`.
pub fn join(field: &str, key: &str) -> String {
    if field.is_empty() {
        key.to_string()
    } else {
        format!("{field}.{key}")
    }
}

/// "a map", "a list", "`text`", for "expected X, found Y".
pub fn describe(node: &Node) -> String {
    match &node.value {
        Value::Mapping(_) => "a map".to_string(),
        Value::Sequence(_) => "a list".to_string(),
        Value::Scalar { text, quoted } => describe_scalar(&Scalar {
            text: text.clone(),
            kind: if *quoted { Kind::Text } else { kind_of(text) },
        }),
    }
}

fn describe_scalar(scalar: &Scalar) -> String {
    let text: String = scalar.text.chars().take(40).collect();
    match scalar.kind {
        Kind::Null => "nothing".to_string(),
        Kind::Bool(_) => format!("the boolean `{text}`"),
        Kind::Integer(_) | Kind::Float => format!("the number `{text}`"),
        Kind::Text => format!("the string `{text}`"),
    }
}

/// The YAML 1.2 core schema type of a plain scalar.
fn kind_of(text: &str) -> Kind {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => Kind::Null,
        "true" | "True" | "TRUE" => Kind::Bool(true),
        "false" | "False" | "FALSE" => Kind::Bool(false),
        _ => {
            if let Ok(value) = text.parse::<i64>() {
                Kind::Integer(value)
            } else if text.starts_with(|character: char| {
                character.is_ascii_digit() || matches!(character, '-' | '+' | '.')
            }) && text.parse::<f64>().is_ok()
            {
                Kind::Float
            } else {
                Kind::Text
            }
        }
    }
}
