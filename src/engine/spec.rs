//! From a manifest service to the exact container the engine should run, and the hash that says
//! whether a running container still matches it.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::labels;
use crate::manifest::{Manifest, PortPublish, RestartPolicy, Service, VolumeMount};

/// What the control plane adds to every container of a sandbox (network, variables pointing at the
/// proxy and trace server, host entries). Built once per `up`.
#[derive(Debug, Clone, Default)]
pub struct Wiring {
    /// The project network.
    pub network: String,
    /// Variables added to every container unless the manifest sets them itself.
    pub environment: BTreeMap<String, String>,
    /// Variables added to one service's containers (e.g. `ITEM_URL` for its dependencies).
    pub service_environment: BTreeMap<String, BTreeMap<String, String>>,
    /// `/etc/hosts` entries (`name:address`) of every container.
    pub extra_hosts: Vec<String>,
    /// `/etc/hosts` entries of one service's containers (its dependencies' mesh names).
    pub service_extra_hosts: BTreeMap<String, Vec<String>>,
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
    pub network: String,
    pub aliases: Vec<String>,
    pub restart: RestartPolicy,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub extra_hosts: Vec<String>,
}

impl ContainerSpec {
    /// Resolves replica `replica` (1-based) of `service`.
    pub fn new(manifest: &Manifest, service: &Service, replica: u32, wiring: &Wiring) -> Self {
        let project = &manifest.project;
        let name = labels::container_name(project, &service.name, replica);
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
                publishes.push(PortPublish {
                    host_ip: "127.0.0.1".to_string(),
                    host_port: None,
                    container_port: port,
                    protocol: "tcp".to_string(),
                });
            }
        }
        let volumes = service
            .volumes
            .iter()
            .map(|volume| match volume {
                VolumeMount::Named {
                    name,
                    target,
                    read_only,
                } => {
                    let external = manifest
                        .volumes
                        .get(name)
                        .is_some_and(|declared| declared.external);
                    VolumeMount::Named {
                        name: if external {
                            name.clone()
                        } else {
                            labels::volume_name(project, name)
                        },
                        target: target.clone(),
                        read_only: *read_only,
                    }
                }
                other => other.clone(),
            })
            .collect();
        let mut container_labels = service.labels.clone();
        container_labels.insert(labels::PROJECT.to_string(), project.clone());
        container_labels.insert(labels::SERVICE.to_string(), service.name.clone());
        container_labels.insert(labels::REPLICA.to_string(), replica.to_string());
        container_labels.insert(
            labels::MANIFEST.to_string(),
            manifest.file.display().to_string(),
        );
        ContainerSpec {
            hostname: name.clone(),
            aliases: vec![service.name.clone(), name.clone()],
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
            network: wiring.network.clone(),
            restart: service.restart,
            working_dir: service.working_dir.clone(),
            user: service.user.clone(),
            extra_hosts: wiring
                .extra_hosts
                .iter()
                .chain(
                    wiring
                        .service_extra_hosts
                        .get(&service.name)
                        .into_iter()
                        .flatten(),
                )
                .cloned()
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
