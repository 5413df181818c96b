//! The container-level service keys (`cap_add`, `read_only`, `ulimits`, `mem_limit`, `dns`,
//! `logging`, `stop_signal`, `deploy.resources`, ...) → [`ContainerOptions`], with compose's
//! accepted forms: sizes as `512m`/`1g`/bytes, durations as `1m30s`, string-or-list keys, map-or-list
//! keys. `deploy` keys that mean nothing on one engine are warnings, never errors.

use std::collections::BTreeMap;

use super::super::duration::{parse_duration, DURATION_FORMS};
use super::super::model::{
    ContainerOptions, Device, DeviceRequest, Logging, Resources, RestartPolicy, Service, Ulimit,
};
use super::super::node::{Node, Value};
use super::check::{describe, join, Checker, Fields, Kind, Place};
use super::environment::{read_pairs, Bare};

/// Keys of `deploy`.
pub const DEPLOY_KEYS: &[&str] = &[
    "mode",
    "replicas",
    "resources",
    "restart_policy",
    "labels",
    "placement",
    "update_config",
    "rollback_config",
    "endpoint_mode",
];
/// `deploy` keys that only a swarm acts on: accepted with a warning.
const SWARM_ONLY_KEYS: &[&str] = &[
    "placement",
    "update_config",
    "rollback_config",
    "endpoint_mode",
    "labels",
];
const RESOURCES_KEYS: &[&str] = &["limits", "reservations"];
const LIMITS_KEYS: &[&str] = &["cpus", "memory", "pids"];
const RESERVATIONS_KEYS: &[&str] = &["cpus", "memory", "generic_resources", "devices"];
const DEVICE_REQUEST_KEYS: &[&str] = &["capabilities", "count", "device_ids", "driver", "options"];
const RESTART_POLICY_KEYS: &[&str] = &["condition", "max_attempts", "delay", "window"];
const LOGGING_KEYS: &[&str] = &["driver", "options"];
const DEVICE_KEYS: &[&str] = &["source", "target", "permissions"];
const ULIMIT_KEYS: &[&str] = &["soft", "hard"];
const SIZE_HINT: &str =
    "write a number of bytes or a number with a unit: `b`, `k`, `m`, `g` (e.g. `512m`, `1g`, `100k`)";
const SWARM_ONLY: &str = "it configures a swarm service; sandbox runs containers on one engine";

/// What the container keys of one service resolve to.
pub struct Read {
    pub options: ContainerOptions,
    /// The engine restart policy `deploy.restart_policy` asks for; `restart:` wins over it.
    pub restart: Option<RestartPolicy>,
}

/// Reads every container key present in `fields` (the service map at `field`).
pub fn read(checker: &mut Checker<'_>, fields: &Fields<'_>, field: &str) -> Read {
    let mut reader = Reader {
        checker,
        fields,
        field,
    };
    let mut options = reader.identity();
    reader.privileges(&mut options);
    reader.namespaces(&mut options);
    reader.runtime(&mut options);
    reader.networking(&mut options);
    options.resources = reader.resources();
    let (deploy_resources, restart) = reader.deploy();
    merge_resources(&mut options.resources, deploy_resources);
    Read { options, restart }
}

/// The services named by `ipc: service:NAME` and `pid: service:NAME`, with where they are named.
pub fn namespace_sources(
    fields: &Fields<'_>,
    field: &str,
    options: &ContainerOptions,
) -> Vec<(String, Place)> {
    [("ipc", &options.ipc), ("pid", &options.pid)]
        .into_iter()
        .filter_map(|(key, mode)| {
            let source = mode.as_deref()?.strip_prefix("service:")?;
            let node = fields.get(key)?;
            let place = Place {
                span: node.span,
                field: join(field, key),
            };
            (!source.is_empty()).then(|| (source.to_string(), place))
        })
        .collect()
}

/// `container_name` names one container: compose refuses it with several replicas, and so do we.
pub fn check_container_name(
    checker: &mut Checker<'_>,
    fields: &Fields<'_>,
    field: &str,
    service: &Service,
) {
    let (Some(name), Some(node)) = (
        &service.container.container_name,
        fields.get("container_name"),
    ) else {
        return;
    };
    if service.replicas > 1 {
        checker.error_with_hint(
            node,
            &join(field, "container_name"),
            format!(
                "`container_name: {name}` names one container, but service `{}` has {} replicas",
                service.name, service.replicas
            ),
            "remove `container_name` (replicas are named `<project>-<service>-<n>`), or run one replica",
        );
    }
}

