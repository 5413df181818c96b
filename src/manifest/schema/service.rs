//! One entry of `services:`.

use std::collections::BTreeMap;

use super::super::model::{Build, DependencyCondition, RestartPolicy, Service};
use super::super::node::{Node, Value};
use super::super::words;
use super::check::{describe, join, Checker, Entry, Kind, Place};
use super::environment::Bare;
use super::volumes::normalise;
use super::{environment, healthcheck, ports, volumes};

/// Keys of a service map.
const KEYS: &[&str] = &[
    "image",
    "build",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "port",
    "ports",
    "volumes",
    "depends_on",
    "healthcheck",
    "replicas",
    "scale",
    "deploy",
    "restart",
    "labels",
    "working_dir",
    "user",
    "external",
    "faults",
    "circuit_breaker",
    "outlier_detection",
    "load_balancer",
    "http2",
    "timeout",
    "retries",
];
const BUILD_KEYS: &[&str] = &["context", "dockerfile", "args", "target"];
const CONDITION_KEYS: &[&str] = &["condition"];
const RESTART_HINT: &str = "use `no`, `always`, `unless-stopped`, `on-failure` or `on-failure:3`";

/// A service with the places that checks across services point at.
pub struct ServiceDraft {
    pub service: Service,
    pub dependencies: BTreeMap<String, DependencyPlace>,
    /// Parallel to `service.ports`.
    pub ports: Vec<Place>,
    /// Named volumes the service mounts.
    pub named_volumes: Vec<(String, Place)>,
}

/// Where a dependency is named, and where its condition is (if written).
pub struct DependencyPlace {
    pub place: Place,
    pub condition: Option<Place>,
}

