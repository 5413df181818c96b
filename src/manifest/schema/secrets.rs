//! Top-level `secrets:` and `configs:`, and a service's `secrets:`/`configs:` grants.
//!
//! Sources: `file` (relative to the manifest's folder; bind-mounted read-only), `environment` (a
//! variable of the interpolation environment, read here), `content` (configs only, interpolated)
//! and `external` (a swarm object: declared fine, refused when a service uses it, as compose does).
//! Grants: a name, or `{source, target, uid, gid, mode}`. Secrets land under `/run/secrets/`,
//! configs at `target` (default `/<source>`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::super::model::{FileGrant, FileObject, FileSource, SecretText};
use super::super::node::{Node, Value};
use super::super::suggest;
use super::check::{describe, join, Checker, Fields, Place};
use super::mode::read_mode;
use super::service::ServiceDraft;

const SECRET_KEYS: &[&str] = &[
    "file",
    "environment",
    "external",
    "name",
    "labels",
    "driver",
    "driver_opts",
    "template_driver",
];
const CONFIG_KEYS: &[&str] = &[
    "file",
    "environment",
    "content",
    "external",
    "name",
    "labels",
    "template_driver",
];
const GRANT_KEYS: &[&str] = &["source", "target", "uid", "gid", "mode"];

/// Secrets or configs: the two differ in words, keys, sources and where files land.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Secret,
    Config,
}

impl Family {
    /// The top-level key (`secrets`) and a single one (`secret`).
    fn plural(self) -> &'static str {
        match self {
            Family::Secret => "secrets",
            Family::Config => "configs",
        }
    }

    fn singular(self) -> &'static str {
        match self {
            Family::Secret => "secret",
            Family::Config => "config",
        }
    }

    fn keys(self) -> &'static [&'static str] {
        match self {
            Family::Secret => SECRET_KEYS,
            Family::Config => CONFIG_KEYS,
        }
    }

    /// Where a grant's file lands: an absolute `target` as it is, a relative one under the
    /// family's folder, no target at `<folder>/<source>`.
    pub fn target(self, source: &str, target: Option<&str>) -> String {
        let folder = match self {
            Family::Secret => "/run/secrets/",
            Family::Config => "/",
        };
        match target {
            Some(target) if target.starts_with('/') => target.to_string(),
            Some(target) => format!("{folder}{target}"),
            None => format!("{folder}{source}"),
        }
    }
}

/// Where each grant of a service is written, parallel to `Service::secrets` and `configs`.
#[derive(Debug, Clone, Default)]
pub struct GrantPlaces {
    pub secrets: Vec<Place>,
    pub configs: Vec<Place>,
}

/// The top-level `secrets:` or `configs:` as read: the valid entries, and the names of those that
/// are declared but wrong (already reported; grants naming them are not reported again).
#[derive(Debug, Clone, Default)]
pub struct Declared {
    pub objects: BTreeMap<String, FileObject>,
    pub invalid: BTreeSet<String>,
}

/// Reads the top-level `secrets:` or `configs:` map.
pub fn read_objects(checker: &mut Checker<'_>, node: &Node, family: Family) -> Declared {
    let mut declared = Declared::default();
    let field = family.plural();
    let expected = format!("a map of {} names", family.singular());
    let Some(entries) = checker.entries(node, field, &expected) else {
        return declared;
    };
    for entry in entries {
        let entry_field = join(field, entry.key);
        if !is_object_name(entry.key) {
            checker.error_with_hint(
                entry.key_node,
                &entry_field,
                format!("invalid {} name `{}`", family.singular(), entry.key),
                "use letters, digits, `_`, `.` and `-`",
            );
            declared.invalid.insert(entry.key.to_string());
            continue;
        }
        match read_object(checker, entry.value, &entry_field, entry.key, family) {
            Some(object) => {
                declared.objects.insert(entry.key.to_string(), object);
            }
            None => {
                declared.invalid.insert(entry.key.to_string());
            }
        }
    }
    declared
}

/// Names of secrets and configs: `[a-zA-Z0-9._-]+` (the Compose Specification's pattern).
fn is_object_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|character| {
            character.is_ascii_alphanumeric() || matches!(character, '.' | '_' | '-')
        })
}

