//! A service's `build:` (a context path, or compose's map) and `pull_policy:`.
//!
//! Images are built by the engine's classic builder. Keys of the build chapter that need BuildKit
//! or a registry (`ssh`, `secrets`, `cache_to`, `platforms`, ...) are accepted with a warning.

use std::collections::BTreeMap;
use std::time::Duration;

use super::super::model::{Build, PullPolicy};
use super::super::node::{Node, Value};
use super::check::{join, Checker};
use super::environment::{self, Bare};
use super::volumes::{normalise, read_size};

const KEYS: &[&str] = &[
    "context",
    "dockerfile",
    "dockerfile_inline",
    "args",
    "target",
    "labels",
    "cache_from",
    "network",
    "shm_size",
    "extra_hosts",
    "no_cache",
    "pull",
    // Accepted with a warning (see `WITHOUT_EFFECT`).
    "additional_contexts",
    "ssh",
    "cache_to",
    "entitlements",
    "isolation",
    "privileged",
    "provenance",
    "sbom",
    "secrets",
    "tags",
    "ulimits",
    "platforms",
];
/// Build keys the classic builder has no use for, and why.
const WITHOUT_EFFECT: &[(&str, &str)] = &[
    ("additional_contexts", "named build contexts need BuildKit; sandbox builds with the engine's classic builder"),
    ("ssh", "SSH agent forwarding needs BuildKit; sandbox builds with the engine's classic builder"),
    ("cache_to", "exporting the build cache needs BuildKit; sandbox builds with the engine's classic builder"),
    ("entitlements", "entitlements need BuildKit; sandbox builds with the engine's classic builder"),
    ("isolation", "isolation technologies apply to Windows engines only"),
    ("privileged", "privileged builds need BuildKit; sandbox builds with the engine's classic builder"),
    ("provenance", "attestations need BuildKit and a registry"),
    ("sbom", "attestations need BuildKit and a registry"),
    ("secrets", "build secrets need BuildKit; sandbox builds with the engine's classic builder"),
    ("tags", "the image is tagged with the service's `image` (or `<project>-<service>`) only"),
    ("ulimits", "build ulimits need BuildKit; sandbox builds with the engine's classic builder"),
    ("platforms", "the image is built for the engine's own platform"),
];
const PULL_POLICY_HINT: &str =
    "use `missing`, `always`, `never`, `build`, `daily`, `weekly` or `every_<duration>` (like `every_12h`)";

