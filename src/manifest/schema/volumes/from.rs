//! `volumes_from:`: `service`, `service:ro`, `container:name`, `container:name:rw`.

use super::super::super::model::{VolumesFrom, VolumesFromSource};
use super::super::super::node::{Node, Value};
use super::super::check::{Checker, Place};

/// Reads `volumes_from:`: `service`, `service:ro`, `container:name`, `container:name:rw`. Services
/// come back with their place (checked to exist across services).
pub fn read_volumes_from(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
) -> Vec<(VolumesFrom, Place)> {
    let Some(items) = checker.strings(node, field, false) else {
        return Vec::new();
    };
    let Value::Sequence(nodes) = &node.value else {
        return Vec::new();
    };
    let mut entries = Vec::new();
    for ((index, text), item) in items.iter().enumerate().zip(nodes) {
        let item_field = format!("{field}[{index}]");
        match parse_volumes_from(text) {
            Ok(entry) => entries.push((
                entry,
                Place {
                    span: item.span,
                    field: item_field,
                },
            )),
            Err(message) => checker.error_with_hint(
                item,
                &item_field,
                message,
                "write `service`, `service:ro`, `container:name` or `container:name:ro`",
            ),
        }
    }
    entries
}

/// Parses one `volumes_from:` entry.
pub fn parse_volumes_from(text: &str) -> Result<VolumesFrom, String> {
    let (source, rest) = match text.strip_prefix("container:") {
        Some(rest) => {
            let (name, mode) = rest.split_once(':').unwrap_or((rest, ""));
            (VolumesFromSource::Container(name.to_string()), mode)
        }
        None => {
            let (name, mode) = text.split_once(':').unwrap_or((text, ""));
            (VolumesFromSource::Service(name.to_string()), mode)
        }
    };
    let name = match &source {
        VolumesFromSource::Service(name) | VolumesFromSource::Container(name) => name,
    };
    if name.is_empty() {
        return Err(format!("`{text}` names no service or container"));
    }
    let read_only = match rest {
        "" | "rw" => false,
        "ro" => true,
        other => {
            return Err(format!(
                "unknown mode `{other}` in `{text}`: expected `ro` or `rw`"
            ))
        }
    };
    Ok(VolumesFrom { source, read_only })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_from_forms() {
        let entry = |source, read_only| VolumesFrom { source, read_only };
        let service = |name: &str| VolumesFromSource::Service(name.into());
        let container = |name: &str| VolumesFromSource::Container(name.into());
        assert_eq!(parse_volumes_from("db"), Ok(entry(service("db"), false)));
        assert_eq!(parse_volumes_from("db:ro"), Ok(entry(service("db"), true)));
        assert_eq!(
            parse_volumes_from("container:old"),
            Ok(entry(container("old"), false))
        );
        assert_eq!(
            parse_volumes_from("container:old:rw"),
            Ok(entry(container("old"), false))
        );
        for text in ["", ":ro", "db:rx", "container:", "container:x:y"] {
            assert!(parse_volumes_from(text).is_err(), "{text:?}");
        }
    }
}
