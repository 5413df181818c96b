//! Every key of the Compose Specification loads. The specification's JSON Schema
//! (`compose-spec.json`, copied unchanged, see `compose-spec.SOURCE.txt`) is walked for every object
//! that has `properties`; each object must have a template below and each of its properties at least
//! one sample in `samples.rs`, so a key added to the schema fails this test until it has one. Each
//! sample is written into a minimal compose file and loaded, and its outcome checked:
//! - [`Outcome::Read`]: sandbox reads the key: no warning names it, and the resolved project
//!   differs from the same file without it;
//! - [`Outcome::Warned`]: accepted without effect, with a warning that names the key;
//! - [`Outcome::Accepted`]: read, but this sample resolves to what the file without it does (the
//!   value written is the default).
//!
//! Every failure is reported at once.

mod forms;
mod samples;

use std::collections::BTreeMap;
use std::path::Path;

use sandbox::manifest::{load, to_json, LoadOptions, Manifest};
use serde_json::Value;

use crate::util::environment;

/// What loading a sample must give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Read,
    Warned,
    Accepted,
    Skipped(&'static str),
}

/// One value of one key, written as YAML at the key's level (its first key is the one under
/// test; further keys are siblings it needs).
#[derive(Debug, Clone)]
pub struct Sample {
    pub object: &'static str,
    pub yaml: &'static str,
    pub outcome: Outcome,
    /// Top-level YAML appended to the document (with and without the sample).
    pub extra: &'static str,
    /// Leave out the template's default siblings.
    pub alone: bool,
}

impl Sample {
    pub fn key(&self) -> &str {
        let first = self.yaml.lines().next().unwrap_or_default();
        first.split(':').next().unwrap_or_default().trim()
    }

    pub fn with(mut self, extra: &'static str) -> Sample {
        self.extra = extra;
        self
    }

    pub fn alone(mut self) -> Sample {
        self.alone = true;
        self
    }
}

pub fn read(object: &'static str, yaml: &'static str) -> Sample {
    sample(object, yaml, Outcome::Read)
}

pub fn warned(object: &'static str, yaml: &'static str) -> Sample {
    sample(object, yaml, Outcome::Warned)
}

pub fn accepted(object: &'static str, yaml: &'static str) -> Sample {
    sample(object, yaml, Outcome::Accepted)
}

/// A key left out of the loading loop, with the reason.
pub fn skipped(object: &'static str, yaml: &'static str, why: &'static str) -> Sample {
    sample(object, yaml, Outcome::Skipped(why))
}

fn sample(object: &'static str, yaml: &'static str, outcome: Outcome) -> Sample {
    Sample {
        object,
        yaml,
        outcome,
        extra: "",
        alone: false,
    }
}

/// Where an object of the schema is written in a compose file: `@` marks the place of its keys,
/// `siblings` are keys it needs (each left out when the sample writes it).
pub struct Template {
    /// The object's JSON pointer in the schema.
    pub pointer: &'static str,
    /// The name samples use.
    pub name: &'static str,
    pub text: &'static str,
    pub siblings: &'static [&'static str],
}

/// Files every sample's folder holds.
const FILES: &[(&str, &str)] = &[
    ("Dockerfile", "FROM scratch\n"),
    ("app.env", "APP_MODE=production\n"),
    ("other.env", "OTHER=1\n"),
    ("quoted.env", "GREETING=\"hello world\"\n"),
    ("app.labels", "com.example.team=shop\n"),
    ("other.labels", "com.example.team=web\ncom.example.tier=\"front end\"\n"),
    ("secret.txt", "s3cret\n"),
    ("app.conf", "listen 80;\n"),
    (
        "other.yaml",
        "services:\n  other:\n    image: busybox:1.36\n    environment: {FROM_OTHER_FILE: \"1\"}\n",
    ),
    (
        "included/compose.yaml",
        "services:\n  cache:\n    image: redis:7\n    environment: {CACHE_SIZE: \"${CACHE_SIZE:-32}\"}\n    volumes: [./cache:/cache]\n",
    ),
    ("included/dev.env", "CACHE_SIZE=64\n"),
    ("src/main.go", "package main\n"),
    ("data/.keep", ""),
];

/// The schema's objects with properties: JSON pointer → property names.
fn schema_objects() -> BTreeMap<String, Vec<String>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/manifest/compose-spec.json");
    let text = std::fs::read_to_string(&path).expect("compose-spec.json");
    let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    let mut objects = BTreeMap::new();
    collect(&schema, "#", &mut objects);
    objects
}

fn collect(node: &Value, pointer: &str, objects: &mut BTreeMap<String, Vec<String>>) {
    match node {
        Value::Object(map) => {
            if let Some(Value::Object(properties)) = map.get("properties") {
                objects.insert(pointer.to_string(), properties.keys().cloned().collect());
            }
            for (key, value) in map {
                collect(value, &format!("{pointer}/{key}"), objects);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                collect(item, &format!("{pointer}/{index}"), objects);
            }
        }
        _ => {}
    }
}

