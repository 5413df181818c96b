//! A service's `depends_on:`: a list of names, or a map of `{condition, required, restart}` with
//! compose's condition names (`service_started`, `service_healthy`,
//! `service_completed_successfully`; sandbox's short `started`/`healthy`/`completed` too).

use std::collections::{BTreeMap, BTreeSet};

use super::super::model::{DependencyCondition, VolumesFromSource};
use super::super::node::{Node, Value};
use super::super::suggest;
use super::check::{describe, join, Checker, Place};
use super::service::{DependencyPlace, ServiceDraft};

const KEYS: &[&str] = &["condition", "required", "restart"];

/// `depends_on:` as a list of names or a map of `{condition, required, restart}`.
pub fn read(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
) -> (
    BTreeMap<String, DependencyCondition>,
    BTreeMap<String, DependencyPlace>,
    BTreeSet<String>,
) {
    let mut conditions = BTreeMap::new();
    let mut places = BTreeMap::new();
    let mut optional = BTreeSet::new();
    match &node.value {
        Value::Sequence(items) => {
            for (name, _, place) in checker.listed(items, field) {
                conditions.insert(name.clone(), DependencyCondition::Started);
                places.insert(
                    name,
                    DependencyPlace {
                        place,
                        condition: None,
                    },
                );
            }
        }
        Value::Mapping(_) => {
            for entry in checker.entries(node, field, "a map").unwrap_or_default() {
                let entry_field = join(field, entry.key);
                let long = read_dependency(checker, entry.value, &entry_field, entry.key);
                let place = Place {
                    span: entry.key_node.span,
                    field: entry_field,
                };
                conditions.insert(entry.key.to_string(), long.condition);
                places.insert(
                    entry.key.to_string(),
                    DependencyPlace {
                        place,
                        condition: long.condition_place,
                    },
                );
                if !long.required {
                    optional.insert(entry.key.to_string());
                }
            }
        }
        Value::Scalar { .. } => {
            let found = describe(node);
            checker.error_with_hint(
                node,
                field,
                format!("expected a list of service names or a map, found {found}"),
                "write `depends_on: [item]`, or `depends_on: {item: {condition: service_healthy}}`",
            );
        }
    }
    (conditions, places, optional)
}

/// One dependency of the long form.
struct LongDependency {
    condition: DependencyCondition,
    condition_place: Option<Place>,
    required: bool,
}

fn read_dependency(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
    dependency: &str,
) -> LongDependency {
    let mut long = LongDependency {
        condition: DependencyCondition::Started,
        condition_place: None,
        required: true,
    };
    if node.is_null() {
        return long;
    }
    let Some(fields) = checker.fields(node, field, "a dependency", KEYS) else {
        return long;
    };
    if let Some(required) = fields.get("required") {
        long.required = checker
            .boolean(required, &join(field, "required"))
            .unwrap_or(true);
    }
    if let Some(restart) = fields.get("restart") {
        let restart_field = join(field, "restart");
        if checker.boolean(restart, &restart_field) == Some(true) {
            checker.warning(
                restart,
                &restart_field,
                "`restart: true` is accepted and has no effect",
                format!("compose restarts this service when a compose command restarts or recreates `{dependency}`; sandbox recreates a service only when its own configuration changes"),
            );
        }
    }
    let Some(condition_node) = fields.get("condition") else {
        return long;
    };
    let condition_field = join(field, "condition");
    long.condition_place = Some(Place {
        span: condition_node.span,
        field: condition_field.clone(),
    });
    long.condition = match checker.string(condition_node, &condition_field).as_deref() {
        Some("started" | "service_started") => DependencyCondition::Started,
        Some("healthy" | "service_healthy") => DependencyCondition::Healthy,
        Some("completed" | "service_completed_successfully") => DependencyCondition::Completed,
        Some(other) => {
            checker.error_with_hint(
                condition_node,
                &condition_field,
                format!("unknown condition `{other}`"),
                "use `service_started`, `service_healthy` or `service_completed_successfully`",
            );
            DependencyCondition::Started
        }
        None => DependencyCondition::Started,
    };
    long
}

/// Drops `required: false` dependencies on services that do not exist, with a warning (compose
/// starts the service without them).
pub fn drop_missing_optional(checker: &mut Checker<'_>, services: &mut [ServiceDraft]) {
    let names: BTreeSet<String> = services
        .iter()
        .map(|draft| draft.service.name.clone())
        .collect();
    for draft in services.iter_mut() {
        let missing: Vec<String> = draft
            .dependencies
            .iter()
            .filter(|(name, _)| {
                draft.optional_dependencies.contains(*name) && !names.contains(*name)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in missing {
            if let Some(place) = draft.dependencies.remove(&name) {
                let warning = super::super::error::ManifestError {
                    file: checker.file.clone(),
                    line: Some(place.place.span.line),
                    column: Some(place.place.span.column),
                    field: place.place.field,
                    message: format!(
                        "optional dependency `{name}` of service `{}` is not a service; it is skipped",
                        draft.service.name
                    ),
                    hint: Some("`required: false` lets the service start without it".to_string()),
                };
                checker.warnings.push(warning);
            }
            draft.service.depends_on.remove(&name);
        }
    }
}

/// `volumes_from:` entries naming a service that does not exist: reported here with their own
/// words, and dropped from the dependencies so the dependency check does not report them again.
pub fn check_volumes_from(checker: &mut Checker<'_>, services: &mut [ServiceDraft]) {
    let names: Vec<String> = services
        .iter()
        .map(|draft| draft.service.name.clone())
        .collect();
    for draft in services.iter_mut() {
        let unknown: Vec<String> = draft
            .service
            .volumes_from
            .iter()
            .filter_map(|entry| match &entry.source {
                VolumesFromSource::Service(name) if !names.contains(name) => Some(name.clone()),
                _ => None,
            })
            .collect();
        for name in unknown {
            let Some(place) = draft.dependencies.get(&name) else {
                continue;
            };
            if !place.place.field.contains(".volumes_from[") {
                continue; // also in `depends_on`: the dependency check reports it there
            }
            let hint = match suggest::did_you_mean(&name, names.iter().map(String::as_str)) {
                Some(suggestion) => format!("did you mean `{suggestion}`?"),
                None => {
                    format!("name a service of this file, or a container as `container:{name}`")
                }
            };
            let message = format!(
                "service `{}` takes the volumes of `{name}`, which is not a service",
                draft.service.name
            );
            checker.error_at(
                Some(place.place.span),
                &place.place.field,
                message,
                Some(hint),
            );
            draft.dependencies.remove(&name);
            draft.service.depends_on.remove(&name);
        }
    }
}
