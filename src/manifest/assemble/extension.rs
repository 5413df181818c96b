//! `x-sandbox`: sandbox's keys written as a compose extension, lifted to where the bare keys sit.

use std::rc::Rc;

use super::super::node::{Entries, Node, Value};
use super::super::suggest;
use super::{
    entries, get, set, with_entries, without, Assembler, EXTENSION, PROJECT_EXTENSION_KEYS,
    SERVICE_EXTENSION_KEYS,
};

impl Assembler {
    /// `x-sandbox:` at the top and in each service, lifted to sandbox's bare keys; a key written both
    /// ways is an error, and so is a key `x-sandbox` cannot hold.
    pub(super) fn lift_extensions(&mut self, root: &Rc<Node>) -> Rc<Node> {
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
