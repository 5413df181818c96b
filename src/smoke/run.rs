//! Running checks against a live sandbox and judging the answers.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::check::{Check, Target, TraceExpect};
use super::http::{self, Response};
use super::json_path;
use crate::trace::Span;

/// How long one request may take when the check sets no `max_duration`.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between attempts of a retried check.
const RETRY_PAUSE: Duration = Duration::from_millis(250);
/// The header in which the proxy names the trace of a request.
pub const TRACE_ID_HEADER: &str = "x-sandbox-trace-id";

/// Where a running sandbox answers.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    /// The gateway's base URL (`http://127.0.0.1:8080`, `https://…` with `gateway: {tls: true}`).
    pub gateway: Option<String>,
    /// Each service's published HTTP address (`http://127.0.0.1:32768`).
    pub services: BTreeMap<String, String>,
    /// The trace server's base URL.
    pub zipkin: Option<String>,
}

/// What one check found.
#[derive(Debug, Clone, Serialize)]
pub struct CheckOutcome {
    pub name: String,
    pub passed: bool,
    /// Each unmet expectation, in words.
    pub failures: Vec<String>,
    pub attempts: u32,
    /// Duration of the last attempt's request.
    pub duration_ms: u64,
    pub method: String,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<Response>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// The recorded trace (when the proxy named one).
    #[serde(skip)]
    pub trace: Vec<Span>,
}

impl CheckOutcome {
    /// Services the trace passed through (local endpoints of its spans), sorted.
    pub fn services_on_path(&self) -> Vec<String> {
        services_of(&self.trace).into_iter().collect()
    }
}

/// Runs `checks` one after another (each retried until its `retry.until` when set).
pub async fn run_checks(checks: &[Check], endpoints: &Endpoints) -> Vec<CheckOutcome> {
    let mut outcomes = Vec::with_capacity(checks.len());
    for check in checks {
        outcomes.push(run_check(check, endpoints).await);
    }
    outcomes
}

