//! From the files the options name to one node tree: each file parsed (its nodes remember which
//! file they came from), `extends` resolved, the `-f` files merged in order, `include`d projects
//! copied in, services outside the active profiles dropped, and `x-sandbox` blocks lifted to where
//! sandbox's bare keys sit. The schema walk then reads the one tree as if it were one file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;

mod extends;
mod extension;
mod include;
mod profiles;

use super::error::ManifestError;
use super::files::{self, SourceFile};
use super::interpolate::interpolate;
use super::merge::{merge, strip};
use super::node::{self, Entries, Node, Span, Value};
use super::schema::normalise_path;
use super::{read_source, LoadOptions};

/// How deep `include` and `extends` may chain.
const MAX_DEPTH: usize = 16;
/// sandbox's top-level keys that `x-sandbox` may hold.
pub const PROJECT_EXTENSION_KEYS: &[&str] = &["gateway", "tracing", "smoke", "mesh"];
/// sandbox's service keys that a service's `x-sandbox` may hold.
pub const SERVICE_EXTENSION_KEYS: &[&str] = &[
    "port",
    "external",
    "faults",
    "retries",
    "timeout",
    "circuit_breaker",
    "outlier_detection",
    "load_balancer",
    "http2",
    "replicas",
    "healthcheck",
    "mesh",
];
/// The extension key that holds sandbox's own keys inside a compose file.
const EXTENSION: &str = "x-sandbox";

/// The one tree, the files it came from, and what was found on the way.
pub struct Assembled {
    pub root: Option<Rc<Node>>,
    pub sources: Vec<SourceFile>,
    /// The project folder (the first file's).
    pub directory: PathBuf,
    /// The files merged in order (absolute), without those `include` and `extends` brought in.
    pub files: Vec<PathBuf>,
    /// The active profiles.
    pub profiles: BTreeSet<String>,
    /// The variables of the main project.
    pub variables: Rc<BTreeMap<String, String>>,
    /// The project name from `COMPOSE_PROJECT_NAME`, when set.
    pub project_variable: Option<String>,
    /// Services left out by profiles, with the profiles that would enable them.
    pub disabled: BTreeMap<String, Vec<String>>,
    pub errors: Vec<ManifestError>,
    pub warnings: Vec<ManifestError>,
}

struct Assembler {
    sources: Vec<SourceFile>,
    /// Parsed roots by file index (`None`: unreadable or empty).
    roots: Vec<Option<Rc<Node>>>,
    errors: Vec<ManifestError>,
    warnings: Vec<ManifestError>,
    /// `extends` cycles already reported (their members, sorted), so each is reported once.
    reported_cycles: BTreeSet<Vec<(usize, String)>>,
    /// Services named on the command line.
    targets: Vec<String>,
}

/// Assembles the project the options describe.
pub fn assemble(options: &LoadOptions, working_dir: &Path) -> Assembled {
    let mut assembler = Assembler {
        sources: Vec::new(),
        roots: Vec::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
        reported_cycles: BTreeSet::new(),
        targets: options.services.clone(),
    };
    let empty = |errors, warnings| Assembled {
        root: None,
        sources: Vec::new(),
        directory: working_dir.to_path_buf(),
        files: Vec::new(),
        profiles: BTreeSet::new(),
        variables: Rc::default(),
        project_variable: None,
        disabled: BTreeMap::new(),
        errors,
        warnings,
    };
    let (located, note) = match files::locate(options, working_dir) {
        Ok(located) => located,
        Err(error) => return empty(vec![*error], Vec::new()),
    };
    if let Some(note) = note {
        assembler.warnings.push(plain(&located[0].0, note, None));
    }
    let directory = located[0]
        .1
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let env_files: Vec<(PathBuf, PathBuf)> = options
        .env_files
        .iter()
        .map(|file| (file.clone(), normalise_path(&working_dir.join(file))))
        .collect();
    let variables = Rc::new(files::variables(
        &env_files,
        &directory,
        &options.environment,
        &mut assembler.errors,
    ));
    let root = assembler.project(&located, &directory, &variables, &mut Vec::new());
    let mut profiles = active_profiles(options, &variables);
    let mut disabled = BTreeMap::new();
    let root = root.map(|root| {
        let root = assembler.apply_profiles(&root, &mut profiles, &mut disabled);
        assembler.lift_extensions(&root)
    });
    if root.is_none() && assembler.errors.is_empty() && assembler.roots.iter().all(Option::is_none)
    {
        return Assembled {
            sources: assembler.sources,
            ..empty(Vec::new(), assembler.warnings)
        };
    }
    Assembled {
        root,
        sources: assembler.sources,
        directory,
        files: located.into_iter().map(|(_, path)| path).collect(),
        profiles,
        project_variable: variables
            .get("COMPOSE_PROJECT_NAME")
            .filter(|name| !name.is_empty())
            .cloned(),
        variables,
        disabled,
        errors: assembler.errors,
        warnings: assembler.warnings,
    }
}

