//! Secrets and configs: files the project hands to the services that ask for them.
//!
//! A top-level `secrets:`/`configs:` entry is a [`FileObject`] (where the bytes come from); a
//! service's `secrets:`/`configs:` entry is a [`FileGrant`] (where they appear in its containers).
//! Secret values never reach printed output: [`SecretText`] serialises and debug-prints as a mask,
//! and the engine hashes it rather than storing it.

use std::path::PathBuf;

use serde::{Serialize, Serializer};

/// A top-level `secrets:` or `configs:` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileObject {
    pub source: FileSource,
    /// `name:`: the engine's name for an external object (compose's default is
    /// `<project>_<key>`; it only matters to swarm, so it is kept for `sandbox config` alone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Where a secret's or config's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileSource {
    /// A host file (absolute after resolution), bind-mounted read-only as compose does.
    File(PathBuf),
    /// The value of a variable of the environment used for interpolation, written into the
    /// container before it starts. Only the variable's name is ever printed.
    Environment {
        variable: String,
        #[serde(skip)]
        value: SecretText,
    },
    /// A config's inline `content:` (interpolated), written into the container before it starts.
    Content(String),
    /// `external: true`: an object of a swarm cluster. A single engine has none, so a service that
    /// uses one is refused (as compose refuses it: `unsupported external secret`).
    External,
}

impl FileSource {
    /// The bytes to write into the container, for sources that are not bind mounts.
    pub fn content(&self) -> Option<&str> {
        match self {
            FileSource::Environment { value, .. } => Some(value.expose()),
            FileSource::Content(content) => Some(content),
            FileSource::File(_) | FileSource::External => None,
        }
    }
}

/// A service's `secrets:` or `configs:` entry, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileGrant {
    /// The top-level entry's key.
    pub source: String,
    /// Absolute path in the container: `/run/secrets/<target or source>` for secrets (a relative
    /// `target` is under `/run/secrets/`), `target` or `/<source>` for configs.
    pub target: String,
    /// Owner of the written file (numeric, as text like compose); not applied to bind mounts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    /// Permission bits of the written file (default `0444`); not applied to bind mounts.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_mode"
    )]
    pub mode: Option<u32>,
}

/// A secret value: printed and debug-printed as `********`; [`SecretText::expose`] gives the text.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretText(String);

impl SecretText {
    pub fn new(text: impl Into<String>) -> Self {
        SecretText(text.into())
    }

    /// The secret itself: only for writing it where it belongs (or hashing it).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("\"********\"")
    }
}

impl Serialize for SecretText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("********")
    }
}

/// `0o440` → `"0440"`, as compose writes modes.
pub fn format_mode(mode: u32) -> String {
    format!("0{mode:o}")
}

fn serialize_mode<S: Serializer>(mode: &Option<u32>, serializer: S) -> Result<S::Ok, S::Error> {
    match mode {
        Some(mode) => serializer.serialize_str(&format_mode(*mode)),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_text_never_prints_its_value() {
        let text = SecretText::new("hunter2");
        assert_eq!(format!("{text:?}"), "\"********\"");
        assert_eq!(serde_json::to_string(&text).unwrap(), "\"********\"");
        assert_eq!(text.expose(), "hunter2");
    }

    #[test]
    fn environment_sources_print_the_variable_only() {
        let source = FileSource::Environment {
            variable: "TOKEN".into(),
            value: SecretText::new("hunter2"),
        };
        let json = serde_json::to_string(&source).unwrap();
        assert_eq!(json, r#"{"environment":{"variable":"TOKEN"}}"#);
        assert_eq!(source.content(), Some("hunter2"));
    }

    #[test]
    fn modes_are_written_in_octal() {
        assert_eq!(format_mode(0o440), "0440");
        assert_eq!(format_mode(0o755), "0755");
        assert_eq!(format_mode(0), "00");
    }
}
