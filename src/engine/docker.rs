//! The one room where bollard lives: connection, requests, and the translation of its errors and
//! `Option`-heavy types into ours. Nothing outside this file imports bollard.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HostConfig, Mount, MountBindOptions,
    MountTmpfsOptions, MountType, MountVolumeOptions, NetworkCreateRequest, NetworkingConfig,
    PortBinding, RestartPolicy as DockerRestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    InspectContainerOptions, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    ListVolumesOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveVolumeOptions, StopContainerOptionsBuilder,
};
use futures_util::{Stream, StreamExt};
pub mod images;

// Networks (see `ensure_network`, `apply_networking`).
use super::spec::Endpoint;
use crate::manifest::NetworkSpec;
use bollard::models::{EndpointIpamConfig, Ipam, IpamConfig, NetworkConnectRequest};

use super::error::EngineError;
use super::labels;
use super::podman::{self, EngineKind};
use super::spec::ContainerSpec;
use crate::manifest::{Build, RestartPolicy, VolumeMount, VolumeSpec};
use crate::manifest::{ContainerOptions, Device};
use bollard::models::{DeviceMapping, DeviceRequest, HostConfigLogConfig, ResourcesUlimits};
use bollard::models::{HostConfigCgroupnsModeEnum, ResourcesBlkioWeightDevice, ThrottleDevice};

/// A connected engine.
#[derive(Clone)]
pub struct Docker {
    client: bollard::Docker,
    endpoint: String,
    /// The host can open connections to container IPs on a bridge network (a Linux engine on this
    /// machine). Docker Desktop and remote engines cannot: there, published ports are used.
    host_reaches_containers: bool,
    /// Docker or Podman (see `engine::podman` for what differs).
    kind: EngineKind,
}

/// A container of the project as the engine reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedContainer {
    pub id: String,
    pub name: String,
    pub service: String,
    pub replica: u32,
    pub config_hash: String,
    pub image_id: String,
    /// `running`, `exited`, `created`, ...
    pub state: String,
    /// Docker's human status (`Up 3 minutes`, `Exited (1) 2 seconds ago`).
    pub status: String,
    /// Unix seconds.
    pub created: i64,
    /// The address this process reaches the container at: on its first network (`127.0.0.1` for
    /// `network_mode: host`).
    pub ip: Option<String>,
    /// Its addresses on every network it joined (how the mesh knows its callers).
    pub addresses: Vec<String>,
    /// Published ports as `host_ip:host_port->container_port/proto`.
    pub ports: Vec<PublishedPort>,
    pub labels: HashMap<String, String>,
}

/// A port the engine published for a container.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PublishedPort {
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
}

impl PublishedPort {
    /// Where this process reaches the publish: its address, with a wildcard bind read as loopback.
    pub fn local_address(&self) -> Option<std::net::SocketAddr> {
        let host = if self.host_ip.is_empty() || self.host_ip == "0.0.0.0" {
            "127.0.0.1"
        } else {
            self.host_ip.as_str()
        };
        format!("{host}:{}", self.host_port).parse().ok()
    }
}

/// What `inspect` tells about a container that the health and wait logic needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerStatus {
    pub running: bool,
    pub exit_code: Option<i64>,
    pub finished_at: Option<String>,
    pub started_at: Option<String>,
    pub restarting: bool,
    pub oom_killed: bool,
    pub error: Option<String>,
}

/// A network the project's containers join, as the engine has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInfo {
    /// What the manifest calls it (`default`, `backend`); the engine name for `bridge`.
    pub key: String,
    /// The engine's name.
    pub name: String,
    /// The bridge's IPv4 gateway address: the host as the containers see it.
    pub gateway: Option<String>,
    /// No route out (the host's bridge address stays reachable).
    pub internal: bool,
    /// Not the project's own (an external network, the engine's `bridge`): other projects may use
    /// it too.
    pub shared: bool,
    /// The engine puts `gateway` on the host only when the network's first container joins
    /// (rootful Podman): listen there before it exists (`podman::gateway_listener`).
    pub gateway_appears_on_attach: bool,
}

impl NetworkInfo {
    /// The gateway address this process can listen on for the containers: one on this machine
    /// now, or one the engine brings up with the network's first container.
    pub fn listenable_gateway(&self) -> Option<std::net::IpAddr> {
        let ip: std::net::IpAddr = self.gateway.as_deref()?.parse().ok()?;
        let bindable = || std::net::TcpListener::bind(std::net::SocketAddr::new(ip, 0)).is_ok();
        (self.gateway_appears_on_attach || bindable()).then_some(ip)
    }
}

/// One line of container output.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub stderr: bool,
    pub text: String,
}

/// An anonymous volume of a container, and where it is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnonymousVolume {
    pub name: String,
    pub target: String,
}

/// One line of build output, or the build's end.
#[derive(Debug, Clone, PartialEq)]
pub enum BuildOutput {
    Line(String),
    Error(String),
}

impl Docker {
    /// Connects the way the Docker CLI does: `DOCKER_HOST` (unix://, tcp://, http://), else the default
    /// socket, else Podman's rootless and system sockets, else Docker Desktop's per-user socket.
    /// Checks the engine answers and agrees on an API version before returning.
    pub async fn connect() -> Result<Docker, EngineError> {
        let endpoint = endpoint_from_environment();
        let unreachable = |reason: String| EngineError::Unreachable {
            endpoint: endpoint.clone(),
            reason,
        };
        let client = if endpoint.starts_with("unix://") || endpoint.starts_with('/') {
            let path = endpoint.trim_start_matches("unix://");
            bollard::Docker::connect_with_unix(path, 120, bollard::API_DEFAULT_VERSION)
        } else {
            bollard::Docker::connect_with_host(&endpoint)
        }
        .map_err(|error| unreachable(error.to_string()))?;
        let ping = tokio::time::timeout(Duration::from_secs(5), client.ping()).await;
        match ping {
            Err(_) => return Err(unreachable("no answer within 5s".to_string())),
            Ok(Err(error)) => return Err(unreachable(describe_connection_error(&error))),
            Ok(Ok(_)) => {}
        }
        let client = client
            .negotiate_version()
            .await
            .map_err(|error| unreachable(error.to_string()))?;
        let kind = engine_kind(&client).await;
        let host_reaches_containers = endpoint.starts_with("unix://")
            && cfg!(target_os = "linux")
            && !endpoint.contains("/.docker/")
            && !kind.rootless()
            // Forced (tests): as if the host could not reach containers, like Docker Desktop.
            && !super::mesh::reach_forced();
        Ok(Docker {
            client,
            endpoint,
            host_reaches_containers,
            kind,
        })
    }

    /// Docker or Podman, rootless or not.
    pub fn kind(&self) -> EngineKind {
        self.kind
    }

    /// Where the engine was found (for messages).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Whether container IPs are reachable from this process (see the field's docs).
    pub fn host_reaches_containers(&self) -> bool {
        self.host_reaches_containers
    }

    /// The project's service replicas (running or not): containers carrying its label, except its
    /// mesh forwarders ([`Docker::mesh_forwarders`]), which are no service's replicas.
    pub async fn project_containers(
        &self,
        project: &str,
    ) -> Result<Vec<ObservedContainer>, EngineError> {
        let mut containers = self.containers_labelled(Some(project), None).await?;
        containers.retain(|container| !container.labels.contains_key(labels::ROLE));
        Ok(containers)
    }

    /// The project's mesh forwarders (running or not), one per meshed service; `service` is the
    /// service each stands for.
    pub async fn mesh_forwarders(
        &self,
        project: &str,
    ) -> Result<Vec<ObservedContainer>, EngineError> {
        let role = format!("{}={}", labels::ROLE, labels::MESH_FORWARDER);
        self.containers_labelled(Some(project), Some(role)).await
    }

