//! `sandbox config --format compose` on the whole corpus: the file written is a compose file by the
//! Compose Specification's own JSON Schema (checked with the `jsonschema` package that Debian's
//! docker-compose brings), and read back by sandbox it is the very same project.

use std::path::{Path, PathBuf};
use std::process::Command;

use sandbox::manifest::{load, to_compose, to_json, ExportOptions, LoadOptions};

use crate::compose::{case_options, cases};

/// The Python that has `jsonschema` and `yaml` (Debian's, which docker-compose uses).
const PYTHON: &str = "/usr/bin/python3";

const VALIDATE: &str = r#"
import json, sys, yaml, jsonschema
schema = json.load(open(sys.argv[1]))
document = yaml.safe_load(open(sys.argv[2]))
errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(document), key=lambda e: list(e.path))
for error in errors:
    print("/".join(str(part) for part in error.path) + ": " + error.message)
sys.exit(1 if errors else 0)
"#;

fn schema() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/manifest/compose-spec.json")
}

/// Problems the schema finds in `file` (empty when valid).
fn schema_problems(file: &Path) -> String {
    let output = Command::new(PYTHON)
        .args(["-c", VALIDATE])
        .arg(schema())
        .arg(file)
        .output()
        .unwrap_or_else(|error| {
            panic!("{PYTHON} with jsonschema is needed (apt-get install docker-compose brings it): {error}")
        });
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "{PYTHON} lacks a module (apt-get install python3-jsonschema python3-yaml): {stderr}"
    );
    if output.status.success() {
        String::new()
    } else {
        format!("{}{stderr}", String::from_utf8_lossy(&output.stdout))
    }
}

#[test]
fn every_case_exports_to_a_valid_compose_file_that_loads_as_the_same_project() {
    let mut failures = Vec::new();
    for case in cases() {
        let options = case_options(&case);
        let original = load(&options).unwrap_or_else(|errors| panic!("{errors}"));
        let text = match to_compose(&options, ExportOptions { show_secrets: true }) {
            Ok(text) => text,
            Err(errors) => {
                failures.push(format!("{}: export failed:\n{errors}", case.display()));
                continue;
            }
        };
        let folder = tempfile::tempdir().expect("temp dir");
        let file = folder.path().join("exported.yaml");
        std::fs::write(&file, &text).expect("write");
        let problems = schema_problems(&file);
        if !problems.is_empty() {
            failures.push(format!(
                "{}: not valid by the schema:\n{problems}\n{text}",
                case.display()
            ));
        }
        let reloaded = load(&LoadOptions {
            files: vec![file.clone()],
            working_dir: folder.path().to_path_buf(),
            environment: options.environment.clone(),
            profiles: original.source.profiles.clone(),
            ..LoadOptions::default()
        });
        match reloaded {
            Ok(reloaded) if to_json(&reloaded) == to_json(&original) => {}
            Ok(reloaded) => failures.push(format!(
                "{}: read back differently:\n--- original\n{}\n--- read back\n{}",
                case.display(),
                to_json(&original),
                to_json(&reloaded)
            )),
            Err(errors) => failures.push(format!(
                "{}: the export does not load:\n{errors}\n{text}",
                case.display()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
