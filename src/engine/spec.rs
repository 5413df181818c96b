//! From a manifest service to the exact container the engine should run, and the hash that says
//! whether a running container still matches it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::docker::AnonymousVolume;
use super::files::{self, ContainerFile};
use super::labels;
use crate::manifest::NetworkMode;
use crate::manifest::{
    ContainerOptions, ExposedPort, Manifest, PortPublish, RestartPolicy, Service, VolumeMount,
    VolumesFrom, VolumesFromSource,
};

/// What the control plane adds to every container of a sandbox (variables pointing at the proxy and
/// trace server, host entries). Built once per `up`.
#[derive(Debug, Clone, Default)]
pub struct Wiring {
    /// Variables added to every container unless the manifest sets them itself.
    pub environment: BTreeMap<String, String>,
    /// Variables added to one service's containers (e.g. `ITEM_URL` for its dependencies).
    pub service_environment: BTreeMap<String, BTreeMap<String, String>>,
    /// `/etc/hosts` entries (`name:address`) of every container.
    pub extra_hosts: Vec<String>,
    /// `/etc/hosts` entries of one service's containers (its dependencies' mesh names).
    pub service_extra_hosts: BTreeMap<String, Vec<String>>,
    /// Where each service's mesh forwarder hands its connections, for the services on networks
    /// (or `bridge`) from which the control plane is reached.
    pub mesh_intake: BTreeMap<String, super::mesh::Intake>,
    /// The meshed services (set by `engine::up` once the images are known): a forwarder holds
    /// their DNS names, so their containers keep only their container names, and links to them
    /// point at the forwarder.
    pub meshed: BTreeSet<String>,
}

/// One container, fully resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerSpec {
    #[serde(skip)]
    pub name: String,
    #[serde(skip)]
    pub service: String,
    #[serde(skip)]
    pub replica: u32,
    #[serde(skip)]
    pub hostname: String,
    pub image: String,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=value`, sorted.
    pub environment: Vec<String>,
    /// User labels plus sandbox's own (the hash label is added after hashing).
    pub labels: BTreeMap<String, String>,
    pub publishes: Vec<PortPublish>,
    /// Named volumes already carry their engine name (`<project>_<name>`).
    pub volumes: Vec<VolumeMount>,
    /// The engine's network mode: the first network's engine name, `bridge`, `host`, `none` or
    /// `container:NAME`.
    pub network_mode: String,
    /// The networks joined, in join order (the first one is `network_mode`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<Endpoint>,
    /// Legacy links `container:alias` (`links`, `external_links`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    pub restart: RestartPolicy,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub extra_hosts: Vec<String>,
    /// The service's container options, with `ipc`/`pid: service:NAME` resolved to the container.
    #[serde(skip_serializing_if = "ContainerOptions::is_default")]
    pub container: ContainerOptions,
    /// Turn off the image's `HEALTHCHECK` (`healthcheck: {disable: true}`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub healthcheck_disabled: bool,
    /// Container ports exposed without a publish (`expose:`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exposed: Vec<ExposedPort>,
    /// `volumes_from:` as the engine takes it: `container[:ro|:rw]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes_from: Vec<String>,
    /// Secrets and configs from `environment` or `content`, written into the container before it
    /// starts (hashed by digest; see [`files`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<ContainerFile>,
}

