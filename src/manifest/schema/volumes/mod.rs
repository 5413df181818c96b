//! A service's `volumes:` (here), `volumes_from:` (`from`), the top-level `volumes:` map
//! (`declared`), and sizes and file modes (`size`).
//!
//! Short forms: `./data:/data`, `./data:/data:ro`, `/abs:/x:rw,z`, `~/x:/x`, `name:/data:nocopy`
//! (a named volume), `/just/a/path` (anonymous). Long form: `{type: bind|volume|tmpfs, source,
//! target, read_only, bind: {create_host_path, propagation, selinux}, volume: {nocopy, subpath},
//! tmpfs: {size, mode}, consistency}`. Bind sources are made absolute against the manifest's folder;
//! `~` uses `HOME`.

mod declared;
mod from;
mod long;
mod size;

use std::path::{Component, Path, PathBuf};

pub use declared::read_declarations;
pub use from::read_volumes_from;
pub use size::read_size;

use super::super::model::VolumeMount;
use super::super::node::{Node, Value};
use super::check::{describe, Checker, Place};

const PROPAGATIONS: &[&str] = &[
    "rprivate", "private", "rshared", "shared", "rslave", "slave",
];
const FORMS_HINT: &str =
    "write `./host/path:/container/path[:ro]`, `volume-name:/container/path` or `/container/path`";

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
            Value::Mapping(_) => long::read_long(checker, item, &item_field),
            _ => checker
                .string(item, &item_field)
                .and_then(|text| match parse_volume(&text) {
                    Ok(written) => {
                        warn_consistency(checker, item, &item_field, &text);
                        Some(written)
                    }
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

/// Why `consistency` (long syntax) and `:cached`-like modes (short syntax) do nothing.
const CONSISTENCY_WHY: &str = "it tuned bind mounts of Docker Desktop for Mac, which no longer uses it; the Docker Engine ignores it";

/// Short-syntax consistency modes of Docker Desktop for Mac.
const CONSISTENCIES: &[&str] = &["cached", "delegated", "consistent"];

fn warn_consistency(checker: &mut Checker<'_>, node: &Node, field: &str, text: &str) {
    let options = text.splitn(3, ':').nth(2).unwrap_or_default();
    if let Some(mode) = options
        .split(',')
        .find(|option| CONSISTENCIES.contains(option))
    {
        checker.warning(
            node,
            field,
            format!("the consistency mode `{mode}` is accepted and has no effect"),
            CONSISTENCY_WHY,
        );
    }
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
            // Docker Desktop's old consistency modes: accepted, no effect (see `read_mounts`).
            _ if CONSISTENCIES.contains(&option) => {}
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
        if propagation.is_some() {
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
            selinux,
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
            selinux: None,
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
            parse_volume("./src:/src:ro,cached"),
            Ok(bind("./src", "/src", true))
        );
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
    fn named_volumes_take_selinux_labels_as_compose_does() {
        let Ok(Written::Mount(VolumeMount::Named { selinux, .. })) = parse_volume("cache:/b:z")
        else {
            panic!("`cache:/b:z` is a named volume");
        };
        assert_eq!(selinux.as_deref(), Some("z"));
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
            "cache:/b:rslave",
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
