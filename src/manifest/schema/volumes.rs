//! A service's `volumes:` and `volumes_from:`, and the top-level `volumes:` map.
//!
//! Short forms: `./data:/data`, `./data:/data:ro`, `/abs:/x:rw,z`, `~/x:/x`, `name:/data:nocopy`
//! (a named volume), `/just/a/path` (anonymous). Long form: `{type: bind|volume|tmpfs, source,
//! target, read_only, bind: {create_host_path, propagation, selinux}, volume: {nocopy, subpath},
//! tmpfs: {size, mode}, consistency}`. Bind sources are made absolute against the manifest's folder;
//! `~` uses `HOME`.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::super::model::{VolumeMount, VolumeSpec, VolumesFrom, VolumesFromSource};
use super::super::node::{Node, Value};
use super::check::{describe, join, Checker, Fields, Kind, Place};
use super::environment;

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
const TOP_LEVEL_KEYS: &[&str] = &["name", "driver", "driver_opts", "external", "labels"];
const PROPAGATIONS: &[&str] = &[
    "rprivate", "private", "rshared", "shared", "rslave", "slave",
];
const FORMS_HINT: &str =
    "write `./host/path:/container/path[:ro]`, `volume-name:/container/path` or `/container/path`";
const TYPES_HINT: &str = "use `type: bind`, `type: volume` or `type: tmpfs`";
const SIZE_HINT: &str = "write a number of bytes or a size like `64m`, `512k` or `1g`";

/// A volume entry as written, before paths are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    Bind {
        source: String,
        target: String,
        read_only: bool,
        create_host_path: bool,
        propagation: Option<String>,
        selinux: Option<String>,
    },
    Mount(VolumeMount),
}

/// Reads `volumes:` of a service; named mounts come back with their place (for the declaration check).
pub fn read_mounts(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
) -> Vec<(VolumeMount, Place)> {
    let Value::Sequence(items) = &node.value else {
        let found = describe(node);
        checker.error_with_hint(
            node,
            field,
            format!("expected a list of volumes, found {found}"),
            FORMS_HINT,
        );
        return Vec::new();
    };
    let mut mounts: Vec<(VolumeMount, Place)> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let item_field = format!("{field}[{index}]");
        let written = match &item.value {
            Value::Mapping(_) => read_long(checker, item, &item_field),
            _ => checker
                .string(item, &item_field)
                .and_then(|text| match parse_volume(&text) {
                    Ok(written) => Some(written),
                    Err(message) => {
                        checker.error_with_hint(item, &item_field, message, FORMS_HINT);
                        None
                    }
                }),
        };
        let Some(written) = written else { continue };
        let Some(mount) = resolve(checker, item, &item_field, written) else {
            continue;
        };
        if let Some((_, earlier)) = mounts
            .iter()
            .find(|(other, _)| other.target() == mount.target())
        {
            checker.error_with_hint(
                item,
                &item_field,
                format!("two volumes are mounted at `{}`", mount.target()),
                format!(
                    "the other is `{}` on line {}; keep one",
                    earlier.field, earlier.span.line
                ),
            );
            continue;
        }
        mounts.push((
            mount,
            Place {
                span: item.span,
                field: item_field,
            },
        ));
    }
    mounts
}

