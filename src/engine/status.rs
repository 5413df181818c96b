//! What `ps` shows: every replica of a project with its state, health (probed now, once), ports and
//! uptime.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::docker::{Docker, PublishedPort};
use super::error::EngineError;
use super::health::{self, ProbeTarget};
use crate::manifest::Manifest;

/// One replica as `ps` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaStatus {
    pub service: String,
    pub replica: u32,
    pub name: String,
    pub id: String,
    /// `running`, `exited`, ...
    pub state: String,
    /// `healthy`, `unhealthy`, or `none` (no health check, or not running).
    pub health: String,
    /// The last probe's result when unhealthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_detail: Option<String>,
    pub ports: Vec<PublishedPort>,
    /// Docker's status words (`Up 2 minutes`, `Exited (1) 3 seconds ago`).
    pub status: String,
    /// Seconds since the container was created.
    pub age_seconds: u64,
    /// Whether the container's config matches the current manifest (`false`: `up` would recreate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub up_to_date: Option<bool>,
}

/// Lists the project's replicas; with the manifest, probes health of running ones.
pub async fn project_status(
    docker: &Docker,
    project: &str,
    manifest: Option<&Manifest>,
) -> Result<Vec<ReplicaStatus>, EngineError> {
    let containers = docker.project_containers(project).await?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let statuses = containers.into_iter().map(|container| {
        async move {
            let service = manifest.and_then(|manifest| manifest.services.get(&container.service));
            let mut health = "none".to_string();
            let mut health_detail = None;
            if let (Some(service), true) = (service, container.state == "running") {
                if let Some(healthcheck) = &service.healthcheck {
                    let address = service.port.and_then(|port| {
                        let by_ip = container
                            .ip
                            .as_deref()
                            .filter(|_| docker.host_reaches_containers())
                            .and_then(|ip| format!("{ip}:{port}").parse().ok());
                        by_ip.or_else(|| {
                            container
                                .ports
                                .iter()
                                .find(|publish| publish.container_port == port)
                                .and_then(|publish| format!("127.0.0.1:{}", publish.host_port).parse().ok())
                        })
                    });
                    let target = ProbeTarget {
                        container_id: container.id.clone(),
                        address,
                        host: service.name.clone(),
                    };
                    let mut quick = healthcheck.clone();
                    quick.timeout = quick.timeout.min(Duration::from_secs(2));
                    match health::probe(docker, &quick, &target).await {
                        Ok(()) => health = "healthy".to_string(),
                        Err(detail) => {
                            health = "unhealthy".to_string();
                            health_detail = Some(detail);
                        }
                    }
                }
            }
            ReplicaStatus {
                service: container.service.clone(),
                replica: container.replica,
                name: container.name.clone(),
                id: container.id.chars().take(12).collect(),
                state: container.state.clone(),
                health,
                health_detail,
                ports: container.ports.clone(),
                status: container.status.clone(),
                age_seconds: now.saturating_sub(container.created.max(0) as u64),
                up_to_date: None,
            }
        }
    });
    Ok(futures_util::future::join_all(statuses).await)
}

/// `1h2m`, `3m`, `12s`.
pub fn format_age(seconds: u64) -> String {
    match seconds {
        0..=59 => format!("{seconds}s"),
        60..=3599 => format!("{}m{}s", seconds / 60, seconds % 60),
        3600..=86399 => format!("{}h{}m", seconds / 3600, (seconds % 3600) / 60),
        _ => format!("{}d{}h", seconds / 86400, (seconds % 86400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ages_read_naturally() {
        assert_eq!(super::format_age(5), "5s");
        assert_eq!(super::format_age(125), "2m5s");
        assert_eq!(super::format_age(7300), "2h1m");
        assert_eq!(super::format_age(90000), "1d1h");
    }
}
