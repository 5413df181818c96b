//! The long syntax of a service's `volumes:` entry: `type`, `source`, `target`, `read_only`,
//! `consistency`, and the options of each type (`bind:`, `volume:`, `tmpfs:`).

use super::super::super::model::VolumeMount;
use super::super::super::node::Node;
use super::super::check::{join, Checker, Fields};
use super::super::mode::read_mode;
use super::size::read_size;
use super::{check_target, is_volume_name, Written, PROPAGATIONS};

const LONG_KEYS: &[&str] = &[
    "type",
    "source",
    "target",
    "read_only",
    "consistency",
    "bind",
    "volume",
    "tmpfs",
    "image",
];
const BIND_KEYS: &[&str] = &["propagation", "create_host_path", "selinux", "recursive"];
const VOLUME_OPTION_KEYS: &[&str] = &["nocopy", "subpath", "labels"];
const TMPFS_KEYS: &[&str] = &["size", "mode"];
const TYPES_HINT: &str = "use `type: bind`, `type: volume` or `type: tmpfs`";

pub fn read_long(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<Written> {
    let fields = checker.fields(node, field, "a volume", LONG_KEYS)?;
    let text = |checker: &mut Checker<'_>, key: &str| {
        fields
            .get(key)
            .and_then(|value| checker.string(value, &join(field, key)))
    };
    let kind = text(checker, "type");
    let source = text(checker, "source").filter(|source| !source.is_empty());
    let target = text(checker, "target");
    let read_only = flag(checker, &fields, field, "read_only");
    if let Some(consistency) = fields.get("consistency") {
        checker.warning(
            consistency,
            &join(field, "consistency"),
            "`consistency` is accepted and has no effect",
            super::CONSISTENCY_WHY,
        );
    }
    let Some(kind) = kind else {
        checker.error_with_hint(node, field, "missing field `type`", TYPES_HINT);
        return None;
    };
    if !["bind", "volume", "tmpfs"].contains(&kind.as_str()) {
        let message = match kind.as_str() {
            "image" | "npipe" | "cluster" => {
                format!("volumes of type `{kind}` are not supported by sandbox")
            }
            _ => format!("unknown volume type `{kind}`"),
        };
        let node = fields.get("type").unwrap_or(node);
        checker.error_with_hint(node, &join(field, "type"), message, TYPES_HINT);
        return None;
    }
    for option in ["bind", "volume", "tmpfs", "image"] {
        if let (Some(value), true) = (fields.get(option), option != kind) {
            checker.error_with_hint(
                value,
                &join(field, option),
                format!("`{option}` options do not apply to a `{kind}` volume"),
                format!("remove `{option}:`, or set `type: {option}`"),
            );
            return None;
        }
    }
    let Some(target) = target else {
        checker.error_with_hint(
            node,
            field,
            "missing field `target`",
            "`target` is the path inside the container",
        );
        return None;
    };
    check_target(&target)
        .map_err(|message| checker.error(node, field, message))
        .ok()?;
    match kind.as_str() {
        "bind" => read_bind(checker, node, &fields, field, source, target, read_only),
        "volume" => {
            let (nocopy, subpath) = read_volume_options(checker, fields.get("volume"), field)?;
            Some(Written::Mount(match source {
                Some(name) if is_volume_name(&name) => VolumeMount::Named {
                    name,
                    target,
                    read_only,
                    nocopy,
                    subpath,
                    selinux: None,
                },
                Some(name) => {
                    let hint = if name.starts_with(['.', '/', '~']) {
                        "a host path needs `type: bind`"
                    } else {
                        "use letters, digits, `_`, `.` and `-`, starting with a letter or digit"
                    };
                    let node = fields.get("source").unwrap_or(node);
                    checker.error_with_hint(
                        node,
                        &join(field, "source"),
                        format!("invalid volume name `{name}`"),
                        hint,
                    );
                    return None;
                }
                None => VolumeMount::Anonymous {
                    target,
                    read_only,
                    nocopy,
                },
            }))
        }
        _ => {
            if let (Some(_), Some(value)) = (&source, fields.get("source")) {
                checker.error_with_hint(
                    value,
                    &join(field, "source"),
                    "a `tmpfs` volume has no `source`",
                    "remove `source:`; a tmpfs lives in memory",
                );
                return None;
            }
            let (size, mode) = read_tmpfs_options(checker, fields.get("tmpfs"), field)?;
            Some(Written::Mount(VolumeMount::Tmpfs {
                target,
                read_only,
                size,
                mode,
            }))
        }
    }
}