fn read_long(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<Written> {
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
            "it tuned bind mounts of Docker Desktop for Mac, which no longer uses it; the Docker Engine ignores it",
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

/// A size in bytes: a number, or `64m`, `1.5g`, `512kb` (powers of 1024, as the Docker CLI reads them).
pub fn read_size(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<u64> {
    let scalar = checker.scalar(node, field, "a size")?;
    match parse_bytes(&scalar.text).filter(|_| scalar.kind != Kind::Null) {
        Some(bytes) => Some(bytes),
        None => {
            let message = format!("invalid size `{}`", scalar.text);
            checker.error_with_hint(node, field, message, SIZE_HINT);
            None
        }
    }
}

/// File mode bits: YAML `0o1777`/`01777` or an integer read as octal digits (`1777`).
fn read_mode(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<u32> {
    let scalar = checker.scalar(node, field, "a file mode")?;
    let digits = scalar.text.trim();
    let digits = digits.strip_prefix("0o").unwrap_or(digits);
    match u32::from_str_radix(digits, 8)
        .ok()
        .filter(|mode| *mode <= 0o7777)
    {
        Some(mode) => Some(mode),
        None => {
            let message = format!("invalid file mode `{}`", scalar.text);
            checker.error_with_hint(node, field, message, "write octal digits, like `1777`");
            None
        }
    }
}

/// `64m` → 67108864. Units b, k, m, g, t (also `kb`, `kib`, ...), any case; powers of 1024.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_lowercase();
    let split = text
        .find(|character: char| !(character.is_ascii_digit() || character == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit = unit.trim();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b').filter(|rest| !rest.is_empty()))
        .unwrap_or(unit);
    let power = match unit {
        "" | "b" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        _ => return None,
    };
    let number: f64 = number.parse().ok()?;
    let bytes = number * 1024f64.powi(power);
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
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

/// Parses a short volume entry: `SOURCE:TARGET[:OPTIONS]` or `TARGET`; options are a comma list of
/// `ro`, `rw`, `z`, `Z`, `nocopy` and the bind propagations.
pub fn parse_volume(text: &str) -> Result<Written, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let (source, target, options) = match parts.as_slice() {
        [target] => {
            check_target(target)?;
            return Ok(Written::Mount(VolumeMount::Anonymous {
                target: target.to_string(),
                read_only: false,
                nocopy: false,
            }));
        }
        [source, target] => (*source, *target, ""),
        [source, target, options] => (*source, *target, *options),
        _ => return Err(format!("invalid volume `{text}`")),
    };
    check_target(target)?;
    let mut read_only = false;
    let mut nocopy = false;
    let mut selinux = None;
    let mut propagation = None;
    for option in options.split(',').filter(|option| !option.is_empty()) {
        match option {
            "ro" => read_only = true,
            "rw" => read_only = false,
            "z" | "Z" => selinux = Some(option.to_string()),
            "nocopy" => nocopy = true,
            _ if PROPAGATIONS.contains(&option) => propagation = Some(option.to_string()),
            other => {
                return Err(format!(
                "unknown volume option `{other}` in `{text}`: expected `ro`, `rw`, `z`, `Z` or `nocopy`"
            ))
            }
        }
    }
    let (source, target) = (source.to_string(), target.to_string());
    if source.starts_with(['.', '/', '~']) {
        if nocopy {
            return Err(format!(
                "`nocopy` in `{text}` applies to named volumes only"
            ));
        }
        Ok(Written::Bind {
            source,
            target,
            read_only,
            create_host_path: true,
            propagation,
            selinux,
        })
    } else if is_volume_name(&source) {
        if selinux.is_some() || propagation.is_some() {
            return Err(format!(
                "`{options}` in `{text}` applies to host paths only, not to volume `{source}`"
            ));
        }
        Ok(Written::Mount(VolumeMount::Named {
            name: source,
            target,
            read_only,
            nocopy,
            subpath: None,
        }))
    } else {
        Err(format!(
            "`{source}` in `{text}` is neither a path nor a volume name"
        ))
    }
}

fn check_target(target: &str) -> Result<(), String> {
    if target.starts_with('/') {
        Ok(())
    } else {
        Err(format!(
            "the container path `{target}` must be absolute (start with `/`)"
        ))
    }
}

/// Volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn is_volume_name(name: &str) -> bool {
    let mut characters = name.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_alphanumeric())
        && characters.all(|character| {
            character.is_ascii_alphanumeric() || matches!(character, '_' | '.' | '-')
        })
}

fn resolve(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
    written: Written,
) -> Option<VolumeMount> {
    let Written::Bind {
        source,
        target,
        read_only,
        create_host_path,
        propagation,
        selinux,
    } = written
    else {
        let Written::Mount(mount) = written else {
            return None;
        };
        return Some(mount);
    };
    let source = if let Some(rest) = source.strip_prefix('~') {
        let Some(home) = checker.variables.get("HOME") else {
            checker.error(
                node,
                field,
                format!("cannot expand `~` in `{source}`: `HOME` is not set"),
            );
            return None;
        };
        Path::new(home).join(rest.trim_start_matches('/'))
    } else {
        checker.directory_of(node).join(&source)
    };
    Some(VolumeMount::Bind {
        source: normalise(&source),
        target,
        read_only,
        create_host_path,
        propagation,
        selinux,
    })
}

/// Reads `volumes_from:`: `service`, `service:ro`, `container:name`, `container:name:rw`. Services
/// come back with their place (checked to exist across services).
pub fn read_volumes_from(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
) -> Vec<(VolumesFrom, Place)> {
    let Some(items) = checker.strings(node, field, false) else {
        return Vec::new();
    };
    let Value::Sequence(nodes) = &node.value else {
        return Vec::new();
    };
    let mut entries = Vec::new();
    for ((index, text), item) in items.iter().enumerate().zip(nodes) {
        let item_field = format!("{field}[{index}]");
        match parse_volumes_from(text) {
            Ok(entry) => entries.push((
                entry,
                Place {
                    span: item.span,
                    field: item_field,
                },
            )),
            Err(message) => checker.error_with_hint(
                item,
                &item_field,
                message,
                "write `service`, `service:ro`, `container:name` or `container:name:ro`",
            ),
        }
    }
    entries
}

/// Parses one `volumes_from:` entry.
pub fn parse_volumes_from(text: &str) -> Result<VolumesFrom, String> {
    let (source, rest) = match text.strip_prefix("container:") {
        Some(rest) => {
            let (name, mode) = rest.split_once(':').unwrap_or((rest, ""));
            (VolumesFromSource::Container(name.to_string()), mode)
        }
        None => {
            let (name, mode) = text.split_once(':').unwrap_or((text, ""));
            (VolumesFromSource::Service(name.to_string()), mode)
        }
    };
    let name = match &source {
        VolumesFromSource::Service(name) | VolumesFromSource::Container(name) => name,
    };
    if name.is_empty() {
        return Err(format!("`{text}` names no service or container"));
    }
    let read_only = match rest {
        "" | "rw" => false,
        "ro" => true,
        other => {
            return Err(format!(
                "unknown mode `{other}` in `{text}`: expected `ro` or `rw`"
            ))
        }
    };
    Ok(VolumesFrom { source, read_only })
}

/// Reads the top-level `volumes:` map.
pub fn read_declarations(checker: &mut Checker<'_>, node: &Node) -> BTreeMap<String, VolumeSpec> {
    let mut volumes = BTreeMap::new();
    if node.scalar_text().is_some_and(str::is_empty) {
        return volumes;
    }
    let Some(entries) = checker.entries(node, "volumes", "a map of volume names") else {
        return volumes;
    };
    for entry in entries {
        let field = join("volumes", entry.key);
        if !is_volume_name(entry.key) {
            checker.error_with_hint(
                entry.key_node,
                &field,
                format!("invalid volume name `{}`", entry.key),
                "use letters, digits, `_`, `.` and `-`, starting with a letter or digit",
            );
            continue;
        }
        if let Some(spec) = read_declaration(checker, entry.key, entry.value, &field) {
            volumes.insert(entry.key.to_string(), spec);
        }
    }
    volumes
}

fn read_declaration(
    checker: &mut Checker<'_>,
    key: &str,
    node: &Node,
    field: &str,
) -> Option<VolumeSpec> {
    let mut spec = VolumeSpec::default();
    if node.scalar_text().is_some_and(str::is_empty) {
        return Some(spec);
    }
    let what = format!("volume `{key}`");
    let fields = checker.fields(node, field, &what, TOP_LEVEL_KEYS)?;
    let key_field = |name: &str| join(field, name);
    spec.name = fields
        .get("name")
        .and_then(|value| checker.string(value, &key_field("name")));
    if let Some(value) = fields.get("external") {
        spec.external = read_external(checker, value, &key_field("external"), &mut spec.name);
    }
    spec.driver = fields
        .get("driver")
        .and_then(|value| checker.string(value, &key_field("driver")));
    if let Some(value) = fields.get("driver_opts") {
        spec.driver_opts = read_driver_opts(checker, value, &key_field("driver_opts"));
    }
    if let Some(value) = fields.get("labels") {
        spec.labels = environment::read_labels(checker, value, &key_field("labels"));
    }
    if spec.external {
        for other in ["driver", "driver_opts", "labels"] {
            if let Some(value) = fields.get(other) {
                checker.warning(
                    value,
                    &key_field(other),
                    format!("`{other}` of an external volume is accepted and has no effect"),
                    "an external volume is used as it is, never created (compose refuses the key)",
                );
            }
        }
    }
    if let Some(name) = &spec.name {
        if !is_volume_name(name) {
            let node = fields.get("name").unwrap_or(node);
            checker.error_with_hint(
                node,
                &key_field("name"),
                format!("invalid volume name `{name}`"),
                "use letters, digits, `_`, `.` and `-`, starting with a letter or digit",
            );
        }
    }
    Some(spec)
}

/// `external: true`, or the older `external: {name: NAME}` (sets the name).
fn read_external(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
    name: &mut Option<String>,
) -> bool {
    if !matches!(node.value, Value::Mapping(_)) {
        return checker.boolean(node, field).unwrap_or(false);
    }
    let Some(fields) = checker.fields(node, field, "`external`", &["name"]) else {
        return false;
    };
    if let Some(value) = fields.get("name") {
        let external_name = checker.string(value, &join(field, "name"));
        match (name.as_ref(), external_name) {
            (Some(written), Some(external)) if *written != external => checker.error_with_hint(
                value,
                &join(field, "name"),
                format!("`external.name` (`{external}`) disagrees with `name` (`{written}`)"),
                "keep only `name:`",
            ),
            (_, Some(external)) => *name = Some(external),
            _ => {}
        }
    }
    true
}

/// `driver_opts`: a map of strings or numbers.
fn read_driver_opts(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
) -> BTreeMap<String, String> {
    let mut options = BTreeMap::new();
    for entry in checker
        .entries(node, field, "a map of driver options")
        .unwrap_or_default()
    {
        if let Some(value) = checker.string(entry.value, &join(field, entry.key)) {
            options.insert(entry.key.to_string(), value);
        }
    }
    options
}

/// Removes `.` and resolves `..` without touching the file system.
pub fn normalise(path: &Path) -> PathBuf {
    let mut result = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !result.pop() {
                    result.push("..");
                }
            }
            other => result.push(other),
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(source: &str, target: &str, read_only: bool) -> Written {
        Written::Bind {
            source: source.into(),
            target: target.into(),
            read_only,
            create_host_path: true,
            propagation: None,
            selinux: None,
        }
    }

    fn named(name: &str, target: &str, read_only: bool, nocopy: bool) -> Written {
        Written::Mount(VolumeMount::Named {
            name: name.into(),
            target: target.into(),
            read_only,
            nocopy,
            subpath: None,
        })
    }

    #[test]
    fn short_forms() {
        assert_eq!(
            parse_volume("./data:/data"),
            Ok(bind("./data", "/data", false))
        );
        assert_eq!(
            parse_volume("./data:/data:ro"),
            Ok(bind("./data", "/data", true))
        );
        assert_eq!(parse_volume("/abs:/x:rw"), Ok(bind("/abs", "/x", false)));
        assert_eq!(parse_volume("~/x:/x"), Ok(bind("~/x", "/x", false)));
        assert_eq!(
            parse_volume("cache:/data"),
            Ok(named("cache", "/data", false, false))
        );
        assert_eq!(
            parse_volume("cache:/data:ro,nocopy"),
            Ok(named("cache", "/data", true, true))
        );
        assert_eq!(
            parse_volume("/just/a/path"),
            Ok(Written::Mount(VolumeMount::Anonymous {
                target: "/just/a/path".into(),
                read_only: false,
                nocopy: false,
            }))
        );
    }

    #[test]
    fn short_bind_options() {
        assert_eq!(
            parse_volume("./a:/a:ro,Z,rshared"),
            Ok(Written::Bind {
                source: "./a".into(),
                target: "/a".into(),
                read_only: true,
                create_host_path: true,
                propagation: Some("rshared".into()),
                selinux: Some("Z".into()),
            })
        );
    }

    #[test]
    fn bad_short_forms() {
        for text in [
            "data",
            "./a:data",
            "./a:/b:xx",
            "a:b:c:d",
            "bad name:/x",
            ":/x",
            "./a:/b:nocopy",
            "cache:/b:z",
        ] {
            assert!(parse_volume(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn volumes_from_forms() {
        let entry = |source, read_only| VolumesFrom { source, read_only };
        let service = |name: &str| VolumesFromSource::Service(name.into());
        let container = |name: &str| VolumesFromSource::Container(name.into());
        assert_eq!(parse_volumes_from("db"), Ok(entry(service("db"), false)));
        assert_eq!(parse_volumes_from("db:ro"), Ok(entry(service("db"), true)));
        assert_eq!(
            parse_volumes_from("container:old"),
            Ok(entry(container("old"), false))
        );
        assert_eq!(
            parse_volumes_from("container:old:rw"),
            Ok(entry(container("old"), false))
        );
        for text in ["", ":ro", "db:rx", "container:", "container:x:y"] {
            assert!(parse_volumes_from(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn sizes_read_like_the_docker_cli() {
        assert_eq!(parse_bytes("1024"), Some(1024));
        assert_eq!(parse_bytes("64m"), Some(64 * 1024 * 1024));
        assert_eq!(parse_bytes("64MB"), Some(64 * 1024 * 1024));
        assert_eq!(parse_bytes("1.5k"), Some(1536));
        assert_eq!(parse_bytes("2GiB"), Some(2 << 30));
        assert_eq!(parse_bytes("12b"), Some(12));
        for text in ["", "m", "1x", "-1", "1..2k"] {
            assert_eq!(parse_bytes(text), None, "{text:?}");
        }
    }

    #[test]
    fn paths_are_normalised() {
        assert_eq!(normalise(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(normalise(Path::new("/a/b/./")), PathBuf::from("/a/b"));
    }
}
