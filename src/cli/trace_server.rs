//! The running control plane's trace server, as `logs --trace`, `traces` and `trace` read it: found
//! through the project's state file, asked through its HTTP API (`/api/v2/traces`,
//! `/api/v2/trace/{id}`, `/api/v2/logs`). Returns data; the commands render it.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{context, GlobalArgs};
use crate::control::ControlPlaneState;
use crate::smoke::http;
use crate::trace::logs::{query as log_query, LogRecord};
use crate::trace::{Span, TraceId};

const TIMEOUT: Duration = Duration::from_secs(10);
/// Most log lines asked for one trace.
pub const TRACE_LOG_LIMIT: usize = 1000;

/// Which traces `sandbox traces` asks for.
#[derive(Debug, Clone, Default)]
pub struct TraceFilter {
    pub service: Option<String>,
    pub errors: bool,
    pub min_duration: Option<Duration>,
    pub limit: usize,
}

/// A reachable trace server.
pub struct TraceServer {
    /// `http://127.0.0.1:9411`.
    pub url: String,
}

impl TraceServer {
    /// The trace server of the project the global flags name; an error says how to start it.
    pub fn find(global: &GlobalArgs) -> anyhow::Result<TraceServer> {
        let (project, _) = context::project_name(global)?;
        let not_up = || {
            context::UsageError {
            message: format!(
                "project `{project}` is not up, so there is no trace server to ask\n  hint: start it with `sandbox up -d` (or `sandbox up` in another terminal)"
            ),
        }
        };
        let state = ControlPlaneState::read_live(&project).ok_or_else(not_up)?;
        let url = state.zipkin.ok_or_else(not_up)?;
        Ok(TraceServer {
            url: url.trim_end_matches('/').to_string(),
        })
    }

    /// The UI's address of a trace.
    pub fn link(&self, trace_id: TraceId) -> String {
        format!("{}/zipkin/#/trace/{trace_id}", self.url)
    }

    /// Recent traces that pass `filter`, each a list of spans.
    pub async fn traces(&self, filter: &TraceFilter) -> anyhow::Result<Vec<Vec<Span>>> {
        let mut query = format!("limit={}", filter.limit.max(1));
        if let Some(service) = &filter.service {
            query.push_str(&format!("&serviceName={}", encode(service)));
        }
        if let Some(minimum) = filter.min_duration {
            query.push_str(&format!("&minDuration={}", minimum.as_micros().max(1)));
        }
        if filter.errors {
            query.push_str("&annotationQuery=error");
        }
        let body = self.get(&format!("/api/v2/traces?{query}")).await?;
        let traces: Vec<serde_json::Value> = serde_json::from_str(&body)
            .map_err(|error| anyhow::anyhow!("the trace server's answer is not JSON: {error}"))?;
        traces
            .into_iter()
            .map(|trace| {
                crate::trace::codec::json::decode(trace.to_string().as_bytes())
                    .map_err(|error| anyhow::anyhow!("the trace server sent a bad trace: {error}"))
            })
            .collect()
    }

    /// One trace's spans; an error when the store has none.
    pub async fn trace(&self, trace_id: TraceId) -> anyhow::Result<Vec<Span>> {
        let body = self.get(&format!("/api/v2/trace/{trace_id}")).await?;
        crate::trace::codec::json::decode(body.as_bytes())
            .map_err(|error| anyhow::anyhow!("the trace server sent a bad trace: {error}"))
    }

    /// The log lines joined to a trace, in time order (the raw answer, and the records).
    pub async fn logs(&self, trace_id: TraceId) -> anyhow::Result<(String, Vec<LogRecord>)> {
        let body = self
            .get(&format!(
                "/api/v2/logs?traceId={trace_id}&limit={TRACE_LOG_LIMIT}"
            ))
            .await?;
        let records = log_query::decode(body.as_bytes())
            .map_err(|error| anyhow::anyhow!("the trace server sent bad log lines: {}", error.0))?;
        Ok((body, records))
    }

    /// A GET whose answer must be 200; the body.
    pub async fn get(&self, path: &str) -> anyhow::Result<String> {
        let url = format!("{}{path}", self.url);
        let response = http::send("GET", &url, &BTreeMap::new(), None, TIMEOUT)
            .await
            .map_err(|reason| {
                anyhow::anyhow!(
                    "the trace server at {} did not answer: {reason}\n  hint: is the control plane still running? see `sandbox ps`",
                    self.url
                )
            })?;
        match response.status {
            200 => Ok(response.body),
            404 if path.starts_with("/api/v2/trace/") => Err(context::UsageError {
                message: format!(
                    "no trace {} in the store (it keeps the newest `tracing: {{max_spans}}` spans)\n  hint: list recent ones with `sandbox traces`",
                    path.trim_start_matches("/api/v2/trace/")
                ),
            }
            .into()),
            status => Err(anyhow::anyhow!(
                "the trace server answered {status} to GET {path}: {}",
                response.body.trim()
            )),
        }
    }
}

/// A trace id as a user types it: hex, 16 or 32 digits, any case.
pub fn parse_trace_id(text: &str) -> Result<TraceId, context::UsageError> {
    TraceId::parse(&text.trim().to_ascii_lowercase()).map_err(|error| context::UsageError {
        message: format!(
            "`{text}` is not a trace id: {error}\n  hint: use the hex id `sandbox traces` lists"
        ),
    })
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_are_read_as_users_type_them() {
        assert_eq!(
            parse_trace_id(" 4BF92F3577B34DA6A3CE929D0E0E4736 ").unwrap(),
            TraceId(0x4bf92f3577b34da6a3ce929d0e0e4736)
        );
        assert!(parse_trace_id("xyz")
            .unwrap_err()
            .message
            .contains("is not a trace id"));
        assert_eq!(encode("web api/é"), "web%20api%2F%C3%A9");
    }
}
