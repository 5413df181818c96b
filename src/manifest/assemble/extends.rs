//! `extends`: a service merged over the service it names (same file or another), chains followed,
//! cycles reported once.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::super::merge::merge;
use super::super::node::{Node, Value};
use super::super::suggest;
use super::{entries, get, scalar, set, with_entries, without, Assembler, MAX_DEPTH};

impl Assembler {
    /// Resolves every service's `extends` in one file's tree.
    pub(super) fn resolve_extends(&mut self, root: &Rc<Node>, file: usize) -> Rc<Node> {
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
}
