//! A service's container-level options: the compose keys that become the container's own
//! configuration and host configuration (identity, privileges, namespaces, limits, DNS, logging,
//! stop behaviour). Read by `schema::container`, carried into `engine::spec::ContainerSpec` and sent
//! to the engine by `engine::docker`; nothing here refers to other services' networks or volumes.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// Everything left at its default means "as the engine does it": such fields are left out of the
/// create request and of `sandbox config --json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ContainerOptions {
    /// `container_name`: the container's fixed name (only with one replica).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// `hostname`; without it the container is named after itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub privileged: bool,
    /// `read_only`: the root filesystem is mounted read-only.
    #[serde(skip_serializing_if = "is_false")]
    pub read_only: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    /// Supplementary groups, names or numbers as written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub group_add: Vec<String>,
    /// `init`: `None` leaves the engine's default (its `--init` daemon setting).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    /// IPC namespace: `host`, `private`, `shareable`, `none`, `container:NAME` or `service:NAME`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipc: Option<String>,
    /// PID namespace: `host`, `container:NAME` or `service:NAME`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    /// Size of `/dev/shm` in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<u64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub ulimits: BTreeMap<String, Ulimit>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    /// Signal sent to stop the container (the image's `STOPSIGNAL`, else SIGTERM, when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Time between the stop signal and SIGKILL (the engine's 10s when unset). Also what `down`
    /// and recreation wait for this service's containers unless told `-t`.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "super::duration_text::serialize_option"
    )]
    pub stop_grace_period: Option<Duration>,
    #[serde(skip_serializing_if = "is_false")]
    pub tty: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub stdin_open: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logging: Option<Logging>,
    /// `os/arch[/variant]` the container must run as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// OCI runtime (`runc`, `runsc`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<Device>,
    #[serde(skip_serializing_if = "Resources::is_default")]
    pub resources: Resources,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i64>,
    /// `/etc/hosts` entries as the engine takes them (`host:address`), in the order written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_opt: Vec<String>,
    /// The service key `tmpfs`: mount point → mount options (empty for none).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tmpfs: BTreeMap<String, String>,
    /// `annotations`: metadata handed to the OCI runtime (not labels).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// `cgroup`: the cgroup namespace, `host` or `private`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// `cgroup_parent`: the cgroup the container's cgroup is created under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup_parent: Option<String>,
    /// `uts`: the UTS namespace (`host`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uts: Option<String>,
    /// `userns_mode`: the user namespace (`host` turns the daemon's remapping off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userns_mode: Option<String>,
    /// `storage_opt`: storage driver options (`size: 20G`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub storage_opt: BTreeMap<String, String>,
    /// `device_cgroup_rules`: rules added to the device cgroup (`c 1:3 mr`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_cgroup_rules: Vec<String>,
}

impl ContainerOptions {
    pub fn is_default(&self) -> bool {
        *self == ContainerOptions::default()
    }
}

/// One `ulimits` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ulimit {
    pub soft: i64,
    pub hard: i64,
}

/// `logging`: the container's log driver and its options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Logging {
    /// `None` keeps the engine's default driver (and applies `options` to it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

/// A `devices` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Device {
    /// A host device node mapped into the container.
    Path {
        source: String,
        target: String,
        /// Cgroup permissions, a combination of `r`, `w`, `m` (default `rwm`).
        permissions: String,
    },
    /// A CDI device name (`vendor.com/class=name`), handed to the engine's CDI driver.
    Cdi { name: String },
}

/// Resource limits and reservations, from the service keys (`mem_limit`, `cpus`, ...) and
/// `deploy.resources` (which wins where both are given, as in compose).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Resources {
    /// Memory limit in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// Memory plus swap in bytes; `-1` is unlimited swap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<i64>,
    /// Soft memory limit in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<u64>,
    /// CPU limit in billionths of a CPU (`cpus: 1.5` is 1 500 000 000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nano_cpus: Option<i64>,
    /// Relative CPU weight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<i64>,
    /// CPUs the container may run on (`0-3`, `0,1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpuset: Option<String>,
    /// Process limit; `-1` is unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_kill_disable: Option<bool>,
    /// `deploy.resources.reservations.devices` and `gpus`: devices requested from a driver.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_requests: Vec<DeviceRequest>,
    /// CFS period in microseconds (`cpu_period`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_period: Option<i64>,
    /// CFS quota in microseconds per period (`cpu_quota`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_quota: Option<i64>,
    /// Real-time scheduler period in microseconds (`cpu_rt_period`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_rt_period: Option<i64>,
    /// Real-time scheduler runtime in microseconds per period (`cpu_rt_runtime`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_rt_runtime: Option<i64>,
    /// `mem_swappiness`, 0 to 100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_swappiness: Option<i64>,
    /// `blkio_config`.
    #[serde(skip_serializing_if = "Blkio::is_default")]
    pub blkio: Blkio,
}

/// `blkio_config`: block IO weights and throttles.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Blkio {
    /// Relative weight, 10 to 1000.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub weight_device: Vec<BlkioWeight>,
    /// Bytes per second.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_read_bps: Vec<BlkioRate>,
    /// Bytes per second.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_write_bps: Vec<BlkioRate>,
    /// Operations per second.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_read_iops: Vec<BlkioRate>,
    /// Operations per second.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_write_iops: Vec<BlkioRate>,
}

impl Blkio {
    pub fn is_default(&self) -> bool {
        *self == Blkio::default()
    }
}

/// A `blkio_config.weight_device` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlkioWeight {
    pub path: String,
    pub weight: u16,
}

/// A `blkio_config.device_*` throttle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlkioRate {
    pub path: String,
    pub rate: u64,
}

impl Resources {
    pub fn is_default(&self) -> bool {
        *self == Resources::default()
    }
}

/// One device reservation (`deploy.resources.reservations.devices` entry).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeviceRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// How many devices; `-1` is all of them. Unset with `device_ids`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_ids: Vec<String>,
    pub capabilities: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

fn is_false(value: &bool) -> bool {
    !*value
}