/// Reads `build:`; `None` when it had errors.
pub fn read_build(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<Build> {
    if !matches!(node.value, Value::Mapping(_)) {
        let context = checker.string(node, field)?;
        let context = resolve_context(checker, node, field, &context)?;
        return Some(Build {
            context,
            dockerfile: "Dockerfile".to_string(),
            dockerfile_inline: None,
            args: BTreeMap::new(),
            target: None,
            labels: BTreeMap::new(),
            cache_from: Vec::new(),
            network: None,
            shm_size: None,
            extra_hosts: Vec::new(),
            no_cache: false,
            pull: false,
        });
    }
    let fields = checker.fields(node, field, "`build`", KEYS)?;
    let errors_before = checker.errors.len();
    let key = |name: &str| join(field, name);
    for (name, why) in WITHOUT_EFFECT {
        if let Some(value) = fields.get(name) {
            let message = format!("`build.{name}` is accepted and has no effect");
            checker.warning(value, &key(name), message, *why);
        }
    }
    let text = |checker: &mut Checker<'_>, name: &str| {
        fields
            .get(name)
            .and_then(|value| checker.string(value, &key(name)))
    };
    let context_text = text(checker, "context").unwrap_or_else(|| ".".to_string());
    let context = resolve_context(
        checker,
        fields.get("context").unwrap_or(node),
        &key("context"),
        &context_text,
    );
    let dockerfile = text(checker, "dockerfile");
    let dockerfile_inline = text(checker, "dockerfile_inline");
    if let (Some(_), Some(inline)) = (&dockerfile, fields.get("dockerfile_inline")) {
        checker.error_with_hint(
            inline,
            &key("dockerfile_inline"),
            "`dockerfile` and `dockerfile_inline` are both set",
            "keep one of them",
        );
    }
    let flag = |checker: &mut Checker<'_>, name: &str| {
        fields
            .get(name)
            .and_then(|value| checker.boolean(value, &key(name)))
            .unwrap_or(false)
    };
    let build =
        Build {
            context: context.unwrap_or_default(),
            dockerfile: dockerfile.unwrap_or_else(|| "Dockerfile".to_string()),
            dockerfile_inline,
            args: fields
                .get("args")
                .map(|value| {
                    environment::read_pairs(checker, value, &key("args"), Bare::FromEnvironment)
                })
                .unwrap_or_default(),
            target: text(checker, "target"),
            labels: fields
                .get("labels")
                .map(|value| environment::read_labels(checker, value, &key("labels")))
                .unwrap_or_default(),
            cache_from: fields
                .get("cache_from")
                .and_then(|value| checker.strings(value, &key("cache_from"), false))
                .unwrap_or_default(),
            network: text(checker, "network"),
            shm_size: fields
                .get("shm_size")
                .and_then(|value| read_shm_size(checker, value, &key("shm_size"))),
            extra_hosts: fields
                .get("extra_hosts")
                .map(|value| {
                    let hosts = read_extra_hosts(checker, value, &key("extra_hosts"));
                    if hosts.len() > 1 {
                        checker.warning(
                        value,
                        &key("extra_hosts"),
                        format!("only the first of {} build `extra_hosts` is used", hosts.len()),
                        "the engine API client sandbox uses sends one `extrahosts` value per build",
                    );
                    }
                    hosts
                })
                .unwrap_or_default(),
            no_cache: flag(checker, "no_cache"),
            pull: flag(checker, "pull"),
        };
    (checker.errors.len() == errors_before).then_some(build)
}

