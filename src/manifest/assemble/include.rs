//! `include`: each included project read on its own (its folder, its `.env`) and its resources
//! copied in; a name defined on both sides is an error, as compose does not merge them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::super::files;
use super::super::merge::merge;
use super::super::node::{Entries, Node, Value};
use super::super::suggest;
use super::{entries, get, set, with_entries, Assembler, MAX_DEPTH};

/// Whether a service entry holds only sandbox's own keys (bare or under `x-sandbox`).
fn only_sandbox_keys(service: &Node) -> bool {
    matches!(service.value, Value::Mapping(_))
        && entries(service).iter().all(|(key, _)| {
            key.scalar_text().is_some_and(|key| {
                key == "x-sandbox" || super::SERVICE_EXTENSION_KEYS.contains(&key)
            })
        })
}

impl Assembler {
    /// Copies each included project's resources into `root`; a name defined on both sides is an
    /// error (compose does not merge them).
    pub(super) fn include(
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
                if let Some(position) = merged
                    .iter()
                    .position(|(ours, _)| ours.scalar_text() == Some(name))
                {
                    let (ours, our_value) = merged[position].clone();
                    if section == "services" && only_sandbox_keys(&our_value) {
                        // A sandbox.yaml that includes a compose file adds its own keys (`port`,
                        // `faults`, ...) to the included services.
                        let path = ["services", name];
                        if let Some(service) = merge(value, &our_value, &path) {
                            merged[position].1 = service;
                        }
                        continue;
                    }
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
}
