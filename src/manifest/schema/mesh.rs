//! `mesh:`: the transparent mesh switched off for the whole project (top level) or one service.
//! On by default; written bare in `sandbox.yaml` or under `x-sandbox` in a compose file.

use super::super::model::NetworkMode;
use super::super::node::Node;
use super::check::{Checker, Kind, Place};
use super::ServiceDraft;

const HINT: &str = "write `mesh: false` to leave it out of the mesh (callers then reach it directly), or leave the key out: the mesh is on by default";

/// A `mesh:` value: `true` or `false`, with a hint when it is anything else.
pub fn read(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<bool> {
    let scalar = checker.scalar(node, field, "`true` or `false`")?;
    match (scalar.kind, scalar.text.as_str()) {
        (Kind::Bool(value), _) => Some(value),
        (Kind::Text, "true") => Some(true),
        (Kind::Text, "false") => Some(false),
        _ => {
            let found = if scalar.kind == Kind::Null {
                "nothing".to_string()
            } else {
                format!("`{}`", scalar.text)
            };
            checker.error_with_hint(
                node,
                field,
                format!("expected `true` or `false` for `mesh`, found {found}"),
                HINT,
            );
            None
        }
    }
}

/// Where a service writes `mesh: true`, so a setting that cannot take effect is pointed out.
pub fn explicit_on(checker: &mut Checker<'_>, node: &Node, field: &str) -> (bool, Option<Place>) {
    match read(checker, node, field) {
        Some(true) => (
            true,
            Some(Place {
                span: node.span,
                field: field.to_string(),
            }),
        ),
        Some(false) => (false, None),
        None => (true, None),
    }
}

/// Warns about `mesh: true` on a service that cannot be meshed: the project turns the mesh off,
/// or the service is `external` or has its own network stack.
pub fn check_services(
    checker: &mut Checker<'_>,
    services: &[ServiceDraft],
    project_mesh: Option<&Place>,
) {
    for draft in services {
        let Some(place) = &draft.mesh_on else {
            continue;
        };
        let service = &draft.service;
        let name = &service.name;
        let why = if let Some(project) = project_mesh {
            Some((
                format!("`mesh: true` on service `{name}` has no effect: the project turns the mesh off"),
                format!("the top-level `mesh: false` (line {}) wins; remove it to mesh the services that want it, and write `mesh: false` on the others", project.span.line),
            ))
        } else if service.external.is_some() {
            Some((
                format!("`mesh: true` on service `{name}` has no effect: it is `external`"),
                "an external service is a process on the host; the proxy reaches it at its `external` address".to_string(),
            ))
        } else {
            match &service.network_mode {
                NetworkMode::Networks | NetworkMode::Bridge => None,
                mode => Some((
                    format!("`mesh: true` on service `{name}` has no effect with `network_mode: {mode}`"),
                    "only services on networks (or `bridge`) are meshed: their names must be given to a forwarder".to_string(),
                )),
            }
        };
        if let Some((message, hint)) = why {
            checker.warning_at(Some(place.span), &place.field, message, hint);
        }
    }
}
