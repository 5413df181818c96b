//! `healthcheck:` — one probe (`http: /path`, `tcp: true`, `cmd:`, or compose's `test:`) and its timing.
//! `disable: true` or `test: ["NONE"]` means no health check.
//!
//! Compose's forms all load: `test` as `["CMD", ...]` (exec'd as is), `["CMD-SHELL", "..."]` or a
//! plain string (run by `/bin/sh -c`, as the engine does), `["NONE"]`; `interval`, `timeout`,
//! `retries`, `start_period`, `start_interval`, `disable`. The control plane runs the probe itself
//! (exec for commands); while a replica starts it probes every 150 ms, which is at least as often as
//! any `start_interval`, so the first healthy answer is seen at once. Defaults are sandbox's
//! (interval 5s, timeout 2s, 3 retries) rather than the engine's 30s/30s: they only shorten how long
//! an unhealthy service takes to be reported.

use std::time::Duration;

use super::super::duration::{parse_duration, DURATION_FORMS};
use super::super::model::{HealthProbe, Healthcheck};
use super::super::node::{Node, Value};
use super::check::{join, Checker, Kind};

const KEYS: &[&str] = &[
    "http",
    "tcp",
    "cmd",
    "test",
    "disable",
    "interval",
    "timeout",
    "retries",
    "start_period",
    "start_interval",
];
const PROBE_HINT: &str = "use one of `http: /health`, `tcp: true` or `cmd: [\"pg_isready\"]`";

/// What the `healthcheck:` section says.
pub enum Read {
    /// A probe and its timing.
    Check(Healthcheck),
    /// Explicitly none (`disable: true`, `test: ["NONE"]`).
    Disabled,
    /// Errors were reported.
    Invalid,
}

/// Reads the section; `port` is the service's `port:` (HTTP and TCP probes need it).
pub fn read(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
    service: &str,
    has_port: bool,
) -> Read {
    let what = format!("the healthcheck of service `{service}`");
    let Some(fields) = checker.fields(node, field, &what, KEYS) else {
        return Read::Invalid;
    };
    let errors_before = checker.errors.len();
    let timing = Timing {
        interval: duration(
            checker,
            fields.get("interval"),
            field,
            "interval",
            Duration::from_secs(5),
        ),
        timeout: duration(
            checker,
            fields.get("timeout"),
            field,
            "timeout",
            Duration::from_secs(2),
        ),
        start_period: duration(
            checker,
            fields.get("start_period"),
            field,
            "start_period",
            Duration::ZERO,
        ),
        start_interval: fields.get("start_interval").map(|node| {
            duration(
                checker,
                Some(node),
                field,
                "start_interval",
                Duration::from_secs(5),
            )
        }),
        retries: fields
            .get("retries")
            .and_then(|retries| {
                checker.integer_in(retries, &join(field, "retries"), 0..=i64::from(u32::MAX))
            })
            .and_then(|retries| u32::try_from(retries).ok())
            .unwrap_or(3),
    };
    let intervals = [
        ("interval", timing.interval),
        ("timeout", timing.timeout),
        (
            "start_interval",
            timing.start_interval.unwrap_or(timing.interval),
        ),
    ];
    for (key, value) in intervals {
        if value.is_zero() {
            if let Some(place) = fields.get(key) {
                checker.error(
                    place,
                    &join(field, key),
                    format!("`{key}` must be longer than zero"),
                );
            }
        }
    }
    let disabled = fields
        .get("disable")
        .and_then(|disable| checker.boolean(disable, &join(field, "disable")))
        .unwrap_or(false);
    let probes: Vec<(&str, &Node)> = ["http", "tcp", "cmd", "test"]
        .into_iter()
        .filter_map(|key| fields.get(key).map(|value| (key, value)))
        .collect();
    if disabled {
        return Read::Disabled;
    }
    let (probe, probe_node) = match probes.as_slice() {
        [] => {
            checker.error_with_hint(node, field, "the healthcheck has no probe", PROBE_HINT);
            return Read::Invalid;
        }
        [(key, value)] => (read_probe(checker, key, value, &join(field, key)), *value),
        [_, (second, value), ..] => {
            let message =
                format!("the healthcheck has more than one probe (`{second}` is the second)");
            checker.error_with_hint(
                value,
                &join(field, second),
                message,
                "keep exactly one probe",
            );
            return Read::Invalid;
        }
    };
    let probe = match probe {
        Some(Some(probe)) => probe,
        Some(None) => return Read::Disabled,
        None => return Read::Invalid,
    };
    if matches!(probe, HealthProbe::Http { .. } | HealthProbe::Tcp) && !has_port {
        let kind = if matches!(probe, HealthProbe::Tcp) {
            "tcp"
        } else {
            "http"
        };
        checker.error_with_hint(
            probe_node,
            &join(field, kind),
            format!("an `{kind}` health check needs the service's `port`"),
            format!(
                "set `port:` on service `{service}` to the port it listens on, like `port: 8080`"
            ),
        );
    }
    if checker.errors.len() > errors_before {
        return Read::Invalid;
    }
    Read::Check(Healthcheck {
        probe,
        interval: timing.interval,
        timeout: timing.timeout,
        retries: timing.retries,
        start_period: timing.start_period,
        start_interval: timing.start_interval,
    })
}