/// The compose file of `sample` in `template`; without `with_sample`, the baseline it is compared
/// with (the template's siblings, unless the sample stands `alone`, and the sample's `extra`).
fn document(template: &Template, sample: &Sample, with_sample: bool) -> String {
    let own_keys: Vec<&str> = if with_sample {
        top_keys(sample.yaml)
    } else {
        Vec::new()
    };
    let mut lines: Vec<&str> = Vec::new();
    if !sample.alone {
        for sibling in template.siblings {
            if !top_keys(sibling).iter().any(|key| own_keys.contains(key)) {
                lines.extend(sibling.lines());
            }
        }
    }
    if with_sample {
        lines.extend(sample.yaml.lines());
    }
    let mut text = String::new();
    for line in template.text.lines() {
        match line.find('@') {
            Some(column) => {
                let indent = &line[..column];
                if lines.is_empty() {
                    // The object without keys: an empty flow map in their place.
                    text.push_str(&format!("{indent}{{}}\n"));
                }
                for yaml in &lines {
                    text.push_str(&format!("{indent}{yaml}\n"));
                }
            }
            None => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    text.push_str(sample.extra);
    text.push('\n');
    text
}

/// The keys on the way to a template's `@`, but `services` and the service's name.
fn template_keys(template: &Template) -> Vec<&'static str> {
    template
        .text
        .lines()
        .take_while(|line| !line.contains('@'))
        .filter_map(|line| line.trim_start().trim_start_matches("- ").split(':').next())
        .filter(|key| !key.is_empty() && !matches!(*key, "services" | "app" | "-"))
        .collect()
}

/// The keys written at column 0 of a YAML snippet.
fn top_keys(yaml: &str) -> Vec<&str> {
    yaml.lines()
        .filter(|line| !line.starts_with([' ', '-', '#']) && !line.is_empty())
        .filter_map(|line| line.split(':').next())
        .collect()
}

fn load_text(folder: &Path, text: &str) -> Result<Manifest, String> {
    std::fs::write(folder.join("compose.yaml"), text).expect("write compose.yaml");
    let options = LoadOptions {
        files: vec!["compose.yaml".into()],
        working_dir: folder.to_path_buf(),
        environment: environment(),
        ..LoadOptions::default()
    };
    load(&options).map_err(|errors| errors.to_string())
}

/// What is wrong with `sample`, if anything. A baseline that does not load (an object that needs
/// the key) counts as a different project.
fn check(folder: &Path, template: &Template, sample: &Sample) -> Option<String> {
    let text = document(template, sample, true);
    let manifest = match load_text(folder, &text) {
        Ok(manifest) => manifest,
        Err(errors) => return Some(format!("does not load:\n{text}\n{errors}")),
    };
    // A warning names the key, or a key enclosing it (a whole ignored section).
    let key = sample.key();
    let enclosing = template_keys(template);
    let warned = manifest.warnings.iter().any(|warning| {
        let parts = warning.0.field.split(['.', '[']);
        parts
            .into_iter()
            .any(|part| part == key || enclosing.contains(&part))
    });
    let resolved = to_json(&manifest);
    let baseline = load_text(folder, &document(template, sample, false)).map(|base| to_json(&base));
    let changed = baseline
        .as_ref()
        .map_or(true, |baseline| *baseline != resolved);
    let problem = match sample.outcome {
        Outcome::Read if warned => "is read, but a warning names it",
        Outcome::Read if !changed => "is read, but the project is the same without it",
        Outcome::Warned if !warned => "should be a warning naming the key, but none does",
        Outcome::Accepted if warned => "is accepted, but a warning names it",
        _ => return None,
    };
    let warnings: Vec<String> = manifest
        .warnings
        .iter()
        .map(|warning| warning.to_string())
        .collect();
    Some(format!(
        "{problem}:\n{text}\nwarnings: {warnings:#?}\n{resolved}"
    ))
}

#[test]
fn every_object_of_the_schema_has_a_template_and_every_key_a_sample() {
    let templates = samples::templates();
    let samples = samples::samples();
    let mut failures = Vec::new();
    for (pointer, properties) in schema_objects() {
        let Some(template) = templates
            .iter()
            .find(|template| template.pointer == pointer)
        else {
            failures.push(format!(
                "no template for the schema object `{pointer}` ({properties:?})"
            ));
            continue;
        };
        for property in properties {
            let covered = samples
                .iter()
                .any(|sample| sample.object == template.name && sample.key() == property);
            if !covered {
                failures.push(format!(
                    "no sample for `{}` in `{}`",
                    property, template.name
                ));
            }
        }
    }
    for sample in &samples {
        if !templates
            .iter()
            .any(|template| template.name == sample.object)
        {
            failures.push(format!(
                "sample `{}` names no template `{}`",
                sample.yaml, sample.object
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_key_of_the_specification_loads() {
    let templates = samples::templates();
    let folder = tempfile::tempdir().expect("temporary folder");
    for (path, content) in FILES {
        let path = folder.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("folder");
        std::fs::write(path, content).expect("file");
    }
    let mut failures = Vec::new();
    for sample in samples::samples() {
        let Some(template) = templates
            .iter()
            .find(|template| template.name == sample.object)
        else {
            continue;
        };
        if let Outcome::Skipped(_) = sample.outcome {
            continue;
        }
        if let Some(problem) = check(folder.path(), template, &sample) {
            failures.push(format!(
                "`{}` in `{}` {problem}",
                sample.key(),
                sample.object
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} samples fail:\n\n{}",
        failures.len(),
        failures.join("\n----------\n")
    );
}
