//! The top-level `volumes:` map: `name`, `driver`, `driver_opts`, `external` (also the older
//! `external: {name}`), `labels`; an entry may be empty.

use std::collections::BTreeMap;

use super::super::super::model::VolumeSpec;
use super::super::super::node::{Node, Value};
use super::super::check::{join, Checker};
use super::super::environment;
use super::is_volume_name;

const KEYS: &[&str] = &["name", "driver", "driver_opts", "external", "labels"];

/// Reads the top-level `volumes:` map.
pub fn read_declarations(checker: &mut Checker<'_>, node: &Node) -> BTreeMap<String, VolumeSpec> {
    let mut volumes = BTreeMap::new();
    if node.is_null() {
        return volumes;
    }
    let Some(entries) = checker.entries(node, "volumes", "a map of volume names") else {
        return volumes;
    };
    for entry in entries {
        let field = join("volumes", entry.key);
        if !is_volume_name(entry.key) {
            checker.error_with_hint(
                entry.key_node,
                &field,
                format!("invalid volume name `{}`", entry.key),
                "use letters, digits, `_`, `.` and `-`, starting with a letter or digit",
            );
            continue;
        }
        if let Some(spec) = read_declaration(checker, entry.key, entry.value, &field) {
            volumes.insert(entry.key.to_string(), spec);
        }
    }
    volumes
}

fn read_declaration(
    checker: &mut Checker<'_>,
    key: &str,
    node: &Node,
    field: &str,
) -> Option<VolumeSpec> {
    let mut spec = VolumeSpec::default();
    if node.is_null() {
        return Some(spec);
    }
    let what = format!("volume `{key}`");
    let fields = checker.fields(node, field, &what, KEYS)?;
    let key_field = |name: &str| join(field, name);
    spec.name = fields
        .get("name")
        .and_then(|value| checker.string(value, &key_field("name")));
    if let Some(value) = fields.get("external") {
        spec.external = read_external(checker, value, &key_field("external"), &mut spec.name);
    }
    spec.driver = fields
        .get("driver")
        .and_then(|value| checker.string(value, &key_field("driver")));
    if let Some(value) = fields.get("driver_opts") {
        spec.driver_opts = environment::read_string_map(
            checker,
            value,
            &key_field("driver_opts"),
            "a map of driver options",
        );
    }
    if let Some(value) = fields.get("labels") {
        spec.labels = environment::read_labels(checker, value, &key_field("labels"));
    }
    if spec.external {
        for other in ["driver", "driver_opts", "labels"] {
            if let Some(value) = fields.get(other) {
                checker.warning(
                    value,
                    &key_field(other),
                    format!("`{other}` of an external volume is accepted and has no effect"),
                    "an external volume is used as it is, never created (compose refuses the key)",
                );
            }
        }
    }
    if let Some(name) = &spec.name {
        if !is_volume_name(name) {
            let node = fields.get("name").unwrap_or(node);
            checker.error_with_hint(
                node,
                &key_field("name"),
                format!("invalid volume name `{name}`"),
                "use letters, digits, `_`, `.` and `-`, starting with a letter or digit",
            );
        }
    }
    Some(spec)
}

/// `external: true`, or the older `external: {name: NAME}` (sets the name).
fn read_external(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
    name: &mut Option<String>,
) -> bool {
    if !matches!(node.value, Value::Mapping(_)) {
        return checker.boolean(node, field).unwrap_or(false);
    }
    let Some(fields) = checker.fields(node, field, "`external`", &["name"]) else {
        return false;
    };
    if let Some(value) = fields.get("name") {
        let external_name = checker.string(value, &join(field, "name"));
        match (name.as_ref(), external_name) {
            (Some(written), Some(external)) if *written != external => checker.error_with_hint(
                value,
                &join(field, "name"),
                format!("`external.name` (`{external}`) disagrees with `name` (`{written}`)"),
                "keep only `name:`",
            ),
            (_, Some(external)) => *name = Some(external),
            _ => {}
        }
    }
    true
}