fn read_object(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
    key: &str,
    family: Family,
) -> Option<FileObject> {
    let singular = family.singular();
    let what = format!("{singular} `{key}`");
    if node.is_null() {
        let hint = source_hint(family, key);
        let message = format!("{what} declares no source");
        checker.error_with_hint(node, field, message, hint);
        return None;
    }
    let fields = checker.fields(node, field, &what, family.keys())?;
    let name = fields
        .get("name")
        .and_then(|value| checker.string(value, &join(field, "name")));
    report_swarm_keys(checker, &fields, field, family, &what);
    let external = match fields.get("external") {
        Some(value) => read_external(checker, value, &join(field, "external")),
        None => External::No,
    };
    let sources: Vec<(&str, &Node)> = ["file", "environment", "content"]
        .into_iter()
        .filter_map(|source| fields.get(source).map(|value| (source, value)))
        .collect();
    match (external, sources.as_slice()) {
        (External::Invalid, _) => None,
        (External::Yes { name: old_name }, sources) => {
            if let Some((source, value)) = sources.first() {
                checker.error_with_hint(
                    value,
                    &join(field, source),
                    format!("{what} is `external`, so `{source}` has no meaning"),
                    format!("remove `{source}`, or `external`: an external {singular} has only a `name`"),
                );
                return None;
            }
            Some(FileObject {
                source: FileSource::External,
                name: name.or(old_name),
            })
        }
        (External::No, []) => {
            let message = format!("{what} declares no source");
            checker.error_with_hint(node, field, message, source_hint(family, key));
            None
        }
        (External::No, [(source, value)]) => {
            let source = read_source(checker, value, &join(field, source), source, &what)?;
            Some(FileObject { source, name })
        }
        (External::No, [(first, _), (second, value), ..]) => {
            checker.error_with_hint(
                value,
                &join(field, second),
                format!("{what} has both `{first}` and `{second}`"),
                format!("keep one source: a {singular} comes from exactly one place"),
            );
            None
        }
    }
}

/// `driver`, `driver_opts` and `template_driver` are refused (docker compose refuses them on one
/// engine); `labels` is accepted without effect.
fn report_swarm_keys(
    checker: &mut Checker<'_>,
    fields: &Fields<'_>,
    field: &str,
    family: Family,
    what: &str,
) {
    let singular = family.singular();
    for unsupported in ["driver", "driver_opts", "template_driver"] {
        if let Some(value) = fields.get(unsupported) {
            checker.error_with_hint(
                value,
                &join(field, unsupported),
                format!("`{unsupported}` is not supported on a single Docker engine"),
                format!(
                    "remove it: docker compose refuses `{}.*.{unsupported}` too",
                    family.plural()
                ),
            );
        }
    }
    if let Some(value) = fields.get("labels") {
        checker.warning(
            value,
            &join(field, "labels"),
            format!("`labels` of {what} has no effect"),
            format!("labels belong to a swarm's {singular} objects; on one engine the {singular} is a file in the container"),
        );
    }
}

fn source_hint(family: Family, key: &str) -> String {
    match family {
        Family::Secret => format!(
            "give it a `file` or an `environment` variable, like `{key}: {{file: ./{key}.txt}}`"
        ),
        Family::Config => format!(
            "give it a `file`, an `environment` variable or inline `content`, like `{key}: {{file: ./{key}.conf}}`"
        ),
    }
}

/// `external:` as compose reads it: a boolean, or the old `{name: ...}` form.
enum External {
    No,
    Yes { name: Option<String> },
    Invalid,
}

fn read_external(checker: &mut Checker<'_>, node: &Node, field: &str) -> External {
    if let Value::Mapping(_) = node.value {
        let Some(fields) = checker.fields(node, field, "`external`", &["name"]) else {
            return External::Invalid;
        };
        let name = fields
            .get("name")
            .and_then(|value| checker.string(value, &join(field, "name")));
        return External::Yes { name };
    }
    match checker.boolean(node, field) {
        Some(true) => External::Yes { name: None },
        Some(false) => External::No,
        None => External::Invalid,
    }
}

