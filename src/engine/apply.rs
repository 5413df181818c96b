//! Bringing a sandbox up: network and volumes, images, the plan, then every service started in
//! parallel along the dependency graph, each waiting only for its own dependencies' conditions;
//! a meshed service's forwarder is made from the start, beside it, and is up before the service
//! counts as started.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::docker::{Docker, NetworkInfo, ObservedContainer};
use super::error::EngineError;
use super::health::{self, ProbeTarget, StartupVerdict};
use super::image;
use super::labels;
use super::mesh::{self, ForwarderInputs, Verdict};
use super::plan::{self, ReplicaAction};
use super::spec::{ContainerSpec, Wiring};
use crate::events::{EventSink, Step};
use crate::manifest::{DependencyCondition, Manifest, NetworkMode, Service};

/// How many log lines a failure report carries.
const FAILURE_LOG_LINES: usize = 20;
/// How long a mesh forwarder gets to stop (it holds no state; callers reconnect).
const FORWARDER_GRACE: Duration = Duration::from_secs(1);

/// What `up` was asked to do.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Services to bring up (with their dependencies); empty means all.
    pub services: Vec<String>,
    /// How long to wait for dependencies and health before giving up.
    pub timeout: Duration,
    /// Wait until every service is healthy (else only what dependencies need).
    pub wait_healthy: bool,
    /// Build images with a `build:` section even when present.
    pub rebuild: bool,
    /// Grace period when stopping containers that are replaced; `None`: each container's own.
    pub stop_timeout: Option<Duration>,
}

/// A replica that `up` left running.
#[derive(Debug, Clone, PartialEq)]
pub struct Replica {
    pub service: String,
    pub replica: u32,
    pub container_id: String,
    pub container_name: String,
}

/// What `up` did.
#[derive(Debug, Clone)]
pub struct UpOutcome {
    pub replicas: Vec<Replica>,
    /// Services whose containers were created or recreated.
    pub changed: Vec<String>,
    /// The manifest `up` ran: completed from the images ([`image::from_images`]: ports, health
    /// probes), so the control plane probes what `up` waited for.
    pub manifest: Manifest,
}

/// Creates the project's networks and named volumes. Returns the networks the containers join
/// (their gateway addresses are where containers reach the control plane).
pub async fn prepare(
    docker: &Docker,
    manifest: &Manifest,
    events: &EventSink,
) -> Result<Vec<NetworkInfo>, EngineError> {
    let project = &manifest.project;
    let networks = prepare_networks(docker, manifest, events).await?;
    for (name, volume) in &manifest.volumes {
        let engine_name = volume
            .fixed_name(name)
            .unwrap_or_else(|| labels::volume_name(project, name));
        if volume.external {
            if !docker.volume_exists(&engine_name).await? {
                return Err(EngineError::Api {
                    action: format!("using external volume `{engine_name}`"),
                    message: format!("volume `{engine_name}` does not exist; create it with `docker volume create {engine_name}`"),
                });
            }
            continue;
        }
        if docker.ensure_volume(&engine_name, project, volume).await? {
            events.emit(crate::events::Event::Resource {
                kind: "volume".to_string(),
                name: engine_name,
                action: "created".to_string(),
            });
        }
    }
    Ok(networks)
}

/// Every network a container service joins: project networks created (labelled, so `down` removes
/// them), external ones checked; the engine's `bridge` when a service has `network_mode: bridge`.
/// Declared networks no service joins are not created (as compose).
async fn prepare_networks(
    docker: &Docker,
    manifest: &Manifest,
    events: &EventSink,
) -> Result<Vec<NetworkInfo>, EngineError> {
    let mut networks = Vec::new();
    for key in used_networks(manifest) {
        let Some(spec) = manifest.networks.get(key) else {
            continue;
        };
        let (network, created) = docker.ensure_network(&manifest.project, key, spec).await?;
        if created {
            events.emit(crate::events::Event::Resource {
                kind: "network".to_string(),
                name: network.name.clone(),
                action: "created".to_string(),
            });
        }
        networks.push(network);
    }
    networks.extend(bridge_network(docker, manifest).await?);
    Ok(networks)
}

