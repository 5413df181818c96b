//! The control plane's [`System`]: watches the engine and the proxy and keeps one [`Resources`]
//! snapshot current; carries out actions through the engine (restart, stop, start) and the
//! proxy's config swap (faults).
//!
//! The containers come from the control plane's shared [`ContainerWatch`], listed again at each
//! engine event (a container that dies shows at once) and after an action; health is the
//! monitor's last probe of each replica ([`Monitor::health`]); the snapshot is rebuilt at each
//! new listing and after each of the monitor's looks (at least every second, so rates move).
//! Everything kept is bounded by the number of containers and services.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::model::{Action, FaultView, ReplicaResource, Resources, ServiceResource};
use super::{ActionError, System};
use crate::control::monitor::Monitor;
use crate::engine::docker::{Docker, ObservedContainer};
use crate::engine::watch::ContainerWatch;
use crate::manifest::{AbortFault, DelayFault, Faults, Manifest, RouteTarget};
use crate::proxy::{Proxy, ServiceStatus};

/// The window request rates are measured over.
const RATE_WINDOW: Duration = Duration::from_secs(5);

/// The control plane's view for the dashboard.
pub struct LiveSystem {
    docker: Docker,
    project: String,
    manifest: RwLock<Arc<Manifest>>,
    proxy: Proxy,
    monitor: Arc<Monitor>,
    containers: ContainerWatch,
    sender: watch::Sender<Arc<Resources>>,
    memory: Mutex<Memory>,
}

/// Requests and 5xx answers by service.
type Totals = HashMap<String, (u64, u64)>;

/// What the poller remembers between looks.
#[derive(Default)]
struct Memory {
    /// Container id → (state, start time) as last inspected.
    started: HashMap<String, (String, i64)>,
    /// Replica name → (last start time seen, restarts counted).
    restarts: HashMap<String, (i64, u32)>,
    /// Request totals by service (requests, 5xx) over the rate window.
    totals: VecDeque<(Instant, Totals)>,
}

