//! The container-level service keys (`cap_add`, `read_only`, `ulimits`, `mem_limit`, `dns`,
//! `logging`, `stop_signal`, `deploy.resources`, ...) → [`ContainerOptions`], with compose's
//! accepted forms: sizes as `512m`/`1g`/bytes, durations as `1m30s`, string-or-list keys, map-or-list
//! keys. `deploy` keys that mean nothing on one engine are warnings, never errors.

mod deploy;
mod ignored;
mod kernel;
mod values;

use std::collections::BTreeMap;

use super::super::model::{
    ContainerOptions, Device, Logging, Resources, RestartPolicy, Service, Ulimit,
};
use super::super::node::{Node, Value};
use super::check::{describe, join, Checker, Fields, Kind, Place};
use super::environment::{read_pairs, Bare};
use values::{cpus, device, duration, is_container_name, size, split_host, ulimit};

const LOGGING_KEYS: &[&str] = &["driver", "options"];

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
    kernel::read(reader.checker, fields, field, &mut options.resources);
    ignored::warn(reader.checker, fields, field);
    let (deploy_resources, restart) = reader.deploy();
    deploy::merge_resources(&mut options.resources, deploy_resources);
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

    /// A map or a `KEY=VALUE` list; absent is empty.
    fn pairs(&mut self, key: &str) -> BTreeMap<String, String> {
        self.node(key)
            .map(|node| read_pairs(self.checker, node, &self.key(key), Bare::Empty))
            .unwrap_or_default()
    }

    /// A string that must be one of `values`.
    fn one_of(&mut self, key: &str, values: &[&str]) -> Option<String> {
        let value = self.string(key)?;
        if values.contains(&value.as_str()) {
            return Some(value);
        }
        let node = self.node(key)?;
        let choices: Vec<String> = values.iter().map(|value| format!("`{value}`")).collect();
        self.checker.error_with_hint(
            node,
            &self.key(key),
            format!("unknown `{key}` mode `{value}`"),
            format!("use {}", choices.join(" or ")),
        );
        None
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
        options.device_cgroup_rules = self.strings("device_cgroup_rules", false);
        options.cgroup_parent = self.string("cgroup_parent");
        options.storage_opt = self.pairs("storage_opt");
        options.annotations = self.pairs("annotations");
        options.oom_score_adj = self.node("oom_score_adj").and_then(|node| {
            self.checker
                .integer_in(node, &self.key("oom_score_adj"), -1000..=1000)
        });
    }

    fn namespaces(&mut self, options: &mut ContainerOptions) {
        options.cgroup = self.one_of("cgroup", &["host", "private"]);
        options.uts = self.one_of("uts", &["host"]);
        options.userns_mode = self.string("userns_mode");
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
            ..Resources::default()
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
        let restart_set = self.node("restart").is_some();
        deploy::read(self.checker, node, &self.key("deploy"), restart_set)
    }
}