fn read_source(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
    source: &str,
    what: &str,
) -> Option<FileSource> {
    let text = checker.string(node, field)?;
    match source {
        "file" => read_file(checker, node, field, &text, what),
        "environment" => match checker.variables.get(&text) {
            Some(value) => Some(FileSource::Environment {
                variable: text,
                value: SecretText::new(value.clone()),
            }),
            None => {
                checker.error_with_hint(
                    node,
                    field,
                    format!("variable `{text}` of {what} is not set"),
                    format!("set `{text}` in the environment or in `.env` beside the manifest"),
                );
                None
            }
        },
        _ => Some(FileSource::Content(text)),
    }
}

fn read_file(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
    written: &str,
    what: &str,
) -> Option<FileSource> {
    let path = match written.strip_prefix('~') {
        Some(rest) => match checker.variables.get("HOME") {
            Some(home) => Path::new(home).join(rest.trim_start_matches('/')),
            None => {
                let message = format!("cannot expand `~` in `{written}`: `HOME` is not set");
                checker.error(node, field, message);
                return None;
            }
        },
        None => checker.directory_of(node).join(written),
    };
    let path = super::normalise_path(&path);
    if !path.exists() {
        checker.error_with_hint(
            node,
            field,
            format!("file `{written}` of {what} does not exist"),
            "a relative path is read from the manifest's folder",
        );
        return None;
    }
    Some(FileSource::File(path))
}

/// Reads a service's `secrets:` or `configs:` list, with the place of each entry.
pub fn read_grants(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
    family: Family,
) -> Vec<(FileGrant, Place)> {
    let Value::Sequence(items) = &node.value else {
        let found = describe(node);
        checker.error_with_hint(
            node,
            field,
            format!(
                "expected a list of {} names, found {found}",
                family.singular()
            ),
            format!(
                "write `{}: [name]` or `- {{source: name, target: ...}}`",
                family.plural()
            ),
        );
        return Vec::new();
    };
    let mut grants = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let item_field = format!("{field}[{index}]");
        let grant = match &item.value {
            Value::Mapping(_) => read_long_grant(checker, item, &item_field, family),
            _ => checker.string(item, &item_field).map(|source| FileGrant {
                target: family.target(&source, None),
                source,
                uid: None,
                gid: None,
                mode: None,
            }),
        };
        if let Some(grant) = grant {
            let place = Place {
                span: item.span,
                field: item_field,
            };
            grants.push((grant, place));
        }
    }
    grants
}

fn read_long_grant(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
    family: Family,
) -> Option<FileGrant> {
    let what = format!("a {} grant", family.singular());
    let fields = checker.fields(node, field, &what, GRANT_KEYS)?;
    let source = fields
        .get("source")
        .and_then(|value| checker.string(value, &join(field, "source")));
    let target = fields
        .get("target")
        .and_then(|value| read_target(checker, value, &join(field, "target")));
    let uid = fields
        .get("uid")
        .and_then(|value| read_id(checker, value, &join(field, "uid")));
    let gid = fields
        .get("gid")
        .and_then(|value| read_id(checker, value, &join(field, "gid")));
    let mode = fields
        .get("mode")
        .and_then(|value| read_mode(checker, value, &join(field, "mode")));
    let Some(source) = source else {
        if fields.get("source").is_none() {
            checker.error_with_hint(
                node,
                field,
                "missing field `source`",
                format!(
                    "`source` names an entry of the top-level `{}:`",
                    family.plural()
                ),
            );
        }
        return None;
    };
    Some(FileGrant {
        target: family.target(&source, target.as_deref()),
        source,
        uid,
        gid,
        mode,
    })
}

