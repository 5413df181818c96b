//! The compose corpus: every file in `fixtures/compose/` (a single file, or a folder whose
//! `case.args` lists the `-f` files and `-p`/profile flags) loads, and what it resolves to is locked
//! in a snapshot of `sandbox config --json`'s text (`snapshots/main__compose__<case>.snap`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sandbox::manifest::{load, to_json, LoadOptions};

use crate::util::{environment, fixtures};

/// The load options of one case: a `.yaml` file, or a folder with an optional `case.args`
/// (`-f FILE`, `--profile NAME`, `-p NAME`, `--env-file FILE`, `service NAME` for a service named
/// on the command line, `VAR=value`, one per line).
pub fn case_options(path: &Path) -> LoadOptions {
    let mut environment: BTreeMap<String, String> = environment();
    let mut options = LoadOptions {
        working_dir: path.to_path_buf(),
        ..LoadOptions::default()
    };
    if path.is_file() {
        options.working_dir = path.parent().expect("folder").to_path_buf();
        options.files = vec![PathBuf::from(path.file_name().expect("name"))];
    } else if let Ok(text) = std::fs::read_to_string(path.join("case.args")) {
        for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
            match line.split_once(' ') {
                Some(("-f", file)) => options.files.push(file.into()),
                Some(("-p", name)) => options.project = Some(name.into()),
                Some(("--profile", name)) => options.profiles.push(name.into()),
                Some(("--env-file", file)) => options.env_files.push(file.into()),
                Some(("service", name)) => options.services.push(name.into()),
                _ => match line.split_once('=') {
                    Some((key, value)) => {
                        environment.insert(key.into(), value.into());
                    }
                    None => panic!("{}: unknown line `{line}`", path.display()),
                },
            }
        }
    }
    options.environment = environment;
    options
}

/// The resolved project as text: warnings first (as the CLI prints them), then the JSON.
fn resolved(path: &Path) -> String {
    let manifest = match load(&case_options(path)) {
        Ok(manifest) => manifest,
        Err(errors) => panic!("{} does not load:\n{errors}", path.display()),
    };
    let mut text = String::new();
    for warning in &manifest.warnings {
        text.push_str(&warning.to_string());
        text.push_str("\n\n");
    }
    text.push_str(&to_json(&manifest));
    // Absolute paths differ between machines: show them relative to the fixtures.
    text.replace(&fixtures("compose").display().to_string(), "<fixtures>")
}

/// Every case of the corpus, sorted.
pub fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(fixtures("compose"))
        .expect("fixture folder")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| {
            path.is_dir()
                || path
                    .extension()
                    .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no compose fixtures");
    cases
}

#[test]
fn every_compose_fixture_loads_as_its_snapshot() {
    let cases = cases();
    let mut failures = Vec::new();
    for case in &cases {
        let name = case
            .file_stem()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let text = resolved(case);
        let outcome = std::panic::catch_unwind(|| {
            insta::assert_snapshot!(name.clone(), text);
        });
        if outcome.is_err() {
            failures.push(name);
        }
    }
    assert!(failures.is_empty(), "snapshots differ: {failures:?}");
}