/// Reads one service; `None` when it is not a map (errors are recorded either way).
pub fn read(checker: &mut Checker<'_>, entry: &Entry<'_>, project: &str) -> Option<ServiceDraft> {
    let name = entry.key;
    let field = join("services", name);
    check_name(checker, entry, &field);
    let what = format!("service `{name}`");
    let fields = checker.fields(entry.value, &field, &what, KEYS)?;
    let key = |key: &str| join(&field, key);

    let image = fields
        .get("image")
        .and_then(|node| checker.string(node, &key("image")));
    let build = fields
        .get("build")
        .and_then(|node| read_build(checker, node, &key("build")));
    let external = fields
        .get("external")
        .and_then(|node| read_external(checker, node, &key("external")));
    if let (Some(_), Some(node)) = (&external, fields.get("image").or(fields.get("build"))) {
        checker.error_with_hint(
            node,
            &field,
            format!("service `{name}` is `external` and also has an image or build"),
            "an external service is a process on the host; remove `image`/`build`, or `external`",
        );
    }
    let image = match (image, &build, fields.get("build")) {
        (Some(image), _, _) => image,
        (None, None, _) if external.is_some() => String::new(),
        (None, Some(_), _) => format!("{project}-{name}:latest"),
        (None, None, Some(_)) => String::new(), // the build error is already reported
        (None, None, None) => {
            if fields.get("image").is_none() {
                checker.error_with_hint(
                    entry.key_node,
                    &field,
                    format!("service `{name}` has neither `image` nor `build`"),
                    "add `image: nginx:1.27` to run an image, `build: ./folder` to build one, or `external: http://127.0.0.1:3000` for a process on the host",
                );
            }
            String::new()
        }
    };

    let mut environment = BTreeMap::new();
    if let Some(node) = fields.get("env_file") {
        environment = environment::read_env_files(checker, node, &key("env_file"));
    }
    if let Some(node) = fields.get("environment") {
        environment.extend(environment::read_pairs(
            checker,
            node,
            &key("environment"),
            Bare::FromEnvironment,
        ));
    }
    let port = fields
        .get("port")
        .and_then(|node| ports::read_port_number(checker, node, &key("port")));
    let (ports, port_places) = fields
        .get("ports")
        .map(|node| ports::read_ports(checker, node, &key("ports")))
        .unwrap_or_default()
        .into_iter()
        .unzip();
    let mut named_volumes = Vec::new();
    let mut mounts = Vec::new();
    for (mount, place) in fields
        .get("volumes")
        .map(|node| volumes::read_mounts(checker, node, &key("volumes")))
        .unwrap_or_default()
    {
        if let super::super::model::VolumeMount::Named { name, .. } = &mount {
            named_volumes.push((name.clone(), place));
        }
        mounts.push(mount);
    }
    let healthcheck = match fields.get("healthcheck") {
        Some(node) => {
            match healthcheck::read(checker, node, &key("healthcheck"), name, port.is_some()) {
                healthcheck::Read::Check(check) => Some(check),
                healthcheck::Read::Disabled | healthcheck::Read::Invalid => None,
            }
        }
        None => None,
    };
    let (depends_on, dependencies) = fields
        .get("depends_on")
        .map(|node| read_depends_on(checker, node, &key("depends_on")))
        .unwrap_or_default();

    let service = Service {
        name: name.to_string(),
        image,
        build,
        command: fields
            .get("command")
            .and_then(|node| read_command(checker, node, &key("command"))),
        entrypoint: fields
            .get("entrypoint")
            .and_then(|node| read_command(checker, node, &key("entrypoint"))),
        environment,
        port,
        ports,
        volumes: mounts,
        depends_on,
        healthcheck,
        replicas: read_replicas(checker, &fields, &field),
        restart: fields
            .get("restart")
            .and_then(|node| read_restart(checker, node, &key("restart")))
            .unwrap_or(RestartPolicy::No),
        labels: fields
            .get("labels")
            .map(|node| environment::read_labels(checker, node, &key("labels")))
            .unwrap_or_default(),
        working_dir: fields
            .get("working_dir")
            .and_then(|node| read_working_dir(checker, node, &key("working_dir"))),
        user: fields
            .get("user")
            .and_then(|node| checker.string(node, &key("user"))),
        external,
        traffic: super::traffic::read_policy(checker, &fields, &field),
    };
    Some(ServiceDraft {
        service,
        dependencies,
        ports: port_places,
        named_volumes,
    })
}

/// `external: http://host:port`: plain HTTP, a host and a port, no path.
fn read_external(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<String> {
    let url = checker.string(node, field)?;
    let authority = url
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'));
    let valid = authority.is_some_and(|authority| {
        !authority.contains('/')
            && authority.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|port| port > 0)
            })
    });
    if !valid {
        checker.error_with_hint(
            node,
            field,
            format!("`{url}` is not an `http://host:port` address"),
            "write the address the service listens on, like `external: http://127.0.0.1:3000`",
        );
        return None;
    }
    Some(url.trim_end_matches('/').to_string())
}

/// Service names become DNS aliases and parts of variable names: `[a-z0-9][a-z0-9_-]*`.
pub fn is_service_name(name: &str) -> bool {
    let lowercase_or_digit =
        |character: char| character.is_ascii_lowercase() || character.is_ascii_digit();
    let mut characters = name.chars();
    characters.next().is_some_and(lowercase_or_digit)
        && characters
            .all(|character| lowercase_or_digit(character) || matches!(character, '_' | '-'))
}

fn check_name(checker: &mut Checker<'_>, entry: &Entry<'_>, field: &str) {
    if is_service_name(entry.key) {
        return;
    }
    let suggestion: String = entry
        .key
        .to_lowercase()
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || character == '_' {
                character
            } else {
                '-'
            }
        })
        .collect::<String>()
        .trim_start_matches(['-', '_'])
        .to_string();
    let example = if is_service_name(&suggestion) {
        suggestion
    } else {
        "my-service".to_string()
    };
    checker.error_with_hint(
        entry.key_node,
        field,
        format!("invalid service name `{}`", entry.key),
        format!("service names become DNS names: use lowercase letters, digits, `-` and `_`, starting with a letter or digit, like `{example}`"),
    );
}

