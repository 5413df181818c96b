//! What most commands need first: the manifest (or at least the project name) and the engine.

use std::collections::BTreeMap;

use super::GlobalArgs;
use crate::manifest::{self, LoadOptions, Manifest};

/// A usage mistake that is not clap's to catch (e.g. an unknown service name).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct UsageError {
    pub message: String,
}

impl UsageError {
    pub fn exit_code(&self) -> u8 {
        super::EXIT_INTERNAL
    }
}

/// Reads and validates the manifest the global flags point at.
pub fn load_manifest(global: &GlobalArgs) -> Result<Manifest, manifest::ManifestErrors> {
    manifest::load(&load_options(global))
}

/// Like [`load_manifest`], for a command that names services: their profiles become active.
pub fn load_manifest_for(
    global: &GlobalArgs,
    services: &[String],
) -> Result<Manifest, manifest::ManifestErrors> {
    manifest::load(&LoadOptions {
        services: services.to_vec(),
        ..load_options(global)
    })
}

/// The load options the global flags and the process give.
pub fn load_options(global: &GlobalArgs) -> LoadOptions {
    let working_dir = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let environment: BTreeMap<String, String> = std::env::vars().collect();
    LoadOptions {
        files: global.file.clone(),
        project: global.project.clone(),
        profiles: global.profile.clone(),
        env_files: global.env_file.clone(),
        working_dir,
        environment,
        services: Vec::new(),
    }
}

/// Tells which files were read and every warning about them (stderr, so stdout stays the result).
pub fn announce(manifest: &Manifest, printer: &crate::output::Printer) {
    let working_dir = std::env::current_dir().unwrap_or_default();
    let files: Vec<String> = manifest
        .source
        .files
        .iter()
        .map(|file| {
            let shown = file.strip_prefix(&working_dir).unwrap_or(file);
            format!("`{}`", shown.display())
        })
        .collect();
    printer.stderr_line(&format!(
        "project `{}` from {}",
        manifest.project,
        files.join(" + ")
    ));
    for warning in &manifest.warnings {
        printer.stderr_line(&warning.to_string());
    }
}

/// The project name: `-p` when given (no manifest needed), else from the manifest.
pub fn project_name(global: &GlobalArgs) -> anyhow::Result<(String, Option<Manifest>)> {
    match (&global.project, !global.file.is_empty()) {
        (Some(project), false) => {
            // The manifest is optional here; use it when it loads (for health checks in `ps`):
            // the one in this folder, else the one the project's control plane runs.
            let manifest = load_manifest(global)
                .ok()
                .filter(|manifest| &manifest.project == project)
                .or_else(|| {
                    let state = crate::control::ControlPlaneState::read_live(project)?;
                    let recorded = GlobalArgs {
                        file: state.source.files,
                        profile: state.source.profiles,
                        env_file: state.source.env_files,
                        ..global.clone()
                    };
                    load_manifest(&recorded).ok()
                });
            Ok((project.clone(), manifest))
        }
        _ => {
            let manifest = load_manifest(global)?;
            Ok((manifest.project.clone(), Some(manifest)))
        }
    }
}

/// Checks that every name is a service of the manifest.
pub fn check_services(manifest: &Manifest, names: &[String]) -> Result<(), UsageError> {
    for name in names {
        if !manifest.services.contains_key(name) {
            let known: Vec<&str> = manifest.services.keys().map(String::as_str).collect();
            return Err(UsageError {
                message: format!(
                    "no service `{name}` in {}\n  hint: the services are: {}",
                    manifest.file.display(),
                    known.join(", ")
                ),
            });
        }
    }
    Ok(())
}