impl ContainerSpec {
    /// Resolves replica `replica` (1-based) of `service`.
    pub fn new(manifest: &Manifest, service: &Service, replica: u32, wiring: &Wiring) -> Self {
        let project = &manifest.project;
        let name = container_name_of(manifest, &service.name, replica);
        let mut environment = wiring.environment.clone();
        if let Some(extra) = wiring.service_environment.get(&service.name) {
            environment.extend(extra.clone());
        }
        // The manifest's own values win over everything the control plane injects.
        environment.extend(service.environment.clone());
        let mut publishes = service.ports.clone();
        if let Some(port) = service.port {
            // The service's HTTP port is always reachable from the host on loopback, on a port the
            // engine picks, so health probes and tools work on engines whose container IPs the host
            // cannot route to (Docker Desktop).
            if !publishes
                .iter()
                .any(|publish| publish.container_port == port)
            {
                publishes.push(PortPublish::new("127.0.0.1", None, port, "tcp"));
            }
        }
        let networks = endpoints(manifest, service, &name, wiring);
        let volumes = engine_volumes(manifest, service);
        let (file_mounts, files) = files::resolve(manifest, service);
        let volumes = files::with_file_mounts(volumes, file_mounts);
        let mut container_labels = service.labels.clone();
        container_labels.insert(labels::PROJECT.to_string(), project.clone());
        container_labels.insert(labels::SERVICE.to_string(), service.name.clone());
        container_labels.insert(labels::REPLICA.to_string(), replica.to_string());
        container_labels.insert(
            labels::MANIFEST.to_string(),
            manifest.file.display().to_string(),
        );
        ContainerSpec {
            hostname: service
                .container
                .hostname
                .clone()
                .unwrap_or_else(|| name.clone()),
            name,
            service: service.name.clone(),
            replica,
            image: service.image.clone(),
            command: service.command.clone(),
            entrypoint: service.entrypoint.clone(),
            environment: environment
                .into_iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect(),
            labels: container_labels,
            publishes,
            volumes,
            network_mode: network_mode(manifest, service),
            networks,
            links: links(manifest, service, wiring),
            restart: service.restart,
            working_dir: service.working_dir.clone(),
            user: service.user.clone(),
            // The service's own entries first: the engine writes them in order, as compose does.
            extra_hosts: service
                .container
                .extra_hosts
                .iter()
                .chain(&wiring.extra_hosts)
                .chain(
                    wiring
                        .service_extra_hosts
                        .get(&service.name)
                        .into_iter()
                        .flatten(),
                )
                .cloned()
                .collect(),
            files,
            container: container_options(manifest, service),
            healthcheck_disabled: service.healthcheck_disabled,
            exposed: service.expose.clone(),
            volumes_from: service
                .volumes_from
                .iter()
                .map(|entry| volumes_from(manifest, entry))
                .collect(),
        }
    }

    /// Hash of everything that, changed, needs a new container. Like compose it leaves out the replica
    /// count and `depends_on` (neither is part of the spec), and the replica number itself, so all
    /// replicas of a service share one hash.
    pub fn config_hash(&self) -> String {
        let mut hashed = self.clone();
        hashed.labels.remove(labels::REPLICA);
        hashed.labels.remove(labels::MANIFEST);
        let json = serde_json::to_vec(&hashed).unwrap_or_default();
        let digest = Sha256::digest(&json);
        digest
            .iter()
            .take(16)
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    /// The spec with its hash label set: what is sent to the engine.
    pub fn with_hash_label(mut self) -> Self {
        let hash = self.config_hash();
        self.labels.insert(labels::CONFIG_HASH.to_string(), hash);
        self
    }
}

/// The service's mounts with named volumes under their engine names (`<project>_<name>`, or the
/// declared `name:`, or the bare name of an external volume).
fn engine_volumes(manifest: &Manifest, service: &Service) -> Vec<VolumeMount> {
    let mut volumes = service.volumes.clone();
    for volume in &mut volumes {
        if let VolumeMount::Named { name, .. } = volume {
            *name = manifest
                .volumes
                .get(name.as_str())
                .and_then(|declared| declared.fixed_name(name))
                .unwrap_or_else(|| labels::volume_name(&manifest.project, name));
        }
    }
    volumes
}

/// `db:ro` → `<db's first container>:ro`; `container:x` → `x`.
fn volumes_from(manifest: &Manifest, entry: &VolumesFrom) -> String {
    let container = match &entry.source {
        VolumesFromSource::Service(service) => container_name_of(manifest, service, 1),
        VolumesFromSource::Container(container) => container.clone(),
    };
    let mode = if entry.read_only { "ro" } else { "rw" };
    format!("{container}:{mode}")
}

/// The engine name of replica `replica` of `service`: its `container_name`, else
/// `<project>-<service>-<n>`.
pub fn container_name_of(manifest: &Manifest, service: &str, replica: u32) -> String {
    manifest
        .services
        .get(service)
        .and_then(|service| service.container.container_name.clone())
        .unwrap_or_else(|| labels::container_name(&manifest.project, service, replica))
}

/// The service's options as the engine takes them: `ipc`/`pid: service:NAME` share the namespace of
/// that service's first container (`container:<its name>`), as compose does.
fn container_options(manifest: &Manifest, service: &Service) -> ContainerOptions {
    let mut options = service.container.clone();
    for mode in [&mut options.ipc, &mut options.pid].into_iter().flatten() {
        if let Some(other) = mode.strip_prefix("service:") {
            *mode = format!("container:{}", container_name_of(manifest, other, 1));
        }
    }
    options
}

/// One network a container joins, with its settings there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// The network's engine name.
    pub network: String,
    /// DNS names on this network: the service, the container, then the service's own aliases.
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub link_local_ips: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub gw_priority: i64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
}

