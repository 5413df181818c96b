//! The manifest: reads a compose file or `sandbox.yaml` (the Compose Specification, extended with
//! sandbox's keys) into the validated [`Manifest`] every other module consumes.
//!
//! Owns: finding the files (`files`: compose's names, override files, `COMPOSE_FILE`, env files),
//! YAML with line/column and file (`node`), merging files by compose's rules (`merge`), `include`,
//! `extends`, profiles and `x-sandbox` (`assemble`), variable interpolation (`interpolate`), the
//! schema walk (`schema`), checks across services (`validate`), writing the project back as compose
//! (`export`) and the `sandbox init` templates (`template`). It must not touch the engine, the
//! network or the terminal: errors come back as [`ManifestErrors`], warnings in
//! [`Manifest::warnings`], and the CLI prints both.
//!
//! The pipeline: files → spanned node trees (each node knows its file) → one assembled tree →
//! schema walk (interpolating scalar values with their file's variables, collecting every error)
//! → cross-service validation → [`Manifest`]. The schema is hand-written rather than serde
//! structs with `deny_unknown_fields`: serde stops at the first error and loses positions after
//! interpolation, and we want every error at once, each with its file, line and column. The
//! specification's JSON Schema checks the walk from the outside (`tests/manifest/spec.rs`).

mod assemble;
mod duration;
mod error;
mod export;
mod files;
mod interpolate;
mod merge;
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
pub use export::{to_compose, ExportOptions};
pub use files::DEFAULT_FILE_NAMES;
pub use model::*;
pub use template::{templates, write_template, Template};

/// Manifests larger than this are refused (a manifest is a few kilobytes).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// Where the manifest is and what surrounds it.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-f FILE` (repeatable, merged in order), relative to `working_dir`. Empty: `COMPOSE_FILE`, else
    /// the first of [`DEFAULT_FILE_NAMES`] in `working_dir` or a parent, with its override file.
    pub files: Vec<PathBuf>,
    /// `-p NAME`: overrides `COMPOSE_PROJECT_NAME` and `name:`.
    pub project: Option<String>,
    /// `--profile NAME` (repeatable); empty: `COMPOSE_PROFILES`.
    pub profiles: Vec<String>,
    /// `--env-file FILE` (repeatable), relative to `working_dir`; empty: `.env` in the project folder.
    pub env_files: Vec<PathBuf>,
    /// Services named on the command line (`sandbox up bar`): their profiles become active, as in
    /// compose.
    pub services: Vec<String>,
    pub working_dir: PathBuf,
    /// The process environment (passed in so tests control it); it overrides the env files.
    pub environment: BTreeMap<String, String>,
}

/// Finds, reads, merges and validates the manifest. On failure every error found is returned.
pub fn load(options: &LoadOptions) -> Result<Manifest, ManifestErrors> {
    let working_dir = absolute(&options.working_dir);
    let assembled = assemble::assemble(options, &working_dir);
    validate_assembled(options, &working_dir, &assembled)
}