    /// The engine's container events for `project` (created, started, died, removed, health
    /// changes, …) as they happen: each item says only that something changed. Ends when the
    /// engine closes the stream; an error item when it fails.
    pub fn project_container_events(
        &self,
        project: &str,
    ) -> impl Stream<Item = Result<(), EngineError>> + Send + 'static {
        let mut filters = project_filter(Some(project));
        filters.insert("type".to_string(), vec!["container".to_string()]);
        let options = bollard::query_parameters::EventsOptionsBuilder::default()
            .filters(&filters)
            .build();
        self.client.events(Some(options)).map(|event| {
            event.map(|_| ()).map_err(|error| EngineError::Api {
                action: "following the engine's events".to_string(),
                message: error.to_string(),
            })
        })
    }

    /// Every container made by any sandbox on this engine.
    pub async fn all_sandbox_containers(&self) -> Result<Vec<ObservedContainer>, EngineError> {
        self.containers_labelled(None, None).await
    }

    /// Containers with the project label (any project's when `None`), and `label` when given.
    async fn containers_labelled(
        &self,
        project: Option<&str>,
        label: Option<String>,
    ) -> Result<Vec<ObservedContainer>, EngineError> {
        let mut filters = project_filter(project);
        if let Some(label) = label {
            filters.entry("label".to_string()).or_default().push(label);
        }
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let summaries = self
            .client
            .list_containers(Some(options))
            .await
            .map_err(|error| api_error("listing containers", error))?;
        let mut containers: Vec<ObservedContainer> = summaries
            .into_iter()
            .map(|summary| {
                let labels = summary.labels.unwrap_or_default();
                let (ip, addresses) = container_ips(
                    summary
                        .host_config
                        .and_then(|host_config| host_config.network_mode)
                        .as_deref(),
                    summary
                        .network_settings
                        .and_then(|settings| settings.networks)
                        .unwrap_or_default(),
                );
                let mut ports: Vec<PublishedPort> = summary
                    .ports
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|port| {
                        Some(PublishedPort {
                            host_ip: port.ip.unwrap_or_default(),
                            host_port: port.public_port?,
                            container_port: port.private_port,
                            protocol: port
                                .typ
                                .map(|t| t.to_string())
                                .unwrap_or_else(|| "tcp".into()),
                        })
                    })
                    .collect();
                ports.sort_by_key(|port| (port.container_port, port.host_port));
                ports.dedup();
                ObservedContainer {
                    id: summary.id.unwrap_or_default(),
                    name: summary
                        .names
                        .and_then(|names| names.into_iter().next())
                        .map(|name| name.trim_start_matches('/').to_string())
                        .unwrap_or_default(),
                    // A forwarder: the service it stands for.
                    service: labels
                        .get(labels::SERVICE)
                        .or_else(|| labels.get(labels::MESH_SERVICE))
                        .cloned()
                        .unwrap_or_default(),
                    replica: labels
                        .get(labels::REPLICA)
                        .and_then(|replica| replica.parse().ok())
                        .unwrap_or(0),
                    config_hash: labels.get(labels::CONFIG_HASH).cloned().unwrap_or_default(),
                    image_id: summary.image_id.unwrap_or_default(),
                    state: summary
                        .state
                        .map(|state| state.to_string())
                        .unwrap_or_default(),
                    status: summary.status.unwrap_or_default(),
                    created: summary.created.unwrap_or_default(),
                    ip,
                    addresses,
                    ports,
                    labels,
                }
            })
            .collect();
        containers.sort_by(|a, b| (&a.service, a.replica).cmp(&(&b.service, b.replica)));
        Ok(containers)
    }

    /// Makes network `key` of the project exist as `spec` says: an external one must exist already
    /// (never created); another is created, labelled with the project, unless it exists. Returns it
    /// and whether it was created now.
    pub async fn ensure_network(
        &self,
        project: &str,
        key: &str,
        spec: &NetworkSpec,
    ) -> Result<(NetworkInfo, bool), EngineError> {
        let name = spec.name.as_str();
        if let Some(existing) = self.inspect_network(name).await? {
            let ours = existing
                .labels
                .as_ref()
                .and_then(|labels| labels.get(labels::PROJECT))
                .is_some_and(|owner| owner == project);
            if let (true, false, Some(difference)) = (ours, spec.external, drift(spec, &existing)) {
                return Err(EngineError::Api {
                    action: format!("using network `{name}`"),
                    message: format!(
                        "it exists with {difference}, which the manifest changed\n  hint: run `sandbox down` to remove it; the next `up` creates it as the manifest says"
                    ),
                });
            }
            let info = network_info_of(key, name, &existing, self.gateway_appears_on_attach());
            return Ok((
                NetworkInfo {
                    shared: spec.external,
                    ..info
                },
                false,
            ));
        }
        if spec.external {
            return Err(EngineError::Api {
                action: format!("using external network `{name}`"),
                message: format!(
                    "network `{name}` does not exist\n  hint: create it with `docker network create {name}`, or remove `external: true` from network `{key}` so that sandbox creates it"
                ),
            });
        }
        match self
            .client
            .create_network(network_request(project, key, spec))
            .await
        {
            Ok(_) => {}
            // Another `up` of the same project created it in between: use it.
            Err(error) if status_of(&error) == Some(409) => {}
            Err(error) => {
                return Err(api_error(&format!("creating network `{name}`"), error));
            }
        }
        let info = self
            .network_info(key, name)
            .await?
            .ok_or_else(|| EngineError::Api {
                action: "creating network".to_string(),
                message: format!("network `{name}` vanished right after it was created"),
            })?;
        Ok((info, true))
    }

    /// Network `name` as the engine has it (`key` is what the manifest calls it); `None` when absent.
    pub async fn network_info(
        &self,
        key: &str,
        name: &str,
    ) -> Result<Option<NetworkInfo>, EngineError> {
        Ok(self
            .inspect_network(name)
            .await?
            .map(|network| network_info_of(key, name, &network, self.gateway_appears_on_attach())))
    }

    /// Whether bridge gateways show up on this machine only with their first container (rootful
    /// Podman on this machine; see `engine::podman`).
    fn gateway_appears_on_attach(&self) -> bool {
        self.kind.gateway_appears_on_attach() && self.host_reaches_containers
    }

    async fn inspect_network(
        &self,
        name: &str,
    ) -> Result<Option<bollard::models::NetworkInspect>, EngineError> {
        match self.client.inspect_network(name, None).await {
            Ok(network) => Ok(Some(network)),
            Err(error) if status_of(&error) == Some(404) => Ok(None),
            Err(error) => Err(api_error("inspecting network", error)),
        }
    }

    /// Names of the networks labelled with the project (or any project when `None`).
    pub async fn labelled_networks(
        &self,
        project: Option<&str>,
    ) -> Result<Vec<String>, EngineError> {
        let filters = project_filter(project);
        let options = ListNetworksOptionsBuilder::default()
            .filters(&filters)
            .build();
        let networks = self
            .client
            .list_networks(Some(options))
            .await
            .map_err(|error| api_error("listing networks", error))?;
        Ok(networks
            .into_iter()
            .filter_map(|network| network.name)
            .collect())
    }

    /// Every project that has a container, network or volume labelled on this engine.
    pub async fn sandbox_projects(
        &self,
    ) -> Result<std::collections::BTreeSet<String>, EngineError> {
        let filters = project_filter(None);
        let mut projects: std::collections::BTreeSet<String> = self
            .all_sandbox_containers()
            .await?
            .into_iter()
            .filter_map(|container| container.labels.get(labels::PROJECT).cloned())
            .collect();
        let networks = self
            .client
            .list_networks(Some(
                ListNetworksOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(|error| api_error("listing networks", error))?;
        projects.extend(
            networks
                .into_iter()
                .filter_map(|network| network.labels?.get(labels::PROJECT).cloned()),
        );
        let volumes = self
            .client
            .list_volumes(Some(
                ListVolumesOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(|error| api_error("listing volumes", error))?;
        projects.extend(
            volumes
                .volumes
                .unwrap_or_default()
                .into_iter()
                .filter_map(|volume| volume.labels.get(labels::PROJECT).cloned()),
        );
        Ok(projects)
    }

    /// Removes a network; a missing one is not an error.
    pub async fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        match self.client.remove_network(name).await {
            Ok(()) => Ok(()),
            Err(error) if status_of(&error) == Some(404) => Ok(()),
            Err(error) => Err(api_error(&format!("removing network `{name}`"), error)),
        }
    }

    /// Creates a named volume of the project unless it exists, with the declared driver, options
    /// and labels. Returns whether it was created.
    pub async fn ensure_volume(
        &self,
        name: &str,
        project: &str,
        declared: &VolumeSpec,
    ) -> Result<bool, EngineError> {
        match self.client.inspect_volume(name).await {
            Ok(_) => return Ok(false),
            Err(error) if status_of(&error) == Some(404) => {}
            Err(error) => return Err(api_error("inspecting volume", error)),
        }
        let mut volume_labels: HashMap<String, String> =
            declared.labels.clone().into_iter().collect();
        volume_labels.insert(labels::PROJECT.to_string(), project.to_string());
        let request = VolumeCreateRequest {
            name: Some(name.to_string()),
            driver: declared.driver.clone(),
            driver_opts: (!declared.driver_opts.is_empty())
                .then(|| declared.driver_opts.clone().into_iter().collect()),
            labels: Some(volume_labels),
            ..Default::default()
        };
        self.client
            .create_volume(request)
            .await
            .map_err(|error| api_error(&format!("creating volume `{name}`"), error))?;
        Ok(true)
    }

    /// Whether a volume exists (for `external: true` volumes, which sandbox never creates).
    pub async fn volume_exists(&self, name: &str) -> Result<bool, EngineError> {
        match self.client.inspect_volume(name).await {
            Ok(_) => Ok(true),
            Err(error) if status_of(&error) == Some(404) => Ok(false),
            Err(error) => Err(api_error("inspecting volume", error)),
        }
    }

    /// Names of the volumes labelled with the project (or any project when `None`).
    pub async fn labelled_volumes(
        &self,
        project: Option<&str>,
    ) -> Result<Vec<String>, EngineError> {
        let filters = project_filter(project);
        let options = ListVolumesOptionsBuilder::default()
            .filters(&filters)
            .build();
        let response = self
            .client
            .list_volumes(Some(options))
            .await
            .map_err(|error| api_error("listing volumes", error))?;
        Ok(response
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|volume| volume.name)
            .collect())
    }

    pub async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        match self
            .client
            .remove_volume(name, None::<RemoveVolumeOptions>)
            .await
        {
            Ok(()) => Ok(()),
            Err(error) if status_of(&error) == Some(404) => Ok(()),
            Err(error) => Err(api_error(&format!("removing volume `{name}`"), error)),
        }
    }

    /// The image's id when the engine has it.
    /// The ports the image's `EXPOSE` lines declare, as (port, protocol) in order; empty when the
    /// image is absent or exposes nothing.
    pub async fn image_exposed_ports(
        &self,
        image: &str,
    ) -> Result<Vec<(u16, String)>, EngineError> {
        let inspect = match self.client.inspect_image(image).await {
            Ok(inspect) => inspect,
            Err(error) if status_of(&error) == Some(404) => return Ok(Vec::new()),
            Err(error) => return Err(api_error(&format!("inspecting image `{image}`"), error)),
        };
        let mut ports: Vec<(u16, String)> = inspect
            .config
            .and_then(|config| config.exposed_ports)
            .into_iter()
            .flatten()
            .filter_map(|key| {
                let (port, protocol) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
                Some((port.parse().ok()?, protocol.to_string()))
            })
            .collect();
        ports.sort();
        Ok(ports)
    }

    /// The image's `HEALTHCHECK` as the engine stores it (an empty `test` when it has none);
    /// `None` when the engine lacks the image.
    pub async fn image_healthcheck(
        &self,
        image: &str,
    ) -> Result<Option<super::image_health::ImageHealthcheck>, EngineError> {
        let inspect = match self.client.inspect_image(image).await {
            Ok(inspect) => inspect,
            Err(error) if status_of(&error) == Some(404) => return Ok(None),
            Err(error) => return Err(api_error(&format!("inspecting image `{image}`"), error)),
        };
        let config = inspect.config.unwrap_or_default();
        let check = config.healthcheck.unwrap_or_default();
        Ok(Some(super::image_health::ImageHealthcheck {
            test: check.test.unwrap_or_default(),
            shell: config.shell.unwrap_or_default(),
            interval: check.interval.unwrap_or_default(),
            timeout: check.timeout.unwrap_or_default(),
            retries: check.retries.unwrap_or_default(),
            start_period: check.start_period.unwrap_or_default(),
            start_interval: check.start_interval.unwrap_or_default(),
        }))
    }

    pub async fn image_id(&self, image: &str) -> Result<Option<String>, EngineError> {
        match self.client.inspect_image(image).await {
            Ok(inspect) => Ok(inspect.id),
            Err(error) if status_of(&error) == Some(404) => Ok(None),
            Err(error) => Err(api_error(&format!("inspecting image `{image}`"), error)),
        }
    }

    /// The image's id and when it was last tagged on this engine (pulled or built; its creation
    /// time when the engine does not record that), in Unix seconds; `None` when absent.
    pub async fn image_record(
        &self,
        image: &str,
    ) -> Result<Option<(String, Option<i64>)>, EngineError> {
        match self.client.inspect_image(image).await {
            Ok(inspect) => {
                let tagged = inspect
                    .metadata
                    .and_then(|metadata| metadata.last_tag_time)
                    .and_then(|time| unix_seconds(&time))
                    .filter(|seconds| *seconds > 0)
                    .or_else(|| inspect.created.and_then(|time| unix_seconds(&time)));
                Ok(inspect.id.map(|id| (id, tagged)))
            }
            Err(error) if status_of(&error) == Some(404) => Ok(None),
            Err(error) => Err(api_error(&format!("inspecting image `{image}`"), error)),
        }
    }

    /// Builds an image from a tar of its context with the classic builder (works offline).
    /// Streams the build's output lines.
    /// `dockerfile` is the Dockerfile's path inside the context tar (it may differ from
    /// `build.dockerfile` when the text was added to the tar, as for `dockerfile_inline`).
    pub fn build_image<'a>(
        &'a self,
        tag: &str,
        dockerfile: &str,
        build: &Build,
        context_tar: Vec<u8>,
        project: &str,
    ) -> impl Stream<Item = BuildOutput> + 'a {
        let mut build_labels: HashMap<String, String> = build.labels.clone().into_iter().collect();
        build_labels.insert(labels::PROJECT.to_string(), project.to_string());
        let build_args: HashMap<String, String> = build.args.clone().into_iter().collect();
        let mut options = BuildImageOptionsBuilder::default()
            .dockerfile(dockerfile)
            .t(tag)
            .rm(true)
            .forcerm(true)
            .nocache(build.no_cache)
            .buildargs(&build_args)
            .labels(&build_labels);
        if let Some(target) = &build.target {
            options = options.target(target);
        }
        if !build.cache_from.is_empty() {
            options = options.cachefrom(&build.cache_from);
        }
        if let Some(network) = &build.network {
            options = options.networkmode(network);
        }
        if let Some(size) = build.shm_size.and_then(|size| i32::try_from(size).ok()) {
            options = options.shmsize(size);
        }
        // The engine reads one `extrahosts` value per query parameter; bollard sends one.
        if let Some(host) = build.extra_hosts.first() {
            options = options.extrahosts(host);
        }
        if build.pull {
            options = options.pull("1");
        }
        self.client
            .build_image(
                options.build(),
                None,
                Some(bollard::body_full(context_tar.into())),
            )
            .flat_map(|item| {
                let outputs: Vec<BuildOutput> = match item {
                    Ok(info) => {
                        let mut outputs = Vec::new();
                        if let Some(stream) = info.stream {
                            outputs.extend(
                                stream
                                    .lines()
                                    .filter(|line| !line.trim().is_empty())
                                    .map(|line| BuildOutput::Line(line.trim_end().to_string())),
                            );
                        }
                        if let Some(detail) = info.error_detail {
                            outputs.push(BuildOutput::Error(detail.message.unwrap_or_default()));
                        }
                        outputs
                    }
                    Err(error) => vec![BuildOutput::Error(describe_error(&error))],
                };
                futures_util::stream::iter(outputs)
            })
    }

    /// Pulls an image, reporting `(current, total)` bytes as layers arrive.
    pub async fn pull_image(
        &self,
        image: &str,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<(), String> {
        let (repository, tag) = split_image_reference(image);
        let options = CreateImageOptionsBuilder::default()
            .from_image(repository)
            .tag(tag)
            .build();
        let mut stream = self.client.create_image(Some(options), None, None);
        let mut layers: HashMap<String, (u64, u64)> = HashMap::new();
        while let Some(item) = stream.next().await {
            let info = item.map_err(|error| describe_error(&error))?;
            if let Some(detail) = info.error_detail {
                return Err(detail.message.unwrap_or_else(|| "pull failed".to_string()));
            }
            if let (Some(id), Some(detail)) = (info.id, info.progress_detail) {
                let current = detail.current.unwrap_or(0).max(0) as u64;
                let total = detail.total.unwrap_or(0).max(0) as u64;
                layers.insert(id, (current, total));
                let (sum_current, sum_total) = layers
                    .values()
                    .fold((0, 0), |(c, t), (lc, lt)| (c + lc, t + lt));
                progress(sum_current, sum_total);
            }
        }
        Ok(())
    }

    /// Creates a container; a name clash (left from an interrupted run) removes the old one first.
    pub async fn create_container(&self, spec: &ContainerSpec) -> Result<String, EngineError> {
        self.create_container_inheriting(spec, &[]).await
    }

    /// [`Docker::create_container`], mounting `inherited` anonymous volumes of the container it
    /// replaces at their paths (compose keeps their data across a recreate).
    pub async fn create_container_inheriting(
        &self,
        spec: &ContainerSpec,
        inherited: &[AnonymousVolume],
    ) -> Result<String, EngineError> {
        let options = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .platform(spec.container.platform.as_deref().unwrap_or_default())
            .build();
        self.check_container_options(spec)?;
        self.check_endpoints(spec)?;
        let mut body = with_container_options(container_body(spec), &spec.container);
        inherit_volumes(&mut body, inherited);
        self.resolve_host_gateway(&mut body, spec).await?;
        let later = apply_networking(&mut body, spec, self.api_at_least(1, 44));
        let id = match self
            .client
            .create_container(Some(options.clone()), body.clone())
            .await
        {
            Ok(response) => Ok(response.id),
            Err(error) if status_of(&error) == Some(409) => {
                self.check_name_is_ours(spec).await?;
                self.remove_container(&spec.name).await?;
                self.client
                    .create_container(Some(options), body)
                    .await
                    .map(|response| response.id)
                    .map_err(|error| service_error(&spec.service, "creating the container", error))
            }
            Err(error) if status_of(&error) == Some(404) => Err(EngineError::ImageNotFound {
                image: spec.image.clone(),
                service: spec.service.clone(),
                reason: describe_error(&error),
            }),
            Err(error) => Err(service_error(
                &spec.service,
                "creating the container",
                error,
            )),
        }?;
        for (network, endpoint) in later {
            let request = NetworkConnectRequest {
                container: id.clone(),
                endpoint_config: Some(endpoint),
            };
            if let Err(error) = self.client.connect_network(&network, request).await {
                let _ = self.remove_container(&id).await;
                let action = format!("connecting the container to network `{network}`");
                return Err(service_error(&spec.service, &action, error));
            }
        }
        Ok(id)
    }

    /// On engines that do not know `host-gateway` (Podman before 5), such `extra_hosts` entries
    /// get the gateway address of the container's first network: the host as the container sees
    /// it, as Docker's `host-gateway` is on Linux.
    async fn resolve_host_gateway(
        &self,
        body: &mut ContainerCreateBody,
        spec: &ContainerSpec,
    ) -> Result<(), EngineError> {
        let Some(hosts) = body
            .host_config
            .as_mut()
            .and_then(|host| host.extra_hosts.as_mut())
        else {
            return Ok(());
        };
        let asks = hosts.iter().any(|entry| entry.ends_with(":host-gateway"));
        if !asks || !self.kind.rewrites_host_gateway() {
            return Ok(());
        }
        let network = spec
            .networks
            .first()
            .map(|endpoint| endpoint.network.as_str())
            .unwrap_or(spec.network_mode.as_str());
        let gateway = match self.network_info(network, network).await? {
            Some(info) => info.gateway,
            None => None,
        };
        *hosts = podman::without_host_gateway(hosts, gateway.as_deref());
        Ok(())
    }

    /// Whether the engine speaks at least API `major.minor` (negotiated at connect).
    fn api_at_least(&self, major: usize, minor: usize) -> bool {
        let version = self.client.client_version();
        (version.major_version, version.minor_version) >= (major, minor)
    }

    /// A per-network MAC address needs API 1.44 (Docker Engine 25): refused before, not ignored.
    fn check_endpoints(&self, spec: &ContainerSpec) -> Result<(), EngineError> {
        if self.api_at_least(1, 44) {
            return Ok(());
        }
        match spec.networks.iter().find(|endpoint| endpoint.mac_address.is_some()) {
            Some(endpoint) => Err(EngineError::Service {
                service: spec.service.clone(),
                action: format!("setting its MAC address on network `{}`", endpoint.network),
                message: "a MAC address per network needs Docker Engine 25 (API 1.44) or newer; this engine is older".to_string(),
            }),
            None => Ok(()),
        }
    }

    /// Starts a container. A taken host port becomes [`EngineError::PortTaken`].
    pub async fn start_container(&self, id: &str, service: &str) -> Result<(), EngineError> {
        match self.client.start_container(id, None).await {
            Ok(()) => Ok(()),
            Err(error) => {
                let message = describe_error(&error);
                if let Some(port) = taken_port(&message) {
                    let holder = self.container_holding_port(port).await;
                    return Err(EngineError::PortTaken {
                        service: service.to_string(),
                        port: port.to_string(),
                        holder,
                    });
                }
                Err(EngineError::Service {
                    service: service.to_string(),
                    action: "starting the container".to_string(),
                    message,
                })
            }
        }
    }

    /// Extracts a tar `archive` at `/` in a (created, not yet started) container: how secrets and
    /// configs from `environment` or `content` are written (Engine API `PUT /containers/{id}/archive`).
    /// The tar's uid/gid are kept (no `copyUIDGID`, which would give the files to the image's user).
    pub async fn upload_archive(
        &self,
        id: &str,
        service: &str,
        archive: Vec<u8>,
    ) -> Result<(), EngineError> {
        let options = bollard::query_parameters::UploadToContainerOptionsBuilder::default()
            .path("/")
            .build();
        self.client
            .upload_to_container(id, Some(options), bollard::body_full(archive.into()))
            .await
            .map_err(|error| service_error(service, "writing its secrets and configs", error))
    }

    /// The name of a running container publishing `port` on the host, if any.
    async fn container_holding_port(&self, port: u16) -> Option<String> {
        let options = ListContainersOptionsBuilder::default().build();
        let containers = self.client.list_containers(Some(options)).await.ok()?;
        containers.into_iter().find_map(|container| {
            let holds = container
                .ports
                .unwrap_or_default()
                .iter()
                .any(|published| published.public_port == Some(port));
            holds.then(|| {
                container
                    .names
                    .and_then(|names| names.into_iter().next())
                    .map(|name| name.trim_start_matches('/').to_string())
                    .unwrap_or_else(|| container.id.unwrap_or_default())
            })
        })
    }

    /// Stops a container (its stop signal, then SIGKILL after `timeout`). A missing one is not an
    /// error.
    /// `None` waits the container's own stop timeout (its service's `stop_grace_period`, else the
    /// engine's 10s); the signal is its `stop_signal`.
    pub async fn stop_container(
        &self,
        id: &str,
        timeout: Option<Duration>,
    ) -> Result<(), EngineError> {
        let mut options = StopContainerOptionsBuilder::default();
        if let Some(timeout) = timeout {
            options = options.t(i32::try_from(timeout.as_secs()).unwrap_or(i32::MAX));
        }
        let options = options.build();
        match self.client.stop_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(error) if matches!(status_of(&error), Some(304 | 404)) => Ok(()),
            Err(error) => Err(api_error("stopping a container", error)),
        }
    }

    /// Removes a container and its anonymous volumes, forcing a running one. Missing is fine.
    pub async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        self.remove_container_with(id, true).await
    }

    /// Removes a container and keeps its anonymous volumes (for a recreate that inherits them).
    pub async fn remove_container_keeping_volumes(&self, id: &str) -> Result<(), EngineError> {
        self.remove_container_with(id, false).await
    }

    async fn remove_container_with(&self, id: &str, volumes: bool) -> Result<(), EngineError> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(volumes)
            .build();
        // The engine leaves anonymous volumes mounted by name (inherited over a recreate): they go
        // too, unless another container still uses them.
        let anonymous = if volumes {
            self.anonymous_volumes(id).await.unwrap_or_default()
        } else {
            Vec::new()
        };
        let removed = self.client.remove_container(id, Some(options)).await;
        for volume in anonymous {
            let _ = self
                .client
                .remove_volume(&volume.name, None::<RemoveVolumeOptions>)
                .await;
        }
        match removed {
            Ok(()) => Ok(()),
            Err(error) if matches!(status_of(&error), Some(404)) => Ok(()),
            // Already being removed by someone else (another `down`, the reaper).
            Err(error) if matches!(status_of(&error), Some(409)) => Ok(()),
            Err(error) => Err(api_error("removing a container", error)),
        }
    }

    /// The anonymous volumes a container mounts (volumes named by the engine with 64 hex digits).
    pub async fn anonymous_volumes(&self, id: &str) -> Result<Vec<AnonymousVolume>, EngineError> {
        match self
            .client
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
        {
            Ok(inspect) => Ok(inspect
                .mounts
                .unwrap_or_default()
                .into_iter()
                .filter(|mount| mount.typ.as_deref() == Some("volume"))
                .filter_map(|mount| {
                    let name = mount.name?;
                    let anonymous = name.len() == 64 && name.chars().all(|c| c.is_ascii_hexdigit());
                    anonymous.then_some(AnonymousVolume {
                        name,
                        target: mount.destination?,
                    })
                })
                .collect()),
            Err(error) if status_of(&error) == Some(404) => Ok(Vec::new()),
            Err(error) => Err(api_error("inspecting a container", error)),
        }
    }

    /// State of one container; `None` when it no longer exists.
    pub async fn container_status(&self, id: &str) -> Result<Option<ContainerStatus>, EngineError> {
        match self
            .client
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
        {
            Ok(inspect) => {
                let state = inspect.state.unwrap_or_default();
                Ok(Some(ContainerStatus {
                    running: state.running.unwrap_or(false),
                    exit_code: state.exit_code,
                    finished_at: state.finished_at,
                    started_at: state.started_at,
                    restarting: state.restarting.unwrap_or(false),
                    oom_killed: state.oom_killed.unwrap_or(false),
                    error: state.error.filter(|error| !error.is_empty()),
                }))
            }
            Err(error) if status_of(&error) == Some(404) => Ok(None),
            Err(error) => Err(api_error("inspecting a container", error)),
        }
    }

    /// The container's address (see [`ObservedContainer::ip`]) and its published ports; `None` when
    /// it is gone.
    pub async fn container_addresses(
        &self,
        id: &str,
    ) -> Result<Option<(Option<String>, Vec<PublishedPort>)>, EngineError> {
        match self
            .client
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
        {
            Ok(inspect) => {
                let settings = inspect.network_settings.unwrap_or_default();
                let (ip, _) = container_ips(
                    inspect
                        .host_config
                        .and_then(|host_config| host_config.network_mode)
                        .as_deref(),
                    settings.networks.clone().unwrap_or_default(),
                );
                let mut ports = Vec::new();
                for (key, bindings) in settings.ports.unwrap_or_default() {
                    let (port, protocol) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
                    let Ok(container_port) = port.parse::<u16>() else {
                        continue;
                    };
                    for binding in bindings.unwrap_or_default() {
                        if let Some(host_port) =
                            binding.host_port.and_then(|port| port.parse().ok())
                        {
                            ports.push(PublishedPort {
                                host_ip: binding.host_ip.unwrap_or_default(),
                                host_port,
                                container_port,
                                protocol: protocol.to_string(),
                            });
                        }
                    }
                }
                ports.sort_by_key(|port| (port.container_port, port.host_port));
                Ok(Some((ip, ports)))
            }
            Err(error) if status_of(&error) == Some(404) => Ok(None),
            Err(error) => Err(api_error("inspecting a container", error)),
        }
    }

    /// Runs a command inside a running container; returns its exit code and combined output.
    pub async fn exec(&self, id: &str, command: &[String]) -> Result<(i64, String), String> {
        use bollard::exec::{CreateExecOptions, StartExecResults};
        let created = self
            .client
            .create_exec(
                id,
                CreateExecOptions {
                    cmd: Some(command.to_vec()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(|error| describe_error(&error))?;
        let mut output = String::new();
        if let StartExecResults::Attached {
            output: mut stream, ..
        } = self
            .client
            .start_exec(&created.id, None)
            .await
            .map_err(|error| describe_error(&error))?
        {
            while let Some(Ok(chunk)) = stream.next().await {
                if output.len() < 4096 {
                    output.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
                }
            }
        }
        let inspect = self
            .client
            .inspect_exec(&created.id)
            .await
            .map_err(|error| describe_error(&error))?;
        Ok((inspect.exit_code.unwrap_or(-1), output))
    }

    /// A container's output: the last `tail` lines (all when `None`), then new lines while `follow`.
    pub fn logs(
        &self,
        id: &str,
        follow: bool,
        tail: Option<usize>,
        timestamps: bool,
    ) -> impl Stream<Item = Result<LogLine, String>> + 'static {
        let tail = tail.map_or_else(|| "all".to_string(), |tail| tail.to_string());
        let options = LogsOptionsBuilder::default()
            .follow(follow)
            .stdout(true)
            .stderr(true)
            .timestamps(timestamps)
            .tail(&tail)
            .build();
        let stream = self.client.logs(id, Some(options));
        split_log_lines(stream)
    }

    /// The last `count` lines a container wrote (for error reports).
    pub async fn last_log_lines(&self, id: &str, count: usize) -> Vec<String> {
        let stream = self.logs(id, false, Some(count), false);
        let lines: Vec<Result<LogLine, String>> = stream.collect().await;
        lines
            .into_iter()
            .filter_map(Result::ok)
            .map(|line| line.text)
            .collect()
    }

    /// Blocks until a container stops; returns its exit code.
    pub async fn wait_container(&self, id: &str) -> Result<i64, EngineError> {
        let mut stream = self
            .client
            .wait_container(id, None::<bollard::query_parameters::WaitContainerOptions>);
        match stream.next().await {
            Some(Ok(response)) => Ok(response.status_code),
            // bollard reports a non-zero exit as an error carrying the code.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(error)) => Err(api_error("waiting for a container", error)),
            None => Ok(0),
        }
    }
}

/// A list filter for resources labelled with `project`, or with any project when `None`.
/// Which engine answers (`/version`, and `/info` on Podman); Docker when it does not say.
async fn engine_kind(client: &bollard::Docker) -> EngineKind {
    let Ok(version) = client.version().await else {
        return EngineKind::Docker;
    };
    let components: Vec<&str> = version
        .components
        .iter()
        .flatten()
        .map(|component| component.name.as_str())
        .collect();
    let kind = EngineKind::detect(&components, version.version.as_deref().unwrap_or(""), &[]);
    if !kind.is_podman() {
        return kind;
    }
    let security_options = match client.info().await {
        Ok(info) => info.security_options.unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let options: Vec<&str> = security_options.iter().map(String::as_str).collect();
    EngineKind::detect(
        &components,
        version.version.as_deref().unwrap_or(""),
        &options,
    )
}

fn project_filter(project: Option<&str>) -> HashMap<String, Vec<String>> {
    let filter = match project {
        Some(project) => format!("{}={project}", labels::PROJECT),
        None => labels::PROJECT.to_string(),
    };
    HashMap::from([("label".to_string(), vec![filter])])
}

/// Engine endpoint the way the Docker CLI picks it.
fn endpoint_from_environment() -> String {
    if let Ok(host) = std::env::var("DOCKER_HOST") {
        if !host.is_empty() {
            return host;
        }
    }
    let mut candidates = vec!["/var/run/docker.sock".to_string()];
    if let Ok(runtime) = std::env::var("XDG_RUNTIME_DIR") {
        candidates.push(format!("{runtime}/podman/podman.sock"));
        candidates.push(format!("{runtime}/docker.sock"));
    }
    candidates.push("/run/podman/podman.sock".to_string());
    if let Ok(home) = std::env::var("HOME") {
        candidates.push(format!("{home}/.docker/run/docker.sock"));
        candidates.push(format!("{home}/.docker/desktop/docker.sock"));
    }
    let found = candidates
        .iter()
        .find(|path| Path::new(path).exists())
        .unwrap_or(&candidates[0]);
    format!("unix://{found}")
}

fn container_body(spec: &ContainerSpec) -> ContainerCreateBody {
    let (exposed_ports, port_bindings) = port_config(spec);
    let (binds, mounts) = mount_config(&spec.volumes);
    let restart_policy = match spec.restart {
        RestartPolicy::No => DockerRestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        },
        RestartPolicy::Always => DockerRestartPolicy {
            name: Some(RestartPolicyNameEnum::ALWAYS),
            maximum_retry_count: None,
        },
        RestartPolicy::UnlessStopped => DockerRestartPolicy {
            name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
            maximum_retry_count: None,
        },
        RestartPolicy::OnFailure { max_retries } => DockerRestartPolicy {
            name: Some(RestartPolicyNameEnum::ON_FAILURE),
            maximum_retry_count: max_retries.map(i64::from),
        },
    };
    let host_config = HostConfig {
        port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
        mounts: (!mounts.is_empty()).then_some(mounts),
        binds: (!binds.is_empty()).then_some(binds),
        volumes_from: (!spec.volumes_from.is_empty()).then(|| spec.volumes_from.clone()),
        restart_policy: Some(restart_policy),
        network_mode: Some(spec.network_mode.clone()),
        extra_hosts: (!spec.extra_hosts.is_empty()).then(|| spec.extra_hosts.clone()),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: spec.command.clone(),
        entrypoint: spec.entrypoint.clone(),
        env: Some(spec.environment.clone()),
        labels: Some(spec.labels.clone().into_iter().collect()),
        working_dir: spec.working_dir.clone(),
        user: spec.user.clone(),
        hostname: Some(spec.hostname.clone()),
        exposed_ports: (!exposed_ports.is_empty()).then_some(exposed_ports),
        healthcheck: spec.healthcheck_disabled.then(|| HealthConfig {
            test: Some(vec!["NONE".to_string()]),
            ..Default::default()
        }),
        host_config: Some(host_config),
        // Filled by `apply_networking`.
        networking_config: None,
        ..Default::default()
    }
}

/// Mounts `inherited` volumes at their paths, in place of the anonymous mount the spec has there.
fn inherit_volumes(body: &mut ContainerCreateBody, inherited: &[AnonymousVolume]) {
    if inherited.is_empty() {
        return;
    }
    let host_config = body.host_config.get_or_insert_with(HostConfig::default);
    let mounts = host_config.mounts.get_or_insert_with(Vec::new);
    mounts.retain(|mount| {
        !(mount.typ == Some(MountType::VOLUME)
            && mount.source.is_none()
            && inherited
                .iter()
                .any(|volume| mount.target.as_deref() == Some(volume.target.as_str())))
    });
    for volume in inherited {
        mounts.push(Mount {
            typ: Some(MountType::VOLUME),
            source: Some(volume.name.clone()),
            target: Some(volume.target.clone()),
            ..Default::default()
        });
    }
}

/// `ExposedPorts` (publishes and `expose:`) and `PortBindings` of a container.
fn port_config(spec: &ContainerSpec) -> (Vec<String>, PortMap) {
    let mut exposed_ports: Vec<String> = Vec::new();
    let mut port_bindings: PortMap = HashMap::new();
    for publish in &spec.publishes {
        let key = format!("{}/{}", publish.container_port, publish.protocol);
        if !exposed_ports.contains(&key) {
            exposed_ports.push(key.clone());
        }
        port_bindings
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: Some(publish.host_ip.clone()),
                host_port: Some(publish.host_port_text()),
            });
    }
    for exposed in &spec.exposed {
        let key = format!("{}/{}", exposed.port, exposed.protocol);
        if !exposed_ports.contains(&key) {
            exposed_ports.push(key);
        }
    }
    (exposed_ports, port_bindings)
}

