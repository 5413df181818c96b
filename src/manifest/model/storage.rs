//! Storage, ports and images of a service: mounts, named volumes, publishes, exposed ports, how the
//! image is built or pulled. Every value is resolved (absolute paths, expanded port ranges).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

/// How to build the service's image (compose's `build:`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Build {
    /// Absolute path of the build context folder.
    pub context: PathBuf,
    /// Dockerfile path relative to the context (default `Dockerfile`).
    pub dockerfile: String,
    /// `dockerfile_inline`: the Dockerfile's text, sent inside the context instead of `dockerfile`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile_inline: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Labels of the built image.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Images whose layers the builder may reuse.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cache_from: Vec<String>,
    /// Network mode of the build's `RUN` steps (`host`, `none`, a network name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Size of `/dev/shm` of the build's containers, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<u64>,
    /// `host:address` entries added to `/etc/hosts` of the build's containers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    /// Build without the layer cache.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_cache: bool,
    /// Pull the base images even when present.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pull: bool,
}

/// When the image of a service is pulled (compose's `pull_policy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PullPolicy {
    /// Pull only when the engine lacks the image (`missing`, `if_not_present`); the default.
    #[default]
    Missing,
    /// Pull on every `up`.
    Always,
    /// Never pull: a missing image is an error.
    Never,
    /// Build the image on every `up` (needs `build:`).
    Build,
    /// Pull when the image is older than this (`daily`, `weekly`, `every_12h`); the engine's image
    /// creation time stands for the last pull.
    Every(#[serde(with = "super::duration_text")] Duration),
}

impl PullPolicy {
    pub fn is_default(&self) -> bool {
        *self == PullPolicy::Missing
    }
}

/// A host port publish (`ports:` entry); a range is expanded into one publish per port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortPublish {
    /// Host address; `127.0.0.1` unless the manifest names another.
    pub host_ip: String,
    /// Host port; `None` lets the engine choose a free one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_port: Option<u16>,
    /// Last port of a host range (`8000-8010:80`): the engine picks a free port in
    /// `host_port..=host_port_end`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_port_end: Option<u16>,
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// Long syntax `name` (documentation only, as in compose).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Long syntax `app_protocol` (documentation only, as in compose).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
}

impl PortPublish {
    /// A publish of `container_port` on `host_ip` with an engine-chosen host port.
    pub fn new(host_ip: &str, host_port: Option<u16>, container_port: u16, protocol: &str) -> Self {
        PortPublish {
            host_ip: host_ip.to_string(),
            host_port,
            host_port_end: None,
            container_port,
            protocol: protocol.to_string(),
            name: None,
            app_protocol: None,
        }
    }

    /// The host side as the engine takes it: `""`, `"8080"` or `"8000-8010"`.
    pub fn host_port_text(&self) -> String {
        match (self.host_port, self.host_port_end) {
            (Some(start), Some(end)) => format!("{start}-{end}"),
            (Some(port), None) => port.to_string(),
            (None, _) => String::new(),
        }
    }
}

/// A container port made known without publishing it (`expose:`), as `port/protocol`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ExposedPort {
    pub port: u16,
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
        /// Create the host folder when missing (compose's default; `bind.create_host_path`).
        #[serde(skip_serializing_if = "is_true")]
        create_host_path: bool,
        /// `bind.propagation`: `rprivate`, `private`, `rshared`, `shared`, `rslave`, `slave`.
        #[serde(skip_serializing_if = "Option::is_none")]
        propagation: Option<String>,
        /// SELinux relabelling, `z` (shared) or `Z` (private).
        #[serde(skip_serializing_if = "Option::is_none")]
        selinux: Option<String>,
    },
    /// A named volume of the project; the engine names it `<project>_<name>` unless the top-level
    /// entry sets `name:` or is external.
    Named {
        name: String,
        target: String,
        read_only: bool,
        /// `volume.nocopy`: do not copy the image's files at `target` into a new volume.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        nocopy: bool,
        /// `volume.subpath`: mount this folder of the volume instead of its root.
        #[serde(skip_serializing_if = "Option::is_none")]
        subpath: Option<String>,
        /// `z` / `Z` in the short syntax: SELinux relabelling of the volume's folder.
        #[serde(skip_serializing_if = "Option::is_none")]
        selinux: Option<String>,
    },
    /// An anonymous volume (only a container path).
    Anonymous {
        target: String,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        read_only: bool,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        nocopy: bool,
    },
    /// A tmpfs (memory) file system.
    Tmpfs {
        target: String,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        read_only: bool,
        /// `tmpfs.size` in bytes.
        #[serde(skip_serializing_if = "Option::is_none")]
        size: Option<u64>,
        /// `tmpfs.mode`: permission bits of the file system's root (written in octal).
        #[serde(
            skip_serializing_if = "Option::is_none",
            serialize_with = "serialize_octal"
        )]
        mode: Option<u32>,
    },
}

impl VolumeMount {
    /// The path inside the container.
    pub fn target(&self) -> &str {
        match self {
            VolumeMount::Bind { target, .. }
            | VolumeMount::Named { target, .. }
            | VolumeMount::Anonymous { target, .. }
            | VolumeMount::Tmpfs { target, .. } => target,
        }
    }
}

fn serialize_octal<S: serde::Serializer>(
    mode: &Option<u32>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match mode {
        Some(mode) => serializer.serialize_str(&super::format_mode(*mode)),
        None => serializer.serialize_none(),
    }
}

fn is_true(value: &bool) -> bool {
    *value
}

/// A `volumes_from:` entry: every mount of another service's (or any container's) container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumesFrom {
    pub source: VolumesFromSource,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumesFromSource {
    /// A service of the project (its first replica), which then starts first.
    Service(String),
    /// A container by name or id, not managed by sandbox.
    Container(String),
}

/// A top-level named volume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VolumeSpec {
    /// `external: true`: the volume is not the project's; it is used as it is and never removed.
    pub external: bool,
    /// `name:`: the engine's name for the volume, used as is (not prefixed with the project).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Volume driver (the engine's default, `local`, when `None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl VolumeSpec {
    /// The engine name when it is not the project's `<project>_<key>`: `name:` when set, else the
    /// key itself for an external volume (compose's naming).
    pub fn fixed_name(&self, key: &str) -> Option<String> {
        match (&self.name, self.external) {
            (Some(name), _) => Some(name.clone()),
            (None, true) => Some(key.to_string()),
            (None, false) => None,
        }
    }
}