fn read_build(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<Build> {
    let (context_node, context, dockerfile, args, target) = match &node.value {
        Value::Mapping(_) => {
            let fields = checker.fields(node, field, "`build`", BUILD_KEYS)?;
            let context_node = fields.get("context").unwrap_or(node);
            let context = match fields.get("context") {
                Some(context) => checker.string(context, &join(field, "context"))?,
                None => ".".to_string(),
            };
            let dockerfile = fields
                .get("dockerfile")
                .and_then(|value| checker.string(value, &join(field, "dockerfile")));
            let args = fields.get("args").map(|value| {
                environment::read_pairs(checker, value, &join(field, "args"), Bare::FromEnvironment)
            });
            let target = fields
                .get("target")
                .and_then(|value| checker.string(value, &join(field, "target")));
            (
                context_node,
                context,
                dockerfile,
                args.unwrap_or_default(),
                target,
            )
        }
        _ => (
            node,
            checker.string(node, field)?,
            None,
            BTreeMap::new(),
            None,
        ),
    };
    let resolved = normalise(&checker.directory.join(&context));
    if !resolved.is_dir() {
        checker.error_with_hint(
            context_node,
            field,
            format!("build context `{context}` is not a folder"),
            "the context path is relative to the manifest's folder",
        );
        return None;
    }
    Some(Build {
        context: resolved,
        dockerfile: dockerfile.unwrap_or_else(|| "Dockerfile".to_string()),
        args,
        target,
    })
}

/// A string split like a shell would, or a list of strings.
fn read_command(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<Vec<String>> {
    if let Value::Sequence(_) = node.value {
        return checker.strings(node, field, false);
    }
    let text = checker.string(node, field)?;
    let words = words::split(&text);
    if words.is_none() {
        checker.error_with_hint(
            node,
            field,
            format!("unclosed quote in `{text}`"),
            "close the quote, or write the command as a list",
        );
    }
    words
}

fn read_depends_on(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
) -> (
    BTreeMap<String, DependencyCondition>,
    BTreeMap<String, DependencyPlace>,
) {
    let mut conditions = BTreeMap::new();
    let mut places = BTreeMap::new();
    match &node.value {
        Value::Sequence(items) => {
            for (index, item) in items.iter().enumerate() {
                let item_field = format!("{field}[{index}]");
                let Some(name) = checker.string(item, &item_field) else {
                    continue;
                };
                let place = Place {
                    span: item.span,
                    field: item_field,
                };
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
                let (condition, condition_place) =
                    read_condition(checker, entry.value, &entry_field);
                let place = Place {
                    span: entry.key_node.span,
                    field: entry_field,
                };
                conditions.insert(entry.key.to_string(), condition);
                places.insert(
                    entry.key.to_string(),
                    DependencyPlace {
                        place,
                        condition: condition_place,
                    },
                );
            }
        }
        Value::Scalar { .. } => {
            let found = describe(node);
            checker.error_with_hint(
                node,
                field,
                format!("expected a list of service names or a map, found {found}"),
                "write `depends_on: [item]`, or `depends_on: {item: {condition: healthy}}`",
            );
        }
    }
    (conditions, places)
}

fn read_condition(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
) -> (DependencyCondition, Option<Place>) {
    if node.scalar_text().is_some_and(str::is_empty) {
        return (DependencyCondition::Started, None);
    }
    let Some(fields) = checker.fields(node, field, "a dependency", CONDITION_KEYS) else {
        return (DependencyCondition::Started, None);
    };
    let Some(condition_node) = fields.get("condition") else {
        return (DependencyCondition::Started, None);
    };
    let condition_field = join(field, "condition");
    let place = Place {
        span: condition_node.span,
        field: condition_field.clone(),
    };
    let condition = match checker.string(condition_node, &condition_field).as_deref() {
        Some("started" | "service_started") => DependencyCondition::Started,
        Some("healthy" | "service_healthy") => DependencyCondition::Healthy,
        Some("completed" | "service_completed_successfully") => DependencyCondition::Completed,
        Some(other) => {
            checker.error_with_hint(
                condition_node,
                &condition_field,
                format!("unknown condition `{other}`"),
                "use `started`, `healthy` or `completed`",
            );
            DependencyCondition::Started
        }
        None => DependencyCondition::Started,
    };
    (condition, Some(place))
}

/// `replicas`, its alias `scale`, and `deploy.replicas`; they must agree.
fn read_replicas(checker: &mut Checker<'_>, fields: &super::check::Fields<'_>, field: &str) -> u32 {
    let mut counts: Vec<(u32, &Node, String)> = Vec::new();
    for key in ["replicas", "scale"] {
        if let Some(node) = fields.get(key) {
            let key_field = join(field, key);
            if let Some(count) = read_count(checker, node, &key_field) {
                counts.push((count, node, key_field));
            }
        }
    }
    if let Some(deploy) = fields.get("deploy") {
        let deploy_field = join(field, "deploy");
        if let Some(deploy_fields) =
            checker.fields(deploy, &deploy_field, "`deploy`", &["replicas"])
        {
            if let Some(node) = deploy_fields.get("replicas") {
                let key_field = join(&deploy_field, "replicas");
                if let Some(count) = read_count(checker, node, &key_field) {
                    counts.push((count, node, key_field));
                }
            }
        }
    }
    match counts.as_slice() {
        [] => 1,
        [(first, first_node, first_field), rest @ ..] => {
            if let Some((other, node, other_field)) = rest.iter().find(|(count, ..)| count != first)
            {
                let message =
                    format!("`{other_field}` ({other}) disagrees with `{first_field}` ({first})");
                let hint = format!("keep only one of them (line {})", first_node.span.line);
                checker.error_with_hint(node, other_field, message, hint);
            }
            *first
        }
    }
}

fn read_count(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<u32> {
    let count = checker.integer_in(node, field, 0..=1000)?;
    u32::try_from(count).ok()
}

fn read_restart(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<RestartPolicy> {
    let scalar = checker.scalar(node, field, "a restart policy")?;
    let policy = match (scalar.kind, scalar.text.as_str()) {
        (Kind::Bool(false), _) | (Kind::Text, "no") => Some(RestartPolicy::No),
        (Kind::Text, "always") => Some(RestartPolicy::Always),
        (Kind::Text, "unless-stopped") => Some(RestartPolicy::UnlessStopped),
        (Kind::Text, "on-failure") => Some(RestartPolicy::OnFailure { max_retries: None }),
        (Kind::Text, text) => text
            .strip_prefix("on-failure:")
            .and_then(|count| count.parse().ok())
            .map(|count| RestartPolicy::OnFailure {
                max_retries: Some(count),
            }),
        _ => None,
    };
    if policy.is_none() {
        checker.error_with_hint(
            node,
            field,
            format!("unknown restart policy `{}`", scalar.text),
            RESTART_HINT,
        );
    }
    policy
}

fn read_working_dir(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<String> {
    let directory = checker.string(node, field)?;
    if !directory.starts_with('/') {
        checker.error(
            node,
            field,
            format!("`working_dir` must be an absolute path, found `{directory}`"),
        );
        return None;
    }
    Some(directory)
}

#[cfg(test)]
mod tests {
    use super::is_service_name;

    #[test]
    fn service_names() {
        for name in ["user", "item-2", "a_b", "9lives"] {
            assert!(is_service_name(name), "{name}");
        }
        for name in ["User", "-a", "_a", "a.b", "", "a b", "é"] {
            assert!(!is_service_name(name), "{name}");
        }
    }
}