struct Reader<'c, 'a, 'f, 'n> {
    checker: &'c mut Checker<'a>,
    fields: &'f Fields<'n>,
    field: &'f str,
}

impl<'n> Reader<'_, '_, '_, 'n> {
    fn key(&self, key: &str) -> String {
        join(self.field, key)
    }

    fn node(&self, key: &str) -> Option<&'n Node> {
        self.fields.get(key)
    }

    fn string(&mut self, key: &str) -> Option<String> {
        let node = self.node(key)?;
        self.checker.string(node, &self.key(key))
    }

    fn flag(&mut self, key: &str) -> Option<bool> {
        let node = self.node(key)?;
        self.checker.boolean(node, &self.key(key))
    }

    /// A list of strings (`one_string`: a single string too); absent is empty.
    fn strings(&mut self, key: &str, one_string: bool) -> Vec<String> {
        let Some(node) = self.node(key) else {
            return Vec::new();
        };
        self.checker
            .strings(node, &self.key(key), one_string)
            .unwrap_or_default()
    }

    fn integer(&mut self, key: &str) -> Option<i64> {
        let node = self.node(key)?;
        self.checker.integer(node, &self.key(key))
    }

    fn identity(&mut self) -> ContainerOptions {
        let container_name = self.node("container_name").and_then(|node| {
            let field = self.key("container_name");
            let name = self.checker.string(node, &field)?;
            if !is_container_name(&name) {
                self.checker.error_with_hint(
                    node,
                    &field,
                    format!("invalid container name `{name}`"),
                    "use letters, digits, `_`, `.` and `-`, starting with a letter or digit, at least two characters",
                );
                return None;
            }
            Some(name)
        });
        ContainerOptions {
            container_name,
            hostname: self.string("hostname"),
            domainname: self.string("domainname"),
            mac_address: self.string("mac_address"),
            platform: self.string("platform"),
            runtime: self.string("runtime"),
            stop_signal: self.string("stop_signal"),
            stop_grace_period: self.duration("stop_grace_period"),
            tty: self.flag("tty").unwrap_or(false),
            stdin_open: self.flag("stdin_open").unwrap_or(false),
            init: self.flag("init"),
            logging: self.logging(),
            ..ContainerOptions::default()
        }
    }

    fn privileges(&mut self, options: &mut ContainerOptions) {
        options.cap_add = self.strings("cap_add", false);
        options.cap_drop = self.strings("cap_drop", false);
        options.privileged = self.flag("privileged").unwrap_or(false);
        options.read_only = self.flag("read_only").unwrap_or(false);
        options.security_opt = self.strings("security_opt", false);
        options.group_add = self.strings("group_add", false);
        options.devices = self.devices();
        options.ulimits = self.ulimits();
        options.sysctls = self
            .node("sysctls")
            .map(|node| read_pairs(self.checker, node, &self.key("sysctls"), Bare::Empty))
            .unwrap_or_default();
        options.oom_score_adj = self.node("oom_score_adj").and_then(|node| {
            self.checker
                .integer_in(node, &self.key("oom_score_adj"), -1000..=1000)
        });
    }

    fn namespaces(&mut self, options: &mut ContainerOptions) {
        options.ipc = self.string("ipc");
        options.pid = self.node("pid").and_then(|node| {
            let scalar = self.checker.scalar(node, &self.key("pid"), "a string")?;
            (scalar.kind != Kind::Null).then_some(scalar.text)
        });
        for (key, value) in [("ipc", &options.ipc), ("pid", &options.pid)] {
            if let (Some(node), Some(value)) = (self.node(key), value) {
                if value.strip_prefix("service:").is_some_and(str::is_empty)
                    || value.strip_prefix("container:").is_some_and(str::is_empty)
                {
                    self.checker.error_with_hint(
                        node,
                        &self.key(key),
                        format!("`{key}: {value}` names no service or container"),
                        format!("write `{key}: service:NAME` or `{key}: container:NAME`"),
                    );
                }
            }
        }
    }

    fn runtime(&mut self, options: &mut ContainerOptions) {
        options.shm_size = self.size("shm_size");
        options.tmpfs = self.tmpfs();
    }

    fn networking(&mut self, options: &mut ContainerOptions) {
        options.extra_hosts = self.extra_hosts();
        options.dns = self.strings("dns", true);
        options.dns_search = self.strings("dns_search", true);
        options.dns_opt = self.strings("dns_opt", false);
    }

    /// The service-level resource keys (`mem_limit`, `cpus`, `pids_limit`, ...).
    fn resources(&mut self) -> Resources {
        let memory_swap = self.node("memswap_limit").and_then(|node| {
            let field = self.key("memswap_limit");
            // `-1` (unlimited swap) is the one negative size compose takes.
            if node.scalar_text().map(str::trim) == Some("-1") {
                return Some(-1);
            }
            size(self.checker, node, &field).and_then(|bytes| i64::try_from(bytes).ok())
        });
        Resources {
            memory: self.size("mem_limit"),
            memory_swap,
            memory_reservation: self.size("mem_reservation"),
            nano_cpus: self
                .node("cpus")
                .and_then(|node| cpus(self.checker, node, &self.key("cpus"))),
            cpu_shares: self.integer("cpu_shares"),
            cpuset: self.string("cpuset"),
            pids_limit: self.integer("pids_limit"),
            oom_kill_disable: self.flag("oom_kill_disable"),
            device_requests: Vec::new(),
        }
    }

    fn size(&mut self, key: &str) -> Option<u64> {
        let node = self.node(key)?;
        size(self.checker, node, &self.key(key))
    }

    fn duration(&mut self, key: &str) -> Option<std::time::Duration> {
        let node = self.node(key)?;
        duration(self.checker, node, &self.key(key))
    }

    fn logging(&mut self) -> Option<Logging> {
        let node = self.node("logging")?;
        let field = self.key("logging");
        let fields = self
            .checker
            .fields(node, &field, "`logging`", LOGGING_KEYS)?;
        let driver = fields
            .get("driver")
            .and_then(|driver| self.checker.string(driver, &join(&field, "driver")));
        let options = fields
            .get("options")
            .map(|options| read_pairs(self.checker, options, &join(&field, "options"), Bare::Empty))
            .unwrap_or_default();
        Some(Logging { driver, options })
    }

    fn ulimits(&mut self) -> BTreeMap<String, Ulimit> {
        let mut ulimits = BTreeMap::new();
        let Some(node) = self.node("ulimits") else {
            return ulimits;
        };
        let field = self.key("ulimits");
        if !matches!(node.value, Value::Mapping(_)) {
            let found = describe(node);
            self.checker.error_with_hint(
                node,
                &field,
                format!("expected a map of limits, found {found}"),
                "write one limit per line: `nofile: {soft: 1024, hard: 4096}` or `nproc: 512`",
            );
            return ulimits;
        }
        for entry in self
            .checker
            .entries(node, &field, "a map")
            .unwrap_or_default()
        {
            let entry_field = join(&field, entry.key);
            let name = entry.key;
            if name.is_empty() || !name.chars().all(|character| character.is_ascii_lowercase()) {
                self.checker.error_with_hint(
                    entry.key_node,
                    &entry_field,
                    format!("invalid ulimit name `{name}`"),
                    "ulimit names are lowercase letters, like `nofile`, `nproc` or `memlock`",
                );
                continue;
            }
            if let Some(ulimit) = ulimit(self.checker, entry.value, &entry_field, name) {
                ulimits.insert(name.to_string(), ulimit);
            }
        }
        ulimits
    }

    fn devices(&mut self) -> Vec<Device> {
        let Some(node) = self.node("devices") else {
            return Vec::new();
        };
        let field = self.key("devices");
        let Value::Sequence(items) = &node.value else {
            let found = describe(node);
            self.checker.error_with_hint(
                node,
                &field,
                format!("expected a list of devices, found {found}"),
                "write `devices: [\"/dev/fuse:/dev/fuse:rwm\"]`",
            );
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(index, item)| device(self.checker, item, &format!("{field}[{index}]")))
            .collect()
    }

    fn extra_hosts(&mut self) -> Vec<String> {
        let Some(node) = self.node("extra_hosts") else {
            return Vec::new();
        };
        let field = self.key("extra_hosts");
        let mut hosts = Vec::new();
        match &node.value {
            Value::Sequence(items) => {
                for (index, item) in items.iter().enumerate() {
                    let item_field = format!("{field}[{index}]");
                    let Some(text) = self.checker.string(item, &item_field) else {
                        continue;
                    };
                    match split_host(&text) {
                        Some((host, address)) => hosts.push(format!("{host}:{address}")),
                        None => self.checker.error_with_hint(
                            item,
                            &item_field,
                            format!("`{text}` is not `HOST:ADDRESS`"),
                            "write `somehost:162.242.195.82` or `somehost=162.242.195.82`",
                        ),
                    }
                }
            }
            _ => {
                let expected = "a list of `HOST:ADDRESS` or a map of host to address";
                for entry in self
                    .checker
                    .entries(node, &field, expected)
                    .unwrap_or_default()
                {
                    let entry_field = join(&field, entry.key);
                    let addresses = self.checker.strings(entry.value, &entry_field, true);
                    for address in addresses.unwrap_or_default() {
                        hosts.push(format!("{}:{address}", entry.key));
                    }
                }
            }
        }
        hosts
    }

    fn tmpfs(&mut self) -> BTreeMap<String, String> {
        let mut mounts = BTreeMap::new();
        let Some(node) = self.node("tmpfs") else {
            return mounts;
        };
        let field = self.key("tmpfs");
        for text in self.checker.strings(node, &field, true).unwrap_or_default() {
            let (path, options) = text.split_once(':').unwrap_or((&text, ""));
            if !path.starts_with('/') {
                self.checker.error_with_hint(
                    node,
                    &field,
                    format!("tmpfs mount point `{path}` is not an absolute path"),
                    "write `tmpfs: /run` or `tmpfs: [\"/tmp:size=64m\"]`",
                );
                continue;
            }
            mounts.insert(path.to_string(), options.to_string());
        }
        mounts
    }

    /// `deploy`: resources and restart policy; swarm-only keys are warnings.
    fn deploy(&mut self) -> (Resources, Option<RestartPolicy>) {
        let Some(node) = self.node("deploy") else {
            return (Resources::default(), None);
        };
        if node.scalar_text().is_some_and(str::is_empty) {
            return (Resources::default(), None); // `deploy:` with nothing under it
        }
        let field = self.key("deploy");
        let Some(fields) = self.checker.fields(node, &field, "`deploy`", DEPLOY_KEYS) else {
            return (Resources::default(), None);
        };
        if let Some(mode) = fields.get("mode") {
            let mode_field = join(&field, "mode");
            if let Some(text) = self.checker.string(mode, &mode_field) {
                if text != "replicated" {
                    self.checker.warning(
                        mode,
                        &mode_field,
                        format!(
                            "`deploy.mode: {text}` is ignored; the service runs its `replicas`"
                        ),
                        "on one engine there are no nodes to place a container on each of",
                    );
                }
            }
        }
        let mut swarm_only: Vec<(&str, &Node)> = SWARM_ONLY_KEYS
            .iter()
            .filter_map(|key| Some((*key, fields.get(key)?)))
            .collect();
        swarm_only.sort_by_key(|(_, value)| (value.span.line, value.span.column));
        for (key, value) in swarm_only {
            self.checker.warning(
                value,
                &join(&field, key),
                format!("`deploy.{key}` is ignored"),
                SWARM_ONLY,
            );
        }
        let resources = fields
            .get("resources")
            .map(|resources| deploy_resources(self.checker, resources, &join(&field, "resources")))
            .unwrap_or_default();
        let restart = fields.get("restart_policy").and_then(|policy| {
            let policy_field = join(&field, "restart_policy");
            let restart = restart_policy(self.checker, policy, &policy_field)?;
            if self.node("restart").is_some() {
                self.checker.warning(
                    policy,
                    &policy_field,
                    "`deploy.restart_policy` is ignored: the service sets `restart`",
                    "`restart` decides the engine's restart policy; keep one of the two",
                );
                return None;
            }
            Some(restart)
        });
        (resources, restart)
    }
}

