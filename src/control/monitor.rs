//! The control plane's view of the running containers, kept current: which replicas serve each
//! service (and whether they are healthy), which container address (on any of its networks) is
//! which caller, and a one-line state per service for the proxy's error pages. The proxy is fed
//! from here. The containers come from the control plane's shared [`ContainerWatch`] (a look
//! follows each change at once); the replicas are probed every [`INTERVAL`], and the results
//! kept per container for the dashboard ([`Monitor::health`], announced by [`Monitor::looks`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::engine::docker::{Docker, ObservedContainer};
use crate::engine::health;
use crate::engine::watch::ContainerWatch;
use crate::manifest::Manifest;
use crate::proxy::{Caller, Endpoint, Proxy, ServiceStatus};

/// How often the monitor probes the replicas again (it looks at once when containers change).
pub const INTERVAL: Duration = Duration::from_millis(1000);

/// What the monitor knows, shared with the proxy (as its [`ServiceStatus`]).
pub struct Monitor {
    docker: Docker,
    containers: ContainerWatch,
    manifest: RwLock<Arc<Manifest>>,
    states: RwLock<HashMap<String, String>>,
    /// The last probe of each running replica, by container id (12 characters).
    health: RwLock<HashMap<String, Health>>,
    /// Counts the looks taken (receivers learn of each).
    looks: watch::Sender<u64>,
}

/// A replica's last probe: `healthy`, `unhealthy` (with the failing probe's words) or `none` (no
/// health check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub health: &'static str,
    pub detail: Option<String>,
}

impl Monitor {
    pub fn new(docker: Docker, containers: ContainerWatch, manifest: &Manifest) -> Arc<Monitor> {
        Arc::new(Monitor {
            docker,
            containers,
            manifest: RwLock::new(Arc::new(manifest.clone())),
            states: RwLock::new(HashMap::new()),
            health: RwLock::new(HashMap::new()),
            looks: watch::channel(0).0,
        })
    }

    /// The last probe of a replica (by the first 12 characters of its container id).
    pub fn health(&self, id: &str) -> Option<Health> {
        self.health.read().ok()?.get(id).cloned()
    }

    /// Changes after every look (new listing, new probe results).
    pub fn looks(&self) -> watch::Receiver<u64> {
        self.looks.subscribe()
    }

    /// Uses a new manifest from the next look on (a re-up).
    pub fn set_manifest(&self, manifest: &Manifest) {
        if let Ok(mut current) = self.manifest.write() {
            *current = Arc::new(manifest.clone());
        }
    }

    fn manifest(&self) -> Arc<Manifest> {
        self.manifest
            .read()
            .map(|manifest| manifest.clone())
            .unwrap_or_else(|poison| poison.into_inner().clone())
    }

    /// One look at a fresh listing of the containers (taken after this call).
    pub async fn refresh(&self, proxy: &Proxy) {
        if let Some(containers) = self.containers.fresh().await {
            self.look(proxy, &containers).await;
        }
    }

