//! From the files the options name to one node tree: each file parsed (its nodes remember which
//! file they came from), `extends` resolved, the `-f` files merged in order, `include`d projects
//! copied in, services outside the active profiles dropped, and `x-sandbox` blocks lifted to where
//! sandbox's bare keys sit. The schema walk then reads the one tree as if it were one file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::error::ManifestError;
use super::files::{self, SourceFile};
use super::interpolate::interpolate;
use super::merge::{merge, strip};
use super::node::{self, Entries, Node, Span, Value};
use super::schema::normalise_path;
use super::{read_source, suggest, LoadOptions};

/// How deep `include` and `extends` may chain.
const MAX_DEPTH: usize = 16;
/// sandbox's top-level keys that `x-sandbox` may hold.
pub const PROJECT_EXTENSION_KEYS: &[&str] = &["gateway", "tracing", "smoke"];
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
                let message = format!("cannot interpolate `{text}`: {error:?}");
                self.error(node.span, field, message, None);
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

    /// Copies each included project's resources into `root`; a name defined on both sides is an
    /// error (compose does not merge them).
    fn include(
        &mut self,
        root: &Rc<Node>,
        include: &Rc<Node>,
        variables: &Rc<BTreeMap<String, String>>,
        chain: &mut Vec<PathBuf>,
    ) -> Rc<Node> {
        let Value::Sequence(items) = &include.value else {
            let hint = Some("write `include: [other/compose.yaml]`".to_string());
            self.error(
                include.span,
                "include",
                "expected a list of files".into(),
                hint,
            );
            return Rc::clone(root);
        };
        let mut root = Rc::clone(root);
        for (position, item) in items.iter().enumerate() {
            let field = format!("include[{position}]");
            let Some(included) = self.include_one(item, &field, variables, chain) else {
                continue;
            };
            root = self.copy_resources(&root, &included, item, &field);
        }
        root
    }

    fn include_one(
        &mut self,
        item: &Rc<Node>,
        field: &str,
        variables: &Rc<BTreeMap<String, String>>,
        chain: &mut Vec<PathBuf>,
    ) -> Option<Rc<Node>> {
        let (paths, project_directory, env_files) = match &item.value {
            Value::Scalar { .. } => (vec![Rc::clone(item)], None, Vec::new()),
            Value::Mapping(_) => {
                for (key, _) in entries(item) {
                    let name = key.scalar_text().unwrap_or_default();
                    if !["path", "project_directory", "env_file"].contains(&name) {
                        let hint =
                            suggest::did_you_mean(name, ["path", "project_directory", "env_file"])
                                .map(|known| format!("did you mean `{known}`?"))
                                .unwrap_or_else(|| {
                                    "valid fields: `path`, `project_directory`, `env_file`".into()
                                });
                        self.error(
                            key.span,
                            &format!("{field}.{name}"),
                            format!("unknown field `{name}` in an include"),
                            Some(hint),
                        );
                    }
                }
                let list = |node: Option<&Rc<Node>>| match node.map(|node| &node.value) {
                    Some(Value::Sequence(items)) => items.clone(),
                    Some(_) => node.into_iter().cloned().collect(),
                    None => Vec::new(),
                };
                let Some(path) = get(item, "path") else {
                    let hint = Some("write `- path: other/compose.yaml`".to_string());
                    self.error(item.span, field, "an include needs `path`".into(), hint);
                    return None;
                };
                (
                    list(Some(path)),
                    get(item, "project_directory").cloned(),
                    list(get(item, "env_file")),
                )
            }
            Value::Sequence(_) => {
                let hint = Some("write a path, or `{path: ..., env_file: ...}`".to_string());
                self.error(
                    item.span,
                    field,
                    "expected a path or a map, found a list".into(),
                    hint,
                );
                return None;
            }
        };
        let mut files = Vec::new();
        for path in &paths {
            let written = self.text(path, &format!("{field}.path"))?;
            let absolute = self.path_of(path, &written);
            if !absolute.is_file() {
                let hint = Some(format!(
                    "paths in `include` are relative to the folder of `{}`",
                    self.sources[path.span.file].display.display()
                ));
                self.error(
                    path.span,
                    field,
                    format!("included file `{written}` not found"),
                    hint,
                );
                return None;
            }
            files.push((PathBuf::from(written), absolute));
        }
        if chain.contains(&files[0].1) || chain.len() >= MAX_DEPTH {
            let hint = Some("a file cannot include itself, directly or through others".to_string());
            self.error(
                item.span,
                field,
                format!("`{}` is already being included", files[0].0.display()),
                hint,
            );
            return None;
        }
        let directory = match &project_directory {
            Some(node) => {
                let written = self.text(node, &format!("{field}.project_directory"))?;
                self.path_of(node, &written)
            }
            None => files[0]
                .1
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
        };
        let mut env = Vec::new();
        for node in &env_files {
            let written = self.text(node, &format!("{field}.env_file"))?;
            env.push((PathBuf::from(&written), self.path_of(node, &written)));
        }
        let included_variables = Rc::new(files::variables(
            &env,
            &directory,
            variables,
            &mut self.errors,
        ));
        chain.push(files[0].1.clone());
        let root = self.project(&files, &directory, &included_variables, chain);
        chain.pop();
        root
    }

    /// Adds the included project's services, networks, volumes, secrets and configs to `root`.
    fn copy_resources(
        &mut self,
        root: &Rc<Node>,
        included: &Rc<Node>,
        item: &Node,
        field: &str,
    ) -> Rc<Node> {
        let mut root = Rc::clone(root);
        for section in ["services", "networks", "volumes", "secrets", "configs"] {
            let Some(incoming) = get(included, section) else {
                continue;
            };
            let existing = get(&root, section).cloned();
            let mut merged: Entries = existing
                .as_deref()
                .map(|node| entries(node).to_vec())
                .unwrap_or_default();
            for (key, value) in entries(incoming) {
                let name = key.scalar_text().unwrap_or_default();
                if let Some((ours, _)) = merged
                    .iter()
                    .find(|(ours, _)| ours.scalar_text() == Some(name))
                {
                    let place = self.at(ours.span, "", String::new(), None);
                    let message = format!(
                        "{section}.{name} from the included `{}` is also defined in `{}`",
                        self.sources[key.span.file].display.display(),
                        place.file.display()
                    );
                    let hint = Some(format!("compose does not merge included resources: rename one, or remove it from `{}` line {}", place.file.display(), ours.span.line));
                    self.error(item.span, field, message, hint);
                    continue;
                }
                merged.push((Rc::clone(key), Rc::clone(value)));
            }
            let section_node = with_entries(existing.as_deref().unwrap_or(incoming), merged);
            root = set(&root, section, section_node);
        }
        root
    }

    /// Resolves every service's `extends` in one file's tree.
    fn resolve_extends(&mut self, root: &Rc<Node>, file: usize) -> Rc<Node> {
        let Some(services) = get(root, "services").cloned() else {
            return Rc::clone(root);
        };
        if !entries(&services)
            .iter()
            .any(|(_, service)| get(service, "extends").is_some())
        {
            return Rc::clone(root);
        }
        let mut resolved = Vec::new();
        for (key, _) in entries(&services) {
            let name = key.scalar_text().unwrap_or_default().to_string();
            let service = self
                .service(file, &name, &mut Vec::new())
                .unwrap_or_else(|| scalar(key.span, ""));
            resolved.push((Rc::clone(key), service));
        }
        set(root, "services", with_entries(&services, resolved))
    }

    /// Service `name` of file `file`, with its `extends` chain merged in; `None` when missing.
    fn service(
        &mut self,
        file: usize,
        name: &str,
        chain: &mut Vec<(usize, String)>,
    ) -> Option<Rc<Node>> {
        let root = self.roots.get(file)?.clone()?;
        let service = get(get(&root, "services")?, name)?.clone();
        let Some(extends) = get(&service, "extends").cloned() else {
            return Some(service);
        };
        let field = format!("services.{name}.extends");
        let service = without(&service, "extends");
        if chain.len() >= MAX_DEPTH || chain.iter().any(|(f, n)| *f == file && n == name) {
            let mut members: Vec<(usize, String)> = chain.clone();
            members.sort();
            if !self.reported_cycles.insert(members) {
                return Some(service);
            }
            let cycle: Vec<String> = chain.iter().map(|(_, name)| format!("`{name}`")).collect();
            let hint =
                Some("a service cannot extend itself, directly or through others".to_string());
            self.error(
                extends.span,
                &field,
                format!(
                    "`extends` goes round in a circle: {} → `{name}`",
                    cycle.join(" → ")
                ),
                hint,
            );
            return Some(service);
        }
        let (base_name, base_file) = match &extends.value {
            Value::Scalar { .. } => (self.text(&extends, &field)?, None),
            Value::Mapping(_) => {
                let Some(base) = get(&extends, "service") else {
                    let hint =
                        Some("write `extends: {service: base, file: common.yaml}`".to_string());
                    self.error(
                        extends.span,
                        &field,
                        "`extends` needs `service`".into(),
                        hint,
                    );
                    return Some(service);
                };
                let base_name = self.text(base, &format!("{field}.service"))?;
                let base_file = match get(&extends, "file") {
                    Some(node) => {
                        Some((Rc::clone(node), self.text(node, &format!("{field}.file"))?))
                    }
                    None => None,
                };
                (base_name, base_file)
            }
            Value::Sequence(_) => {
                self.error(
                    extends.span,
                    &field,
                    "expected a service name or a map".into(),
                    None,
                );
                return Some(service);
            }
        };
        let base_index = match base_file {
            None => file,
            Some((node, written)) => {
                let path = self.path_of(&node, &written);
                if !path.is_file() {
                    let hint = Some(format!(
                        "the path is relative to `{}`",
                        self.sources[file].directory.display()
                    ));
                    self.error(
                        node.span,
                        &format!("{field}.file"),
                        format!("`{written}` not found"),
                        hint,
                    );
                    return Some(service);
                }
                let directory = path.parent().map(Path::to_path_buf).unwrap_or_default();
                let variables = Rc::clone(&self.sources[file].variables);
                self.read(&PathBuf::from(&written), &path, &directory, &variables)?
            }
        };
        chain.push((file, name.to_string()));
        let base = self.service(base_index, &base_name, chain);
        chain.pop();
        let Some(base) = base else {
            let known: Vec<String> = self.roots[base_index]
                .as_ref()
                .and_then(|root| {
                    get(root, "services").map(|services| {
                        entries(services)
                            .iter()
                            .filter_map(|(key, _)| key.scalar_text().map(str::to_string))
                            .collect()
                    })
                })
                .unwrap_or_default();
            let hint = suggest::did_you_mean(&base_name, known.iter().map(String::as_str))
                .map(|known| format!("did you mean `{known}`?"))
                .or_else(|| {
                    (!known.is_empty())
                        .then(|| format!("the services there are: {}", known.join(", ")))
                });
            let message = format!(
                "`extends` names service `{base_name}`, which `{}` does not define",
                self.sources[base_index].display.display()
            );
            self.error(extends.span, &field, message, hint);
            return Some(service);
        };
        merge(&base, &service, &["services", name])
    }

    /// The profiles a service lists (interpolated).
    fn profiles_of(&self, service: &Node) -> Vec<String> {
        match get(service, "profiles").map(|node| &node.value) {
            Some(Value::Sequence(items)) => items
                .iter()
                .filter_map(|item| {
                    let text = item.scalar_text()?;
                    let variables = &self.sources.get(item.span.file)?.variables;
                    Some(interpolate(text, variables).unwrap_or_else(|_| text.to_string()))
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Drops services none of whose `profiles` is active (`*` activates all); records them.
    fn apply_profiles(
        &mut self,
        root: &Rc<Node>,
        active: &mut BTreeSet<String>,
        disabled: &mut BTreeMap<String, Vec<String>>,
    ) -> Rc<Node> {
        let Some(services) = get(root, "services").cloned() else {
            return Rc::clone(root);
        };
        for (key, service) in entries(&services) {
            let named = key
                .scalar_text()
                .is_some_and(|name| self.targets.iter().any(|target| target == name));
            if named {
                active.extend(self.profiles_of(service));
            }
        }
        let mut kept = Vec::new();
        for (key, service) in entries(&services) {
            let profiles = self.profiles_of(service);
            let enabled = profiles.is_empty()
                || active.contains("*")
                || profiles.iter().any(|profile| active.contains(profile));
            if enabled {
                kept.push((Rc::clone(key), Rc::clone(service)));
            } else {
                disabled.insert(key.scalar_text().unwrap_or_default().to_string(), profiles);
            }
        }
        if disabled.is_empty() {
            return Rc::clone(root);
        }
        set(root, "services", with_entries(&services, kept))
    }

    /// `x-sandbox:` at the top and in each service, lifted to sandbox's bare keys; a key written both
    /// ways is an error, and so is a key `x-sandbox` cannot hold.
    fn lift_extensions(&mut self, root: &Rc<Node>) -> Rc<Node> {
        let mut root = self.lift(root, "", PROJECT_EXTENSION_KEYS);
        if let Some(services) = get(&root, "services").cloned() {
            let lifted: Entries = entries(&services)
                .iter()
                .map(|(key, service)| {
                    let field = format!("services.{}", key.scalar_text().unwrap_or_default());
                    (
                        Rc::clone(key),
                        self.lift(service, &field, SERVICE_EXTENSION_KEYS),
                    )
                })
                .collect();
            root = set(&root, "services", with_entries(&services, lifted));
        }
        root
    }

    fn lift(&mut self, node: &Rc<Node>, field: &str, allowed: &[&str]) -> Rc<Node> {
        let Some(extension) = get(node, EXTENSION).cloned() else {
            return Rc::clone(node);
        };
        let prefix = if field.is_empty() {
            EXTENSION.to_string()
        } else {
            format!("{field}.{EXTENSION}")
        };
        if !matches!(extension.value, Value::Mapping(_)) {
            if extension.scalar_text() != Some("") {
                self.error(
                    extension.span,
                    &prefix,
                    "expected a map of sandbox's keys".into(),
                    Some(format!("`x-sandbox` holds {}", suggest::list(allowed))),
                );
            }
            return without(node, EXTENSION);
        }
        let mut lifted = without(node, EXTENSION);
        for (key, value) in entries(&extension) {
            let name = key.scalar_text().unwrap_or_default();
            let key_field = format!("{prefix}.{name}");
            if !allowed.contains(&name) {
                let hint = suggest::did_you_mean(name, allowed.iter().copied())
                    .map(|known| format!("did you mean `{known}`?"))
                    .unwrap_or_else(|| {
                        format!("`x-sandbox` here holds {}", suggest::list(allowed))
                    });
                self.error(
                    key.span,
                    &key_field,
                    format!("unknown field `{name}` in `x-sandbox`"),
                    Some(hint),
                );
                continue;
            }
            if let Some(bare) = get(&lifted, name) {
                let hint = Some(format!(
                    "keep one: the bare `{name}` on line {}, or this one",
                    bare.span.line
                ));
                self.error(
                    key.span,
                    &key_field,
                    format!("`{name}` is given both bare and in `x-sandbox`"),
                    hint,
                );
                continue;
            }
            let mut with_key: Entries = entries(&lifted).to_vec();
            with_key.push((Rc::clone(key), Rc::clone(value)));
            lifted = with_entries(&lifted, with_key);
        }
        lifted
    }
}