impl LiveSystem {
    /// Starts watching; stops with `shutdown`.
    pub fn start(
        docker: Docker,
        manifest: &Manifest,
        proxy: Proxy,
        monitor: Arc<Monitor>,
        containers: ContainerWatch,
        shutdown: &CancellationToken,
    ) -> Arc<LiveSystem> {
        let system = Arc::new(LiveSystem {
            docker,
            project: manifest.project.clone(),
            manifest: RwLock::new(Arc::new(manifest.clone())),
            proxy,
            monitor,
            containers,
            sender: watch::channel(Arc::new(Resources {
                project: manifest.project.clone(),
                services: Vec::new(),
            }))
            .0,
            memory: Mutex::new(Memory::default()),
        });
        tokio::spawn(system.clone().watch(shutdown.clone()));
        system
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

    /// Rebuilds the snapshot at each new listing and each look of the monitor.
    async fn watch(self: Arc<Self>, shutdown: CancellationToken) {
        let mut listings = self.containers.subscribe();
        let mut looks = self.monitor.looks();
        loop {
            let latest = listings.borrow_and_update().clone();
            if let Some(containers) = latest {
                let snapshot = self.snapshot(&containers).await;
                self.sender.send_if_modified(|current| {
                    let changed = **current != snapshot;
                    if changed {
                        *current = Arc::new(snapshot);
                    }
                    changed
                });
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = listings.changed() => if changed.is_err() { return },
                changed = looks.changed() => if changed.is_err() { return },
            }
        }
    }

    /// The resources from one listing of the containers.
    async fn snapshot(&self, containers: &[ObservedContainer]) -> Resources {
        let manifest = self.manifest();
        let config = self.proxy.config();
        let rates = self.rates();
        let mut services = Vec::new();
        for service in manifest.services.values() {
            let mut replicas = Vec::new();
            let mut own: Vec<&ObservedContainer> = containers
                .iter()
                .filter(|container| container.service == service.name)
                .collect();
            own.sort_by_key(|container| container.replica);
            for container in own {
                replicas.push(self.replica(service, container).await);
            }
            let routes = config
                .routes
                .iter()
                .filter(|route| match &route.route.target {
                    RouteTarget::Service(name) => *name == service.name,
                    RouteTarget::Split(split) => split.iter().any(|w| w.service == service.name),
                })
                .map(|route| route.name.clone())
                .collect();
            let faults = &config.traffic(&service.name).faults;
            let (requests, errors, request_rate, error_rate) =
                rates.get(&service.name).copied().unwrap_or_default();
            services.push(ServiceResource {
                name: service.name.clone(),
                image: service.image.clone(),
                summary: self.monitor.state(&service.name).unwrap_or_default(),
                routes,
                requests,
                errors,
                request_rate,
                error_rate,
                faults: FaultView {
                    delay_ms: faults.delay.as_ref().map(|d| d.fixed.as_millis() as u64),
                    abort: faults.abort.as_ref().map(|a| a.status),
                },
                environment: masked(&service.environment),
                replicas,
            });
        }
        Resources {
            project: self.project.clone(),
            services,
        }
    }

    async fn replica(
        &self,
        service: &crate::manifest::Service,
        container: &ObservedContainer,
    ) -> ReplicaResource {
        let id: String = container.id.chars().take(12).collect();
        let name = format!("{}-{}", service.name, container.replica);
        let known = self
            .memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .started
            .get(&container.id)
            .filter(|(state, _)| *state == container.state)
            .map(|(_, started)| *started);
        let started_at = match known {
            Some(started) => started,
            None => {
                let inspected = self.docker.container_status(&container.id).await;
                let started = inspected
                    .ok()
                    .flatten()
                    .and_then(|status| status.started_at)
                    .and_then(|text| unix_seconds(&text))
                    .unwrap_or(0);
                let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
                memory
                    .started
                    .insert(container.id.clone(), (container.state.clone(), started));
                started
            }
        };
        let restarts = {
            let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
            let entry = memory
                .restarts
                .entry(name.clone())
                .or_insert((started_at, 0));
            // A first start (from `created`, start time 0) is not a restart.
            if started_at > entry.0 {
                let again = u32::from(entry.0 > 0);
                *entry = (started_at, entry.1 + again);
            }
            entry.1
        };
        let running = container.state == "running";
        let (health, health_detail) = match self.monitor.health(&id) {
            _ if !running => ("none".to_string(), None),
            Some(result) => (result.health.to_string(), result.detail),
            None if service.healthcheck.is_some() => ("starting".to_string(), None),
            None => ("none".to_string(), None),
        };
        ReplicaResource {
            name,
            id,
            state: container.state.clone(),
            health,
            health_detail,
            status: container.status.clone(),
            ports: container
                .ports
                .iter()
                .map(|port| {
                    format!(
                        "{}:{}->{}/{}",
                        if port.host_ip.is_empty() {
                            "0.0.0.0"
                        } else {
                            &port.host_ip
                        },
                        port.host_port,
                        port.container_port,
                        port.protocol
                    )
                })
                .collect(),
            started_at,
            restarts,
        }
    }

    /// Per service: requests, 5xx, requests per second and error share over [`RATE_WINDOW`].
    fn rates(&self) -> HashMap<String, (u64, u64, f64, f64)> {
        let now = Instant::now();
        let totals = request_totals(&self.proxy.metrics().render());
        let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        memory.totals.push_back((now, totals.clone()));
        while memory
            .totals
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > RATE_WINDOW)
        {
            memory.totals.pop_front();
        }
        let (oldest_at, oldest) = memory
            .totals
            .front()
            .cloned()
            .unwrap_or((now, HashMap::new()));
        let seconds = now.duration_since(oldest_at).as_secs_f64();
        totals
            .into_iter()
            .map(|(service, (requests, errors))| {
                let (before, before_errors) = oldest.get(&service).copied().unwrap_or((0, 0));
                let (delta, delta_errors) = (
                    requests.saturating_sub(before),
                    errors.saturating_sub(before_errors),
                );
                let rate = if seconds > 0.5 {
                    delta as f64 / seconds
                } else {
                    0.0
                };
                let error_rate = if delta > 0 {
                    delta_errors as f64 / delta as f64
                } else {
                    0.0
                };
                // Rounded, so an idle sandbox's snapshot stays equal from one look to the next.
                let round = |value: f64| (value * 100.0).round() / 100.0;
                (service, (requests, errors, round(rate), round(error_rate)))
            })
            .collect()
    }

    async fn containers_of(&self, service: &str) -> Result<Vec<ObservedContainer>, ActionError> {
        let manifest = self.manifest();
        let Some(declared) = manifest.services.get(service) else {
            return Err(ActionError::UnknownService(service.to_string()));
        };
        if declared.external.is_some() {
            return Err(ActionError::BadRequest(format!(
                "`{service}` is `external:`: sandbox runs no container for it"
            )));
        }
        let containers = self
            .docker
            .project_containers(&self.project)
            .await
            .map_err(|error| ActionError::Engine(error.to_string()))?;
        Ok(containers
            .into_iter()
            .filter(|container| container.service == service)
            .collect())
    }

    async fn run(&self, action: Action) -> Result<String, ActionError> {
        let service = action.service().to_string();
        let engine = |error: crate::engine::EngineError| ActionError::Engine(error.to_string());
        let done = match action {
            Action::Fault(_, fault) => return self.set_fault(&service, fault),
            Action::Stop(_) => {
                for container in self.containers_of(&service).await? {
                    self.docker
                        .stop_container(&container.id, None)
                        .await
                        .map_err(engine)?;
                }
                format!("stopped `{service}`")
            }
            Action::Start(_) => {
                for container in self.containers_of(&service).await? {
                    self.docker
                        .start_container(&container.id, &service)
                        .await
                        .map_err(engine)?;
                }
                format!("started `{service}`")
            }
            Action::Restart(_) => {
                for container in self.containers_of(&service).await? {
                    self.docker
                        .stop_container(&container.id, None)
                        .await
                        .map_err(engine)?;
                    self.docker
                        .start_container(&container.id, &service)
                        .await
                        .map_err(engine)?;
                }
                format!("restarted `{service}`")
            }
        };
        self.containers.refresh();
        Ok(done)
    }