/// `shm_size` of the build: the engine's build API takes at most 2 GiB − 1 byte.
fn read_shm_size(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<u64> {
    let size = read_size(checker, node, field)?;
    if size > i32::MAX as u64 {
        checker.error_with_hint(
            node,
            field,
            format!("a build `shm_size` of {size} bytes is more than the engine's build API takes"),
            "use at most `2047m`",
        );
        return None;
    }
    Some(size)
}

/// The context folder, absolute; a URL (git or tarball) is refused.
fn resolve_context(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
    context: &str,
) -> Option<std::path::PathBuf> {
    if context.contains("://") || context.starts_with("git@") {
        checker.error_with_hint(
            node,
            field,
            format!("build context `{context}` is a URL"),
            "sandbox builds from a folder: clone or download it and give its path",
        );
        return None;
    }
    let resolved = normalise(&checker.directory_of(node).join(context));
    if !resolved.is_dir() {
        checker.error_with_hint(
            node,
            field,
            format!("build context `{context}` is not a folder"),
            "the context path is relative to the manifest's folder",
        );
        return None;
    }
    Some(resolved)
}

/// `extra_hosts` as a list (`host:ip`, `host=ip`) or a map; returned as `host:ip`.
fn read_extra_hosts(checker: &mut Checker<'_>, node: &Node, field: &str) -> Vec<String> {
    let pairs: Vec<(String, String)> = match &node.value {
        Value::Mapping(_) => checker
            .entries(node, field, "a map of host names")
            .unwrap_or_default()
            .into_iter()
            .filter_map(|entry| {
                let address = checker.string(entry.value, &join(field, entry.key))?;
                Some((entry.key.to_string(), address))
            })
            .collect(),
        _ => {
            let Value::Sequence(items) = &node.value else {
                checker.strings(node, field, false);
                return Vec::new();
            };
            items
                .iter()
                .enumerate()
                .filter_map(|(index, item)| {
                    let item_field = format!("{field}[{index}]");
                    let text = checker.string(item, &item_field)?;
                    let split = text.split_once('=').or_else(|| text.split_once(':'));
                    match split {
                        Some((host, address)) if !host.is_empty() && !address.is_empty() => {
                            Some((host.to_string(), address.to_string()))
                        }
                        _ => {
                            checker.error_with_hint(
                                item,
                                &item_field,
                                format!("`{text}` is not `host:address`"),
                                "write `somehost:162.242.195.82` or `somehost=162.242.195.82`",
                            );
                            None
                        }
                    }
                })
                .collect()
        }
    };
    pairs
        .into_iter()
        .map(|(host, address)| {
            let address = address
                .strip_prefix('[')
                .and_then(|inner| inner.strip_suffix(']'))
                .unwrap_or(&address);
            format!("{host}:{address}")
        })
        .collect()
}

/// Reads `pull_policy:`; `has_build` says whether the service has a `build:` section.
pub fn read_pull_policy(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
    has_build: bool,
) -> Option<PullPolicy> {
    let text = checker.string(node, field)?;
    let policy = match parse_pull_policy(&text) {
        Some(policy) => policy,
        None => {
            let message = format!("unknown pull policy `{text}`");
            checker.error_with_hint(node, field, message, PULL_POLICY_HINT);
            return None;
        }
    };
    if policy == PullPolicy::Build && !has_build {
        checker.error_with_hint(
            node,
            field,
            "`pull_policy: build` needs a `build:` section",
            "add `build: ./folder`, or use another pull policy",
        );
        return None;
    }
    Some(policy)
}

/// `always`, `never`, `missing`/`if_not_present`, `build`, `daily`, `weekly`, `every_1w2d3h4m5s`.
pub fn parse_pull_policy(text: &str) -> Option<PullPolicy> {
    const DAY: u64 = 24 * 60 * 60;
    Some(match text {
        "always" | "refresh" => PullPolicy::Always,
        "never" => PullPolicy::Never,
        "missing" | "if_not_present" => PullPolicy::Missing,
        "build" => PullPolicy::Build,
        "daily" => PullPolicy::Every(Duration::from_secs(DAY)),
        "weekly" => PullPolicy::Every(Duration::from_secs(7 * DAY)),
        _ => {
            let mut rest = text.strip_prefix("every_")?;
            let mut seconds: u64 = 0;
            while !rest.is_empty() {
                let digits = rest.find(|character: char| !character.is_ascii_digit())?;
                let (number, after) = rest.split_at(digits);
                let number: u64 = number.parse().ok()?;
                let unit = match after.chars().next()? {
                    'w' => 7 * DAY,
                    'd' => DAY,
                    'h' => 3600,
                    'm' => 60,
                    's' => 1,
                    _ => return None,
                };
                seconds = seconds.checked_add(number.checked_mul(unit)?)?;
                rest = &after[1..];
            }
            if seconds == 0 {
                return None;
            }
            PullPolicy::Every(Duration::from_secs(seconds))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policies_as_compose_spells_them() {
        let every = |seconds| Some(PullPolicy::Every(Duration::from_secs(seconds)));
        assert_eq!(parse_pull_policy("always"), Some(PullPolicy::Always));
        assert_eq!(
            parse_pull_policy("if_not_present"),
            Some(PullPolicy::Missing)
        );
        assert_eq!(parse_pull_policy("daily"), every(86_400));
        assert_eq!(parse_pull_policy("weekly"), every(604_800));
        assert_eq!(parse_pull_policy("every_12h"), every(43_200));
        assert_eq!(parse_pull_policy("every_1d2h30m"), every(95_400));
        assert_eq!(parse_pull_policy("every_1w"), every(604_800));
        for text in [
            "sometimes",
            "every_",
            "every_12",
            "every_h",
            "every_5x",
            "every_0s",
            "Always",
        ] {
            assert_eq!(parse_pull_policy(text), None, "{text}");
        }
    }
}
