//! Errors of reading a manifest and of `sandbox init`, rendered for people.
//!
//! A manifest error names the file, the 1-based line and column, the dotted field path and, when we can
//! guess, a hint. Loading collects every error it finds; [`ManifestErrors`] renders them all.

use std::fmt;
use std::path::PathBuf;

/// One problem in a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// The file as the user named it (relative paths stay relative), for display.
    pub file: PathBuf,
    /// 1-based line, when the problem has a place in the file.
    pub line: Option<usize>,
    /// 1-based column.
    pub column: Option<usize>,
    /// Dotted path of the field, like `services.user.depends_on[0]`; empty for the whole file.
    pub field: String,
    /// Lowercase sentence, names in backticks.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.render(formatter, "error")
    }
}

impl ManifestError {
    fn render(&self, formatter: &mut fmt::Formatter<'_>, severity: &str) -> fmt::Result {
        writeln!(formatter, "{severity}: {}", self.message)?;
        write!(formatter, "  --> {}", self.file.display())?;
        if let Some(line) = self.line {
            write!(formatter, ":{line}")?;
            if let Some(column) = self.column {
                write!(formatter, ":{column}")?;
            }
        }
        if !self.field.is_empty() {
            write!(formatter, "\n  = field: {}", self.field)?;
        }
        if let Some(hint) = &self.hint {
            write!(formatter, "\n  = hint: {hint}")?;
        }
        Ok(())
    }
}

/// Something in a manifest that is accepted but has no effect here (a key that means nothing on one
/// engine, an obsolete key): reported with its place and why, never an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestWarning(pub ManifestError);

impl fmt::Display for ManifestWarning {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.render(formatter, "warning")
    }
}

/// Every problem found in a manifest, in file order. Never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(self))]
pub struct ManifestErrors {
    /// The manifest file as the user named it.
    pub file: PathBuf,
    pub errors: Vec<ManifestError>,
}

impl ManifestErrors {
    /// A list of errors about `file`, sorted by position (errors without one keep their place at the end).
    /// Errors in other files (merged, included) follow, file by file in the order first met.
    pub fn new(file: PathBuf, mut errors: Vec<ManifestError>) -> Self {
        let mut files: Vec<PathBuf> = vec![file.clone()];
        for error in &errors {
            if !files.contains(&error.file) {
                files.push(error.file.clone());
            }
        }
        errors.sort_by_key(|error| {
            (
                files.iter().position(|known| *known == error.file),
                error.line.unwrap_or(usize::MAX),
                error.column.unwrap_or(0),
            )
        });
        ManifestErrors { file, errors }
    }
}

fn render(errors: &ManifestErrors) -> String {
    let mut text = String::new();
    for error in &errors.errors {
        text.push_str(&error.to_string());
        text.push_str("\n\n");
    }
    let count = errors.errors.len();
    let noun = if count == 1 { "error" } else { "errors" };
    let mut files: Vec<String> = Vec::new();
    for error in &errors.errors {
        let shown = error.file.display().to_string();
        if !files.contains(&shown) {
            files.push(shown);
        }
    }
    if files.is_empty() {
        files.push(errors.file.display().to_string());
    }
    text.push_str(&format!("{count} {noun} in {}", files.join(", ")));
    text
}

/// Why `sandbox init` did not write a template.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("unknown template `{name}`\n  = hint: available templates: {available}")]
    UnknownTemplate { name: String, available: String },
    #[error("`{}` already exists\n  = hint: pass `--force` to overwrite it", path.display())]
    AlreadyExists { path: PathBuf },
    #[error("cannot write `{}`: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}