fn read_target(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<String> {
    let target = checker.string(node, field)?;
    if target.is_empty() {
        checker.error_with_hint(
            node,
            field,
            "`target` is empty",
            "write a file name, or an absolute path in the container",
        );
        return None;
    }
    Some(target)
}

/// A numeric user or group id, written as text (the specification's type) or as a number.
fn read_id(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<String> {
    let id = checker.string(node, field)?;
    if id.parse::<u32>().is_err() {
        checker.error_with_hint(
            node,
            field,
            format!("`{id}` is not a numeric id"),
            "write the number, like `\"1000\"`: names are not looked up in the image",
        );
        return None;
    }
    Some(id)
}

/// Checks every service's grants against the declared secrets and configs: the source is declared
/// (else a did-you-mean), it is not external, and `uid`/`gid`/`mode` on a bind-mounted file are
/// reported as ignored.
pub fn check_grants(
    checker: &mut Checker<'_>,
    services: &[ServiceDraft],
    secrets: &Declared,
    configs: &Declared,
) {
    for draft in services {
        let service = &draft.service;
        let families = [
            (
                Family::Secret,
                &service.secrets,
                &draft.grants.secrets,
                secrets,
            ),
            (
                Family::Config,
                &service.configs,
                &draft.grants.configs,
                configs,
            ),
        ];
        for (family, grants, places, declared) in families {
            for (grant, place) in grants.iter().zip(places) {
                let user = Grantee {
                    name: &service.name,
                    read_only: service.container.read_only,
                };
                check_grant(checker, &user, family, grant, place, declared);
            }
        }
    }
}

/// The service a grant belongs to, as far as the checks need it.
struct Grantee<'a> {
    name: &'a str,
    /// `read_only: true`: nothing can be written into the container.
    read_only: bool,
}

fn check_grant(
    checker: &mut Checker<'_>,
    service: &Grantee<'_>,
    family: Family,
    grant: &FileGrant,
    place: &Place,
    declared: &Declared,
) {
    let singular = family.singular();
    let source = &grant.source;
    if declared.invalid.contains(source) {
        return;
    }
    let Some(object) = declared.objects.get(source) else {
        let names: Vec<&str> = declared.objects.keys().map(String::as_str).collect();
        let hint = match suggest::did_you_mean(source, names.iter().copied()) {
            Some(name) => format!("did you mean `{name}`?"),
            None if names.is_empty() => format!(
                "declare it under a top-level `{}:`, like `{source}: {{file: ./{source}.txt}}`",
                family.plural()
            ),
            None => format!("declared {}: {}", family.plural(), suggest::list(&names)),
        };
        let message = format!(
            "service `{}` uses {singular} `{source}`, which is not declared",
            service.name
        );
        checker.error_at(Some(place.span), &place.field, message, Some(hint));
        return;
    };
    match object.source {
        FileSource::External => {
            let message = format!(
                "{singular} `{source}` is `external`, which a single Docker engine cannot provide"
            );
            let hint = format!("external {} live in a swarm (docker compose refuses them too); declare it with `file:` or `environment:`", family.plural());
            checker.error_at(Some(place.span), &place.field, message, Some(hint));
        }
        FileSource::File(_)
            if grant.uid.is_some() || grant.gid.is_some() || grant.mode.is_some() =>
        {
            checker.warning_at(
                Some(place.span),
                &place.field,
                format!("`uid`, `gid` and `mode` of {singular} `{source}` are ignored"),
                "its source is a file, bind-mounted as it is (as docker compose does): it keeps the host file's owner and mode",
            );
        }
        FileSource::Environment { .. } | FileSource::Content(_) if service.read_only => {
            let message = format!(
                "{singular} `{source}` cannot be written into service `{}`, whose root filesystem is read-only",
                service.name
            );
            let hint = format!("give `{source}` a `file:` source (bind-mounted), or remove `read_only: true`; docker compose refuses this too");
            checker.error_at(Some(place.span), &place.field, message, Some(hint));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_follow_compose() {
        let secret = Family::Secret;
        assert_eq!(secret.target("db", None), "/run/secrets/db");
        assert_eq!(secret.target("db", Some("db.txt")), "/run/secrets/db.txt");
        assert_eq!(secret.target("db", Some("/etc/db")), "/etc/db");
        let config = Family::Config;
        assert_eq!(config.target("app", None), "/app");
        assert_eq!(config.target("app", Some("app.conf")), "/app.conf");
        assert_eq!(config.target("app", Some("/etc/app.conf")), "/etc/app.conf");
    }

    #[test]
    fn object_names() {
        for name in ["db", "db.password", "A_b-1"] {
            assert!(is_object_name(name), "{name}");
        }
        for name in ["", "a b", "a/b", "é"] {
            assert!(!is_object_name(name), "{name}");
        }
    }
}
