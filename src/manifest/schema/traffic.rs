//! A service's traffic policy (`faults`, `circuit_breaker`, `outlier_detection`, `load_balancer`,
//! `http2`, `timeout`, `retries`) and the pieces routes share with it (faults, retries, durations).

use std::time::Duration;

use super::super::duration::{parse_duration, DURATION_FORMS};
use super::super::model::{
    AbortFault, Backoff, CircuitBreaker, DelayFault, Faults, GrpcStatus, LoadBalancer,
    OutlierDetection, RetryOn, RetryPolicy, TrafficPolicy,
};
use super::super::node::{Node, Value};
use super::check::{describe, join, Checker, Fields, Kind};

const FAULT_KEYS: &[&str] = &["delay", "abort"];
const DELAY_KEYS: &[&str] = &["fixed", "percent"];
const ABORT_KEYS: &[&str] = &["status", "grpc_status", "percent"];
const RETRY_KEYS: &[&str] = &[
    "attempts",
    "on",
    "retriable_status",
    "per_try_timeout",
    "backoff",
];
const BACKOFF_KEYS: &[&str] = &["base", "max"];
const BREAKER_KEYS: &[&str] = &["max_connections", "max_pending", "max_requests"];
const OUTLIER_KEYS: &[&str] = &["consecutive_errors", "base_ejection"];
const RETRY_ON: &[&str] = &[
    "5xx",
    "gateway-error",
    "connect-failure",
    "reset",
    "retriable-status",
    "unavailable",
    "resource-exhausted",
    "cancelled",
    "deadline-exceeded",
];

/// The traffic keys of a service map, read into one policy (defaults for what is left out).
pub fn read_policy(checker: &mut Checker<'_>, fields: &Fields<'_>, field: &str) -> TrafficPolicy {
    let key = |key: &str| join(field, key);
    let mut policy = TrafficPolicy::default();
    if let Some(node) = fields.get("faults") {
        policy.faults = read_faults(checker, node, &key("faults")).unwrap_or_default();
    }
    if let Some(node) = fields.get("circuit_breaker") {
        policy.circuit_breaker = read_breaker(checker, node, &key("circuit_breaker"));
    }
    if let Some(node) = fields.get("outlier_detection") {
        policy.outlier_detection = read_outlier(checker, node, &key("outlier_detection"));
    }
    if let Some(node) = fields.get("load_balancer") {
        let field = key("load_balancer");
        policy.load_balancer = match checker.string(node, &field).as_deref() {
            Some("round_robin") | None => LoadBalancer::RoundRobin,
            Some("least_request") => LoadBalancer::LeastRequest,
            Some(other) => {
                checker.error_with_hint(
                    node,
                    &field,
                    format!("unknown load balancer `{other}`"),
                    "use `round_robin` or `least_request`",
                );
                LoadBalancer::RoundRobin
            }
        };
    }
    if let Some(node) = fields.get("http2") {
        policy.http2 = checker.boolean(node, &key("http2")).unwrap_or(false);
    }
    if let Some(node) = fields.get("timeout") {
        policy.timeout = read_duration(checker, node, &key("timeout"));
    }
    if let Some(node) = fields.get("retries") {
        policy.retries = read_retries(checker, node, &key("retries"));
    }
    policy
}

