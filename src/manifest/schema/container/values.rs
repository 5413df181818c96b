//! The value forms of the container keys: sizes (`512m`), CPUs, durations, ulimits, devices,
//! `extra_hosts` items and container names, each read as compose reads it.

use super::super::super::duration::{parse_duration, DURATION_FORMS};
use super::super::super::model::{Device, Ulimit};
use super::super::super::node::{Node, Value};
use super::super::check::{join, Checker, Kind};

const DEVICE_KEYS: &[&str] = &["source", "target", "permissions"];
const ULIMIT_KEYS: &[&str] = &["soft", "hard"];
const SIZE_HINT: &str =
    "write a number of bytes or a number with a unit: `b`, `k`, `m`, `g` (e.g. `512m`, `1g`, `100k`)";

pub fn ulimit(checker: &mut Checker<'_>, node: &Node, field: &str, name: &str) -> Option<Ulimit> {
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
pub fn device(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<Device> {
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
pub fn parse_device(text: &str) -> Option<(String, Option<String>, Option<String>)> {
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
pub fn split_host(text: &str) -> Option<(&str, &str)> {
    let (host, address) = text.split_once('=').or_else(|| text.split_once(':'))?;
    let address = address.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty() && !address.is_empty()).then_some((host, address))
}

/// Docker's container name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn is_container_name(name: &str) -> bool {
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
pub fn size(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<u64> {
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
pub fn cpus(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<i64> {
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

pub fn duration(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
) -> Option<std::time::Duration> {
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