/// The networks [`prepare`] made or found, as they are now (none created); missing ones left out.
pub async fn existing_networks(
    docker: &Docker,
    manifest: &Manifest,
) -> Result<Vec<NetworkInfo>, EngineError> {
    let mut networks = Vec::new();
    for key in used_networks(manifest) {
        let Some(spec) = manifest.networks.get(key) else {
            continue;
        };
        if let Some(network) = docker.network_info(key, &spec.name).await? {
            networks.push(NetworkInfo {
                shared: spec.external,
                ..network
            });
        }
    }
    networks.extend(bridge_network(docker, manifest).await?);
    Ok(networks)
}

/// Keys of the networks container services join.
fn used_networks(manifest: &Manifest) -> BTreeSet<&String> {
    manifest
        .services
        .values()
        .filter(|service| service.external.is_none())
        .flat_map(|service| service.networks.keys())
        .collect()
}

/// The engine's `bridge` network when a service has `network_mode: bridge` (shared by everyone).
async fn bridge_network(
    docker: &Docker,
    manifest: &Manifest,
) -> Result<Option<NetworkInfo>, EngineError> {
    let bridged = manifest
        .services
        .values()
        .any(|service| service.external.is_none() && service.network_mode == NetworkMode::Bridge);
    if !bridged {
        return Ok(None);
    }
    Ok(docker
        .network_info("bridge", "bridge")
        .await?
        .map(|bridge| NetworkInfo {
            shared: true,
            ..bridge
        }))
}

/// The selected services plus everything they depend on, in manifest order; `external:` services
/// (processes on the host, not containers) are left out.
pub fn with_dependencies(manifest: &Manifest, selected: &[String]) -> Vec<String> {
    let container = |name: &String| {
        manifest
            .services
            .get(name)
            .is_some_and(|service| service.external.is_none())
    };
    if selected.is_empty() {
        return manifest
            .services
            .keys()
            .filter(|name| container(name))
            .cloned()
            .collect();
    }
    let mut wanted = BTreeSet::new();
    let mut pending: Vec<String> = selected.to_vec();
    while let Some(name) = pending.pop() {
        if let Some(service) = manifest.services.get(&name) {
            if wanted.insert(name.clone()) {
                pending.extend(service.depends_on.keys().cloned());
            }
        }
    }
    wanted.into_iter().filter(|name| container(name)).collect()
}

/// The meshed services among `selected`, with the ports their forwarders listen on (the images'
/// exposed ports included). Only services whose forwarder can reach the mesh intake are meshed.
async fn meshed_services(
    docker: &Docker,
    manifest: &Manifest,
    selected: &[String],
    wiring: &Wiring,
) -> Result<BTreeMap<String, Vec<u16>>, EngineError> {
    let mut meshed = BTreeMap::new();
    for name in selected {
        let service = &manifest.services[name];
        let candidate = matches!(
            mesh::verdict(manifest, service, None),
            Verdict::Meshed { .. } | Verdict::Off(mesh::Off::NoPort { .. })
        );
        if !candidate || !wiring.mesh_intake.contains_key(name) {
            continue;
        }
        let image_ports: Vec<u16> = docker
            .image_exposed_ports(&service.image)
            .await?
            .into_iter()
            .filter(|(_, protocol)| protocol == "tcp")
            .map(|(port, _)| port)
            .collect();
        if let Verdict::Meshed { ports } = mesh::verdict(manifest, service, Some(&image_ports)) {
            meshed.insert(name.clone(), ports);
        }
    }
    Ok(meshed)
}

