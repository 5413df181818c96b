//! `deploy` of a service: `resources` (limits and reservations, which win over the service-level
//! keys) and `restart_policy`, mapped onto the engine as compose maps them; the keys only a swarm
//! acts on are warnings.

use super::super::super::model::{DeviceRequest, Resources, RestartPolicy};
use super::super::super::node::{Node, Value};
use super::super::check::{describe, join, Checker};
use super::super::environment::{read_pairs, Bare};
use super::values::{cpus, duration, size};

/// Keys of `deploy`.
const DEPLOY_KEYS: &[&str] = &[
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
const SWARM_ONLY: &str = "it configures a swarm service; sandbox runs containers on one engine";

/// `deploy` at `field`: resources and restart policy (`None` when `restart_set`: `restart`
/// wins); swarm-only keys are warnings.
pub fn read(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
    restart_set: bool,
) -> (Resources, Option<RestartPolicy>) {
    if node.is_null() {
        return (Resources::default(), None); // `deploy:` with nothing under it
    }
    let Some(fields) = checker.fields(node, field, "`deploy`", DEPLOY_KEYS) else {
        return (Resources::default(), None);
    };
    if let Some(mode) = fields.get("mode") {
        let mode_field = join(field, "mode");
        if let Some(text) = checker.string(mode, &mode_field) {
            if text != "replicated" {
                checker.warning(
                    mode,
                    &mode_field,
                    format!("`deploy.mode: {text}` is ignored; the service runs its `replicas`"),
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
        checker.warning(
            value,
            &join(field, key),
            format!("`deploy.{key}` is ignored"),
            SWARM_ONLY,
        );
    }
    let resources = fields
        .get("resources")
        .map(|resources| deploy_resources(checker, resources, &join(field, "resources")))
        .unwrap_or_default();
    let restart = fields.get("restart_policy").and_then(|policy| {
        let policy_field = join(field, "restart_policy");
        let restart = restart_policy(checker, policy, &policy_field)?;
        if restart_set {
            checker.warning(
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

/// `deploy.resources` wins over the service keys wherever it sets something (compose's order).
pub fn merge_resources(resources: &mut Resources, deploy: Resources) {
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
                resources.device_requests = device_requests(checker, node, &key("devices"), None);
            }
        }
    }
    resources
}

/// A list of device requests; `default_capability` stands in for a missing `capabilities` (`gpus`
/// entries default to `gpu`).
pub fn device_requests(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
    default_capability: Option<&str>,
) -> Vec<DeviceRequest> {
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
        let capabilities = match (fields.get("capabilities"), default_capability) {
            (Some(capabilities), _) => checker
                .strings(capabilities, &key("capabilities"), false)
                .unwrap_or_default(),
            (None, Some(default)) => vec![default.to_string()],
            (None, None) => {
                checker.error_with_hint(
                    item,
                    &item_field,
                    "a device reservation needs `capabilities`",
                    "write `capabilities: [gpu]`",
                );
                continue;
            }
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
            capabilities,
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