    /// Replaces the service's faults in the proxy's config (until the next re-up).
    fn set_fault(&self, service: &str, fault: FaultView) -> Result<String, ActionError> {
        let mut config = (*self.proxy.config()).clone();
        let Some(entry) = config.services.get_mut(service) else {
            return Err(ActionError::UnknownService(service.to_string()));
        };
        entry.traffic.faults = Faults {
            delay: fault.delay_ms.map(|ms| DelayFault {
                fixed: Duration::from_millis(ms),
                percent: 100.0,
            }),
            abort: fault.abort.map(|status| AbortFault {
                status,
                grpc_status: None,
                percent: 100.0,
            }),
        };
        self.proxy.swap_config(config);
        self.containers.refresh();
        Ok(match (fault.delay_ms, fault.abort) {
            (None, None) => format!("no fault on `{service}`"),
            (delay, abort) => format!(
                "`{service}`: {}{}",
                delay.map(|ms| format!("delay {ms}ms ")).unwrap_or_default(),
                abort
                    .map(|status| format!("abort {status}"))
                    .unwrap_or_default()
            )
            .trim_end()
            .to_string(),
        })
    }
}

impl System for LiveSystem {
    fn resources(&self) -> watch::Receiver<Arc<Resources>> {
        self.sender.subscribe()
    }

    fn act(&self, action: Action) -> BoxFuture<'_, Result<String, ActionError>> {
        Box::pin(self.run(action))
    }
}

/// The environment as `sandbox config` shows it: secret-looking values as `********`.
fn masked(environment: &std::collections::BTreeMap<String, String>) -> Vec<(String, String)> {
    environment
        .iter()
        .map(|(name, value)| {
            let shown = if crate::manifest::is_secret_name(name) && !value.is_empty() {
                "********".to_string()
            } else {
                value.clone()
            };
            (name.clone(), shown)
        })
        .collect()
}

/// Requests and 5xx answers per service, from the proxy's Prometheus text.
fn request_totals(exposition: &str) -> Totals {
    let mut totals = Totals::new();
    for line in exposition.lines() {
        let Some(rest) = line.strip_prefix("sandbox_proxy_requests_total{") else {
            continue;
        };
        let Some((labels, count)) = rest.rsplit_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
            let end = labels[start..].find('"')? + start;
            Some(labels[start..end].to_string())
        };
        let (Some(service), Some(status), Ok(count)) = (
            label("service"),
            label("status"),
            count.trim().parse::<u64>(),
        ) else {
            continue;
        };
        let entry = totals.entry(service).or_default();
        entry.0 += count;
        if status.starts_with('5') {
            entry.1 += count;
        }
    }
    totals
}

/// Unix seconds of an RFC 3339 time as the engine writes it (`2024-05-01T12:34:56.789Z`);
/// `None` for the engine's "never" (year 1) or anything unreadable.
fn unix_seconds(text: &str) -> Option<i64> {
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let shifted = if month <= 2 { year - 1 } else { year };
    let era = shifted.div_euclid(400);
    let year_of_era = shifted - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second;
    (seconds > 0).then_some(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_times_become_unix_seconds() {
        assert_eq!(unix_seconds("1970-01-02T00:00:00Z"), Some(86_400));
        assert_eq!(
            unix_seconds("2024-05-01T12:34:56.123456789Z"),
            Some(1_714_566_896)
        );
        assert_eq!(unix_seconds("0001-01-01T00:00:00Z"), None);
        assert_eq!(unix_seconds("garbage"), None);
    }

    #[test]
    fn request_totals_add_up_routes_and_count_5xx() {
        let text = "# HELP x\n\
            sandbox_proxy_requests_total{route=\"prefix:/user\",service=\"user\",status=\"200\"} 7\n\
            sandbox_proxy_requests_total{route=\"mesh\",service=\"user\",status=\"503\"} 2\n\
            sandbox_proxy_requests_total{route=\"mesh\",service=\"item\",status=\"404\"} 1\n\
            sandbox_proxy_request_duration_seconds_count{route=\"mesh\",service=\"item\"} 1\n";
        let totals = request_totals(text);
        assert_eq!(totals["user"], (9, 2));
        assert_eq!(totals["item"], (1, 0));
    }

    #[test]
    fn secrets_are_masked_as_config_masks_them() {
        let environment = [
            ("API_TOKEN".to_string(), "s3cret".to_string()),
            ("SERVICE_NAME".to_string(), "user".to_string()),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            masked(&environment),
            vec![
                ("API_TOKEN".to_string(), "********".to_string()),
                ("SERVICE_NAME".to_string(), "user".to_string())
            ]
        );
    }
}
