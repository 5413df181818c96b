//! One entry of `services:`.

use std::collections::BTreeMap;

use super::super::model::{
    DependencyCondition, FileGrant, PortSource, RestartPolicy, Service, VolumesFromSource,
};
use super::super::node::{Node, Value};
use super::super::words;
use super::check::{join, Checker, Entry, Kind, Place};
use super::environment::Bare;
use super::{build, depends_on, environment, healthcheck, ports, volumes};

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
    "expose",
    "volumes",
    "volumes_from",
    "pull_policy",
    "depends_on",
    "healthcheck",
    "replicas",
    "scale",
    "deploy",
    "restart",
    "labels",
    "label_file",
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
    "secrets",
    "configs",
    "networks",
    "network_mode",
    "links",
    "external_links",
    "mesh",
    // The container's own configuration: `super::container`.
    "container_name",
    "hostname",
    "domainname",
    "mac_address",
    "cap_add",
    "cap_drop",
    "privileged",
    "read_only",
    "security_opt",
    "group_add",
    "init",
    "ipc",
    "pid",
    "shm_size",
    "ulimits",
    "sysctls",
    "stop_signal",
    "stop_grace_period",
    "tty",
    "stdin_open",
    "logging",
    "platform",
    "runtime",
    "devices",
    "mem_limit",
    "memswap_limit",
    "mem_reservation",
    "cpus",
    "cpu_shares",
    "cpuset",
    "oom_score_adj",
    "oom_kill_disable",
    "pids_limit",
    "extra_hosts",
    "dns",
    "dns_search",
    "dns_opt",
    "tmpfs",
    "profiles",
    "annotations",
    "cgroup",
    "cgroup_parent",
    "uts",
    "userns_mode",
    "storage_opt",
    "device_cgroup_rules",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "mem_swappiness",
    "blkio_config",
    "gpus",
    // Accepted with a warning: `super::container::ignored`.
    "develop",
    "attach",
    "post_start",
    "pre_stop",
    "models",
    "provider",
    "use_api_socket",
    "pull_refresh_after",
    "credential_spec",
    "isolation",
    "cpu_count",
    "cpu_percent",
];
const RESTART_HINT: &str = "use `no`, `always`, `unless-stopped`, `on-failure` or `on-failure:3`";