/// `deploy.resources` wins over the service keys wherever it sets something (compose's order).
fn merge_resources(resources: &mut Resources, deploy: Resources) {
    if deploy.memory.is_some() {
        resources.memory = deploy.memory;
    }
    if deploy.memory_reservation.is_some() {
        resources.memory_reservation = deploy.memory_reservation;
    }
    if deploy.nano_cpus.is_some() {
        resources.nano_cpus = deploy.nano_cpus;
    }
    if deploy.pids_limit.is_some() {
        resources.pids_limit = deploy.pids_limit;
    }
    resources.device_requests.extend(deploy.device_requests);
}

fn deploy_resources(checker: &mut Checker<'_>, node: &Node, field: &str) -> Resources {
    let mut resources = Resources::default();
    let Some(fields) = checker.fields(node, field, "`deploy.resources`", RESOURCES_KEYS) else {
        return resources;
    };
    if let Some(limits) = fields.get("limits") {
        let limits_field = join(field, "limits");
        let what = "`deploy.resources.limits`";
        if let Some(limits) = checker.fields(limits, &limits_field, what, LIMITS_KEYS) {
            let key = |key: &str| join(&limits_field, key);
            resources.nano_cpus = limits
                .get("cpus")
                .and_then(|node| cpus(checker, node, &key("cpus")));
            resources.memory = limits
                .get("memory")
                .and_then(|node| size(checker, node, &key("memory")));
            resources.pids_limit = limits
                .get("pids")
                .and_then(|node| checker.integer(node, &key("pids")));
        }
    }
    if let Some(reservations) = fields.get("reservations") {
        let reservations_field = join(field, "reservations");
        let what = "`deploy.resources.reservations`";
        if let Some(reservations) =
            checker.fields(reservations, &reservations_field, what, RESERVATIONS_KEYS)
        {
            let key = |key: &str| join(&reservations_field, key);
            resources.memory_reservation = reservations
                .get("memory")
                .and_then(|node| size(checker, node, &key("memory")));
            if let Some(node) = reservations.get("cpus") {
                if cpus(checker, node, &key("cpus")).is_some() {
                    checker.warning(
                        node,
                        &key("cpus"),
                        "`deploy.resources.reservations.cpus` is ignored",
                        "a CPU reservation is a swarm scheduling hint; the engine has no such setting (use `limits.cpus` or `cpu_shares`)",
                    );
                }
            }
            if let Some(node) = reservations.get("generic_resources") {
                checker.warning(
                    node,
                    &key("generic_resources"),
                    "`deploy.resources.reservations.generic_resources` is ignored",
                    SWARM_ONLY,
                );
            }
            if let Some(node) = reservations.get("devices") {
                resources.device_requests = device_requests(checker, node, &key("devices"));
            }
        }
    }
    resources
}