/// Plans the forwarders to match `meshed` and removes those of services no longer meshed (or no
/// longer in the manifest); returns, per service, what makes its forwarder (created, recreated
/// when its config changed, started), which [`up`] runs beside the service's own bring-up, so no
/// service waits for every forwarder. Forwarders of services this `up` does not touch are left
/// alone. Plumbing: no health gating; the engine restarts them (`unless-stopped`).
async fn plan_forwarders(
    docker: &Docker,
    manifest: &Manifest,
    meshed: &BTreeMap<String, Vec<u16>>,
    wiring: &Wiring,
    selected: &[String],
    events: &EventSink,
) -> Result<BTreeMap<String, Vec<ReplicaAction>>, EngineError> {
    let observed = docker.mesh_forwarders(&manifest.project).await?;
    if meshed.is_empty() && observed.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut desired: BTreeMap<String, Vec<ContainerSpec>> = BTreeMap::new();
    if !meshed.is_empty() {
        let token = crate::control::mesh_token::mesh_token(&manifest.project).map_err(|error| {
            EngineError::Api {
                action: "reading the project's mesh token".to_string(),
                message: error.to_string(),
            }
        })?;
        let image = super::forwarder::ensure_image(docker).await?;
        for (name, ports) in meshed {
            let Some(intake) = wiring.mesh_intake.get(name) else {
                continue;
            };
            let inputs = ForwarderInputs {
                image: &image,
                intake,
                token: &token,
            };
            let spec = mesh::forwarder_spec(manifest, &manifest.services[name], ports, inputs);
            desired.insert(name.clone(), vec![spec.with_hash_label()]);
        }
    }
    let untouched = manifest
        .services
        .values()
        .filter(|service| service.external.is_none() && !selected.contains(&service.name))
        .map(|service| service.name.clone());
    let plan = plan::forwarders(&desired, &observed, untouched.collect());
    let stale = plan
        .orphans
        .iter()
        .chain(plan.services.values().flat_map(|service| &service.remove))
        .map(|container| remove_forwarder(docker, container, None, events));
    for result in futures_util::future::join_all(stale).await {
        result?;
    }
    Ok(plan
        .services
        .into_iter()
        .map(|(name, service)| (name, service.replicas))
        .collect())
}

/// Makes one service's forwarder as [`plan_forwarders`] planned it.
async fn start_forwarders(
    docker: &Docker,
    actions: Vec<ReplicaAction>,
    events: &EventSink,
) -> Result<(), EngineError> {
    let starts = actions
        .iter()
        .map(|action| start_forwarder(docker, action, events));
    for result in futures_util::future::join_all(starts).await {
        result?;
    }
    Ok(())
}

/// Creates, recreates or starts one forwarder as its plan says.
async fn start_forwarder(
    docker: &Docker,
    action: &ReplicaAction,
    events: &EventSink,
) -> Result<(), EngineError> {
    let (spec, id, done) = match action {
        ReplicaAction::Keep { container, .. } if container.state == "running" => return Ok(()),
        ReplicaAction::Keep { container, spec } => (spec, container.id.clone(), "started"),
        ReplicaAction::Create(spec) => (spec, docker.create_container(spec).await?, "created"),
        ReplicaAction::Recreate { old, spec } => {
            docker
                .stop_container(&old.id, Some(FORWARDER_GRACE))
                .await?;
            docker.remove_container(&old.id).await?;
            (spec, docker.create_container(spec).await?, "recreated")
        }
    };
    docker.start_container(&id, &spec.service).await?;
    events.emit(crate::events::Event::Resource {
        kind: "mesh forwarder".to_string(),
        name: spec.name.clone(),
        action: done.to_string(),
    });
    Ok(())
}

/// Stops (within [`FORWARDER_GRACE`], or `timeout` when shorter) and removes one forwarder.
async fn remove_forwarder(
    docker: &Docker,
    container: &ObservedContainer,
    timeout: Option<Duration>,
    events: &EventSink,
) -> Result<String, EngineError> {
    let grace = timeout.map_or(FORWARDER_GRACE, |timeout| timeout.min(FORWARDER_GRACE));
    docker.stop_container(&container.id, Some(grace)).await?;
    docker.remove_container(&container.id).await?;
    events.emit(crate::events::Event::Resource {
        kind: "mesh forwarder".to_string(),
        name: container.name.clone(),
        action: "removed".to_string(),
    });
    Ok(container.name.clone())
}

