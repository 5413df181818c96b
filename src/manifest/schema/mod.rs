//! The schema: walks the spanned tree section by section and builds the model, collecting every error.
//!
//! Each section is a function over a node with the list of keys it knows (`TOP_LEVEL`,
//! `service::KEYS`, ...). To add a section, add its key to the list and a line that reads it.
//! Checks that span several services (dependencies, cycles, host ports, named volumes) live in
//! `validate`, which reads the [`ServiceDraft`]s made here.

mod build;
mod check;
mod container;
mod depends_on;
mod environment;
mod gateway;
mod healthcheck;
mod mesh;
mod mode;
mod networks;
mod ports;
mod secrets;
mod service;
pub mod smoke;
mod tracing;
mod traffic;
mod volumes;

use std::collections::BTreeMap;

pub use check::{Checker, Place};
pub use healthcheck::from_image as healthcheck_from_image;
pub use service::ServiceDraft;
pub use volumes::normalise as normalise_path;

use super::model::{Gateway, VolumeSpec};
use super::node::Node;

/// Keys of the top-level map.
const TOP_LEVEL: &[&str] = &[
    "name", "services", "volumes", "gateway", "tracing", "smoke", "secrets", "configs", "networks",
    "version", "models", "mesh",
];

/// Everything read from the file, before cross-service checks.
pub struct Draft {
    pub project: String,
    pub services: Vec<ServiceDraft>,
    pub volumes: BTreeMap<String, VolumeSpec>,
    pub smoke: Vec<smoke::CheckDraft>,
    pub gateway: Gateway,
    pub tracing: super::model::Tracing,
    pub networks: BTreeMap<String, super::model::NetworkSpec>,
    pub secrets: BTreeMap<String, super::model::FileObject>,
    pub configs: BTreeMap<String, super::model::FileObject>,
    /// Top-level `mesh:` (default on).
    pub mesh: bool,
}

/// Where the project name may come from, strongest first.
pub struct ProjectSources<'a> {
    /// `-p NAME`.
    pub flag: Option<&'a str>,
    /// `COMPOSE_PROJECT_NAME` (environment or `.env`).
    pub variable: Option<&'a str>,
    /// The manifest folder's name.
    pub folder: &'a str,
}

/// Reads the whole document. `None` when the top level is unusable (errors are in the checker).
pub fn read(
    checker: &mut Checker<'_>,
    root: Option<&Node>,
    sources: &ProjectSources<'_>,
) -> Option<Draft> {
    let Some(root) = root else {
        checker.error_at(
            None,
            "",
            "the manifest is empty",
            Some("add a `services:` map, or run `sandbox init` to write a starting point".into()),
        );
        return None;
    };
    let fields = checker.fields(root, "", "the manifest", TOP_LEVEL)?;
    if let Some(node) = fields.get("version") {
        checker.warning(
            node,
            "version",
            "`version` is obsolete and ignored",
            "the Compose Specification reads every file the same way; remove the line to silence this",
        );
    }
    if let Some(node) = fields.get("models") {
        checker.warning(
            node,
            "models",
            "`models` is accepted and has no effect",
            "sandbox does not run AI models (Docker Model Runner) yet",
        );
    }
    let project = project_name(checker, fields.get("name"), sources).unwrap_or_default();
    let volumes = match fields.get("volumes") {
        Some(node) => volumes::read_declarations(checker, node),
        None => BTreeMap::new(),
    };
    let declared_networks = fields
        .get("networks")
        .map(|node| networks::read(checker, node, &project))
        .unwrap_or_default();
    let mut services = match fields.get("services") {
        Some(node) => read_services(checker, node, &project),
        None => {
            checker.error_at(
                Some(root.span),
                "services",
                "missing field `services`",
                Some("add `services:` with at least one service".into()),
            );
            Vec::new()
        }
    };
    depends_on::drop_missing_optional(checker, &mut services);
    depends_on::check_volumes_from(checker, &mut services);
    let secrets = fields
        .get("secrets")
        .map(|node| secrets::read_objects(checker, node, secrets::Family::Secret))
        .unwrap_or_default();
    let configs = fields
        .get("configs")
        .map(|node| secrets::read_objects(checker, node, secrets::Family::Config))
        .unwrap_or_default();
    secrets::check_grants(checker, &services, &secrets, &configs);
    let (secrets, configs) = (secrets.objects, configs.objects);
    let networks = networks::resolve(checker, &mut services, declared_networks, &project);
    let names: Vec<&str> = services
        .iter()
        .map(|draft| draft.service.name.as_str())
        .collect();
    let gateway = match fields.get("gateway") {
        Some(node) => gateway::read(checker, node, &names),
        None => Gateway::default(),
    };
    let tracing = match fields.get("tracing") {
        Some(node) => tracing::read(checker, node),
        None => super::model::Tracing::default(),
    };
    let smoke = match fields.get("smoke") {
        Some(node) => smoke::read(checker, node),
        None => Vec::new(),
    };
    let project_mesh = fields
        .get("mesh")
        .and_then(|node| Some((node, mesh::read(checker, node, "mesh")?)));
    let project_off = match project_mesh {
        Some((node, false)) => Some(Place {
            span: node.span,
            field: "mesh".to_string(),
        }),
        _ => None,
    };
    mesh::check_services(checker, &services, project_off.as_ref());
    Some(Draft {
        project,
        services,
        volumes,
        smoke,
        gateway,
        tracing,
        networks,
        secrets,
        configs,
        mesh: project_off.is_none(),
    })
}