/// A service with the places that checks across services point at.
pub struct ServiceDraft {
    pub service: Service,
    pub dependencies: BTreeMap<String, DependencyPlace>,
    /// Parallel to `service.ports`.
    pub ports: Vec<Place>,
    /// Named volumes the service mounts.
    pub named_volumes: Vec<(String, Place)>,
    /// Dependencies marked `required: false`.
    pub optional_dependencies: std::collections::BTreeSet<String>,
    /// Where each secret and config grant is written.
    pub grants: super::secrets::GrantPlaces,
    /// Where networks, links and `network_mode` are written.
    pub networking: super::networks::ServicePlaces,
    /// Where `mesh: true` is written (warned about when it cannot take effect).
    pub mesh_on: Option<Place>,
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
        .and_then(|node| build::read_build(checker, node, &key("build")));
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
            // A `provider` service has no image (a warning says it is not run).
            if fields.get("image").is_none() && fields.get("provider").is_none() {
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
    let (ports, port_places): (Vec<_>, Vec<_>) = fields
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
    let expose = fields
        .get("expose")
        .map(|node| ports::read_expose(checker, node, &key("expose")))
        .unwrap_or_default();
    let (port, port_from) = match port {
        Some(port) => (Some(port), None),
        None => infer_port(&expose, &ports),
    };
    let (volumes_from, volumes_from_places): (Vec<_>, Vec<_>) = fields
        .get("volumes_from")
        .map(|node| volumes::read_volumes_from(checker, node, &key("volumes_from")))
        .unwrap_or_default()
        .into_iter()
        .unzip();
    let pull_policy = fields
        .get("pull_policy")
        .and_then(|node| {
            build::read_pull_policy(checker, node, &key("pull_policy"), build.is_some())
        })
        .unwrap_or_default();
    let mut healthcheck_disabled = false;
    let healthcheck = match fields.get("healthcheck") {
        Some(node) => {
            match healthcheck::read(
                checker,
                node,
                &key("healthcheck"),
                name,
                port.is_some(),
                external.is_some(),
            ) {
                healthcheck::Read::Check(check) => Some(check),
                healthcheck::Read::Disabled => {
                    healthcheck_disabled = true;
                    None
                }
                healthcheck::Read::Invalid => None,
            }
        }
        None => None,
    };
    let (secrets, configs, grants) = read_grants(checker, &fields, &field);
    let networking = super::networks::read_service(checker, &fields, &field);
    let (mut depends_on, mut dependencies, optional_dependencies) = fields
        .get("depends_on")
        .map(|node| depends_on::read(checker, node, &key("depends_on")))
        .unwrap_or_default();
    // A service whose volumes are borrowed starts first, as under compose.
    for (entry, place) in volumes_from.iter().zip(volumes_from_places) {
        if let VolumesFromSource::Service(source) = &entry.source {
            depends_on
                .entry(source.clone())
                .or_insert(DependencyCondition::Started);
            dependencies
                .entry(source.clone())
                .or_insert_with(|| DependencyPlace {
                    place,
                    condition: None,
                });
        }
    }

    let container = super::container::read(checker, &fields, &field);
    // A service whose IPC or PID namespace is shared starts first, as under compose.
    for (source, place) in super::container::namespace_sources(&fields, &field, &container.options)
    {
        depends_on
            .entry(source.clone())
            .or_insert(DependencyCondition::Started);
        dependencies
            .entry(source)
            .or_insert_with(|| DependencyPlace {
                place,
                condition: None,
            });
    }
    let (mesh, mesh_on) = fields
        .get("mesh")
        .map(|node| super::mesh::explicit_on(checker, node, &key("mesh")))
        .unwrap_or((true, None));
    let profiles = fields
        .get("profiles")
        .and_then(|node| checker.strings(node, &key("profiles"), false))
        .unwrap_or_default();
    let service = Service {
        port_from,
        name: name.to_string(),
        profiles,
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
        expose,
        volumes: mounts,
        volumes_from,
        pull_policy,
        depends_on,
        healthcheck,
        healthcheck_disabled,
        replicas: read_replicas(checker, &fields, &field),
        restart: fields
            .get("restart")
            .and_then(|node| read_restart(checker, node, &key("restart")))
            .or(container.restart)
            .unwrap_or(RestartPolicy::No),
        labels: read_labels(checker, &fields, &field),
        working_dir: fields
            .get("working_dir")
            .and_then(|node| read_working_dir(checker, node, &key("working_dir"))),
        user: fields
            .get("user")
            .and_then(|node| checker.string(node, &key("user"))),
        external,
        traffic: super::traffic::read_policy(checker, &fields, &field),
        secrets,
        configs,
        networks: networking.networks,
        network_mode: networking.network_mode,
        links: networking.links,
        external_links: networking.external_links,
        container: container.options,
        mesh,
    };
    super::container::check_container_name(checker, &fields, &field, &service);
    Some(ServiceDraft {
        service,
        dependencies,
        ports: port_places,
        named_volumes,
        optional_dependencies,
        grants,
        networking: networking.places,
        mesh_on,
    })
}

/// `label_file` (in order), then `labels`, which wins.
fn read_labels(
    checker: &mut Checker<'_>,
    fields: &super::check::Fields<'_>,
    field: &str,
) -> BTreeMap<String, String> {
    let mut labels = fields
        .get("label_file")
        .map(|node| environment::read_label_files(checker, node, &join(field, "label_file")))
        .unwrap_or_default();
    if let Some(node) = fields.get("labels") {
        labels.extend(environment::read_labels(
            checker,
            node,
            &join(field, "labels"),
        ));
    }
    labels
}

/// `secrets:` and `configs:` of a service, with the places of their entries.
fn read_grants(
    checker: &mut Checker<'_>,
    fields: &super::check::Fields<'_>,
    field: &str,
) -> (Vec<FileGrant>, Vec<FileGrant>, super::secrets::GrantPlaces) {
    use super::secrets::{read_grants, Family};
    let mut read = |key: &str, family: Family| -> (Vec<FileGrant>, Vec<Place>) {
        fields
            .get(key)
            .map(|node| read_grants(checker, node, &join(field, key), family))
            .unwrap_or_default()
            .into_iter()
            .unzip()
    };
    let (secrets, secret_places) = read("secrets", Family::Secret);
    let (configs, config_places) = read("configs", Family::Config);
    let places = super::secrets::GrantPlaces {
        secrets: secret_places,
        configs: config_places,
    };
    (secrets, configs, places)
}

/// The HTTP port of a service that does not name one: its first TCP `expose` port, else the
/// container side of its first TCP `ports` entry.
fn infer_port(
    expose: &[super::super::model::ExposedPort],
    ports: &[super::super::model::PortPublish],
) -> (Option<u16>, Option<PortSource>) {
    if let Some(exposed) = expose.iter().find(|exposed| exposed.protocol == "tcp") {
        return (Some(exposed.port), Some(PortSource::Expose));
    }
    match ports.iter().find(|publish| publish.protocol == "tcp") {
        Some(publish) => (Some(publish.container_port), Some(PortSource::Ports)),
        None => (None, None),
    }
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

/// A string split like a shell would, or a list of strings.
fn read_command(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<Vec<String>> {
    if node.is_null() {
        return None; // `command: null` keeps the image's, as in compose
    }
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
    // `deploy`'s shape and other keys are checked by `container::read`; only `replicas` is read here.
    if let Some(Value::Mapping(pairs)) = fields.get("deploy").map(|deploy| &deploy.value) {
        let replicas = pairs
            .iter()
            .find(|(key, _)| key.scalar_text() == Some("replicas"));
        if let Some((_, node)) = replicas {
            let key_field = join(field, "deploy.replicas");
            if let Some(count) = read_count(checker, node, &key_field) {
                counts.push((count, node, key_field));
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