/// The state a service has reached, shared with its dependents.
#[derive(Debug, Clone, PartialEq)]
enum Reached {
    Pending,
    Started,
    Healthy,
    Completed,
    Failed,
}

/// Brings the services up (see the module docs) on the networks [`prepare`] made.
pub async fn up(
    docker: &Docker,
    manifest: &Manifest,
    wiring: &Wiring,
    options: &UpOptions,
    events: &EventSink,
    cancel: &CancellationToken,
) -> Result<UpOutcome, EngineError> {
    let selected = with_dependencies(manifest, &options.services);
    let image_ids =
        image::ensure_images(docker, manifest, &selected, options.rebuild, events).await?;
    // Before anything starts: dependents wait on probes that may come from the images.
    let completed = image::from_images(docker, manifest, &selected).await?;
    let manifest = &completed;
    let meshed = meshed_services(docker, manifest, &selected, wiring).await?;
    let wiring = &Wiring {
        meshed: meshed.keys().cloned().collect(),
        ..wiring.clone()
    };

    let desired: BTreeMap<String, Vec<ContainerSpec>> = selected
        .iter()
        .map(|name| {
            let service = &manifest.services[name];
            let specs = (1..=service.replicas)
                .map(|replica| {
                    ContainerSpec::new(manifest, service, replica, wiring).with_hash_label()
                })
                .collect();
            (name.clone(), specs)
        })
        .collect();
    let observed = docker.project_containers(&manifest.project).await?;
    let all_services: BTreeSet<String> = manifest.services.keys().cloned().collect();
    let plan = plan::plan(&desired, &observed, &image_ids, &all_services);

    let removals = plan
        .orphans
        .iter()
        .map(|container| (container, true))
        .chain(
            plan.services
                .values()
                .flat_map(|service| service.remove.iter().map(|container| (container, false))),
        );
    let removals = removals.map(|(container, orphan)| async move {
        docker
            .stop_container(&container.id, options.stop_timeout)
            .await?;
        docker.remove_container(&container.id).await?;
        if orphan {
            events.note(format!(
                "removed container {} (service `{}` is no longer in the manifest)",
                container.name, container.service
            ));
        } else {
            events.step(
                &container.service,
                container.replica,
                Step::Removed,
                "scaled down",
                Duration::ZERO,
            );
        }
        Ok::<_, EngineError>(())
    });
    for result in futures_util::future::join_all(removals).await {
        result?;
    }
    // A service's forwarder (which holds its names) is made beside the service itself, and is
    // there before the service counts as started for its dependents.
    let mut forwarders =
        plan_forwarders(docker, manifest, &meshed, wiring, &selected, events).await?;

    // Which conditions dependents wait for, per service.
    let mut needed: BTreeMap<&str, BTreeSet<DependencyCondition>> = BTreeMap::new();
    for name in &selected {
        for (dependency, condition) in &manifest.services[name].depends_on {
            needed
                .entry(dependency.as_str())
                .or_default()
                .insert(*condition);
        }
    }
    let channels: BTreeMap<&str, (watch::Sender<Reached>, watch::Receiver<Reached>)> = selected
        .iter()
        .map(|name| (name.as_str(), watch::channel(Reached::Pending)))
        .collect();
    let deadline = Instant::now() + options.timeout;
    let tasks = plan.services.values().map(|service_plan| {
        let service = &manifest.services[&service_plan.service];
        let context = ServiceRun {
            docker,
            service,
            events,
            cancel,
            deadline,
            options,
            needed: needed
                .get(service.name.as_str())
                .cloned()
                .unwrap_or_default(),
        };
        // An `external:` dependency is the developer's own process: nothing to wait for.
        let dependencies: Vec<(String, DependencyCondition, watch::Receiver<Reached>)> = service
            .depends_on
            .iter()
            .filter_map(|(name, condition)| {
                Some((
                    name.clone(),
                    *condition,
                    channels.get(name.as_str())?.1.clone(),
                ))
            })
            .collect();
        let sender = &channels[service.name.as_str()].0;
        let forwarder = start_forwarders(
            docker,
            forwarders.remove(&service.name).unwrap_or_default(),
            events,
        );
        async move {
            let result = context
                .run(&service_plan.replicas, dependencies, sender, forwarder)
                .await;
            if result.is_err() {
                sender.send_replace(Reached::Failed);
            }
            result
        }
    });
    let results = futures_util::future::join_all(tasks).await;

    let mut outcome = UpOutcome {
        replicas: Vec::new(),
        changed: Vec::new(),
        manifest: manifest.clone(),
    };
    let mut first_error: Option<EngineError> = None;
    for result in results {
        match result {
            Ok((replicas, changed)) => {
                if changed {
                    if let Some(replica) = replicas.first() {
                        outcome.changed.push(replica.service.clone());
                    }
                }
                outcome.replicas.extend(replicas);
            }
            // A dependency failure is a consequence; report the cause.
            Err(error @ EngineError::DependencyFailed { .. }) => {
                first_error.get_or_insert(error);
            }
            Err(error) => {
                if matches!(
                    first_error,
                    None | Some(EngineError::DependencyFailed { .. })
                ) {
                    first_error = Some(error);
                }
            }
        }
    }
    if cancel.is_cancelled() {
        return Err(EngineError::Interrupted);
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(outcome),
    }
}