fn read_services(checker: &mut Checker<'_>, node: &Node, project: &str) -> Vec<ServiceDraft> {
    let Some(entries) = checker.entries(node, "services", "a map of services") else {
        return Vec::new();
    };
    if entries.is_empty() {
        checker.error_with_hint(
            node,
            "services",
            "`services` is empty",
            "add at least one service, like `web: {image: nginx:1.27}`",
        );
    }
    entries
        .iter()
        .filter_map(|entry| service::read(checker, entry, project))
        .collect()
}

/// `-p`, then `name:`, then the folder's name; normalised to lowercase `[a-z0-9_-]`.
fn project_name(
    checker: &mut Checker<'_>,
    node: Option<&Node>,
    sources: &ProjectSources<'_>,
) -> Option<String> {
    let written = node.and_then(|node| checker.string(node, "name"));
    let (raw, source) = match (sources.flag.or(sources.variable), &written) {
        (Some(flag), _) if sources.flag.is_some() => (flag.to_string(), "-p"),
        (Some(variable), _) => (variable.to_string(), "COMPOSE_PROJECT_NAME"),
        (None, Some(name)) => (name.clone(), "name"),
        (None, None) => (sources.folder.to_string(), "folder"),
    };
    let project = normalise_project(&raw);
    if project.is_empty() {
        let (span, field, hint) = match source {
            "-p" => (
                None,
                "",
                "pass a name like `-p shop` (letters, digits, `_`, `-`)",
            ),
            "name" => (
                node.map(|node| node.span),
                "name",
                "use letters, digits, `_` and `-`, starting with a letter or digit",
            ),
            "COMPOSE_PROJECT_NAME" => (
                None,
                "",
                "set `COMPOSE_PROJECT_NAME` to letters, digits, `_` and `-`",
            ),
            _ => (None, "", "set `name:` in the manifest or pass `-p NAME`"),
        };
        let message = format!("`{raw}` cannot be used as a project name");
        checker.error_at(span, field, message, Some(hint.to_string()));
        return None;
    }
    Some(project)
}

/// `My App!` → `myapp`: lowercase, only `[a-z0-9_-]`, starting with a letter or digit.
pub fn normalise_project(raw: &str) -> String {
    let kept: String = raw
        .to_lowercase()
        .chars()
        .filter(|character| {
            character.is_ascii_lowercase()
                || character.is_ascii_digit()
                || matches!(character, '_' | '-')
        })
        .collect();
    kept.trim_start_matches(['_', '-']).to_string()
}

#[cfg(test)]
mod tests {
    use super::normalise_project;

    #[test]
    fn project_names_are_normalised() {
        assert_eq!(normalise_project("My App!"), "myapp");
        assert_eq!(normalise_project("_shop-1"), "shop-1");
        assert_eq!(normalise_project("déjà"), "dj");
        assert_eq!(normalise_project("--"), "");
    }
}