type PortMap = HashMap<String, Option<Vec<PortBinding>>>;

/// `Binds` and `Mounts` of a container, chosen as compose does: binds that create their host path
/// and plain named volumes go to `Binds` (the engine creates a missing host folder only there);
/// tmpfs, anonymous volumes, `create_host_path: false`, volume options and paths with a `:` (which
/// the bind syntax cannot carry) go to `Mounts`.
fn mount_config(volumes: &[VolumeMount]) -> (Vec<String>, Vec<Mount>) {
    let mut binds = Vec::new();
    let mut mounts = Vec::new();
    let mode = |read_only: bool| if read_only { "ro" } else { "rw" };
    for volume in volumes {
        match volume {
            VolumeMount::Bind {
                source,
                target,
                read_only,
                create_host_path: true,
                propagation,
                selinux,
            } if !source.to_string_lossy().contains(':') && !target.contains(':') => {
                let options: Vec<&str> = [
                    Some(mode(*read_only)),
                    selinux.as_deref(),
                    propagation.as_deref(),
                ]
                .into_iter()
                .flatten()
                .collect();
                binds.push(format!(
                    "{}:{target}:{}",
                    source.display(),
                    options.join(",")
                ));
            }
            VolumeMount::Bind {
                source,
                target,
                read_only,
                propagation,
                ..
            } => mounts.push(Mount {
                typ: Some(MountType::BIND),
                source: Some(source.display().to_string()),
                target: Some(target.clone()),
                read_only: read_only.then_some(true),
                bind_options: propagation.as_deref().map(|propagation| MountBindOptions {
                    propagation: propagation.parse().ok(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            VolumeMount::Named {
                name,
                target,
                read_only,
                nocopy,
                subpath: None,
                selinux,
            } if !*nocopy || selinux.is_some() => {
                let options: Vec<&str> = [
                    Some(mode(*read_only)),
                    selinux.as_deref(),
                    nocopy.then_some("nocopy"),
                ]
                .into_iter()
                .flatten()
                .collect();
                binds.push(format!("{name}:{target}:{}", options.join(",")));
            }
            VolumeMount::Named {
                name,
                target,
                read_only,
                nocopy,
                subpath,
                ..
            } => mounts.push(Mount {
                typ: Some(MountType::VOLUME),
                source: Some(name.clone()),
                target: Some(target.clone()),
                read_only: read_only.then_some(true),
                volume_options: Some(MountVolumeOptions {
                    no_copy: Some(*nocopy),
                    subpath: subpath.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            VolumeMount::Anonymous {
                target,
                read_only,
                nocopy,
            } => mounts.push(Mount {
                typ: Some(MountType::VOLUME),
                target: Some(target.clone()),
                read_only: read_only.then_some(true),
                volume_options: nocopy.then(|| MountVolumeOptions {
                    no_copy: Some(true),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            VolumeMount::Tmpfs {
                target,
                read_only,
                size,
                mode,
            } => mounts.push(Mount {
                typ: Some(MountType::TMPFS),
                target: Some(target.clone()),
                read_only: read_only.then_some(true),
                tmpfs_options: (size.is_some() || mode.is_some()).then(|| MountTmpfsOptions {
                    size_bytes: size.and_then(|size| i64::try_from(size).ok()),
                    mode: mode.map(i64::from),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }
    }
    (binds, mounts)
}

/// A container's address for this process (on its first network, the one named by its network
/// mode; loopback under `host`) and its addresses on every network, sorted.
fn container_ips(
    network_mode: Option<&str>,
    networks: HashMap<String, EndpointSettings>,
) -> (Option<String>, Vec<String>) {
    let mut named: Vec<(String, String)> = networks
        .into_iter()
        .filter_map(|(network, endpoint)| {
            Some((network, endpoint.ip_address.filter(|ip| !ip.is_empty())?))
        })
        .collect();
    named.sort();
    let primary = match network_mode {
        Some("host") => Some("127.0.0.1".to_string()),
        mode => named
            .iter()
            .find(|(network, _)| Some(network.as_str()) == mode)
            .or(named.first())
            .map(|(_, ip)| ip.clone()),
    };
    let mut addresses: Vec<String> = named.into_iter().map(|(_, ip)| ip).collect();
    addresses.sort();
    addresses.dedup();
    (primary, addresses)
}

/// The IPv4 address the host has on a bridge: the pool's gateway, or, where the engine does not
/// report one (internal networks), the subnet's first address, which is where it puts it.
fn ipv4_gateway(config: &IpamConfig) -> Option<std::net::Ipv4Addr> {
    let written = config
        .gateway
        .as_deref()
        .and_then(|gateway| gateway.split('/').next()?.parse().ok());
    written.or_else(|| {
        let subnet = crate::manifest::Subnet::parse(config.subnet.as_deref()?)?;
        match subnet.address {
            std::net::IpAddr::V4(network) if subnet.prefix < 31 => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(subnet.prefix))
                    .unwrap_or(0);
                Some(std::net::Ipv4Addr::from((u32::from(network) & mask) + 1))
            }
            _ => None,
        }
    })
}

/// What `network_info` reports of an inspected network.
fn network_info_of(
    key: &str,
    name: &str,
    network: &bollard::models::NetworkInspect,
    gateway_appears_on_attach: bool,
) -> NetworkInfo {
    let gateway = network
        .ipam
        .as_ref()
        .and_then(|ipam| ipam.config.as_ref())
        .into_iter()
        .flatten()
        .find_map(ipv4_gateway)
        .map(|gateway| gateway.to_string());
    NetworkInfo {
        key: key.to_string(),
        name: name.to_string(),
        gateway,
        internal: network.internal.unwrap_or(false),
        shared: false,
        gateway_appears_on_attach: gateway_appears_on_attach
            && network.driver.as_deref().unwrap_or("bridge") == "bridge",
    }
}

/// How an existing project network differs from its spec, on what only a new network can change
/// (driver, `internal`, written subnets); `None` when it matches.
fn drift(spec: &NetworkSpec, existing: &bollard::models::NetworkInspect) -> Option<String> {
    let driver = spec.driver.as_deref().unwrap_or("bridge");
    if existing
        .driver
        .as_deref()
        .is_some_and(|existing| existing != driver)
    {
        return Some(format!(
            "driver `{}`",
            existing.driver.as_deref().unwrap_or_default()
        ));
    }
    let internal = existing.internal.unwrap_or(false);
    if internal != spec.internal {
        return Some(format!("`internal: {internal}`"));
    }
    let mut wanted: Vec<&str> = spec
        .ipam
        .iter()
        .flat_map(|ipam| &ipam.config)
        .filter_map(|pool| pool.subnet.as_deref())
        .collect();
    let mut actual: Vec<&str> = existing
        .ipam
        .as_ref()
        .and_then(|ipam| ipam.config.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|config| config.subnet.as_deref())
        .collect();
    wanted.sort_unstable();
    actual.sort_unstable();
    (!wanted.is_empty() && wanted != actual).then(|| format!("subnets {}", actual.join(", ")))
}

/// The create request of project network `key`: labelled with the project and the key, so `down`
/// finds it; the manifest's driver, options, IPAM, labels and flags as written.
fn network_request(project: &str, key: &str, spec: &NetworkSpec) -> NetworkCreateRequest {
    let mut network_labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
    network_labels.insert(labels::PROJECT.to_string(), project.to_string());
    network_labels.insert(labels::NETWORK.to_string(), key.to_string());
    let options = |map: &std::collections::BTreeMap<String, String>| {
        (!map.is_empty()).then(|| map.clone().into_iter().collect::<HashMap<_, _>>())
    };
    let ipam = spec.ipam.as_ref().map(|ipam| Ipam {
        driver: ipam.driver.clone(),
        config: (!ipam.config.is_empty()).then(|| {
            ipam.config
                .iter()
                .map(|pool| IpamConfig {
                    subnet: pool.subnet.clone(),
                    ip_range: pool.ip_range.clone(),
                    gateway: pool.gateway.clone(),
                    auxiliary_addresses: options(&pool.aux_addresses),
                })
                .collect()
        }),
        options: options(&ipam.options),
    });
    NetworkCreateRequest {
        name: spec.name.clone(),
        driver: Some(spec.driver.clone().unwrap_or_else(|| "bridge".to_string())),
        internal: spec.internal.then_some(true),
        attachable: spec.attachable.then_some(true),
        enable_ipv6: spec.enable_ipv6,
        ipam,
        options: options(&spec.driver_opts),
        labels: Some(network_labels),
        ..Default::default()
    }
}

/// One network's endpoint settings. Aliases and links only exist on user-defined networks.
fn endpoint_settings(endpoint: &Endpoint, links: &[String]) -> EndpointSettings {
    let user_defined = endpoint.network != "bridge";
    let addressed = endpoint.ipv4_address.is_some()
        || endpoint.ipv6_address.is_some()
        || !endpoint.link_local_ips.is_empty();
    EndpointSettings {
        aliases: user_defined.then(|| endpoint.aliases.clone()),
        links: (user_defined && !links.is_empty()).then(|| links.to_vec()),
        ipam_config: addressed.then(|| EndpointIpamConfig {
            ipv4_address: endpoint.ipv4_address.clone(),
            ipv6_address: endpoint.ipv6_address.clone(),
            link_local_ips: (!endpoint.link_local_ips.is_empty())
                .then(|| endpoint.link_local_ips.clone()),
        }),
        mac_address: endpoint.mac_address.clone(),
        driver_opts: (!endpoint.driver_opts.is_empty())
            .then(|| endpoint.driver_opts.clone().into_iter().collect()),
        gw_priority: (endpoint.gw_priority != 0).then_some(endpoint.gw_priority),
        ..Default::default()
    }
}

/// The networking part of a create request: the endpoints the engine takes at create (every one
/// from API 1.44 on, only the first before), legacy links on the `bridge` network, and what a
/// container sharing another's network stack may not set. Returns the networks to connect before
/// the container starts, in order.
fn apply_networking(
    body: &mut ContainerCreateBody,
    spec: &ContainerSpec,
    all_at_create: bool,
) -> Vec<(String, EndpointSettings)> {
    let mut endpoints: Vec<(String, EndpointSettings)> = spec
        .networks
        .iter()
        .map(|endpoint| {
            (
                endpoint.network.clone(),
                endpoint_settings(endpoint, &spec.links),
            )
        })
        .collect();
    let later = if all_at_create || endpoints.is_empty() {
        Vec::new()
    } else {
        endpoints.split_off(1)
    };
    body.networking_config = Some(NetworkingConfig {
        endpoints_config: Some(endpoints.into_iter().collect()),
    });
    let host_config = body.host_config.get_or_insert_with(HostConfig::default);
    if spec.network_mode == "bridge" && !spec.links.is_empty() {
        host_config.links = Some(spec.links.clone());
    }
    if matches!(spec.network_mode.as_str(), "host" | "none") {
        // No network of its own to publish on (the engine would discard them).
        host_config.port_bindings = None;
    }
    if spec.network_mode.starts_with("container:") {
        // The engine refuses these with another container's network stack (compose drops them too).
        host_config.port_bindings = None;
        host_config.extra_hosts = None;
        host_config.dns = None;
        host_config.dns_search = None;
        host_config.dns_options = None;
        body.hostname = None;
        body.domainname = None;
        body.exposed_ports = None;
    }
    later
}

/// Splits Docker's multiplexed log frames into lines (a frame may hold several lines or part of one).
fn split_log_lines(
    stream: impl Stream<Item = Result<bollard::container::LogOutput, bollard::errors::Error>>
        + Send
        + 'static,
) -> impl Stream<Item = Result<LogLine, String>> + 'static {
    use bollard::container::LogOutput;
    let state = (
        Box::pin(stream),
        String::new(),
        String::new(),
        Vec::<LogLine>::new(),
    );
    futures_util::stream::unfold(
        state,
        |(mut stream, mut out, mut err, mut ready)| async move {
            loop {
                if let Some(line) = ready.pop() {
                    return Some((Ok(line), (stream, out, err, ready)));
                }
                match stream.next().await {
                    Some(Ok(output)) => {
                        let (buffer, stderr, bytes) = match output {
                            LogOutput::StdErr { message } => (&mut err, true, message),
                            LogOutput::StdOut { message }
                            | LogOutput::Console { message }
                            | LogOutput::StdIn { message } => (&mut out, false, message),
                        };
                        buffer.push_str(&String::from_utf8_lossy(&bytes));
                        let mut lines = Vec::new();
                        while let Some(end) = buffer.find('\n') {
                            let line: String = buffer.drain(..=end).collect();
                            lines.push(LogLine {
                                stderr,
                                text: line.trim_end_matches(['\n', '\r']).to_string(),
                            });
                        }
                        // Bound a runaway line without a newline.
                        if buffer.len() > 64 * 1024 {
                            lines.push(LogLine {
                                stderr,
                                text: std::mem::take(buffer),
                            });
                        }
                        lines.reverse();
                        ready = lines;
                    }
                    Some(Err(error)) => {
                        return Some((Err(describe_error(&error)), (stream, out, err, ready)))
                    }
                    None => {
                        for (buffer, stderr) in [(&mut out, false), (&mut err, true)] {
                            if !buffer.is_empty() {
                                ready.push(LogLine {
                                    stderr,
                                    text: std::mem::take(buffer),
                                });
                            }
                        }
                        let line = ready.pop()?;
                        return Some((Ok(line), (stream, out, err, ready)));
                    }
                }
            }
        },
    )
}

/// `2024-05-01T12:34:56.789Z` (RFC 3339, UTC or an offset) → Unix seconds.
pub(crate) fn unix_seconds(text: &str) -> Option<i64> {
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let zone = text[19..].trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let hours: i64 = zone.get(1..3)?.parse().ok()?;
            let minutes: i64 = zone.get(4..6)?.parse().ok()?;
            sign * (hours * 3600 + minutes * 60)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// `repo[:tag]` → (repo, tag), leaving registry ports (`host:5000/x`) alone. Digests pass through.
fn split_image_reference(image: &str) -> (&str, &str) {
    if image.contains('@') {
        return (image, "");
    }
    let last_slash = image.rfind('/').map_or(0, |index| index + 1);
    match image[last_slash..].rfind(':') {
        Some(colon) => (
            &image[..last_slash + colon],
            &image[last_slash + colon + 1..],
        ),
        None => (image, "latest"),
    }
}

/// The host port in an engine "port is already allocated" / "address already in use" message.
fn taken_port(message: &str) -> Option<u16> {
    let lower = message.to_lowercase();
    if !(lower.contains("port is already allocated") || lower.contains("address already in use")) {
        return None;
    }
    // e.g. "Bind for 127.0.0.1:8080 failed: port is already allocated"
    //      "listen tcp4 127.0.0.1:8080: bind: address already in use"
    let before = lower
        .split(" failed: port is already allocated")
        .next()
        .unwrap_or(&lower);
    let before = before.split(": bind: address already in use").next()?;
    before
        .rsplit(':')
        .next()?
        .trim()
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .ok()
}

fn status_of(error: &bollard::errors::Error) -> Option<u16> {
    match error {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// The engine's own words, without bollard's wrapping.
fn describe_error(error: &bollard::errors::Error) -> String {
    match error {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        other => describe_connection_error(other),
    }
}

fn describe_connection_error(error: &bollard::errors::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn api_error(action: &str, error: bollard::errors::Error) -> EngineError {
    EngineError::Api {
        action: action.to_string(),
        message: describe_error(&error),
    }
}

fn service_error(service: &str, action: &str, error: bollard::errors::Error) -> EngineError {
    EngineError::Service {
        service: service.to_string(),
        action: action.to_string(),
        message: describe_error(&error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_go_to_binds_or_mounts_as_compose_sends_them() {
        let bind = |source: &str, create_host_path: bool| VolumeMount::Bind {
            source: source.into(),
            target: "/in".into(),
            read_only: true,
            create_host_path,
            propagation: Some("rshared".into()),
            selinux: Some("z".into()),
        };
        let named = |nocopy: bool| VolumeMount::Named {
            selinux: None,
            name: "p_data".into(),
            target: "/data".into(),
            read_only: false,
            nocopy,
            subpath: None,
        };
        let (binds, mounts) = mount_config(&[
            bind("/host", true),
            bind("/host", false),
            bind("/odd:path", true),
            named(false),
            named(true),
            VolumeMount::Tmpfs {
                target: "/tmp".into(),
                read_only: false,
                size: Some(1024),
                mode: Some(0o1777),
            },
        ]);
        assert_eq!(binds, ["/host:/in:ro,z,rshared", "p_data:/data:rw"]);
        let summary: Vec<(Option<MountType>, Option<String>)> = mounts
            .iter()
            .map(|mount| (mount.typ, mount.source.clone()))
            .collect();
        assert_eq!(
            summary,
            [
                (Some(MountType::BIND), Some("/host".into())),
                (Some(MountType::BIND), Some("/odd:path".into())),
                (Some(MountType::VOLUME), Some("p_data".into())),
                (Some(MountType::TMPFS), None),
            ]
        );
        assert_eq!(
            mounts[2].volume_options.as_ref().and_then(|o| o.no_copy),
            Some(true)
        );
        let tmpfs = mounts[3].tmpfs_options.as_ref().expect("tmpfs options");
        assert_eq!((tmpfs.size_bytes, tmpfs.mode), (Some(1024), Some(0o1777)));
    }

    #[test]
    fn engine_times_read_as_unix_seconds() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            unix_seconds("2024-05-01T12:34:56.123456789Z"),
            Some(1_714_566_896)
        );
        assert_eq!(
            unix_seconds("2024-05-01T14:34:56+02:00"),
            Some(1_714_566_896)
        );
        assert_eq!(
            unix_seconds("0001-01-01T00:00:00Z").map(|s| s < 0),
            Some(true)
        );
        assert_eq!(unix_seconds("yesterday"), None);
    }

    #[test]
    fn image_references_split_like_the_docker_cli() {
        assert_eq!(split_image_reference("nginx"), ("nginx", "latest"));
        assert_eq!(split_image_reference("nginx:1.25"), ("nginx", "1.25"));
        assert_eq!(
            split_image_reference("registry:5000/team/app"),
            ("registry:5000/team/app", "latest")
        );
        assert_eq!(
            split_image_reference("registry:5000/team/app:v2"),
            ("registry:5000/team/app", "v2")
        );
    }

    #[test]
    fn taken_ports_are_read_from_engine_messages() {
        assert_eq!(
            taken_port("driver failed programming external connectivity on endpoint x: Bind for 127.0.0.1:18080 failed: port is already allocated"),
            Some(18080)
        );
        assert_eq!(
            taken_port("Error starting userland proxy: listen tcp4 127.0.0.1:9000: bind: address already in use"),
            Some(9000)
        );
        assert_eq!(taken_port("no such image"), None);
    }
}

impl Docker {
    /// A container already holding the spec's name is replaced only when it is this project's
    /// (a fixed `container_name` may collide with anyone's container).
    async fn check_name_is_ours(&self, spec: &ContainerSpec) -> Result<(), EngineError> {
        let existing = self
            .client
            .inspect_container(&spec.name, None::<InspectContainerOptions>)
            .await;
        let project = |map: &HashMap<String, String>| map.get(labels::PROJECT).cloned();
        let holder = match existing {
            Ok(container) => container
                .config
                .and_then(|config| config.labels)
                .and_then(|labels| project(&labels)),
            Err(_) => return Ok(()), // gone meanwhile: the retry creates it
        };
        if holder.as_ref() == spec.labels.get(labels::PROJECT) {
            return Ok(());
        }
        Err(EngineError::Service {
            service: spec.service.clone(),
            action: "creating the container".to_string(),
            message: format!(
                "the name `{}` is taken by a container that is not this project's; remove it (`docker rm -f {}`) or change `container_name`",
                spec.name, spec.name
            ),
        })
    }

    /// Options this engine cannot honour are refused before anything is created.
    fn check_container_options(&self, spec: &ContainerSpec) -> Result<(), EngineError> {
        let version = self.client.client_version();
        let endpoint_mac = (version.major_version, version.minor_version) >= (1, 44);
        match &spec.container.mac_address {
            Some(mac) if !endpoint_mac => Err(EngineError::Service {
                service: spec.service.clone(),
                action: "creating the container".to_string(),
                message: format!(
                    "`mac_address: {mac}` needs Docker Engine API 1.44 or newer (this engine speaks {}.{}); upgrade the engine or remove `mac_address`",
                    version.major_version, version.minor_version
                ),
            }),
            _ => Ok(()),
        }
    }
}

/// Sets the container keys of the service (`cap_add`, `read_only`, limits, DNS, logging, stop
/// signal, ...) on the create request, each on the field compose sets it on.
fn with_container_options(
    mut body: ContainerCreateBody,
    options: &ContainerOptions,
) -> ContainerCreateBody {
    let some_list = |list: &Vec<String>| (!list.is_empty()).then(|| list.clone());
    let some_map = |map: &std::collections::BTreeMap<String, String>| {
        (!map.is_empty()).then(|| map.clone().into_iter().collect::<HashMap<_, _>>())
    };
    body.domainname = options.domainname.clone();
    if options.uts.as_deref() == Some("host") && options.hostname.is_none() {
        // The host's UTS namespace has the host's name; the engine refuses a hostname with it.
        body.hostname = None;
    }
    body.tty = options.tty.then_some(true);
    body.open_stdin = options.stdin_open.then_some(true);
    body.stop_signal = options.stop_signal.clone();
    body.stop_timeout = options
        .stop_grace_period
        .map(|grace| i64::try_from(grace.as_secs()).unwrap_or(i64::MAX));
    if let (Some(mac), Some(endpoints)) = (
        &options.mac_address,
        body.networking_config
            .as_mut()
            .and_then(|networking| networking.endpoints_config.as_mut()),
    ) {
        for endpoint in endpoints.values_mut() {
            endpoint.mac_address = Some(mac.clone());
        }
    }
    let host = body.host_config.get_or_insert_with(HostConfig::default);
    host.cap_add = some_list(&options.cap_add);
    host.cap_drop = some_list(&options.cap_drop);
    host.privileged = options.privileged.then_some(true);
    host.readonly_rootfs = options.read_only.then_some(true);
    host.security_opt = some_list(&options.security_opt);
    host.group_add = some_list(&options.group_add);
    host.init = options.init;
    host.ipc_mode = options.ipc.clone();
    host.pid_mode = options.pid.clone();
    host.shm_size = options
        .shm_size
        .map(|bytes| i64::try_from(bytes).unwrap_or(i64::MAX));
    host.sysctls = some_map(&options.sysctls);
    host.tmpfs = some_map(&options.tmpfs);
    host.runtime = options.runtime.clone();
    host.oom_score_adj = options.oom_score_adj;
    host.dns = some_list(&options.dns);
    host.dns_search = some_list(&options.dns_search);
    host.dns_options = some_list(&options.dns_opt);
    host.ulimits = (!options.ulimits.is_empty()).then(|| {
        options
            .ulimits
            .iter()
            .map(|(name, limit)| ResourcesUlimits {
                name: Some(name.clone()),
                soft: Some(limit.soft),
                hard: Some(limit.hard),
            })
            .collect()
    });
    host.log_config = options.logging.as_ref().map(|logging| HostConfigLogConfig {
        typ: logging.driver.clone(),
        config: some_map(&logging.options),
    });
    let mut device_requests = Vec::new();
    let mut devices = Vec::new();
    for device in &options.devices {
        match device {
            Device::Path {
                source,
                target,
                permissions,
            } => devices.push(DeviceMapping {
                path_on_host: Some(source.clone()),
                path_in_container: Some(target.clone()),
                cgroup_permissions: Some(permissions.clone()),
            }),
            Device::Cdi { name } => device_requests.push(DeviceRequest {
                driver: Some("cdi".to_string()),
                device_ids: Some(vec![name.clone()]),
                ..Default::default()
            }),
        }
    }
    let resources = &options.resources;
    device_requests.extend(
        resources
            .device_requests
            .iter()
            .map(|request| DeviceRequest {
                driver: request.driver.clone(),
                count: request.count,
                device_ids: some_list(&request.device_ids),
                capabilities: Some(vec![request.capabilities.clone()]),
                options: some_map(&request.options),
            }),
    );
    host.devices = (!devices.is_empty()).then_some(devices);
    host.device_requests = (!device_requests.is_empty()).then_some(device_requests);
    let bytes = |value: Option<u64>| value.map(|bytes| i64::try_from(bytes).unwrap_or(i64::MAX));
    host.memory = bytes(resources.memory);
    host.memory_swap = resources.memory_swap;
    host.memory_reservation = bytes(resources.memory_reservation);
    host.nano_cpus = resources.nano_cpus;
    host.cpu_shares = resources.cpu_shares;
    host.cpuset_cpus = resources.cpuset.clone();
    host.pids_limit = resources.pids_limit;
    host.oom_kill_disable = resources.oom_kill_disable;
    host.cpu_period = resources.cpu_period;
    host.cpu_quota = resources.cpu_quota;
    host.cpu_realtime_period = resources.cpu_rt_period;
    host.cpu_realtime_runtime = resources.cpu_rt_runtime;
    host.memory_swappiness = resources.memory_swappiness;
    with_blkio(host, &resources.blkio);
    host.annotations = some_map(&options.annotations);
    host.cgroupns_mode = options.cgroup.as_deref().map(|mode| match mode {
        "host" => HostConfigCgroupnsModeEnum::HOST,
        _ => HostConfigCgroupnsModeEnum::PRIVATE,
    });
    host.cgroup_parent = options.cgroup_parent.clone();
    host.uts_mode = options.uts.clone();
    host.userns_mode = options.userns_mode.clone();
    host.storage_opt = some_map(&options.storage_opt);
    host.device_cgroup_rules = some_list(&options.device_cgroup_rules);
    body
}

/// `blkio_config` onto the host configuration.
fn with_blkio(host: &mut HostConfig, blkio: &crate::manifest::Blkio) {
    let throttles = |rates: &Vec<crate::manifest::BlkioRate>| {
        (!rates.is_empty()).then(|| {
            rates
                .iter()
                .map(|rate| ThrottleDevice {
                    path: Some(rate.path.clone()),
                    rate: Some(i64::try_from(rate.rate).unwrap_or(i64::MAX)),
                })
                .collect()
        })
    };
    host.blkio_weight = blkio.weight;
    host.blkio_weight_device = (!blkio.weight_device.is_empty()).then(|| {
        blkio
            .weight_device
            .iter()
            .map(|device| ResourcesBlkioWeightDevice {
                path: Some(device.path.clone()),
                weight: Some(usize::from(device.weight)),
            })
            .collect()
    });
    host.blkio_device_read_bps = throttles(&blkio.device_read_bps);
    host.blkio_device_write_bps = throttles(&blkio.device_write_bps);
    host.blkio_device_read_iops = throttles(&blkio.device_read_iops);
    host.blkio_device_write_iops = throttles(&blkio.device_write_iops);
}

#[cfg(test)]
mod container_options_tests {
    use super::*;
    use crate::engine::spec::{ContainerSpec, Wiring};
    use crate::manifest::{load, LoadOptions};

    /// The create request of replica 1 of `service` in a compose file written as `text`.
    fn body(text: &str, service: &str) -> ContainerCreateBody {
        let folder = tempfile::tempdir().expect("temp dir");
        std::fs::write(folder.path().join("compose.yaml"), text).expect("write");
        let manifest = load(&LoadOptions {
            files: vec!["compose.yaml".into()],
            project: Some("p".to_string()),
            working_dir: folder.path().to_path_buf(),
            ..LoadOptions::default()
        })
        .unwrap_or_else(|errors| panic!("{errors}"));
        let spec = ContainerSpec::new(
            &manifest,
            &manifest.services[service],
            1,
            &Wiring::default(),
        );
        with_container_options(container_body(&spec), &spec.container)
    }

    #[test]
    fn cgroup_and_namespace_keys_land_on_the_host_config() {
        let body = body(
            "services:\n  app:\n    image: busybox\n    cgroup: host\n    cgroup_parent: /sandbox\n    uts: host\n    userns_mode: host\n    storage_opt: {size: 20G}\n    device_cgroup_rules: ['c 1:3 mr']\n    annotations: {com.example.owner: shop}\n    cpu_period: 100ms\n    cpu_quota: 50000\n    cpu_rt_period: 1s\n    cpu_rt_runtime: 950ms\n    mem_swappiness: 10\n    gpus: all\n    blkio_config:\n      weight: 300\n      weight_device: [{path: /dev/sda, weight: 400}]\n      device_read_bps: [{path: /dev/sdb, rate: 12mb}]\n      device_write_iops: [{path: /dev/sdb, rate: 30}]\n",
            "app",
        );
        let host = body.host_config.expect("host config");
        assert_eq!(host.cgroupns_mode, Some(HostConfigCgroupnsModeEnum::HOST));
        assert_eq!(host.cgroup_parent.as_deref(), Some("/sandbox"));
        assert_eq!(host.uts_mode.as_deref(), Some("host"));
        assert_eq!(
            body.hostname, None,
            "the host's UTS namespace keeps the host's name"
        );
        assert_eq!(host.userns_mode.as_deref(), Some("host"));
        assert_eq!(
            host.storage_opt,
            Some(HashMap::from([("size".to_string(), "20G".to_string())]))
        );
        assert_eq!(host.device_cgroup_rules, Some(vec!["c 1:3 mr".to_string()]));
        assert_eq!(
            host.annotations,
            Some(HashMap::from([(
                "com.example.owner".to_string(),
                "shop".to_string()
            )]))
        );
        assert_eq!(host.cpu_period, Some(100_000));
        assert_eq!(host.cpu_quota, Some(50_000));
        assert_eq!(host.cpu_realtime_period, Some(1_000_000));
        assert_eq!(host.cpu_realtime_runtime, Some(950_000));
        assert_eq!(host.memory_swappiness, Some(10));
        assert_eq!(host.blkio_weight, Some(300));
        assert_eq!(
            host.blkio_weight_device,
            Some(vec![ResourcesBlkioWeightDevice {
                path: Some("/dev/sda".to_string()),
                weight: Some(400),
            }])
        );
        assert_eq!(
            host.blkio_device_read_bps,
            Some(vec![ThrottleDevice {
                path: Some("/dev/sdb".to_string()),
                rate: Some(12 << 20),
            }])
        );
        assert_eq!(
            host.blkio_device_write_iops.map(|devices| devices.len()),
            Some(1)
        );
        let gpus = host.device_requests.expect("device requests");
        assert_eq!(gpus[0].count, Some(-1));
        assert_eq!(gpus[0].capabilities, Some(vec![vec!["gpu".to_string()]]));
    }

    #[test]
    fn container_keys_land_on_the_fields_compose_sets() {
        let body = body(
            "services:\n  app:\n    image: busybox\n    container_name: my-app\n    hostname: h\n    cap_add: [NET_ADMIN]\n    read_only: true\n    stop_signal: SIGINT\n    stop_grace_period: 1m30s\n    shm_size: 1g\n    ulimits: {nofile: {soft: 1, hard: 2}}\n    cpus: 0.5\n    mem_limit: 64m\n    tmpfs: /run\n    extra_hosts: {db: 10.0.0.2}\n    deploy: {resources: {limits: {pids: 9}}}\n",
            "app",
        );
        assert_eq!(body.hostname.as_deref(), Some("h"));
        assert_eq!(body.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(body.stop_timeout, Some(90));
        let host = body.host_config.expect("host config");
        assert_eq!(host.cap_add, Some(vec!["NET_ADMIN".to_string()]));
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.shm_size, Some(1 << 30));
        assert_eq!(host.nano_cpus, Some(500_000_000));
        assert_eq!(host.memory, Some(64 << 20));
        assert_eq!(host.pids_limit, Some(9));
        assert_eq!(
            host.tmpfs,
            Some(HashMap::from([("/run".to_string(), String::new())]))
        );
        assert_eq!(host.extra_hosts, Some(vec!["db:10.0.0.2".to_string()]));
        let ulimit = &host.ulimits.expect("ulimits")[0];
        assert_eq!(
            (ulimit.name.as_deref(), ulimit.soft, ulimit.hard),
            (Some("nofile"), Some(1), Some(2))
        );
    }

    #[test]
    fn unset_keys_leave_the_engine_defaults() {
        let body = body("services:\n  app:\n    image: busybox\n", "app");
        assert_eq!(body.stop_timeout, None);
        assert_eq!(body.tty, None);
        let host = body.host_config.expect("host config");
        assert_eq!(host.init, None);
        assert_eq!(host.privileged, None);
        assert_eq!(host.memory, None);
        assert_eq!(host.log_config, None);
    }

    #[test]
    fn shared_namespaces_name_the_other_services_container() {
        let text = "services:\n  app:\n    image: busybox\n    container_name: my-app\n  side:\n    image: busybox\n    ipc: service:app\n    pid: container:other\n";
        let host = body(text, "side").host_config.expect("host config");
        assert_eq!(host.ipc_mode.as_deref(), Some("container:my-app"));
        assert_eq!(host.pid_mode.as_deref(), Some("container:other"));
    }
}

#[cfg(test)]
mod network_tests {
    use super::*;
    use crate::engine::spec::{ContainerSpec, Wiring};
    use crate::manifest::{load, LoadOptions, Manifest};

    fn manifest(text: &str) -> Manifest {
        let folder = tempfile::tempdir().expect("temp dir");
        std::fs::write(folder.path().join("compose.yaml"), text).expect("write");
        load(&LoadOptions {
            files: vec!["compose.yaml".into()],
            project: Some("p".to_string()),
            working_dir: folder.path().to_path_buf(),
            ..LoadOptions::default()
        })
        .unwrap_or_else(|errors| panic!("{errors}"))
    }

    /// The create request of replica 1 of `service`, and the networks connected before start.
    fn create(
        manifest: &Manifest,
        service: &str,
        all_at_create: bool,
    ) -> (ContainerCreateBody, Vec<(String, EndpointSettings)>) {
        let spec = ContainerSpec::new(manifest, &manifest.services[service], 1, &Wiring::default());
        let mut body = container_body(&spec);
        let later = apply_networking(&mut body, &spec, all_at_create);
        (body, later)
    }

    const TIERS: &str = "services:
  api:
    image: busybox
    links: [db:database]
    networks:
      front: {aliases: [api-front]}
      back: {aliases: [api-back], priority: 10, ipv4_address: 10.9.0.5}
  db: {image: busybox, networks: [back]}
  old: {image: busybox, network_mode: bridge, external_links: [legacy:store]}
  side: {image: busybox, network_mode: 'service:db', hostname: nope, extra_hosts: [a=10.0.0.1]}
networks:
  front: {}
  back: {ipam: {config: [{subnet: 10.9.0.0/24}]}}
";

    #[test]
    fn the_highest_priority_network_is_joined_at_create_and_the_others_before_start() {
        let manifest = manifest(TIERS);
        let (body, later) = create(&manifest, "api", false);
        let host = body.host_config.expect("host config");
        assert_eq!(host.network_mode.as_deref(), Some("p_back"));
        let endpoints = body
            .networking_config
            .and_then(|config| config.endpoints_config)
            .expect("endpoints");
        let back = &endpoints["p_back"];
        assert_eq!(endpoints.len(), 1, "one endpoint at create before API 1.44");
        assert_eq!(
            back.aliases.as_deref(),
            Some(&["api".to_string(), "p-api-1".into(), "api-back".into()][..])
        );
        assert_eq!(
            back.ipam_config
                .as_ref()
                .and_then(|ipam| ipam.ipv4_address.as_deref()),
            Some("10.9.0.5")
        );
        assert_eq!(
            back.links.as_deref(),
            Some(&["p-db-1:database".to_string()][..])
        );
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].0, "p_front");
        assert_eq!(
            later[0].1.aliases.as_deref(),
            Some(&["api".to_string(), "p-api-1".into(), "api-front".into()][..])
        );

        let (body, later) = create(&manifest, "api", true);
        assert!(later.is_empty(), "every endpoint at create from API 1.44");
        let endpoints = body
            .networking_config
            .and_then(|config| config.endpoints_config);
        assert_eq!(endpoints.map(|endpoints| endpoints.len()), Some(2));
    }

    #[test]
    fn other_network_modes_take_what_the_engine_accepts() {
        let manifest = manifest(TIERS);
        let (body, _) = create(&manifest, "old", false);
        let host = body.host_config.expect("host config");
        assert_eq!(host.network_mode.as_deref(), Some("bridge"));
        assert_eq!(host.links, Some(vec!["legacy:store".to_string()]));

        let (body, _) = create(&manifest, "side", false);
        let host = body.host_config.expect("host config");
        assert_eq!(host.network_mode.as_deref(), Some("container:p-db-1"));
        assert_eq!(
            host.extra_hosts, None,
            "refused with another container's stack"
        );
        assert_eq!(body.hostname, None);
        assert_eq!(host.port_bindings, None);
    }

    #[test]
    fn networks_are_created_as_written_and_labelled() {
        let manifest = manifest(TIERS);
        let request = network_request("p", "back", &manifest.networks["back"]);
        assert_eq!(request.name, "p_back");
        assert_eq!(request.driver.as_deref(), Some("bridge"));
        let labels = request.labels.expect("labels");
        assert_eq!(labels[labels::PROJECT], "p");
        assert_eq!(labels[labels::NETWORK], "back");
        let pools = request.ipam.and_then(|ipam| ipam.config).expect("pools");
        assert_eq!(pools[0].subnet.as_deref(), Some("10.9.0.0/24"));
    }

    #[test]
    fn the_hosts_bridge_address_is_the_gateway_or_the_subnets_first() {
        let pool = |subnet: Option<&str>, gateway: Option<&str>| IpamConfig {
            subnet: subnet.map(str::to_string),
            gateway: gateway.map(str::to_string),
            ..IpamConfig::default()
        };
        assert_eq!(
            ipv4_gateway(&pool(Some("10.1.0.0/16"), Some("10.1.0.254"))),
            Some("10.1.0.254".parse().unwrap())
        );
        assert_eq!(
            ipv4_gateway(&pool(Some("10.1.2.0/24"), None)),
            Some("10.1.2.1".parse().unwrap())
        );
        assert_eq!(ipv4_gateway(&pool(Some("2001:db8::/64"), None)), None);
        assert_eq!(ipv4_gateway(&pool(None, None)), None);
    }

    #[test]
    fn a_changed_network_is_reported_not_reused() {
        let manifest = manifest(TIERS);
        let existing = |internal: bool, subnet: &str| bollard::models::NetworkInspect {
            driver: Some("bridge".into()),
            internal: Some(internal),
            ipam: Some(Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(subnet.into()),
                    ..IpamConfig::default()
                }]),
                ..Ipam::default()
            }),
            ..Default::default()
        };
        let back = &manifest.networks["back"];
        assert_eq!(drift(back, &existing(false, "10.9.0.0/24")), None);
        assert_eq!(
            drift(back, &existing(true, "10.9.0.0/24")).as_deref(),
            Some("`internal: true`")
        );
        assert_eq!(
            drift(back, &existing(false, "10.8.0.0/24")).as_deref(),
            Some("subnets 10.8.0.0/24")
        );
        // Without written subnets, the engine's choice is fine.
        assert_eq!(
            drift(
                &manifest.networks["front"],
                &existing(false, "172.20.0.0/16")
            ),
            None
        );
    }
}