/// Everything one service's bring-up needs.
struct ServiceRun<'a> {
    docker: &'a Docker,
    service: &'a Service,
    events: &'a EventSink,
    cancel: &'a CancellationToken,
    deadline: Instant,
    options: &'a UpOptions,
    /// Conditions dependents wait for on this service.
    needed: BTreeSet<DependencyCondition>,
}

impl ServiceRun<'_> {
    /// Brings the service up once its dependencies are there, while `forwarder` (its mesh
    /// forwarder's bring-up) runs from the start; both are done before dependents hear it started.
    async fn run(
        &self,
        actions: &[ReplicaAction],
        dependencies: Vec<(String, DependencyCondition, watch::Receiver<Reached>)>,
        reached: &watch::Sender<Reached>,
        forwarder: impl std::future::Future<Output = Result<(), EngineError>>,
    ) -> Result<(Vec<Replica>, bool), EngineError> {
        let started = Instant::now();
        let (forwarder, replicas) =
            tokio::join!(forwarder, self.start(actions, dependencies, started));
        forwarder?;
        let replicas = replicas?;
        self.after_start(replicas, reached, started).await
    }

    /// Waits for the dependencies, then creates and starts the replicas.
    async fn start(
        &self,
        actions: &[ReplicaAction],
        dependencies: Vec<(String, DependencyCondition, watch::Receiver<Reached>)>,
        started: Instant,
    ) -> Result<Vec<(Replica, bool)>, EngineError> {
        let name = &self.service.name;
        if !dependencies.is_empty() {
            let names: Vec<&str> = dependencies
                .iter()
                .map(|(name, _, _)| name.as_str())
                .collect();
            self.events.step(
                name,
                0,
                Step::Waiting,
                format!("for {}", names.join(", ")),
                started.elapsed(),
            );
            for (dependency, condition, receiver) in dependencies {
                self.wait_for(&dependency, condition, receiver).await?;
            }
        }
        futures_util::future::join_all(
            actions
                .iter()
                .map(|action| self.start_replica(action, started)),
        )
        .await
        .into_iter()
        .collect()
    }

    /// Tells dependents the service started, then waits for what they need (healthy, completed).
    async fn after_start(
        &self,
        replicas: Vec<(Replica, bool)>,
        reached: &watch::Sender<Reached>,
        started: Instant,
    ) -> Result<(Vec<Replica>, bool), EngineError> {
        let name = &self.service.name;
        let changed = replicas.iter().any(|(_, changed)| *changed);
        let replicas: Vec<Replica> = replicas.into_iter().map(|(replica, _)| replica).collect();
        reached.send_replace(Reached::Started);

        let must_be_healthy =
            self.options.wait_healthy || self.needed.contains(&DependencyCondition::Healthy);
        if let (Some(healthcheck), true) = (&self.service.healthcheck, must_be_healthy) {
            futures_util::future::join_all(
                replicas
                    .iter()
                    .map(|replica| self.wait_healthy(replica, healthcheck)),
            )
            .await
            .into_iter()
            .collect::<Result<Vec<()>, EngineError>>()?;
            for replica in &replicas {
                self.events
                    .step(name, replica.replica, Step::Healthy, "", started.elapsed());
            }
            reached.send_replace(Reached::Healthy);
        } else {
            for replica in &replicas {
                self.events
                    .step(name, replica.replica, Step::Started, "", started.elapsed());
            }
        }
        if self.needed.contains(&DependencyCondition::Completed) {
            for replica in &replicas {
                let code = self
                    .until_deadline(
                        self.docker.wait_container(&replica.container_id),
                        "completed",
                    )
                    .await??;
                if code != 0 {
                    return Err(self.exited(replica, code).await);
                }
            }
            for replica in &replicas {
                self.events.step(
                    name,
                    replica.replica,
                    Step::Completed,
                    "exit code 0",
                    started.elapsed(),
                );
            }
            reached.send_replace(Reached::Completed);
        }
        Ok((replicas, changed))
    }

    /// Waits until `dependency` reaches `condition`.
    async fn wait_for(
        &self,
        dependency: &str,
        condition: DependencyCondition,
        mut receiver: watch::Receiver<Reached>,
    ) -> Result<(), EngineError> {
        let satisfied = |reached: &Reached| match condition {
            DependencyCondition::Started => {
                matches!(
                    reached,
                    Reached::Started | Reached::Healthy | Reached::Completed
                )
            }
            DependencyCondition::Healthy => {
                matches!(reached, Reached::Healthy | Reached::Completed)
            }
            DependencyCondition::Completed => matches!(reached, Reached::Completed),
        };
        let failed = EngineError::DependencyFailed {
            service: self.service.name.clone(),
            dependency: dependency.to_string(),
        };
        let wait = receiver.wait_for(|reached| satisfied(reached) || *reached == Reached::Failed);
        let reached = self
            .until_deadline(wait, "started")
            .await?
            .map_err(|_| failed)?
            .clone();
        if reached == Reached::Failed {
            return Err(EngineError::DependencyFailed {
                service: self.service.name.clone(),
                dependency: dependency.to_string(),
            });
        }
        Ok(())
    }

    /// Runs `future` until the `up` deadline or cancellation.
    async fn until_deadline<T>(
        &self,
        future: impl std::future::Future<Output = T>,
        condition: &str,
    ) -> Result<T, EngineError> {
        tokio::select! {
            value = future => Ok(value),
            _ = self.cancel.cancelled() => Err(EngineError::Interrupted),
            _ = tokio::time::sleep_until(self.deadline) => Err(EngineError::Timeout {
                service: self.service.name.clone(),
                condition: condition.to_string(),
                waited: self.options.timeout,
                last_probe: "(still waiting for a dependency)".to_string(),
            }),
        }
    }

    /// Creates/recreates/starts one replica as the plan says; true when it is a new container.
    async fn start_replica(
        &self,
        action: &ReplicaAction,
        started: Instant,
    ) -> Result<(Replica, bool), EngineError> {
        let name = &self.service.name;
        let (spec, container_id, changed) = match action {
            ReplicaAction::Keep { container, spec } => {
                if container.state == "running" {
                    self.events
                        .step(name, spec.replica, Step::Unchanged, "", started.elapsed());
                    return Ok((replica_of(spec, &container.id), false));
                }
                (spec, container.id.clone(), false)
            }
            ReplicaAction::Create(spec) => {
                self.events
                    .step(name, spec.replica, Step::Creating, "", started.elapsed());
                (spec, self.docker.create_container(spec).await?, true)
            }
            ReplicaAction::Recreate { old, spec } => {
                self.events
                    .step(name, spec.replica, Step::Recreating, "", started.elapsed());
                // Anonymous volumes keep their data across the recreate, as under compose.
                let volumes = self.docker.anonymous_volumes(&old.id).await?;
                let (kept, dropped) = super::spec::inherited_volumes(volumes, &spec.volumes);
                self.docker
                    .stop_container(&old.id, self.options.stop_timeout)
                    .await?;
                self.docker
                    .remove_container_keeping_volumes(&old.id)
                    .await?;
                for volume in &dropped {
                    self.docker.remove_volume(&volume.name).await?;
                }
                let id = self.docker.create_container_inheriting(spec, &kept).await?;
                (spec, id, true)
            }
        };
        if self.cancel.is_cancelled() {
            return Err(EngineError::Interrupted);
        }
        self.events
            .step(name, spec.replica, Step::Starting, "", started.elapsed());
        self.write_files(spec, &container_id).await?;
        self.docker.start_container(&container_id, name).await?;
        Ok((replica_of(spec, &container_id), changed))
    }

    /// Writes the replica's secrets and configs from `environment`/`content` into its container,
    /// before every start as compose does (a kept, stopped container gets them again).
    async fn write_files(
        &self,
        spec: &ContainerSpec,
        container_id: &str,
    ) -> Result<(), EngineError> {
        if spec.files.is_empty() {
            return Ok(());
        }
        let archive = super::files::archive(&spec.files).map_err(|error| EngineError::Service {
            service: self.service.name.clone(),
            action: "writing its secrets and configs".to_string(),
            message: error.to_string(),
        })?;
        self.docker
            .upload_archive(container_id, &self.service.name, archive)
            .await
    }

    /// Probes one replica every [`health::STARTUP_PROBE_INTERVAL`] until it is healthy, exits,
    /// is declared unhealthy, or the deadline passes.
    async fn wait_healthy(
        &self,
        replica: &Replica,
        healthcheck: &crate::manifest::Healthcheck,
    ) -> Result<(), EngineError> {
        let mut verdict = StartupVerdict::new();
        let mut last_probe = "no probe has run yet".to_string();
        let mut target: Option<ProbeTarget> = None;
        loop {
            let status = self.docker.container_status(&replica.container_id).await?;
            match status {
                None => {
                    return Err(EngineError::Service {
                        service: self.service.name.clone(),
                        action: "waiting for health".to_string(),
                        message: format!("container {} was removed", replica.container_name),
                    })
                }
                Some(status) if !status.running && !status.restarting => {
                    return Err(self.exited(replica, status.exit_code.unwrap_or(-1)).await);
                }
                Some(_) => {}
            }
            if target.is_none() {
                target = self.probe_target(replica).await?;
            }
            if let Some(target) = &target {
                match health::probe(self.docker, healthcheck, target).await {
                    Ok(()) => return Ok(()),
                    Err(result) => {
                        last_probe = result;
                        if verdict.failed(healthcheck) {
                            return Err(EngineError::Unhealthy {
                                service: self.service.name.clone(),
                                container: replica.container_name.clone(),
                                last_probe,
                                logs: self
                                    .docker
                                    .last_log_lines(&replica.container_id, FAILURE_LOG_LINES)
                                    .await,
                            });
                        }
                    }
                }
            }
            let pause = tokio::time::sleep(health::STARTUP_PROBE_INTERVAL);
            tokio::select! {
                _ = pause => {}
                _ = self.cancel.cancelled() => return Err(EngineError::Interrupted),
                _ = tokio::time::sleep_until(self.deadline) => {
                    return Err(EngineError::Timeout {
                        service: self.service.name.clone(),
                        condition: "healthy".to_string(),
                        waited: self.options.timeout,
                        last_probe,
                    })
                }
            }
        }
    }

    /// Where the health probe reaches the replica (container IP on Linux, else the published port).
    async fn probe_target(&self, replica: &Replica) -> Result<Option<ProbeTarget>, EngineError> {
        let Some((ip, published)) = self
            .docker
            .container_addresses(&replica.container_id)
            .await?
        else {
            return Ok(None);
        };
        let address = self.service.port.and_then(|port| {
            health::reachable_address(self.docker, ip.as_deref(), &published, port)
        });
        Ok(Some(ProbeTarget {
            container_id: replica.container_id.clone(),
            address,
            host: self.service.name.clone(),
        }))
    }

    async fn exited(&self, replica: &Replica, exit_code: i64) -> EngineError {
        EngineError::ContainerExited {
            service: self.service.name.clone(),
            container: replica.container_name.clone(),
            exit_code,
            logs: self
                .docker
                .last_log_lines(&replica.container_id, FAILURE_LOG_LINES)
                .await,
        }
    }
}

