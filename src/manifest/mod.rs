//! The manifest: reads `sandbox.yaml` into the validated [`Manifest`] every other module consumes.
//!
//! Owns: finding and reading the file, YAML with line/column (`node`), variable interpolation and
//! `.env` (`interpolate`), the schema walk (`schema`), checks across services (`validate`), and the
//! `sandbox init` templates (`template`). It must not touch the engine, the network or the terminal:
//! errors come back as [`ManifestErrors`], which the CLI prints.
//!
//! The pipeline: bytes → spanned node tree → schema walk (interpolating scalar values, collecting
//! every error) → cross-service validation → [`Manifest`]. The schema is hand-written rather than
//! serde structs with `deny_unknown_fields`: serde stops at the first error and loses positions
//! after interpolation, and we want every error at once, each with its line and column.

mod duration;
mod error;
mod interpolate;
mod node;
mod schema;
mod suggest;
mod template;
mod validate;
mod words;

pub mod model;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

pub use duration::parse_duration;
pub use error::{InitError, ManifestError, ManifestErrors, ManifestWarning};
pub use model::*;
pub use template::{templates, write_template, Template};

/// Manifests larger than this are refused (a manifest is a few kilobytes).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// File names looked for when no `-f` is given, in order.
pub const DEFAULT_FILE_NAMES: [&str; 2] = ["sandbox.yaml", "sandbox.yml"];

/// Where the manifest is and what surrounds it.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-f FILE`, relative to `working_dir`; `None` looks for `sandbox.yaml`, then `sandbox.yml`.
    pub file: Option<PathBuf>,
    /// `-p NAME`: overrides `name:`.
    pub project: Option<String>,
    pub working_dir: PathBuf,
    /// The process environment (passed in so tests control it); it overrides `.env`.
    pub environment: BTreeMap<String, String>,
}

/// Finds, reads and validates the manifest. On failure every error found is returned.
pub fn load(options: &LoadOptions) -> Result<Manifest, ManifestErrors> {
    let (display, path) = locate(options)?;
    let source = read_source(&display, &path)?;
    let directory = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut errors = Vec::new();
    let variables = variables(options, &display, &directory, &mut errors);
    let parsed = node::parse(&source);
    let mut checker = schema::Checker {
        file: display.clone(),
        directory: &directory,
        variables: &variables,
        errors,
        warnings: Vec::new(),
    };
    for issue in &parsed.issues {
        checker.error_at(issue.span, "", issue.message.clone(), issue.hint.clone());
    }
    if parsed.root.is_none() && !parsed.issues.is_empty() {
        return Err(ManifestErrors::new(display, checker.errors));
    }
    let folder = directory
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let sources = schema::ProjectSources {
        flag: options.project.as_deref(),
        folder: &folder,
    };
    let draft = schema::read(&mut checker, parsed.root.as_deref(), &sources);
    if let Some(draft) = &draft {
        validate::validate(&mut checker, &draft.services, &draft.volumes, &draft.smoke);
    }
    let warnings = std::mem::take(&mut checker.warnings);
    match draft {
        Some(draft) if checker.errors.is_empty() => Ok(Manifest {
            project: draft.project,
            file: path,
            directory,
            services: draft
                .services
                .into_iter()
                .map(|service| (service.service.name.clone(), service.service))
                .collect(),
            volumes: draft.volumes,
            smoke: draft.smoke.into_iter().map(|draft| draft.check).collect(),
            gateway: draft.gateway,
            tracing: draft.tracing,
            warnings: warnings.into_iter().map(ManifestWarning).collect(),
        }),
        _ => Err(ManifestErrors::new(display, checker.errors)),
    }
}

/// The manifest as YAML, for `sandbox config` (ends with a newline). Enum variants are written as
/// maps (`probe: {http: {path: /health}}`), as in the JSON, rather than as YAML tags (`!http`).
pub fn to_yaml(manifest: &Manifest) -> String {
    serde_yaml_ng::to_value(manifest)
        .map(untag)
        .and_then(|value| serde_yaml_ng::to_string(&value))
        .unwrap_or_else(|error| format!("# cannot render the manifest: {error}\n"))
}

