//! Helpers: fixture folders and load options with a controlled environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sandbox::manifest::{load, LoadOptions, Manifest, ManifestErrors};

/// `tests/manifest/fixtures/<kind>`.
pub fn fixtures(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/manifest/fixtures")
        .join(kind)
}

/// The environment every test runs with (never the real one).
pub fn environment() -> BTreeMap<String, String> {
    [("HOME", "/home/tester"), ("FROM_PROCESS", "process-value")]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

/// Options for `file` (relative, so messages name it as written) in `working_dir`.
pub fn options(working_dir: &Path, file: &str) -> LoadOptions {
    LoadOptions {
        files: vec![PathBuf::from(file)],
        working_dir: working_dir.to_path_buf(),
        environment: environment(),
        ..LoadOptions::default()
    }
}

/// Loads a valid fixture, failing the test with the rendered errors otherwise.
pub fn load_valid(file: &str) -> Manifest {
    match load(&options(&fixtures("valid"), file)) {
        Ok(manifest) => manifest,
        Err(errors) => panic!("{file} should load:\n{errors}"),
    }
}

/// Loads an invalid fixture, failing the test if it loads.
pub fn load_invalid(file: &str) -> ManifestErrors {
    match load(&options(&fixtures("invalid"), file)) {
        Ok(manifest) => panic!("{file} should not load, but gave {manifest:#?}"),
        Err(errors) => errors,
    }
}