fn replica_of(spec: &ContainerSpec, container_id: &str) -> Replica {
    Replica {
        service: spec.service.clone(),
        replica: spec.replica,
        container_id: container_id.to_string(),
        container_name: spec.name.clone(),
    }
}

/// What `down` was asked to do.
#[derive(Debug, Clone)]
pub struct DownOptions {
    /// Also remove the project's named volumes.
    pub remove_volumes: bool,
    /// Grace period between the stop signal and SIGKILL; `None`: each container's own
    /// (`stop_grace_period`, else the engine's 10s).
    pub timeout: Option<Duration>,
}

/// What `down` removed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DownOutcome {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
}

/// Stops and removes everything of `project` found by label, all containers (mesh forwarders
/// too) in parallel; named volumes only with `remove_volumes`. The project's mesh token goes too.
pub async fn down(
    docker: &Docker,
    project: &str,
    options: &DownOptions,
    events: &EventSink,
) -> Result<DownOutcome, EngineError> {
    let containers = docker.project_containers(project).await?;
    let forwarders = docker.mesh_forwarders(project).await?;
    let mut outcome = DownOutcome::default();
    let removals = containers
        .iter()
        .map(|container| remove_one(docker, container, options.timeout, events));
    let forwarder_removals = forwarders
        .iter()
        .map(|container| remove_forwarder(docker, container, options.timeout, events));
    let (removed, forwarders_removed) = tokio::join!(
        futures_util::future::join_all(removals),
        futures_util::future::join_all(forwarder_removals)
    );
    for result in removed.into_iter().chain(forwarders_removed) {
        outcome.containers.push(result?);
    }
    // No forwarder is left to send it; the next `up` makes a new one.
    if let Err(error) = crate::control::mesh_token::remove_mesh_token(project) {
        tracing::warn!(%error, "cannot remove the project's mesh token");
    }
    if let Err(error) = crate::control::mesh_token::remove_handoff_folder(project) {
        tracing::warn!(%error, "cannot remove the project's mesh handoff folder");
    }
    for network in docker.labelled_networks(Some(project)).await? {
        docker.remove_network(&network).await?;
        events.emit(crate::events::Event::Resource {
            kind: "network".to_string(),
            name: network.clone(),
            action: "removed".to_string(),
        });
        outcome.networks.push(network);
    }
    if options.remove_volumes {
        for volume in docker.labelled_volumes(Some(project)).await? {
            docker.remove_volume(&volume).await?;
            events.emit(crate::events::Event::Resource {
                kind: "volume".to_string(),
                name: volume.clone(),
                action: "removed".to_string(),
            });
            outcome.volumes.push(volume);
        }
    }
    Ok(outcome)
}

async fn remove_one(
    docker: &Docker,
    container: &ObservedContainer,
    timeout: Option<Duration>,
    events: &EventSink,
) -> Result<String, EngineError> {
    let started = Instant::now();
    if container.state == "running" || container.state == "restarting" {
        events.step(
            &container.service,
            container.replica,
            Step::Stopping,
            "",
            started.elapsed(),
        );
        docker.stop_container(&container.id, timeout).await?;
    }
    docker.remove_container(&container.id).await?;
    events.step(
        &container.service,
        container.replica,
        Step::Removed,
        "",
        started.elapsed(),
    );
    Ok(container.name.clone())
}