fn is_zero(value: &i64) -> bool {
    *value == 0
}

/// The engine's network mode for `service` (see [`ContainerSpec::network_mode`]).
fn network_mode(manifest: &Manifest, service: &Service) -> String {
    match &service.network_mode {
        NetworkMode::Networks => crate::manifest::by_priority(&service.networks)
            .first()
            .and_then(|(key, _)| manifest.networks.get(*key))
            .map(|network| network.name.clone())
            .unwrap_or_else(|| "none".to_string()),
        NetworkMode::Bridge => "bridge".to_string(),
        NetworkMode::Host => "host".to_string(),
        NetworkMode::None => "none".to_string(),
        NetworkMode::Service(target) => {
            format!("container:{}", container_name_of(manifest, target, 1))
        }
        NetworkMode::Container(container) => format!("container:{container}"),
    }
}

/// The networks of `service` in join order (highest `priority` first), for container `name`. A
/// meshed service's names are its forwarder's: its containers keep only their own name.
fn endpoints(manifest: &Manifest, service: &Service, name: &str, wiring: &Wiring) -> Vec<Endpoint> {
    let meshed = wiring.meshed.contains(&service.name);
    crate::manifest::by_priority(&service.networks)
        .into_iter()
        .filter_map(|(key, settings)| {
            let network = manifest.networks.get(key)?;
            let mut aliases = vec![name.to_string()];
            if !meshed {
                aliases.insert(0, service.name.clone());
                for alias in &settings.aliases {
                    if !aliases.contains(alias) {
                        aliases.push(alias.clone());
                    }
                }
            }
            Some(Endpoint {
                network: network.name.clone(),
                aliases,
                ipv4_address: settings.ipv4_address.map(|address| address.to_string()),
                ipv6_address: settings.ipv6_address.map(|address| address.to_string()),
                link_local_ips: settings
                    .link_local_ips
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                mac_address: settings.mac_address.clone(),
                gw_priority: settings.gw_priority,
                driver_opts: settings.driver_opts.clone(),
            })
        })
        .collect()
}

/// `links` (every replica of the linked service answers to the alias; a meshed service's
/// forwarder instead) and `external_links` (one naming a container of a meshed service: its
/// forwarder), as the engine takes them: `container:alias`.
fn links(manifest: &Manifest, service: &Service, wiring: &Wiring) -> Vec<String> {
    let mut links = Vec::new();
    for link in &service.links {
        if wiring.meshed.contains(&link.target) {
            let forwarder = labels::forwarder_name(&manifest.project, &link.target);
            links.push(format!("{forwarder}:{}", link.alias));
            continue;
        }
        let replicas = manifest
            .services
            .get(&link.target)
            .map_or(0, |target| target.replicas);
        for replica in 1..=replicas {
            let container = container_name_of(manifest, &link.target, replica);
            links.push(format!("{container}:{}", link.alias));
        }
    }
    for link in &service.external_links {
        let container = meshed_owner(manifest, &link.target, wiring)
            .map(|owner| labels::forwarder_name(&manifest.project, owner))
            .unwrap_or_else(|| link.target.clone());
        links.push(format!("{container}:{}", link.alias));
    }
    links
}

/// The meshed service one of whose containers is named `container`, if any.
fn meshed_owner<'a>(manifest: &Manifest, container: &str, wiring: &'a Wiring) -> Option<&'a str> {
    wiring
        .meshed
        .iter()
        .find(|name| {
            let replicas = manifest
                .services
                .get(*name)
                .map_or(0, |service| service.replicas);
            (1..=replicas).any(|replica| container_name_of(manifest, name, replica) == container)
        })
        .map(String::as_str)
}