/// The schema walk and the checks across services over an assembled tree.
fn validate_assembled(
    options: &LoadOptions,
    working_dir: &Path,
    assembled: &assemble::Assembled,
) -> Result<Manifest, ManifestErrors> {
    let main_file = assembled
        .sources
        .first()
        .map(|source| source.display.clone())
        .or_else(|| assembled.errors.first().map(|error| error.file.clone()))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_FILE_NAMES[0]));
    let fatal = assembled.root.is_none() && !assembled.errors.is_empty();
    let mut checker = schema::Checker {
        file: main_file.clone(),
        directory: &assembled.directory,
        variables: &assembled.variables,
        sources: &assembled.sources,
        errors: assembled.errors.clone(),
        warnings: assembled.warnings.clone(),
    };
    if fatal {
        return Err(ManifestErrors::new(main_file, checker.errors));
    }
    let folder = assembled
        .directory
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let sources = schema::ProjectSources {
        flag: options.project.as_deref(),
        variable: assembled.project_variable.as_deref(),
        folder: &folder,
    };
    let mut draft = schema::read(&mut checker, assembled.root.as_deref(), &sources);
    if let Some(draft) = &mut draft {
        validate::validate(
            &mut checker,
            &mut draft.services,
            &draft.volumes,
            &draft.smoke,
            &assembled.disabled,
        );
    }
    let warnings = std::mem::take(&mut checker.warnings);
    match draft {
        Some(draft) if checker.errors.is_empty() => Ok(Manifest {
            project: draft.project,
            file: assembled
                .sources
                .first()
                .map(|source| source.path.clone())
                .unwrap_or_default(),
            source: LoadSource {
                files: assembled.files.clone(),
                profiles: assembled.profiles.iter().cloned().collect(),
                env_files: options
                    .env_files
                    .iter()
                    .map(|file| schema::normalise_path(&working_dir.join(file)))
                    .collect(),
            },
            directory: assembled.directory.clone(),
            services: draft
                .services
                .into_iter()
                .map(|service| (service.service.name.clone(), service.service))
                .collect(),
            volumes: draft.volumes,
            smoke: draft.smoke.into_iter().map(|draft| draft.check).collect(),
            gateway: draft.gateway,
            tracing: draft.tracing,
            networks: draft.networks,
            secrets: draft.secrets,
            configs: draft.configs,
            mesh: draft.mesh,
            warnings: warnings.into_iter().map(ManifestWarning).collect(),
        }),
        _ => Err(ManifestErrors::new(main_file, checker.errors)),
    }
}

/// Words that make a variable's value a secret in printed output.
const SECRET_WORDS: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "SECRET",
    "TOKEN",
    "API_KEY",
    "APIKEY",
    "PRIVATE_KEY",
    "CREDENTIAL",
    "AUTH",
];

/// Whether a variable named `name` looks like it holds a secret (printed as `********`).
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_WORDS.iter().any(|word| upper.contains(word))
}

/// The manifest as YAML, for `sandbox config` (ends with a newline). Enum variants are written as
/// maps (`probe: {http: {path: /health}}`), as in the JSON, rather than as YAML tags (`!http`).
pub fn to_yaml(manifest: &Manifest) -> String {
    to_tree(manifest)
        .and_then(|value| serde_yaml_ng::to_string(&value))
        .unwrap_or_else(|error| format!("# cannot render the manifest: {error}\n"))
}

/// The manifest as a tree, in field order, enum variants as maps (as [`to_yaml`] writes it): for
/// output that adds to it before writing it as YAML or JSON.
pub fn to_tree(manifest: &Manifest) -> Result<serde_yaml_ng::Value, serde_yaml_ng::Error> {
    serde_yaml_ng::to_value(manifest).map(untag)
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

/// Loads `text` as the `sandbox.yaml` of a folder of its own, for the tests of modules that consume
/// a manifest; panics with the errors when it does not load.
#[cfg(test)]
pub(crate) fn load_text(text: &str) -> Manifest {
    let directory = tempfile::tempdir().expect("temporary folder");
    std::fs::write(directory.path().join("sandbox.yaml"), text).expect("write the manifest");
    load(&LoadOptions {
        working_dir: directory.path().to_path_buf(),
        ..LoadOptions::default()
    })
    .unwrap_or_else(|errors| panic!("the manifest does not load:\n{errors}"))
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

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    std::env::current_dir()
        .map(|current| current.join(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

pub(crate) fn read_source(display: &Path, path: &Path) -> Result<String, ManifestErrors> {
    let shown = display.display();
    let file = std::fs::File::open(path).map_err(|error| {
        if error.kind() == std::io::ErrorKind::NotFound {
            let hint = "run `sandbox init` to create one, or check the -f / COMPOSE_FILE path";
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