struct Timing {
    interval: Duration,
    timeout: Duration,
    start_period: Duration,
    start_interval: Option<Duration>,
    retries: u32,
}

fn duration(
    checker: &mut Checker<'_>,
    node: Option<&Node>,
    field: &str,
    key: &str,
    default: Duration,
) -> Duration {
    let Some(node) = node else { return default };
    let field = join(field, key);
    let Some(scalar) = checker.scalar(node, &field, "a duration") else {
        return default;
    };
    match parse_duration(&scalar.text) {
        Some(duration) if scalar.kind != Kind::Null => duration,
        _ => {
            checker.error_with_hint(
                node,
                &field,
                format!("invalid duration `{}`", scalar.text),
                DURATION_FORMS,
            );
            default
        }
    }
}

/// `Some(None)`: the probe says "no health check" (`test: ["NONE"]`, `tcp: false`).
fn read_probe(
    checker: &mut Checker<'_>,
    key: &str,
    node: &Node,
    field: &str,
) -> Option<Option<HealthProbe>> {
    match key {
        "http" => {
            let path = checker.string(node, field)?;
            if !path.starts_with('/') {
                let hint = format!(
                    "write the path only, like `http: /{}`",
                    path.trim_start_matches("http://")
                );
                checker.error_with_hint(
                    node,
                    field,
                    format!("the http path `{path}` must start with `/`"),
                    hint,
                );
                return None;
            }
            Some(Some(HealthProbe::Http { path }))
        }
        "tcp" => Some(checker.boolean(node, field)?.then_some(HealthProbe::Tcp)),
        "cmd" => match &node.value {
            Value::Sequence(_) => {
                let words = checker.strings(node, field, false)?;
                if words.is_empty() {
                    checker.error_with_hint(
                        node,
                        field,
                        "the health check command is empty",
                        PROBE_HINT,
                    );
                    return None;
                }
                Some(Some(HealthProbe::Command(words)))
            }
            _ => Some(Some(shell(checker.string(node, field)?))),
        },
        _ => read_test(checker, node, field),
    }
}

/// Compose's `test:`: `["CMD", ...]`, `["CMD-SHELL", "x"]`, `["NONE"]` or a shell string.
fn read_test(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<Option<HealthProbe>> {
    let Value::Sequence(_) = &node.value else {
        return Some(Some(shell(checker.string(node, field)?)));
    };
    let words = checker.strings(node, field, false)?;
    match words.split_first() {
        Some((first, [])) if first == "NONE" => Some(None),
        Some((first, rest)) if first == "CMD" && !rest.is_empty() => {
            Some(Some(HealthProbe::Command(rest.to_vec())))
        }
        Some((first, [script])) if first == "CMD-SHELL" => Some(Some(shell(script.clone()))),
        _ => {
            checker.error_with_hint(
                node,
                field,
                "`test` must start with `CMD`, `CMD-SHELL` or `NONE`",
                "write `test: [\"CMD\", \"curl\", \"-f\", \"http://localhost/\"]` or `test: [\"CMD-SHELL\", \"curl -f http://localhost/\"]`",
            );
            None
        }
    }
}

fn shell(script: String) -> HealthProbe {
    HealthProbe::Command(vec!["sh".to_string(), "-c".to_string(), script])
}
