//! The validated manifest: what every other module consumes.
//!
//! Everything here is resolved: interpolation done, defaults filled, relative paths made absolute,
//! cross-references checked. No `Option` means "not checked yet"; an `Option` here means the user may
//! really leave it out.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

/// A whole sandbox, as `sandbox.yaml` describes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Manifest {
    /// Project name: `name:`, `-p NAME`, or the manifest folder's name (normalised to `[a-z0-9_-]`).
    pub project: String,
    /// The manifest file that was read.
    #[serde(skip)]
    pub file: PathBuf,
    /// The folder relative paths are resolved against (the manifest's folder).
    #[serde(skip)]
    pub directory: PathBuf,
    /// Services by name (sorted, so output and hashes are stable).
    pub services: BTreeMap<String, Service>,
    /// Named volumes declared at the top level (`volumes: {data: {}}`). Every named volume a service
    /// mounts is declared here: using an undeclared one is an error (with a hint), as in compose.
    pub volumes: BTreeMap<String, VolumeSpec>,
    /// Smoke checks for `sandbox test` and `sandbox run`, in manifest order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub smoke: Vec<crate::smoke::Check>,
}

/// One service: a container template run as `replicas` containers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Service {
    pub name: String,
    /// The image to run. When only `build:` is given this is `<project>-<service>:latest`, the tag the
    /// build produces (compose's naming).
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
    /// Replaces the image's CMD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Replaces the image's ENTRYPOINT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// `env_file` entries first, then `environment` on top (compose's precedence).
    pub environment: BTreeMap<String, String>,
    /// The port the service serves HTTP on inside its container (health probes, proxy routes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Extra host publishes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortPublish>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeMount>,
    /// Dependencies and the condition each must reach before this service starts.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub depends_on: BTreeMap<String, DependencyCondition>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    pub replicas: u32,
    pub restart: RestartPolicy,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// How to build the service's image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Build {
    /// Absolute path of the build context folder.
    pub context: PathBuf,
    /// Dockerfile path relative to the context (default `Dockerfile`).
    pub dockerfile: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// A host port publish (`ports:` entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortPublish {
    /// Host address; `127.0.0.1` unless the manifest names another.
    pub host_ip: String,
    /// Host port; `None` lets the engine choose a free one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_port: Option<u16>,
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

/// A `volumes:` entry of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum VolumeMount {
    /// A host path (absolute after resolution) mounted into the container.
    Bind {
        source: PathBuf,
        target: String,
        read_only: bool,
    },
    /// A named volume of the project; the engine names it `<project>_<name>`.
    Named {
        name: String,
        target: String,
        read_only: bool,
    },
    /// An anonymous volume (only a container path).
    Anonymous { target: String },
}

/// A top-level named volume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VolumeSpec {
    /// `external: true`: the volume is not the project's; it is used as it is and never removed.
    pub external: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// What a dependency must reach before its dependent starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DependencyCondition {
    /// The container is running.
    Started,
    /// Its health check passes (requires a `healthcheck` on the dependency).
    Healthy,
    /// It ran to completion with exit code 0.
    Completed,
}

/// A health check that the control plane probes itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Healthcheck {
    pub probe: HealthProbe,
    #[serde(with = "duration_text")]
    pub interval: Duration,
    #[serde(with = "duration_text")]
    pub timeout: Duration,
    /// Consecutive failures (after `start_period`) before the service is unhealthy.
    pub retries: u32,
    #[serde(with = "duration_text")]
    pub start_period: Duration,
}

/// How a health check probes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthProbe {
    /// `GET http://<container>:<port><path>` answers 2xx/3xx.
    Http { path: String },
    /// A TCP connection to `<container>:<port>` opens.
    Tcp,
    /// A command run inside the container (exec) exits 0. Compose's `CMD-SHELL x` becomes
    /// `["sh", "-c", "x"]`, `CMD a b` becomes `["a", "b"]`.
    Command(Vec<String>),
}

/// Restart policy handed to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    No,
    Always,
    UnlessStopped,
    OnFailure { max_retries: Option<u32> },
}

impl Manifest {
    /// Services in an order where every service comes after its dependencies.
    /// The manifest is validated to be acyclic, so this always succeeds.
    pub fn start_order(&self) -> Vec<&Service> {
        let mut order: Vec<&Service> = Vec::with_capacity(self.services.len());
        let mut placed = std::collections::BTreeSet::new();
        while order.len() < self.services.len() {
            let before = order.len();
            for service in self.services.values() {
                if !placed.contains(service.name.as_str())
                    && service
                        .depends_on
                        .keys()
                        .all(|dependency| placed.contains(dependency.as_str()))
                {
                    placed.insert(service.name.as_str());
                    order.push(service);
                }
            }
            if order.len() == before {
                break; // only reachable with a cycle, which validation rejects
            }
        }
        order
    }
}

/// Durations serialise as the manifest writes them (`250ms`, `1s`, `2m`).
pub mod duration_text {
    use std::time::Duration;

    /// `1500ms` → "1500ms", `2s` → "2s", `120s` → "2m".
    pub fn format(duration: Duration) -> String {
        let millis = duration.as_millis();
        if millis == 0 {
            "0s".to_string()
        } else if millis % 3_600_000 == 0 {
            format!("{}h", millis / 3_600_000)
        } else if millis % 60_000 == 0 {
            format!("{}m", millis / 60_000)
        } else if millis % 1000 == 0 {
            format!("{}s", millis / 1000)
        } else {
            format!("{millis}ms")
        }
    }

    pub fn serialize<S: serde::Serializer>(
        duration: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format(*duration))
    }
}