fn device_requests(checker: &mut Checker<'_>, node: &Node, field: &str) -> Vec<DeviceRequest> {
    let Value::Sequence(items) = &node.value else {
        let found = describe(node);
        checker.error(
            node,
            field,
            format!("expected a list of devices, found {found}"),
        );
        return Vec::new();
    };
    let mut requests = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let item_field = format!("{field}[{index}]");
        let what = "a device reservation";
        let Some(fields) = checker.fields(item, &item_field, what, DEVICE_REQUEST_KEYS) else {
            continue;
        };
        let key = |key: &str| join(&item_field, key);
        let Some(capabilities) = fields.get("capabilities") else {
            checker.error_with_hint(
                item,
                &item_field,
                "a device reservation needs `capabilities`",
                "write `capabilities: [gpu]`",
            );
            continue;
        };
        let count = fields.get("count").and_then(|count| {
            if count.scalar_text() == Some("all") {
                return Some(-1);
            }
            checker.integer(count, &key("count"))
        });
        let device_ids = fields
            .get("device_ids")
            .and_then(|ids| checker.strings(ids, &key("device_ids"), false))
            .unwrap_or_default();
        requests.push(DeviceRequest {
            driver: fields
                .get("driver")
                .and_then(|driver| checker.string(driver, &key("driver"))),
            // Compose asks for every device when neither a count nor ids are given.
            count: count.or((device_ids.is_empty()).then_some(-1)),
            device_ids,
            capabilities: checker
                .strings(capabilities, &key("capabilities"), false)
                .unwrap_or_default(),
            options: fields
                .get("options")
                .map(|options| read_pairs(checker, options, &key("options"), Bare::Empty))
                .unwrap_or_default(),
        });
    }
    requests
}

