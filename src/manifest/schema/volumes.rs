//! A service's `volumes:`. Short forms: `./data:/data`, `./data:/data:ro`, `/abs:/x`, `~/x:/x`,
//! `name:/data` (a named volume), `/just/a/path` (anonymous); long form `{type, source, target,
//! read_only}`. Bind sources are made absolute against the manifest's folder; `~` uses `HOME`.

use std::path::{Component, Path, PathBuf};

use super::super::model::VolumeMount;
use super::super::node::{Node, Value};
use super::check::{describe, join, Checker, Place};

const LONG_KEYS: &[&str] = &["type", "source", "target", "read_only"];
const FORMS_HINT: &str =
    "write `./host/path:/container/path[:ro]`, `volume-name:/container/path` or `/container/path`";

/// A volume entry as written, before paths are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    Bind {
        source: String,
        target: String,
        read_only: bool,
    },
    Named {
        name: String,
        target: String,
        read_only: bool,
    },
    Anonymous {
        target: String,
    },
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
    let mut mounts = Vec::new();
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
        if let Some(mount) = resolve(checker, item, &item_field, written) {
            mounts.push((
                mount,
                Place {
                    span: item.span,
                    field: item_field,
                },
            ));
        }
    }
    mounts
}

fn read_long(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<Written> {
    let fields = checker.fields(node, field, "a volume", LONG_KEYS)?;
    let mut text = |key: &str| {
        fields
            .get(key)
            .and_then(|value| checker.string(value, &join(field, key)))
    };
    let kind = text("type");
    let source = text("source");
    let target = text("target");
    let read_only = fields
        .get("read_only")
        .and_then(|value| checker.boolean(value, &join(field, "read_only")))
        .unwrap_or(false);
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
    match (kind.as_deref(), source) {
        (Some("bind"), Some(source)) => Some(Written::Bind {
            source,
            target,
            read_only,
        }),
        (Some("bind"), None) => {
            checker.error(node, field, "a `bind` volume needs a `source`");
            None
        }
        (Some("volume"), Some(name)) => Some(Written::Named {
            name,
            target,
            read_only,
        }),
        (Some("volume"), None) => Some(Written::Anonymous { target }),
        (None, _) => {
            checker.error_with_hint(
                node,
                field,
                "missing field `type`",
                "set `type: bind` or `type: volume`",
            );
            None
        }
        (Some(other), _) => {
            let message = format!("unknown volume type `{other}`: expected `bind` or `volume`");
            checker.error(node, field, message);
            None
        }
    }
}

/// Parses a short volume entry.
pub fn parse_volume(text: &str) -> Result<Written, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [target] => {
            check_target(target)?;
            return Ok(Written::Anonymous {
                target: target.to_string(),
            });
        }
        [source, target] => (*source, *target, "rw"),
        [source, target, mode] => (*source, *target, *mode),
        _ => return Err(format!("invalid volume `{text}`")),
    };
    let read_only = match mode {
        "ro" => true,
        "rw" => false,
        other => {
            return Err(format!(
                "unknown volume mode `{other}` in `{text}`: expected `ro` or `rw`"
            ))
        }
    };
    check_target(target)?;
    let (source, target) = (source.to_string(), target.to_string());
    if source.starts_with(['.', '/', '~']) {
        Ok(Written::Bind {
            source,
            target,
            read_only,
        })
    } else if is_volume_name(&source) {
        Ok(Written::Named {
            name: source,
            target,
            read_only,
        })
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
    Some(match written {
        Written::Bind {
            source,
            target,
            read_only,
        } => {
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
                checker.directory.join(&source)
            };
            VolumeMount::Bind {
                source: normalise(&source),
                target,
                read_only,
            }
        }
        Written::Named {
            name,
            target,
            read_only,
        } => VolumeMount::Named {
            name,
            target,
            read_only,
        },
        Written::Anonymous { target } => VolumeMount::Anonymous { target },
    })
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
        }
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
            Ok(Written::Named {
                name: "cache".into(),
                target: "/data".into(),
                read_only: false
            })
        );
        assert_eq!(
            parse_volume("/just/a/path"),
            Ok(Written::Anonymous {
                target: "/just/a/path".into()
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
        ] {
            assert!(parse_volume(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn paths_are_normalised() {
        assert_eq!(normalise(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(normalise(Path::new("/a/b/./")), PathBuf::from("/a/b"));
    }
}