/// `!tag value` → `{tag: value}`, everywhere in the tree.
fn untag(value: serde_yaml_ng::Value) -> serde_yaml_ng::Value {
    use serde_yaml_ng::{Mapping, Value};
    match value {
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let mut mapping = Mapping::new();
            mapping.insert(
                Value::String(tag.trim_start_matches('!').to_string()),
                untag(tagged.value),
            );
            Value::Mapping(mapping)
        }
        Value::Sequence(items) => Value::Sequence(items.into_iter().map(untag).collect()),
        Value::Mapping(entries) => Value::Mapping(
            entries
                .into_iter()
                .map(|(key, value)| (key, untag(value)))
                .collect(),
        ),
        other => other,
    }
}

/// The manifest as pretty JSON, for `sandbox config --json` (no trailing newline).
pub fn to_json(manifest: &Manifest) -> String {
    serde_json::to_string_pretty(manifest)
        .unwrap_or_else(|error| format!("{{\"error\": {:?}}}", error.to_string()))
}

fn file_error(display: &Path, message: String, hint: Option<&str>) -> ManifestErrors {
    let error = ManifestError {
        file: display.to_path_buf(),
        line: None,
        column: None,
        field: String::new(),
        message,
        hint: hint.map(str::to_string),
    };
    ManifestErrors::new(display.to_path_buf(), vec![error])
}

/// The manifest's display path (as the user would write it) and its absolute path.
fn locate(options: &LoadOptions) -> Result<(PathBuf, PathBuf), ManifestErrors> {
    let working_dir = absolute(&options.working_dir);
    let display = match &options.file {
        Some(file) => file.clone(),
        None => DEFAULT_FILE_NAMES
            .iter()
            .map(PathBuf::from)
            .find(|name| working_dir.join(name).is_file())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_FILE_NAMES[0])),
    };
    let path = schema::normalise_path(&working_dir.join(&display));
    Ok((display, path))
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    std::env::current_dir()
        .map(|current| current.join(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

fn read_source(display: &Path, path: &Path) -> Result<String, ManifestErrors> {
    let shown = display.display();
    let file = std::fs::File::open(path).map_err(|error| {
        if error.kind() == std::io::ErrorKind::NotFound {
            let hint = "run `sandbox init` to create one, or pass -f FILE";
            file_error(display, format!("manifest `{shown}` not found"), Some(hint))
        } else {
            file_error(display, format!("cannot read `{shown}`: {error}"), None)
        }
    })?;
    let bytes = read_bounded(file)
        .map_err(|error| file_error(display, format!("cannot read `{shown}`: {error}"), None))?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        let message = format!("`{shown}` is larger than 4 MiB; that is not a manifest");
        return Err(file_error(
            display,
            message,
            Some("check that -f names the right file"),
        ));
    }
    let text = String::from_utf8(bytes).map_err(|error| {
        let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|byte| **byte == b'\n').count() + 1;
        let column = valid
            .iter()
            .rev()
            .take_while(|byte| **byte != b'\n')
            .count()
            + 1;
        let mut errors = file_error(display, "the manifest is not valid UTF-8 text".into(), None);
        errors.errors[0].line = Some(line);
        errors.errors[0].column = Some(column);
        errors
    })?;
    Ok(text
        .strip_prefix('\u{feff}')
        .map(str::to_string)
        .unwrap_or(text))
}

/// Reads at most [`MAX_MANIFEST_BYTES`] + 1 bytes, so a huge file (or `/dev/zero`) cannot exhaust
/// memory; callers treat a longer result as too large.
pub(crate) fn read_bounded(file: std::fs::File) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(MAX_MANIFEST_BYTES + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// `.env` beside the manifest, overridden by the process environment.
fn variables(
    options: &LoadOptions,
    display: &Path,
    directory: &Path,
    errors: &mut Vec<ManifestError>,
) -> BTreeMap<String, String> {
    let mut variables = BTreeMap::new();
    let file = std::fs::File::open(directory.join(".env"));
    if let Ok(bytes) = file.and_then(read_bounded) {
        let text = String::from_utf8_lossy(&bytes);
        match interpolate::parse_env_file(&text) {
            Ok(entries) => {
                for (key, value) in entries {
                    if let Some(value) = value.or_else(|| options.environment.get(&key).cloned()) {
                        variables.insert(key, value);
                    }
                }
            }
            Err(error) => errors.push(ManifestError {
                file: display.parent().unwrap_or(Path::new("")).join(".env"),
                line: Some(error.line),
                column: Some(1),
                field: String::new(),
                message: error.message,
                hint: Some("`.env` holds `KEY=VALUE` lines and `#` comments".into()),
            }),
        }
    }
    variables.extend(options.environment.clone());
    variables
}
