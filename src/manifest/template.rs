//! `sandbox init` templates, embedded in the binary from `templates/*.yaml`.

use std::io::Write;
use std::path::Path;

use super::error::InitError;

/// A starting manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Template {
    /// What `sandbox init --template NAME` takes.
    pub name: &'static str,
    /// One line for `sandbox init --list`.
    pub description: &'static str,
    /// The YAML text.
    pub content: &'static str,
}

const TEMPLATES: &[Template] = &[
    Template {
        name: "basic",
        description: "one service from a public image, with a health check",
        content: include_str!("../../templates/basic.yaml"),
    },
    Template {
        name: "chain",
        description: "two demo services, `user` calling `item`, built from ./demo/image",
        content: include_str!("../../templates/chain.yaml"),
    },
];

/// Every template, the default (`basic`) first.
pub fn templates() -> &'static [Template] {
    TEMPLATES
}

/// Writes template `name` to `destination` (a file path). An existing file is only replaced when
/// `force` is set.
pub fn write_template(name: &str, destination: &Path, force: bool) -> Result<(), InitError> {
    let template = TEMPLATES
        .iter()
        .find(|template| template.name == name)
        .ok_or_else(|| InitError::UnknownTemplate {
            name: name.to_string(),
            available: TEMPLATES
                .iter()
                .map(|template| format!("`{}`", template.name))
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let write_error = |source| InitError::Write {
        path: destination.to_path_buf(),
        source,
    };
    let mut file = if force {
        std::fs::File::create(destination).map_err(write_error)?
    } else {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(destination)
            .map_err(|error| match error.kind() {
                std::io::ErrorKind::AlreadyExists => InitError::AlreadyExists {
                    path: destination.to_path_buf(),
                },
                _ => write_error(error),
            })?
    };
    file.write_all(template.content.as_bytes())
        .map_err(write_error)
}