/// `deploy.restart_policy` → the engine's policy, mapped as compose maps it.
fn restart_policy(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<RestartPolicy> {
    let fields = checker.fields(node, field, "`deploy.restart_policy`", RESTART_POLICY_KEYS)?;
    let key = |key: &str| join(field, key);
    let max_attempts = fields.get("max_attempts").and_then(|attempts| {
        let count = checker.integer_in(attempts, &key("max_attempts"), 0..=i64::from(u32::MAX))?;
        u32::try_from(count).ok()
    });
    for name in ["delay", "window"] {
        if let Some(value) = fields.get(name) {
            if duration(checker, value, &key(name)).is_some() {
                checker.warning(
                    value,
                    &key(name),
                    format!("`deploy.restart_policy.{name}` is ignored"),
                    "the engine restarts a container itself, with its own back-off",
                );
            }
        }
    }
    let condition = match fields.get("condition") {
        Some(condition) => checker.string(condition, &key("condition"))?,
        None => "any".to_string(),
    };
    let policy = match condition.as_str() {
        "none" | "no" => RestartPolicy::No,
        "any" | "always" => RestartPolicy::Always,
        "unless-stopped" => RestartPolicy::UnlessStopped,
        "on-failure" => RestartPolicy::OnFailure {
            max_retries: max_attempts,
        },
        other => {
            let node = fields.get("condition").unwrap_or(node);
            checker.error_with_hint(
                node,
                &key("condition"),
                format!("unknown restart condition `{other}`"),
                "use `none`, `on-failure` or `any`",
            );
            return None;
        }
    };
    if let (Some(attempts), false) = (
        fields.get("max_attempts"),
        matches!(policy, RestartPolicy::OnFailure { .. }),
    ) {
        checker.warning(
            attempts,
            &key("max_attempts"),
            "`deploy.restart_policy.max_attempts` is ignored",
            format!(
                "the engine counts attempts only for `condition: on-failure` (here: `{condition}`)"
            ),
        );
    }
    Some(policy)
}

fn ulimit(checker: &mut Checker<'_>, node: &Node, field: &str, name: &str) -> Option<Ulimit> {
    if let Value::Scalar { .. } = node.value {
        let value = checker.integer(node, field)?;
        return Some(Ulimit {
            soft: value,
            hard: value,
        });
    }
    let what = "a ulimit (a number, or `{soft, hard}`)";
    let fields = checker.fields(node, field, what, ULIMIT_KEYS)?;
    let mut limit = |key: &str| match fields.get(key) {
        Some(value) => checker.integer(value, &join(field, key)),
        None => {
            checker.error_with_hint(
                node,
                field,
                format!("ulimit `{name}` has no `{key}`"),
                "give both, like `{soft: 1024, hard: 4096}`, or one number for both",
            );
            None
        }
    };
    let (soft, hard) = (limit("soft"), limit("hard"));
    let (soft, hard) = (soft?, hard?);
    if soft > hard && hard >= 0 {
        checker.error_with_hint(
            node,
            field,
            format!("ulimit `{name}`: soft limit {soft} is above hard limit {hard}"),
            "the soft limit must not exceed the hard limit",
        );
        return None;
    }
    Some(Ulimit { soft, hard })
}

/// A `devices` entry: `SOURCE[:TARGET[:PERMISSIONS]]`, a CDI name, or `{source, target, permissions}`.
fn device(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<Device> {
    let (source, target, permissions) = match &node.value {
        Value::Mapping(_) => {
            let fields = checker.fields(node, field, "a device", DEVICE_KEYS)?;
            let Some(source) = fields.get("source") else {
                checker.error_with_hint(
                    node,
                    field,
                    "a device needs `source`",
                    "write `{source: /dev/fuse, target: /dev/fuse, permissions: rwm}`",
                );
                return None;
            };
            let source = checker.string(source, &join(field, "source"))?;
            let target = fields
                .get("target")
                .and_then(|target| checker.string(target, &join(field, "target")));
            let permissions = fields
                .get("permissions")
                .and_then(|value| checker.string(value, &join(field, "permissions")));
            (source, target, permissions)
        }
        _ => {
            let text = checker.string(node, field)?;
            if !text.starts_with('/') && text.contains('=') {
                return Some(Device::Cdi { name: text });
            }
            match parse_device(&text) {
                Some(parts) => parts,
                None => {
                    checker.error_with_hint(
                        node,
                        field,
                        format!("invalid device `{text}`"),
                        "write `/dev/HOST[:/dev/CONTAINER[:PERMISSIONS]]`, permissions from `rwm`",
                    );
                    return None;
                }
            }
        }
    };
    let permissions = permissions.unwrap_or_else(|| "rwm".to_string());
    if !is_permissions(&permissions) {
        checker.error_with_hint(
            node,
            field,
            format!("invalid device permissions `{permissions}`"),
            "combine `r` (read), `w` (write) and `m` (mknod), like `rwm` or `r`",
        );
        return None;
    }
    Some(Device::Path {
        target: target.unwrap_or_else(|| source.clone()),
        source,
        permissions,
    })
}

/// `SOURCE[:TARGET[:PERMISSIONS]]`, where `SOURCE:PERMISSIONS` is also read as the engine reads it.
fn parse_device(text: &str) -> Option<(String, Option<String>, Option<String>)> {
    let parts: Vec<&str> = text.split(':').collect();
    let owned = |part: &str| Some(part.to_string());
    match parts.as_slice() {
        [source] if !source.is_empty() => Some((source.to_string(), None, None)),
        [source, second] if is_permissions(second) && !second.starts_with('/') => {
            Some((source.to_string(), None, owned(second)))
        }
        [source, target] => Some((source.to_string(), owned(target), None)),
        [source, target, permissions] => {
            Some((source.to_string(), owned(target), owned(permissions)))
        }
        _ => None,
    }
    .filter(|(source, target, _)| {
        !source.is_empty() && target.as_deref().is_none_or(|target| !target.is_empty())
    })
}

fn is_permissions(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|character| "rwm".contains(character))
}

/// An `extra_hosts` list item: `HOST:ADDRESS` or `HOST=ADDRESS` (an IPv6 address keeps its colons).
fn split_host(text: &str) -> Option<(&str, &str)> {
    let (host, address) = text.split_once('=').or_else(|| text.split_once(':'))?;
    let address = address.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty() && !address.is_empty()).then_some((host, address))
}