fn read_bind(
    checker: &mut Checker<'_>,
    node: &Node,
    fields: &Fields<'_>,
    field: &str,
    source: Option<String>,
    target: String,
    read_only: bool,
) -> Option<Written> {
    let Some(source) = source else {
        checker.error_with_hint(
            node,
            field,
            "a `bind` volume needs a `source`",
            "`source` is the path on the host, like `./data`",
        );
        return None;
    };
    let mut create_host_path = true;
    let mut propagation = None;
    let mut selinux = None;
    if let Some(options) = fields.get("bind") {
        let options_field = join(field, "bind");
        let options = checker.fields(options, &options_field, "`bind` options", BIND_KEYS)?;
        if options.get("create_host_path").is_some() {
            create_host_path = flag(checker, &options, &options_field, "create_host_path");
        }
        propagation = one_of(
            checker,
            &options,
            &options_field,
            "propagation",
            PROPAGATIONS,
        );
        selinux = one_of(checker, &options, &options_field, "selinux", &["z", "Z"]);
        if let Some(recursive) = options.get("recursive") {
            checker.warning(
                recursive,
                &join(&options_field, "recursive"),
                "`bind.recursive` is accepted and has no effect",
                "sandbox mounts submounts of the source as the engine does by default (`enabled`)",
            );
        }
    }
    Some(Written::Bind {
        source,
        target,
        read_only,
        create_host_path,
        propagation,
        selinux,
    })
}

/// `volume: {nocopy, subpath}`; `None` when it had errors.
fn read_volume_options(
    checker: &mut Checker<'_>,
    node: Option<&Node>,
    field: &str,
) -> Option<(bool, Option<String>)> {
    let Some(node) = node else {
        return Some((false, None));
    };
    let field = join(field, "volume");
    let options = checker.fields(node, &field, "`volume` options", VOLUME_OPTION_KEYS)?;
    let nocopy = flag(checker, &options, &field, "nocopy");
    let subpath = options
        .get("subpath")
        .and_then(|value| checker.string(value, &join(&field, "subpath")));
    if let Some(labels) = options.get("labels") {
        checker.warning(
            labels,
            &join(&field, "labels"),
            "`volume.labels` is accepted and has no effect",
            "label the volume in the top-level `volumes:` entry instead",
        );
    }
    Some((nocopy, subpath))
}

/// `tmpfs: {size, mode}`; `None` when it had errors.
fn read_tmpfs_options(
    checker: &mut Checker<'_>,
    node: Option<&Node>,
    field: &str,
) -> Option<(Option<u64>, Option<u32>)> {
    let Some(node) = node else {
        return Some((None, None));
    };
    let field = join(field, "tmpfs");
    let options = checker.fields(node, &field, "`tmpfs` options", TMPFS_KEYS)?;
    let size = match options.get("size") {
        Some(value) => Some(read_size(checker, value, &join(&field, "size"))?),
        None => None,
    };
    let mode = match options.get("mode") {
        Some(value) => Some(read_mode(checker, value, &join(&field, "mode"))?),
        None => None,
    };
    Some((size, mode))
}

fn flag(checker: &mut Checker<'_>, fields: &Fields<'_>, field: &str, key: &str) -> bool {
    fields
        .get(key)
        .and_then(|value| checker.boolean(value, &join(field, key)))
        .unwrap_or(false)
}

fn one_of(
    checker: &mut Checker<'_>,
    fields: &Fields<'_>,
    field: &str,
    key: &str,
    allowed: &[&str],
) -> Option<String> {
    let node = fields.get(key)?;
    let key_field = join(field, key);
    let value = checker.string(node, &key_field)?;
    if allowed.contains(&value.as_str()) {
        return Some(value);
    }
    let allowed: Vec<String> = allowed.iter().map(|value| format!("`{value}`")).collect();
    checker.error_with_hint(
        node,
        &key_field,
        format!("unknown {key} `{value}`"),
        format!("use one of {}", allowed.join(", ")),
    );
    None
}