/// Which anonymous volumes of a replaced container the new one keeps (as compose does): those at
/// a path the new spec does not give to a bind, named volume or tmpfs. Returns (kept, dropped).
pub fn inherited_volumes(
    old: Vec<AnonymousVolume>,
    mounts: &[VolumeMount],
) -> (Vec<AnonymousVolume>, Vec<AnonymousVolume>) {
    old.into_iter().partition(|volume| {
        !mounts.iter().any(|mount| {
            mount.target() == volume.target && !matches!(mount, VolumeMount::Anonymous { .. })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::load_text as load;

    const MESHED: &str = "name: shop
services:
  item:
    image: demo
    port: 8080
    replicas: 2
    networks:
      default: {aliases: [catalogue]}
  user:
    image: demo
    links: ['item:items']
    external_links: ['shop-item-2:second', 'legacy-db:db']
";

    fn spec_of(manifest: &Manifest, service: &str, meshed: &[&str]) -> ContainerSpec {
        let wiring = Wiring {
            meshed: meshed.iter().map(|name| name.to_string()).collect(),
            ..Wiring::default()
        };
        ContainerSpec::new(manifest, &manifest.services[service], 1, &wiring)
    }

    #[test]
    fn a_service_that_sets_its_own_telemetry_variables_keeps_them() {
        let manifest = load(
            "name: shop
services:
  item:
    image: demo
    environment:
      OTEL_EXPORTER_OTLP_ENDPOINT: http://collector:4318
      OTEL_TRACES_EXPORTER: console
",
        );
        let mut environment =
            crate::trace::otlp::environment::otlp_environment("http://172.18.0.1:4318");
        environment.extend(crate::control::wiring::zipkin_environment(
            "http://172.18.0.1:9411",
        ));
        let wiring = Wiring {
            environment,
            ..Wiring::default()
        };
        let spec = ContainerSpec::new(&manifest, &manifest.services["item"], 1, &wiring);
        let has = |pair: &str| spec.environment.iter().any(|entry| entry == pair);
        assert!(
            has("OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318"),
            "{:?}",
            spec.environment
        );
        assert!(
            has("OTEL_TRACES_EXPORTER=console"),
            "{:?}",
            spec.environment
        );
        // What the service does not set still comes from sandbox.
        assert!(
            has("OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"),
            "{:?}",
            spec.environment
        );
        assert!(
            spec.environment
                .iter()
                .any(|entry| entry.starts_with("ZIPKIN_ENDPOINT=http://172.18.0.1:9411")),
            "{:?}",
            spec.environment
        );
        assert_eq!(
            spec.environment
                .iter()
                .filter(|entry| entry.starts_with("OTEL_EXPORTER_OTLP_ENDPOINT="))
                .count(),
            1
        );
    }

    #[test]
    fn a_meshed_services_containers_keep_only_their_own_name() {
        let manifest = load(MESHED);
        let plain = spec_of(&manifest, "item", &[]);
        assert_eq!(
            plain.networks[0].aliases,
            ["item", "shop-item-1", "catalogue"]
        );
        let meshed = spec_of(&manifest, "item", &["item"]);
        assert_eq!(meshed.networks[0].aliases, ["shop-item-1"]);
        assert_ne!(plain.config_hash(), meshed.config_hash());
    }

    #[test]
    fn links_to_a_meshed_service_point_at_its_forwarder() {
        let manifest = load(MESHED);
        assert_eq!(
            spec_of(&manifest, "user", &[]).links,
            [
                "shop-item-1:items",
                "shop-item-2:items",
                "shop-item-2:second",
                "legacy-db:db"
            ]
        );
        assert_eq!(
            spec_of(&manifest, "user", &["item"]).links,
            [
                "shop-item-mesh:items",
                "shop-item-mesh:second",
                "legacy-db:db"
            ]
        );
    }

    #[test]
    fn a_recreate_keeps_anonymous_volumes_unless_the_path_now_has_another_mount() {
        let volume = |name: &str, target: &str| AnonymousVolume {
            name: name.into(),
            target: target.into(),
        };
        let mounts = [
            VolumeMount::Anonymous {
                target: "/cache".into(),
                read_only: false,
                nocopy: false,
            },
            VolumeMount::Tmpfs {
                target: "/run".into(),
                read_only: false,
                size: None,
                mode: None,
            },
        ];
        let (kept, dropped) = inherited_volumes(
            vec![
                volume("a", "/cache"),
                volume("b", "/run"),
                volume("c", "/var/lib/db"),
            ],
            &mounts,
        );
        assert_eq!(kept, [volume("a", "/cache"), volume("c", "/var/lib/db")]);
        assert_eq!(dropped, [volume("b", "/run")]);
    }
}
