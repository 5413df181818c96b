//! `healthcheck:` — one probe (`http: /path`, `tcp: true`, `grpc: ""`, `cmd:`, or compose's `test:`)
//! and its timing. `grpc:` names the service asked about in `grpc.health.v1.Health/Check` (`""`:
//! the server as a whole), called over h2c on the service's `port`.
//! `disable: true` or `test: ["NONE"]` means no health check. Timings without a probe keep the
//! image's `HEALTHCHECK` command, as compose does ([`HealthProbe::Image`], resolved at `up`).
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
use super::super::model::{HealthProbe, HealthTiming, Healthcheck};
use super::super::node::{Node, Value};
use super::check::{join, Checker, Kind};

const KEYS: &[&str] = &[
    "http",
    "tcp",
    "grpc",
    "cmd",
    "test",
    "disable",
    "interval",
    "timeout",
    "retries",
    "start_period",
    "start_interval",
];
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
const DEFAULT_RETRIES: u32 = 3;
const PROBE_HINT: &str =
    "use one of `http: /health`, `tcp: true`, `grpc: \"\"` or `cmd: [\"pg_isready\"]`";

/// What the `healthcheck:` section says.
pub enum Read {
    /// A probe and its timing.
    Check(Healthcheck),
    /// Explicitly none (`disable: true`, `test: ["NONE"]`).
    Disabled,
    /// Errors were reported.
    Invalid,
}

/// Reads the section; `has_port`: the service has a `port:` (HTTP and TCP probes need it);
/// `external`: it is a process on the host, with no image to take a probe from.
pub fn read(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
    service: &str,
    has_port: bool,
    external: bool,
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
            DEFAULT_INTERVAL,
        ),
        timeout: duration(
            checker,
            fields.get("timeout"),
            field,
            "timeout",
            DEFAULT_TIMEOUT,
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
            .unwrap_or(DEFAULT_RETRIES),
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
    let probes: Vec<(&str, &Node)> = ["http", "tcp", "grpc", "cmd", "test"]
        .into_iter()
        .filter_map(|key| fields.get(key).map(|value| (key, value)))
        .collect();
    if disabled {
        return Read::Disabled;
    }
    let (probe, probe_node) = match probes.as_slice() {
        [] if external => {
            let hint = format!("service `{service}` is `external:`, with no image to take a probe from; {PROBE_HINT}");
            checker.error_with_hint(node, field, "the healthcheck has no probe", hint);
            return Read::Invalid;
        }
        // Compose's timings-only form: the image's `HEALTHCHECK` command, read at `up`.
        [] => (Some(Some(HealthProbe::Image)), node),
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
    let network_probe = match probe {
        HealthProbe::Http { .. } => Some("http"),
        HealthProbe::Tcp => Some("tcp"),
        HealthProbe::Grpc { .. } => Some("grpc"),
        HealthProbe::Command(_) | HealthProbe::Image => None,
    };
    if let (Some(kind), false) = (network_probe, has_port) {
        checker.error_with_hint(
            probe_node,
            &join(field, kind),
            format!(
                "{} `{kind}` health check needs the service's `port`",
                if kind == "http" { "an" } else { "a" }
            ),
            format!(
                "set `port:` on service `{service}` to the port it listens on, like `port: 8080`"
            ),
        );
    }
    if checker.errors.len() > errors_before {
        return Read::Invalid;
    }
    let from_image = match probe {
        HealthProbe::Image => TIMING_KEYS
            .into_iter()
            .filter(|(key, _)| fields.get(key).is_none())
            .map(|(_, timing)| timing)
            .collect(),
        _ => Vec::new(),
    };
    Read::Check(Healthcheck {
        probe,
        interval: timing.interval,
        timeout: timing.timeout,
        retries: timing.retries,
        start_period: timing.start_period,
        start_interval: timing.start_interval,
        from_image,
    })
}

/// The timings a file may write, by key.
const TIMING_KEYS: [(&str, HealthTiming); 5] = [
    ("interval", HealthTiming::Interval),
    ("timeout", HealthTiming::Timeout),
    ("retries", HealthTiming::Retries),
    ("start_period", HealthTiming::StartPeriod),
    ("start_interval", HealthTiming::StartInterval),
];

/// A healthcheck whose probe is the image's own `HEALTHCHECK`, with every timing from the image
/// too: what a service gets when a dependent waits `service_healthy` for it and it writes none.
pub fn from_image() -> Healthcheck {
    Healthcheck {
        probe: HealthProbe::Image,
        interval: DEFAULT_INTERVAL,
        timeout: DEFAULT_TIMEOUT,
        retries: DEFAULT_RETRIES,
        start_period: Duration::ZERO,
        start_interval: None,
        from_image: TIMING_KEYS.into_iter().map(|(_, timing)| timing).collect(),
    }
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
        "grpc" => {
            let service = checker.string(node, field)?;
            let valid = service
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_');
            if !valid {
                checker.error_with_hint(
                    node,
                    field,
                    format!("`{service}` is not a gRPC service name"),
                    "write the name the server's health service knows, like `grpc: pkg.Service`, or `grpc: \"\"` for the whole server",
                );
                return None;
            }
            Some(Some(HealthProbe::Grpc { service }))
        }
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