/// Docker's container name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
fn is_container_name(name: &str) -> bool {
    let mut characters = name.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_alphanumeric())
        && name.len() >= 2
        && characters.all(|character| {
            character.is_ascii_alphanumeric() || matches!(character, '_' | '.' | '-')
        })
}

/// A size: a number of bytes, or text like `512m`, `1.5g`, `100k`, `1GiB`, `64 mb`.
fn size(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<u64> {
    let scalar = checker.scalar(node, field, "a size")?;
    let bytes = match scalar.kind {
        Kind::Integer(value) => u64::try_from(value).ok(),
        _ => parse_size(&scalar.text),
    };
    if bytes.is_none() {
        checker.error_with_hint(
            node,
            field,
            format!("`{}` is not a size", scalar.text),
            SIZE_HINT,
        );
    }
    bytes
}

/// Parses a byte size the way compose does (docker's `RAMInBytes`): a decimal number, an optional
/// space, an optional unit `b`/`k`/`m`/`g`/`t`/`p` (powers of 1024, any case), optionally followed
/// by `i` and/or `b` (`kb`, `KiB`). `None` for anything else.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let number_end = text
        .find(|character: char| !(character.is_ascii_digit() || character == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_end);
    if number.is_empty() || number.starts_with('.') || number.matches('.').count() > 1 {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let mut characters = unit.chars().peekable();
    let power = match characters.peek() {
        Some('k') => 1,
        Some('m') => 2,
        Some('g') => 3,
        Some('t') => 4,
        Some('p') => 5,
        _ => 0,
    };
    if power > 0 {
        characters.next();
    }
    let rest: String = characters.collect();
    if !matches!(rest.as_str(), "" | "b" | "i" | "ib") || (power == 0 && rest.starts_with('i')) {
        return None;
    }
    let bytes = value * 1024f64.powi(power);
    (bytes.is_finite() && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// CPUs as a number (`1.5`) → billionths of a CPU.
fn cpus(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<i64> {
    let scalar = checker.scalar(node, field, "a number of CPUs")?;
    let value = scalar.text.trim().parse::<f64>().ok();
    match value {
        Some(value) if value.is_finite() && value >= 0.0 => Some((value * 1e9).round() as i64),
        _ => {
            checker.error_with_hint(
                node,
                field,
                format!("`{}` is not a number of CPUs", scalar.text),
                "write a number like `0.5` or `2`",
            );
            None
        }
    }
}

fn duration(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<std::time::Duration> {
    let scalar = checker.scalar(node, field, "a duration")?;
    // A bare number is seconds, as compose 1.x read it.
    let parsed = match scalar.kind {
        Kind::Integer(seconds) => u64::try_from(seconds)
            .ok()
            .map(std::time::Duration::from_secs),
        _ => parse_duration(&scalar.text),
    };
    if parsed.is_none() {
        checker.error_with_hint(
            node,
            field,
            format!("`{}` is not a duration", scalar.text),
            DURATION_FORMS,
        );
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::{is_container_name, parse_device, parse_size, split_host};

    #[test]
    fn sizes_read_as_compose_reads_them() {
        let cases = [
            ("0", 0),
            ("1024", 1024),
            ("10b", 10),
            ("100k", 100 * 1024),
            ("100K", 100 * 1024),
            ("100kb", 100 * 1024),
            ("512m", 512 << 20),
            ("512MB", 512 << 20),
            ("1g", 1 << 30),
            ("1GiB", 1 << 30),
            ("1.5g", 3 << 29),
            ("64 mb", 64 << 20),
            ("2t", 2 << 40),
            ("1p", 1 << 50),
        ];
        for (text, bytes) in cases {
            assert_eq!(parse_size(text), Some(bytes), "{text}");
        }
    }

    #[test]
    fn sizes_that_are_not_sizes() {
        for text in [
            "", "g", "1x", "1gg", "-1", "1.2.3", ".5g", "1 g b", "12i", "1e3",
        ] {
            assert_eq!(parse_size(text), None, "{text}");
        }
    }

    #[test]
    fn devices_short_syntax() {
        let owned = |text: &str| Some(text.to_string());
        assert_eq!(
            parse_device("/dev/fuse"),
            Some(("/dev/fuse".into(), None, None))
        );
        assert_eq!(
            parse_device("/dev/fuse:r"),
            Some(("/dev/fuse".into(), None, owned("r")))
        );
        assert_eq!(
            parse_device("/dev/sda:/dev/xvda"),
            Some(("/dev/sda".into(), owned("/dev/xvda"), None))
        );
        assert_eq!(
            parse_device("/dev/sda:/dev/xvda:rw"),
            Some(("/dev/sda".into(), owned("/dev/xvda"), owned("rw")))
        );
        assert_eq!(parse_device("/a:/b:rw:x"), None);
        assert_eq!(parse_device(":/b"), None);
    }

    #[test]
    fn extra_host_items() {
        assert_eq!(split_host("db:10.0.0.2"), Some(("db", "10.0.0.2")));
        assert_eq!(split_host("db=10.0.0.2"), Some(("db", "10.0.0.2")));
        assert_eq!(split_host("v6:::1"), Some(("v6", "::1")));
        assert_eq!(split_host("v6=[::1]"), Some(("v6", "::1")));
        assert_eq!(split_host("nohost"), None);
        assert_eq!(split_host("db:"), None);
    }

    #[test]
    fn container_names() {
        for name in ["db", "my-app_1.x", "A1"] {
            assert!(is_container_name(name), "{name}");
        }
        for name in ["a", "-db", "my app", "é1", ""] {
            assert!(!is_container_name(name), "{name}");
        }
    }
}