/// `--profile` flags, else `COMPOSE_PROFILES` (comma-separated).
fn active_profiles(
    options: &LoadOptions,
    variables: &BTreeMap<String, String>,
) -> BTreeSet<String> {
    if !options.profiles.is_empty() {
        return options.profiles.iter().cloned().collect();
    }
    variables
        .get("COMPOSE_PROFILES")
        .map(|value| {
            value
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// An error or warning without a place.
fn plain(file: &Path, message: String, hint: Option<String>) -> ManifestError {
    ManifestError {
        file: file.to_path_buf(),
        line: None,
        column: None,
        field: String::new(),
        message,
        hint,
    }
}

/// The entries of a map node (empty for anything else).
fn entries(node: &Node) -> &[(Rc<Node>, Rc<Node>)] {
    match &node.value {
        Value::Mapping(entries) => entries,
        _ => &[],
    }
}

fn get<'a>(node: &'a Node, key: &str) -> Option<&'a Rc<Node>> {
    entries(node)
        .iter()
        .find(|(name, _)| name.scalar_text() == Some(key))
        .map(|(_, value)| value)
}

fn with_entries(node: &Node, entries: Entries) -> Rc<Node> {
    Rc::new(Node {
        span: node.span,
        value: Value::Mapping(entries),
        tag: None,
    })
}

/// `node` with `key` set to `value` (replacing it, or appended).
fn set(node: &Node, key: &str, value: Rc<Node>) -> Rc<Node> {
    let mut new_entries: Entries = entries(node).to_vec();
    match new_entries
        .iter_mut()
        .find(|(name, _)| name.scalar_text() == Some(key))
    {
        Some(entry) => entry.1 = value,
        None => new_entries.push((scalar(node.span, key), value)),
    }
    with_entries(node, new_entries)
}

fn without(node: &Node, key: &str) -> Rc<Node> {
    with_entries(
        node,
        entries(node)
            .iter()
            .filter(|(name, _)| name.scalar_text() != Some(key))
            .cloned()
            .collect(),
    )
}

fn scalar(span: Span, text: &str) -> Rc<Node> {
    Rc::new(Node {
        span,
        value: Value::Scalar {
            text: text.to_string(),
            quoted: false,
        },
        tag: None,
    })
}

impl Assembler {
    fn error(&mut self, span: Span, field: &str, message: String, hint: Option<String>) {
        let error = self.at(span, field, message, hint);
        self.errors.push(error);
    }

    fn at(&self, span: Span, field: &str, message: String, hint: Option<String>) -> ManifestError {
        ManifestError {
            file: self
                .sources
                .get(span.file)
                .map(|source| source.display.clone())
                .unwrap_or_default(),
            line: Some(span.line),
            column: Some(span.column),
            field: field.to_string(),
            message,
            hint,
        }
    }

    /// Reads and parses a file into the table (once per path and folder); its index.
    fn read(
        &mut self,
        display: &Path,
        path: &Path,
        directory: &Path,
        variables: &Rc<BTreeMap<String, String>>,
    ) -> Option<usize> {
        if let Some(index) = self
            .sources
            .iter()
            .position(|source| source.path == path && source.directory == directory)
        {
            return Some(index);
        }
        let index = self.sources.len();
        self.sources.push(SourceFile {
            display: display.to_path_buf(),
            path: path.to_path_buf(),
            directory: directory.to_path_buf(),
            variables: Rc::clone(variables),
        });
        let root = match read_source(display, path) {
            Ok(text) => {
                let parsed = node::parse(&text, index);
                for issue in parsed.issues {
                    self.errors.push(ManifestError {
                        file: display.to_path_buf(),
                        line: issue.span.map(|span| span.line),
                        column: issue.span.map(|span| span.column),
                        field: String::new(),
                        message: issue.message,
                        hint: issue.hint,
                    });
                }
                parsed.root
            }
            Err(errors) => {
                self.errors.extend(errors.errors);
                None
            }
        };
        self.roots.push(root);
        Some(index)
    }

    /// A project: its files read, `extends` resolved in each, merged in order, `include`s copied
    /// in. `chain` holds the files being included, to refuse cycles.
    fn project(
        &mut self,
        files: &[(PathBuf, PathBuf)],
        directory: &Path,
        variables: &Rc<BTreeMap<String, String>>,
        chain: &mut Vec<PathBuf>,
    ) -> Option<Rc<Node>> {
        let mut merged: Option<Rc<Node>> = None;
        let mut any = false;
        for (display, path) in files {
            let Some(index) = self.read(display, path, directory, variables) else {
                continue;
            };
            let Some(root) = self.roots[index].clone() else {
                continue;
            };
            any = true;
            if !matches!(root.value, Value::Mapping(_)) {
                // The schema walk reports a top level that is not a map.
                merged = Some(root);
                continue;
            }
            let root = self.resolve_extends(&root, index);
            merged = Some(match merged {
                Some(base) if matches!(base.value, Value::Mapping(_)) => {
                    merge(&base, &root, &[]).unwrap_or(root)
                }
                _ => strip(&root),
            });
        }
        if !any {
            return None;
        }
        let merged = merged?;
        match get(&merged, "include").cloned() {
            Some(include) => {
                let merged = without(&merged, "include");
                Some(self.include(&merged, &include, variables, chain))
            }
            None => Some(merged),
        }
    }

    /// The variables of a file's node, for interpolating paths in `include` and `extends`.
    fn text(&mut self, node: &Node, field: &str) -> Option<String> {
        let Some(text) = node.scalar_text() else {
            self.error(node.span, field, "expected a string".into(), None);
            return None;
        };
        let variables = Rc::clone(&self.sources[node.span.file].variables);
        match interpolate(text, &variables) {
            Ok(text) => Some(text),
            Err(error) => {
                let (message, hint) = error.explain();
                self.error(node.span, field, message, Some(hint));
                None
            }
        }
    }

    /// Resolves a path written in the file of `node` against that file's folder.
    fn path_of(&self, node: &Node, written: &str) -> PathBuf {
        let written = match written.strip_prefix("~/") {
            Some(rest) => match self.sources[node.span.file].variables.get("HOME") {
                Some(home) => Path::new(home).join(rest),
                None => PathBuf::from(written),
            },
            None => PathBuf::from(written),
        };
        normalise_path(&self.sources[node.span.file].directory.join(written))
    }
}