async fn run_check(check: &Check, endpoints: &Endpoints) -> CheckOutcome {
    let started = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut outcome = attempt(check, endpoints).await;
        outcome.attempts = attempts;
        let out_of_time = check
            .retry_until
            .is_none_or(|limit| started.elapsed() + RETRY_PAUSE >= limit);
        if outcome.passed || out_of_time {
            return outcome;
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

async fn attempt(check: &Check, endpoints: &Endpoints) -> CheckOutcome {
    let base = match &check.target {
        // A gateway with TLS answers cleartext HTTP on the same port too; checks use that.
        Target::Gateway => endpoints
            .gateway
            .as_deref()
            .map(|url| match url.strip_prefix("https://") {
                Some(authority) => format!("http://{authority}"),
                None => url.to_string(),
            })
            .ok_or_else(|| "the sandbox has no gateway running".to_string()),
        Target::Service(service) => endpoints.services.get(service).cloned().ok_or_else(|| {
            format!(
                "service `{service}` has no published HTTP port (is it running, with `port:` set?)"
            )
        }),
    };
    let mut outcome = CheckOutcome {
        name: check.name.clone(),
        passed: false,
        failures: Vec::new(),
        attempts: 0,
        duration_ms: 0,
        method: check.request.method.clone(),
        url: String::new(),
        response: None,
        trace_id: None,
        trace: Vec::new(),
    };
    let base = match base {
        Ok(base) => base,
        Err(reason) => {
            outcome.failures.push(reason);
            return outcome;
        }
    };
    outcome.url = format!("{}{}", base.trim_end_matches('/'), check.request.path);
    let timeout = check.expect.max_duration.map_or(REQUEST_TIMEOUT, |limit| {
        limit.max(Duration::from_secs(1)) * 2
    });
    let sent = Instant::now();
    let result = http::send(
        &check.request.method,
        &outcome.url,
        &check.request.headers,
        check.request.body.as_deref(),
        timeout,
    )
    .await;
    let elapsed = sent.elapsed();
    outcome.duration_ms = elapsed.as_millis() as u64;
    let response = match result {
        Ok(response) => response,
        Err(reason) => {
            outcome.failures.push(format!("no answer: {reason}"));
            return outcome;
        }
    };
    outcome
        .failures
        .extend(judge_response(check, &response, elapsed));
    outcome.trace_id = response.headers.get(TRACE_ID_HEADER).cloned();
    if let (Some(zipkin), Some(trace_id)) = (&endpoints.zipkin, &outcome.trace_id) {
        outcome.trace = fetch_trace(zipkin, trace_id, check.expect.trace.as_ref()).await;
    }
    if let Some(expect) = &check.expect.trace {
        if outcome.trace_id.is_none() {
            outcome.failures.push(format!(
                "trace: the answer has no `{TRACE_ID_HEADER}` header (was the request proxied?)"
            ));
        } else {
            outcome.failures.extend(judge_trace(expect, &outcome.trace));
        }
    }
    outcome.response = Some(response);
    outcome.passed = outcome.failures.is_empty();
    outcome
}

/// Every unmet expectation on the answer itself.
pub fn judge_response(check: &Check, response: &Response, elapsed: Duration) -> Vec<String> {
    let expect = &check.expect;
    let mut failures = Vec::new();
    if let Some(status) = expect.status {
        if response.status != status {
            failures.push(format!(
                "status: expected {status}, got {}",
                response.status
            ));
        }
    }
    for (name, wanted) in &expect.headers {
        match response.headers.get(&name.to_ascii_lowercase()) {
            Some(value)
                if value
                    .to_ascii_lowercase()
                    .contains(&wanted.to_ascii_lowercase()) => {}
            Some(value) => failures.push(format!(
                "header `{name}`: expected `{wanted}`, got `{value}`"
            )),
            None => failures.push(format!("header `{name}`: missing (expected `{wanted}`)")),
        }
    }
    for text in &expect.body_contains {
        if !response.body.contains(text.as_str()) {
            failures.push(format!("body: does not contain `{text}`"));
        }
    }
    if !expect.json.is_empty() {
        match serde_json::from_str::<serde_json::Value>(&response.body) {
            Err(error) => failures.push(format!("json: the body is not JSON ({error})")),
            Ok(document) => {
                for (path, wanted) in &expect.json {
                    match json_path::select(&document, path) {
                        Err(reason) => failures.push(format!("json: {reason}")),
                        Ok(None) => {
                            failures.push(format!("json `{path}`: missing (expected {wanted})"))
                        }
                        Ok(Some(actual)) if json_path::matches(actual, wanted) => {}
                        Ok(Some(actual)) => {
                            failures.push(format!("json `{path}`: expected {wanted}, got {actual}"))
                        }
                    }
                }
            }
        }
    }
    if let Some(limit) = expect.max_duration {
        if elapsed > limit {
            failures.push(format!(
                "duration: {} ms, over the limit of {}",
                elapsed.as_millis(),
                crate::manifest::duration_text::format(limit)
            ));
        }
    }
    failures
}

/// Every unmet expectation on the recorded trace.
pub fn judge_trace(expect: &TraceExpect, trace: &[Span]) -> Vec<String> {
    let mut failures = Vec::new();
    let seen = services_of(trace);
    let missing: Vec<&str> = expect
        .services
        .iter()
        .filter(|service| !seen.contains(*service))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        let seen: Vec<&str> = seen.iter().map(String::as_str).collect();
        failures.push(format!(
            "trace: never reached {} (the trace passed through: {})",
            missing
                .iter()
                .map(|service| format!("`{service}`"))
                .collect::<Vec<_>>()
                .join(", "),
            if seen.is_empty() {
                "nothing recorded".to_string()
            } else {
                seen.join(" → ")
            }
        ));
    }
    if let Some(limit) = expect.max_spans {
        if trace.len() > limit {
            failures.push(format!(
                "trace: {} spans, over the limit of {limit}",
                trace.len()
            ));
        }
    }
    if expect.no_errors {
        for span in trace.iter().filter(|span| span.tags.contains_key("error")) {
            let service = span
                .local_endpoint
                .as_ref()
                .and_then(|endpoint| endpoint.service_name.clone())
                .unwrap_or_default();
            failures.push(format!(
                "trace: span `{}` of `{service}` has error `{}`",
                span.name.clone().unwrap_or_default(),
                span.tags["error"]
            ));
        }
    }
    failures
}

fn services_of(trace: &[Span]) -> BTreeSet<String> {
    trace
        .iter()
        .filter_map(|span| span.local_endpoint.as_ref()?.service_name.clone())
        .collect()
}

/// The trace's spans from the trace server. Services report their own spans in the background,
/// so when the check expects services that are not there yet, it looks again for up to a second.
async fn fetch_trace(zipkin: &str, trace_id: &str, expect: Option<&TraceExpect>) -> Vec<Span> {
    let url = format!("{}/api/v2/trace/{trace_id}", zipkin.trim_end_matches('/'));
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let spans =
            match http::send("GET", &url, &BTreeMap::new(), None, Duration::from_secs(5)).await {
                Ok(response) if response.status == 200 => {
                    crate::trace::codec::json::decode(response.body.as_bytes()).unwrap_or_default()
                }
                _ => Vec::new(),
            };
        let complete = expect.is_none_or(|expect| {
            let seen = services_of(&spans);
            expect.services.iter().all(|service| seen.contains(service))
        });
        if complete || Instant::now() >= deadline {
            return spans;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The log lines joined to a trace (container output that names it, OTLP log records), in time
/// order; none when the trace server cannot be asked (a failure report goes on without them).
pub async fn trace_logs(zipkin: &str, trace_id: &str) -> Vec<crate::trace::logs::LogRecord> {
    let url = format!(
        "{}/api/v2/logs?traceId={trace_id}&limit={TRACE_LOG_LINES}",
        zipkin.trim_end_matches('/')
    );
    match http::send("GET", &url, &BTreeMap::new(), None, Duration::from_secs(5)).await {
        Ok(response) if response.status == 200 => {
            crate::trace::logs::query::decode(response.body.as_bytes()).unwrap_or_default()
        }
        _ => Vec::new(),
    }
}

/// Most log lines of a failing request's trace that a report shows.
pub const TRACE_LOG_LINES: usize = 200;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smoke::check::{Expect, Request};
    use crate::trace::{Endpoint, SpanId, TraceId};

    fn check(expect: Expect) -> Check {
        Check {
            name: "c".into(),
            target: Target::Gateway,
            request: Request {
                method: "GET".into(),
                path: "/".into(),
                headers: BTreeMap::new(),
                body: None,
            },
            expect,
            retry_until: None,
        }
    }

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: BTreeMap::from([(
                "content-type".to_string(),
                "application/json; charset=utf-8".to_string(),
            )]),
            body: body.to_string(),
        }
    }

    #[test]
    fn every_unmet_expectation_is_named() {
        let expect = Expect {
            status: Some(200),
            headers: BTreeMap::from([("Content-Type".to_string(), "text/html".to_string())]),
            body_contains: vec!["widget".into()],
            json: vec![("$.items[0].id".into(), serde_json::json!(1))],
            max_duration: Some(Duration::from_millis(10)),
            trace: None,
        };
        let failures = judge_response(
            &check(expect),
            &response(500, r#"{"items": [{"id": 2}]}"#),
            Duration::from_millis(50),
        );
        assert_eq!(
            failures,
            [
                "status: expected 200, got 500",
                "header `Content-Type`: expected `text/html`, got `application/json; charset=utf-8`",
                "body: does not contain `widget`",
                "json `$.items[0].id`: expected 1, got 2",
                "duration: 50 ms, over the limit of 10ms",
            ]
        );
    }

    #[test]
    fn a_matching_answer_passes() {
        let expect = Expect {
            status: Some(200),
            headers: BTreeMap::from([("content-type".to_string(), "application/json".to_string())]),
            body_contains: vec!["items".into()],
            json: vec![("$.items[0].id".into(), serde_json::json!("2"))],
            ..Expect::default()
        };
        assert!(judge_response(
            &check(expect),
            &response(200, r#"{"items": [{"id": 2}]}"#),
            Duration::ZERO
        )
        .is_empty());
    }

    fn span(service: &str, error: bool) -> Span {
        let mut span = Span::new(
            TraceId::parse("463ac35c9f6413ad48485a3953bb6124").unwrap(),
            SpanId::parse("a2fb4a1d1a96d312").unwrap(),
        );
        span.name = Some("get".into());
        span.local_endpoint = Some(Endpoint {
            service_name: Some(service.to_string()),
            ..Endpoint::default()
        });
        if error {
            span.tags.insert("error".into(), "500".into());
        }
        span
    }

    #[test]
    fn a_missing_hop_fails_the_trace_expectation() {
        let expect = TraceExpect {
            services: vec!["gateway".into(), "user".into(), "item".into()],
            max_spans: Some(2),
            no_errors: true,
        };
        let trace = [
            span("gateway", false),
            span("user", false),
            span("user", true),
        ];
        assert_eq!(
            judge_trace(&expect, &trace),
            [
                "trace: never reached `item` (the trace passed through: gateway → user)",
                "trace: 3 spans, over the limit of 2",
                "trace: span `get` of `user` has error `500`",
            ]
        );
        let full = [
            span("gateway", false),
            span("user", false),
            span("item", false),
        ];
        assert!(judge_trace(
            &TraceExpect {
                max_spans: None,
                ..expect
            },
            &full
        )
        .is_empty());
    }
}
