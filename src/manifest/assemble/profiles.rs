//! Profiles: services none of whose profiles is active are left out (and remembered, so a
//! dependency on one gets a precise error); naming a service activates its profiles.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use super::super::interpolate::interpolate;
use super::super::node::{Node, Value};
use super::{entries, get, set, with_entries, Assembler};

impl Assembler {
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
    pub(super) fn apply_profiles(
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
}
