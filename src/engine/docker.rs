//! The one room where bollard lives: connection, requests, and the translation of its errors and
//! `Option`-heavy types into ours. Nothing outside this file imports bollard.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, Mount, MountType, NetworkCreateRequest,
    NetworkingConfig, PortBinding, RestartPolicy as DockerRestartPolicy, RestartPolicyNameEnum,
    VolumeCreateRequest,
};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    InspectContainerOptions, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    ListVolumesOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveVolumeOptions, StopContainerOptionsBuilder,
};
use futures_util::{Stream, StreamExt};

use super::error::EngineError;
use super::labels;
use super::spec::ContainerSpec;
use crate::manifest::{RestartPolicy, VolumeMount};

/// A connected engine.
#[derive(Clone)]
pub struct Docker {
    client: bollard::Docker,
    endpoint: String,
    /// The host can open connections to container IPs on a bridge network (a Linux engine on this
    /// machine). Docker Desktop and remote engines cannot: there, published ports are used.
    host_reaches_containers: bool,
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
    /// The container's address on the project network.
    pub ip: Option<String>,
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

/// The project network as created.
#[derive(Debug, Clone)]
pub struct NetworkInfo {
    pub name: String,
    /// The bridge's gateway address: the host as the containers see it.
    pub gateway: Option<String>,
}

/// One line of container output.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub stderr: bool,
    pub text: String,
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
        let host_reaches_containers = endpoint.starts_with("unix://")
            && cfg!(target_os = "linux")
            && !endpoint.contains("/.docker/");
        Ok(Docker {
            client,
            endpoint,
            host_reaches_containers,
        })
    }

    /// Where the engine was found (for messages).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Whether container IPs are reachable from this process (see the field's docs).
    pub fn host_reaches_containers(&self) -> bool {
        self.host_reaches_containers
    }

    /// Every container (running or not) carrying the project's label.
    pub async fn project_containers(
        &self,
        project: &str,
    ) -> Result<Vec<ObservedContainer>, EngineError> {
        self.containers_labelled(Some(project)).await
    }

    /// Every container made by any sandbox on this engine.
    pub async fn all_sandbox_containers(&self) -> Result<Vec<ObservedContainer>, EngineError> {
        self.containers_labelled(None).await
    }

    async fn containers_labelled(
        &self,
        project: Option<&str>,
    ) -> Result<Vec<ObservedContainer>, EngineError> {
        let filters = project_filter(project);
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
                let ip = summary
                    .network_settings
                    .and_then(|settings| settings.networks)
                    .and_then(|networks| {
                        networks
                            .into_values()
                            .find_map(|endpoint| endpoint.ip_address.filter(|ip| !ip.is_empty()))
                    });
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
                    service: labels.get(labels::SERVICE).cloned().unwrap_or_default(),
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
                    ports,
                    labels,
                }
            })
            .collect();
        containers.sort_by(|a, b| (&a.service, a.replica).cmp(&(&b.service, b.replica)));
        Ok(containers)
    }

    /// Creates the project network unless it exists; returns its gateway address.
    pub async fn ensure_network(&self, project: &str) -> Result<(NetworkInfo, bool), EngineError> {
        let name = labels::network_name(project);
        if let Some(info) = self.inspect_network(&name).await? {
            return Ok((info, false));
        }
        let request = NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".to_string()),
            labels: Some(HashMap::from([(
                labels::PROJECT.to_string(),
                project.to_string(),
            )])),
            ..Default::default()
        };
        match self.client.create_network(request).await {
            Ok(_) => {}
            // Another `up` of the same project created it in between: use it.
            Err(error) if status_of(&error) == Some(409) => {}
            Err(error) => return Err(api_error("creating network", error)),
        }
        let info = self
            .inspect_network(&name)
            .await?
            .ok_or_else(|| EngineError::Api {
                action: "creating network".to_string(),
                message: format!("network `{name}` vanished right after it was created"),
            })?;
        Ok((info, true))
    }

    async fn inspect_network(&self, name: &str) -> Result<Option<NetworkInfo>, EngineError> {
        match self.client.inspect_network(name, None).await {
            Ok(network) => {
                let gateway = network
                    .ipam
                    .and_then(|ipam| ipam.config)
                    .and_then(|configs| configs.into_iter().find_map(|config| config.gateway));
                Ok(Some(NetworkInfo {
                    name: name.to_string(),
                    gateway,
                }))
            }
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

    /// Creates a named volume of the project unless it exists. Returns whether it was created.
    pub async fn ensure_volume(
        &self,
        name: &str,
        project: &str,
        extra_labels: &std::collections::BTreeMap<String, String>,
    ) -> Result<bool, EngineError> {
        match self.client.inspect_volume(name).await {
            Ok(_) => return Ok(false),
            Err(error) if status_of(&error) == Some(404) => {}
            Err(error) => return Err(api_error("inspecting volume", error)),
        }
        let mut volume_labels: HashMap<String, String> = extra_labels.clone().into_iter().collect();
        volume_labels.insert(labels::PROJECT.to_string(), project.to_string());
        let request = VolumeCreateRequest {
            name: Some(name.to_string()),
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
    pub async fn image_id(&self, image: &str) -> Result<Option<String>, EngineError> {
        match self.client.inspect_image(image).await {
            Ok(inspect) => Ok(inspect.id),
            Err(error) if status_of(&error) == Some(404) => Ok(None),
            Err(error) => Err(api_error(&format!("inspecting image `{image}`"), error)),
        }
    }

    /// Builds an image from a tar of its context with the classic builder (works offline).
    /// Streams the build's output lines.
    pub fn build_image<'a>(
        &'a self,
        tag: &str,
        dockerfile: &str,
        target: Option<&str>,
        build_args: &HashMap<String, String>,
        context_tar: Vec<u8>,
        project: &str,
    ) -> impl Stream<Item = BuildOutput> + 'a {
        let build_labels = HashMap::from([(labels::PROJECT.to_string(), project.to_string())]);
        let mut options = BuildImageOptionsBuilder::default()
            .dockerfile(dockerfile)
            .t(tag)
            .rm(true)
            .forcerm(true)
            .buildargs(build_args)
            .labels(&build_labels);
        if let Some(target) = target {
            options = options.target(target);
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
        let options = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        let body = container_body(spec);
        match self
            .client
            .create_container(Some(options.clone()), body.clone())
            .await
        {
            Ok(response) => Ok(response.id),
            Err(error) if status_of(&error) == Some(409) => {
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

    /// Stops a container (SIGTERM, then SIGKILL after `timeout`). A missing one is not an error.
    pub async fn stop_container(&self, id: &str, timeout: Duration) -> Result<(), EngineError> {
        let options = StopContainerOptionsBuilder::default()
            .t(timeout.as_secs() as i32)
            .build();
        match self.client.stop_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(error) if matches!(status_of(&error), Some(304 | 404)) => Ok(()),
            Err(error) => Err(api_error("stopping a container", error)),
        }
    }

    /// Removes a container and its anonymous volumes, forcing a running one. Missing is fine.
    pub async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.client.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(error) if matches!(status_of(&error), Some(404)) => Ok(()),
            // Already being removed by someone else (another `down`, the reaper).
            Err(error) if matches!(status_of(&error), Some(409)) => Ok(()),
            Err(error) => Err(api_error("removing a container", error)),
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

    /// The container's address on `network` and its published ports; `None` when it is gone.
    pub async fn container_addresses(
        &self,
        id: &str,
        network: &str,
    ) -> Result<Option<(Option<String>, Vec<PublishedPort>)>, EngineError> {
        match self
            .client
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
        {
            Ok(inspect) => {
                let settings = inspect.network_settings.unwrap_or_default();
                let ip = settings
                    .networks
                    .as_ref()
                    .and_then(|networks| networks.get(network))
                    .and_then(|endpoint| endpoint.ip_address.clone())
                    .filter(|ip| !ip.is_empty());
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
    let mut exposed_ports: Vec<String> = Vec::new();
    let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for publish in &spec.publishes {
        let key = format!("{}/{}", publish.container_port, publish.protocol);
        exposed_ports.push(key.clone());
        port_bindings
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: Some(publish.host_ip.clone()),
                host_port: Some(
                    publish
                        .host_port
                        .map(|port| port.to_string())
                        .unwrap_or_default(),
                ),
            });
    }
    let mounts: Vec<Mount> = spec
        .volumes
        .iter()
        .map(|volume| match volume {
            VolumeMount::Bind {
                source,
                target,
                read_only,
            } => Mount {
                typ: Some(MountType::BIND),
                source: Some(source.display().to_string()),
                target: Some(target.clone()),
                read_only: Some(*read_only),
                ..Default::default()
            },
            VolumeMount::Named {
                name,
                target,
                read_only,
            } => Mount {
                typ: Some(MountType::VOLUME),
                source: Some(name.clone()),
                target: Some(target.clone()),
                read_only: Some(*read_only),
                ..Default::default()
            },
            VolumeMount::Anonymous { target } => Mount {
                typ: Some(MountType::VOLUME),
                target: Some(target.clone()),
                ..Default::default()
            },
        })
        .collect();
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
        restart_policy: Some(restart_policy),
        network_mode: Some(spec.network.clone()),
        extra_hosts: (!spec.extra_hosts.is_empty()).then(|| spec.extra_hosts.clone()),
        ..Default::default()
    };
    let networking_config = NetworkingConfig {
        endpoints_config: Some(HashMap::from([(
            spec.network.clone(),
            EndpointSettings {
                aliases: Some(spec.aliases.clone()),
                ..Default::default()
            },
        )])),
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
        host_config: Some(host_config),
        networking_config: Some(networking_config),
        ..Default::default()
    }
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