/// A positive duration like `250ms`.
pub fn read_duration(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<Duration> {
    let scalar = checker.scalar(node, field, "a duration")?;
    match parse_duration(&scalar.text) {
        Some(duration) if scalar.kind != Kind::Null && !duration.is_zero() => Some(duration),
        _ => {
            let message = format!("invalid duration `{}`", scalar.text);
            checker.error_with_hint(node, field, message, DURATION_FORMS);
            None
        }
    }
}

/// 0 to 100, integer or decimal.
fn read_percent(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<f64> {
    let scalar = checker.scalar(node, field, "a percentage")?;
    match scalar.text.trim().trim_end_matches('%').parse::<f64>() {
        Ok(percent) if (0.0..=100.0).contains(&percent) => Some(percent),
        _ => {
            let message = format!(
                "expected a percentage from 0 to 100, found `{}`",
                scalar.text
            );
            checker.error(node, field, message);
            None
        }
    }
}

fn read_u32(checker: &mut Checker<'_>, node: &Node, field: &str, min: i64) -> Option<u32> {
    let value = checker.integer_in(node, field, min..=1_000_000)?;
    u32::try_from(value).ok()
}

/// `faults: {delay: {fixed, percent}, abort: {status, percent}}`.
pub fn read_faults(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<Faults> {
    let fields = checker.fields(node, field, "`faults`", FAULT_KEYS)?;
    let mut faults = Faults::default();
    if let Some(node) = fields.get("delay") {
        let field = join(field, "delay");
        if let Some(delay) = checker.fields(node, &field, "a delay fault", DELAY_KEYS) {
            let percent = delay
                .get("percent")
                .and_then(|node| read_percent(checker, node, &join(&field, "percent")));
            match delay.get("fixed") {
                Some(fixed) => {
                    faults.delay =
                        read_duration(checker, fixed, &join(&field, "fixed")).map(|fixed| {
                            DelayFault {
                                fixed,
                                percent: percent.unwrap_or(100.0),
                            }
                        })
                }
                None => checker.error_with_hint(
                    node,
                    &field,
                    "missing field `fixed`",
                    "write `delay: {fixed: 200ms, percent: 10}`",
                ),
            }
        }
    }
    if let Some(node) = fields.get("abort") {
        let field = join(field, "abort");
        if let Some(abort) = checker.fields(node, &field, "an abort fault", ABORT_KEYS) {
            let percent = abort
                .get("percent")
                .and_then(|node| read_percent(checker, node, &join(&field, "percent")));
            let grpc_node = abort.get("grpc_status");
            let grpc_status = grpc_node
                .and_then(|node| read_grpc_status(checker, node, &join(&field, "grpc_status")));
            let status = match (abort.get("status"), grpc_node) {
                (Some(status), _) => checker
                    .integer_in(status, &join(&field, "status"), 200..=599)
                    .map(|status| status as u16),
                (None, Some(_)) => grpc_status.map(|_| 503),
                (None, None) => {
                    checker.error_with_hint(
                        node,
                        &field,
                        "missing field `status`",
                        "write `abort: {status: 503, percent: 5}` (gRPC calls: `grpc_status: UNAVAILABLE`)",
                    );
                    None
                }
            };
            faults.abort = status.map(|status| AbortFault {
                status,
                grpc_status,
                percent: percent.unwrap_or(100.0),
            });
        }
    }
    Some(faults)
}

/// `retries: {attempts, on, retriable_status, per_try_timeout, backoff: {base, max}}`.
pub fn read_retries(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<RetryPolicy> {
    let fields = checker.fields(node, field, "`retries`", RETRY_KEYS)?;
    let key = |key: &str| join(field, key);
    let mut policy = RetryPolicy {
        attempts: 2,
        on: vec![RetryOn::GatewayError],
        retriable_status: Vec::new(),
        retriable_grpc_status: Vec::new(),
        per_try_timeout: None,
        backoff: Backoff::default(),
    };
    if let Some(node) = fields.get("attempts") {
        policy.attempts = checker
            .integer_in(node, &key("attempts"), 0..=10)
            .map_or(policy.attempts, |attempts| attempts as u32);
    }
    if let Some(node) = fields.get("on") {
        policy.on = read_retry_on(checker, node, &key("on"));
    }
    if let Some(node) = fields.get("retriable_status") {
        (policy.retriable_status, policy.retriable_grpc_status) =
            read_statuses(checker, node, &key("retriable_status"));
        if fields.get("on").is_none() {
            policy.on.push(RetryOn::RetriableStatus);
        }
    }
    if let Some(node) = fields.get("per_try_timeout") {
        policy.per_try_timeout = read_duration(checker, node, &key("per_try_timeout"));
    }
    if let Some(node) = fields.get("backoff") {
        let field = key("backoff");
        if let Some(backoff) = checker.fields(node, &field, "`backoff`", BACKOFF_KEYS) {
            if let Some(base) = backoff.get("base") {
                let base = read_duration(checker, base, &join(&field, "base"));
                policy.backoff.base = base.unwrap_or(policy.backoff.base);
            }
            if let Some(max) = backoff.get("max") {
                let max = read_duration(checker, max, &join(&field, "max"));
                policy.backoff.max = max.unwrap_or(policy.backoff.max);
            }
            if policy.backoff.max < policy.backoff.base {
                checker.error(node, &field, "`backoff.max` is smaller than `backoff.base`");
            }
        }
    }
    Some(policy)
}

fn read_retry_on(checker: &mut Checker<'_>, node: &Node, field: &str) -> Vec<RetryOn> {
    let mut conditions = Vec::new();
    let items: Vec<&Node> = match &node.value {
        Value::Sequence(items) => items.iter().map(|item| &**item).collect(),
        _ => vec![node],
    };
    for (index, item) in items.into_iter().enumerate() {
        let item_field = format!("{field}[{index}]");
        let Some(text) = checker.string(item, &item_field) else {
            continue;
        };
        let condition = match text.as_str() {
            "5xx" => RetryOn::ServerError,
            "gateway-error" => RetryOn::GatewayError,
            "connect-failure" => RetryOn::ConnectFailure,
            "reset" => RetryOn::Reset,
            "retriable-status" | "retriable-status-codes" => RetryOn::RetriableStatus,
            "unavailable" => RetryOn::Unavailable,
            "resource-exhausted" => RetryOn::ResourceExhausted,
            "cancelled" => RetryOn::Cancelled,
            "deadline-exceeded" => RetryOn::DeadlineExceeded,
            other => {
                let hint =
                    match super::super::suggest::did_you_mean(other, RETRY_ON.iter().copied()) {
                        Some(suggestion) => format!("did you mean `{suggestion}`?"),
                        None => format!("use {}", super::super::suggest::list(RETRY_ON)),
                    };
                checker.error_with_hint(
                    item,
                    &item_field,
                    format!("unknown retry condition `{other}`"),
                    hint,
                );
                continue;
            }
        };
        conditions.push(condition);
    }
    conditions
}

/// A gRPC status name, like `UNAVAILABLE`.
fn read_grpc_status(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<GrpcStatus> {
    let text = checker.string(node, field)?;
    let status = GrpcStatus::from_name(&text);
    if status.is_none() {
        unknown_grpc_status(checker, node, field, &text);
    }
    status
}

fn unknown_grpc_status(checker: &mut Checker<'_>, node: &Node, field: &str, text: &str) {
    let hint = did_you_mean_grpc(text)
        .unwrap_or_else(|| "use a gRPC status name like `UNAVAILABLE`".to_string());
    checker.error_with_hint(node, field, format!("unknown gRPC status `{text}`"), hint);
}

/// `did you mean `UNAVAILABLE`?` for a misspelt gRPC status name.
fn did_you_mean_grpc(text: &str) -> Option<String> {
    // Suggestions compare in lower case.
    let names: Vec<String> = GrpcStatus::NAMES
        .iter()
        .map(|name| name.to_ascii_lowercase())
        .collect();
    let suggestion = super::super::suggest::did_you_mean(text, names.iter().map(String::as_str))?;
    Some(format!(
        "did you mean `{}`?",
        suggestion.to_ascii_uppercase()
    ))
}

/// HTTP statuses (`503`) and gRPC status names (`UNAVAILABLE`), in one list.
fn read_statuses(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
) -> (Vec<u16>, Vec<GrpcStatus>) {
    let (mut http, mut grpc) = (Vec::new(), Vec::new());
    let Value::Sequence(items) = &node.value else {
        let found = describe(node);
        checker.error(
            node,
            field,
            format!("expected a list of statuses, found {found}"),
        );
        return (http, grpc);
    };
    for (index, item) in items.iter().enumerate() {
        let item_field = format!("{field}[{index}]");
        let Some(scalar) = checker.scalar(item, &item_field, "a status") else {
            continue;
        };
        if matches!(scalar.kind, Kind::Integer(_)) || scalar.text.trim().parse::<i64>().is_ok() {
            if let Some(status) = checker.integer_in(item, &item_field, 100..=599) {
                http.push(status as u16);
            }
            continue;
        }
        match GrpcStatus::from_name(&scalar.text) {
            Some(status) => grpc.push(status),
            None => {
                let hint = did_you_mean_grpc(&scalar.text).unwrap_or_else(|| {
                    "use an HTTP status like `503` or a gRPC status name like `UNAVAILABLE`"
                        .to_string()
                });
                let message = format!("unknown status `{}`", scalar.text);
                checker.error_with_hint(item, &item_field, message, hint);
            }
        }
    }
    (http, grpc)
}

fn read_breaker(checker: &mut Checker<'_>, node: &Node, field: &str) -> CircuitBreaker {
    let mut breaker = CircuitBreaker::default();
    let Some(fields) = checker.fields(node, field, "`circuit_breaker`", BREAKER_KEYS) else {
        return breaker;
    };
    let mut read = |key: &str, slot: &mut u32, min: i64| {
        if let Some(node) = fields.get(key) {
            *slot = read_u32(checker, node, &join(field, key), min).unwrap_or(*slot);
        }
    };
    read("max_connections", &mut breaker.max_connections, 1);
    read("max_pending", &mut breaker.max_pending, 0);
    read("max_requests", &mut breaker.max_requests, 1);
    breaker
}

fn read_outlier(checker: &mut Checker<'_>, node: &Node, field: &str) -> OutlierDetection {
    let mut outlier = OutlierDetection::default();
    let Some(fields) = checker.fields(node, field, "`outlier_detection`", OUTLIER_KEYS) else {
        return outlier;
    };
    if let Some(node) = fields.get("consecutive_errors") {
        let field = join(field, "consecutive_errors");
        outlier.consecutive_errors =
            read_u32(checker, node, &field, 1).unwrap_or(outlier.consecutive_errors);
    }
    if let Some(node) = fields.get("base_ejection") {
        let field = join(field, "base_ejection");
        outlier.base_ejection =
            read_duration(checker, node, &field).unwrap_or(outlier.base_ejection);
    }
    outlier
}