    /// Probes the running replicas of `containers` and updates the proxy.
    async fn look(&self, proxy: &Proxy, containers: &[ObservedContainer]) {
        let manifest = self.manifest();
        let dialers = self.dialers().await;
        let mut dial_routes: HashMap<IpAddr, SocketAddr> = HashMap::new();
        let mut callers: HashMap<IpAddr, Caller> = HashMap::new();
        let mut states: HashMap<String, String> = HashMap::new();
        let mut health: HashMap<String, Health> = HashMap::new();
        for service in manifest
            .services
            .values()
            .filter(|service| service.external.is_none())
        {
            let replicas: Vec<&ObservedContainer> = containers
                .iter()
                .filter(|container| container.service == service.name)
                .collect();
            for container in &replicas {
                let caller = Caller {
                    service: service.name.clone(),
                    replica: format!("{}-{}", service.name, container.replica),
                };
                for ip in container
                    .addresses
                    .iter()
                    .filter_map(|ip| ip.parse::<IpAddr>().ok())
                {
                    callers.insert(ip, caller.clone());
                    if let Some(dialer) = dialers.get(&service.name) {
                        dial_routes.insert(ip, *dialer);
                    }
                }
            }
            let dialed = dialers.contains_key(&service.name);
            let probes = replicas
                .iter()
                .filter(|container| container.state == "running")
                .map(|container| async move {
                    let (address, probe_address) =
                        self.replica_address(service, container, dialed)?;
                    let verdict = match &service.healthcheck {
                        Some(healthcheck) => {
                            let target = health::ProbeTarget {
                                container_id: container.id.clone(),
                                address: probe_address,
                                host: service.name.clone(),
                            };
                            health::probe(&self.docker, healthcheck, &target).await
                        }
                        None => Ok(()),
                    };
                    let endpoint = Endpoint {
                        name: format!("{}-{}", service.name, container.replica),
                        address,
                        healthy: verdict.is_ok(),
                    };
                    Some((
                        container.id.chars().take(12).collect::<String>(),
                        (endpoint, verdict.err()),
                    ))
                });
            let (ids, probed): (Vec<String>, Vec<(Endpoint, Option<String>)>) =
                futures_util::future::join_all(probes)
                    .await
                    .into_iter()
                    .flatten()
                    .unzip();
            states.insert(service.name.clone(), describe_state(&replicas, &probed));
            for (id, (_, failure)) in ids.into_iter().zip(&probed) {
                let verdict = match (&service.healthcheck, failure) {
                    (None, _) => Health {
                        health: "none",
                        detail: None,
                    },
                    (Some(_), None) => Health {
                        health: "healthy",
                        detail: None,
                    },
                    (Some(_), Some(detail)) => Health {
                        health: "unhealthy",
                        detail: Some(detail.clone()),
                    },
                };
                health.insert(id, verdict);
            }
            proxy.set_endpoints(
                &service.name,
                probed.into_iter().map(|(endpoint, _)| endpoint).collect(),
            );
        }
        proxy.set_callers(callers);
        proxy.set_dial_routes(dial_routes);
        if let Ok(mut current) = self.states.write() {
            *current = states;
        }
        if let Ok(mut current) = self.health.write() {
            *current = health;
        }
        self.looks.send_modify(|looks| *looks += 1);
    }

    /// Where the host cannot connect containers: each meshed service's forwarder dial address
    /// (its dial port, published on the host's loopback), by service. Empty elsewhere.
    async fn dialers(&self) -> HashMap<String, SocketAddr> {
        if self.docker.host_reaches_containers() {
            return HashMap::new();
        }
        let project = self.manifest().project.clone();
        let Ok(forwarders) = self.docker.mesh_forwarders(&project).await else {
            return HashMap::new();
        };
        forwarders
            .iter()
            .filter(|forwarder| forwarder.state == "running")
            .filter_map(|forwarder| {
                let service = forwarder.labels.get(crate::engine::labels::MESH_SERVICE)?;
                let dial_port: u16 = forwarder
                    .labels
                    .get(crate::engine::mesh::DIAL_PORT_LABEL)?
                    .parse()
                    .ok()?;
                let published = forwarder.ports.iter().find(|publish| {
                    publish.container_port == dial_port && publish.protocol == "tcp"
                })?;
                Some((service.clone(), published.local_address()?))
            })
            .collect()
    }

    /// Where the proxy reaches a replica, and where its health is probed. With `port:`, the
    /// service's port (the container's address, or the published port where the host does not
    /// reach containers). Without, the container's own address at port 0, for the mesh intake,
    /// which connects at the port each caller dialed (none where the host does not reach
    /// containers); an address-based health probe there has no port to try. `dialed`: the
    /// service's forwarder connects its replicas for the proxy, so the proxy's address is the
    /// container's own (the probe still uses the published port).
    fn replica_address(
        &self,
        service: &crate::manifest::Service,
        container: &ObservedContainer,
        dialed: bool,
    ) -> Option<(SocketAddr, Option<SocketAddr>)> {
        if dialed {
            let ip: IpAddr = container.ip.as_deref()?.parse().ok()?;
            let probe = service.port.and_then(|port| {
                health::reachable_address(&self.docker, None, &container.ports, port)
            });
            return Some((SocketAddr::new(ip, service.port.unwrap_or(0)), probe));
        }
        match service.port {
            Some(port) => {
                let address = health::reachable_address(
                    &self.docker,
                    container.ip.as_deref(),
                    &container.ports,
                    port,
                )?;
                Some((address, Some(address)))
            }
            None => {
                let ip: IpAddr = container
                    .ip
                    .as_deref()
                    .filter(|_| self.docker.host_reaches_containers())?
                    .parse()
                    .ok()?;
                Some((SocketAddr::new(ip, 0), None))
            }
        }
    }

    /// Looks at each new listing, and every [`INTERVAL`] in any case, until `shutdown`.
    pub async fn run(self: Arc<Self>, proxy: Proxy, shutdown: CancellationToken) {
        let mut listings = self.containers.subscribe();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = listings.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(INTERVAL) => {}
            }
            let latest = listings.borrow_and_update().clone();
            if let Some(containers) = latest {
                self.look(&proxy, &containers).await;
            }
        }
    }
}

/// `running (2 replicas)`, `unhealthy: GET /health → 500`, `exited with code 1 (3 seconds ago)`.
fn describe_state(
    replicas: &[&ObservedContainer],
    probed: &[(Endpoint, Option<String>)],
) -> String {
    if replicas.is_empty() {
        return "no container (not started, or removed)".to_string();
    }
    if probed.iter().any(|(endpoint, _)| endpoint.healthy) {
        let healthy = probed
            .iter()
            .filter(|(endpoint, _)| endpoint.healthy)
            .count();
        return format!("running ({healthy} of {} replicas healthy)", replicas.len());
    }
    // A probe's failure says why a running replica is not served; once none runs, how it ended
    // says more (its last probe, refused while it shut down, may still be on record).
    let running = replicas
        .iter()
        .any(|container| container.state == "running");
    if let (true, Some((_, Some(probe)))) = (running, probed.first()) {
        return format!("unhealthy: {probe}");
    }
    let stopped = replicas
        .iter()
        .find(|container| container.state != "running")
        .unwrap_or(&replicas[0]);
    // Docker's words: "Exited (1) 3 seconds ago".
    let status = &stopped.status;
    match status
        .strip_prefix("Exited (")
        .and_then(|rest| rest.split_once(") "))
    {
        Some((code, when)) => format!("exited with code {code} ({when})"),
        None => format!("{} ({status})", stopped.state),
    }
}

impl ServiceStatus for Monitor {
    fn state(&self, service: &str) -> Option<String> {
        self.states.read().ok()?.get(service).cloned()
    }

    fn recent_logs<'a>(&'a self, service: &'a str, lines: usize) -> BoxFuture<'a, Vec<String>> {
        Box::pin(async move {
            let Some(containers) = self.containers.latest() else {
                return Vec::new();
            };
            let mut collected = Vec::new();
            for container in containers
                .iter()
                .filter(|container| container.service == service)
            {
                collected.extend(self.docker.last_log_lines(&container.id, lines).await);
            }
            let skip = collected.len().saturating_sub(lines);
            collected.split_off(skip)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(state: &str, status: &str) -> ObservedContainer {
        ObservedContainer {
            id: "c".into(),
            name: "p-item-1".into(),
            service: "item".into(),
            replica: 1,
            config_hash: String::new(),
            image_id: String::new(),
            state: state.into(),
            status: status.into(),
            created: 0,
            ip: None,
            addresses: Vec::new(),
            ports: Vec::new(),
            labels: Default::default(),
        }
    }

    fn endpoint(healthy: bool) -> Endpoint {
        Endpoint {
            name: "item-1".into(),
            address: "127.0.0.1:1".parse().unwrap(),
            healthy,
        }
    }

    #[test]
    fn states_say_what_a_developer_needs() {
        let exited = container("exited", "Exited (1) 3 seconds ago");
        assert_eq!(
            describe_state(&[&exited], &[]),
            "exited with code 1 (3 seconds ago)"
        );
        let running = container("running", "Up 2 minutes");
        assert_eq!(
            describe_state(
                &[&running],
                &[(endpoint(false), Some("GET /health → 500".into()))]
            ),
            "unhealthy: GET /health → 500"
        );
        assert_eq!(
            describe_state(&[&running], &[(endpoint(true), None)]),
            "running (1 of 1 replicas healthy)"
        );
        assert_eq!(
            describe_state(&[], &[]),
            "no container (not started, or removed)"
        );
        assert_eq!(
            describe_state(
                &[&exited],
                &[(
                    endpoint(false),
                    Some("GET /health: Connection refused".into())
                )]
            ),
            "exited with code 1 (3 seconds ago)",
            "a stopped replica's last refused probe does not hide how it ended"
        );
    }
}
