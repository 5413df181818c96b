//! Why a request could not be proxied, who is to blame ([`ErrorSource`], as in pingora: the source
//! decides 4xx vs 5xx), and the page a developer sees: HTML for browsers, JSON for API clients,
//! plain text otherwise, naming the service, its state, its last log lines and what to run next.
//! A gRPC call gets a gRPC status instead (HTTP 200, `grpc-status` and `grpc-message` in a
//! trailers-only response), the same facts in one line.

use std::net::IpAddr;
use std::time::Duration;

use http::{header, HeaderValue, Response, StatusCode};
use serde_json::json;

use super::body::{full, ProxyBody};
use super::status::ServiceStatus;
use super::upstream::NoReplica;

/// Where an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// The client sent something wrong (4xx).
    Downstream,
    /// The service or its replicas failed (502/503/504).
    Upstream,
    /// The proxy itself (500).
    Internal,
}

/// A request that could not be proxied.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProxyError {
    #[error("no route matches `{path}`")]
    NoRoute { path: String },
    #[error("`{service}` is not a service of this sandbox")]
    UnknownService { service: String },
    #[error("calls from {address} are refused: it is not a container of this sandbox")]
    UnknownCaller { address: IpAddr },
    #[error("{}", body_too_large_text(*limit, route.as_deref()))]
    BodyTooLarge {
        limit: u64,
        /// The route whose own `max_request_body` was hit; `None`: the gateway's.
        route: Option<String>,
    },
    #[error("{detail}")]
    BadRequest { detail: String },
    /// A gRPC-Web call (or its preflight) from a page whose origin the route does not allow.
    #[error("pages from `{origin}` may not call route `{route}` (gRPC-Web)")]
    OriginRefused { origin: String, route: String },
    #[error("the request head is larger than {limit} bytes")]
    HeadersTooLarge { limit: usize },
    #[error("{}", no_replica_text(service, *reason))]
    NoReplica { service: String, reason: NoReplica },
    #[error("`{service}` has too many requests in flight (circuit breaker)")]
    Overflow { service: String },
    #[error("cannot connect to `{service}` ({replica}): {detail}")]
    ConnectFailed {
        service: String,
        replica: String,
        detail: String,
    },
    #[error("`{service}` ({replica}) closed the connection before answering: {detail}")]
    Reset {
        service: String,
        replica: String,
        detail: String,
    },
    #[error("`{service}` ({replica}) sent an invalid response: {detail}")]
    InvalidResponse {
        service: String,
        replica: String,
        detail: String,
    },
    #[error("`{service}` did not answer within {}", crate::manifest::duration_text::format(*after))]
    Timeout { service: String, after: Duration },
    /// The caller's own deadline (`grpc-timeout`) passed first.
    #[error("`{service}` did not answer within the call's deadline ({}, its `grpc-timeout`)", crate::manifest::duration_text::format(*after))]
    Deadline { service: String, after: Duration },
    #[error("internal error: {detail}")]
    Internal { detail: String },
}

fn no_replica_text(service: &str, reason: NoReplica) -> String {
    match reason {
        NoReplica::NoneRunning => format!("`{service}` has no running replica"),
        NoReplica::NoneHealthy => format!("`{service}` has no healthy replica"),
        NoReplica::AllEjected => format!(
            "every replica of `{service}` failed repeatedly and is ejected for a while (outlier detection)"
        ),
    }
}

fn body_too_large_text(limit: u64, route: Option<&str>) -> String {
    let limit = size_text(limit);
    match route {
        Some(route) => format!(
            "the request body is larger than the limit of route `{route}`: {limit} (its `max_request_body`)"
        ),
        None => format!(
            "the request body is larger than the gateway's limit: {limit} (`gateway.max_request_body`)"
        ),
    }
}

/// `10 MiB (10485760 bytes)`, or `1000 bytes` when not a whole number of KiB.
fn size_text(bytes: u64) -> String {
    let unit = [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
        .into_iter()
        .find(|(size, _)| bytes >= *size && bytes % size == 0);
    match unit {
        Some((size, name)) => format!("{} {name} ({bytes} bytes)", bytes / size),
        None => format!("{bytes} bytes"),
    }
}

impl ProxyError {
    pub fn source(&self) -> ErrorSource {
        match self {
            ProxyError::NoRoute { .. }
            | ProxyError::UnknownService { .. }
            | ProxyError::UnknownCaller { .. }
            | ProxyError::BodyTooLarge { .. }
            | ProxyError::BadRequest { .. }
            | ProxyError::OriginRefused { .. }
            | ProxyError::HeadersTooLarge { .. } => ErrorSource::Downstream,
            ProxyError::Internal { .. } => ErrorSource::Internal,
            _ => ErrorSource::Upstream,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::NoRoute { .. } | ProxyError::UnknownService { .. } => StatusCode::NOT_FOUND,
            ProxyError::UnknownCaller { .. } | ProxyError::OriginRefused { .. } => {
                StatusCode::FORBIDDEN
            }
            ProxyError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ProxyError::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ProxyError::NoReplica { .. } | ProxyError::Overflow { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProxyError::ConnectFailed { .. }
            | ProxyError::Reset { .. }
            | ProxyError::InvalidResponse { .. } => StatusCode::BAD_GATEWAY,
            ProxyError::Timeout { .. } | ProxyError::Deadline { .. } => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The gRPC status code a gRPC client gets for this error (`UNIMPLEMENTED` for no route,
    /// `UNAVAILABLE` when the service cannot answer, …).
    pub fn grpc_status(&self) -> u8 {
        const PERMISSION_DENIED: u8 = 7;
        const DEADLINE_EXCEEDED: u8 = 4;
        const RESOURCE_EXHAUSTED: u8 = 8;
        const UNIMPLEMENTED: u8 = 12;
        const INTERNAL: u8 = 13;
        const UNAVAILABLE: u8 = 14;
        match self {
            ProxyError::NoRoute { .. } | ProxyError::UnknownService { .. } => UNIMPLEMENTED,
            ProxyError::UnknownCaller { .. } | ProxyError::OriginRefused { .. } => {
                PERMISSION_DENIED
            }
            ProxyError::BodyTooLarge { .. } | ProxyError::HeadersTooLarge { .. } => {
                RESOURCE_EXHAUSTED
            }
            ProxyError::BadRequest { .. } | ProxyError::Internal { .. } => INTERNAL,
            ProxyError::NoReplica { .. }
            | ProxyError::Overflow { .. }
            | ProxyError::ConnectFailed { .. }
            | ProxyError::Reset { .. }
            | ProxyError::InvalidResponse { .. } => UNAVAILABLE,
            ProxyError::Timeout { .. } | ProxyError::Deadline { .. } => DEADLINE_EXCEEDED,
        }
    }

    /// The service the error is about, when there is one.
    pub fn service(&self) -> Option<&str> {
        match self {
            ProxyError::NoReplica { service, .. }
            | ProxyError::Overflow { service }
            | ProxyError::ConnectFailed { service, .. }
            | ProxyError::Reset { service, .. }
            | ProxyError::InvalidResponse { service, .. }
            | ProxyError::Timeout { service, .. }
            | ProxyError::Deadline { service, .. } => Some(service),
            _ => None,
        }
    }
}

/// How many log lines an error page shows.
const LOG_LINES: usize = 20;

/// What the error page says.
pub struct ErrorReport {
    pub status: StatusCode,
    /// The gRPC status code, for gRPC calls ([`ProxyError::grpc_status`]).
    pub grpc_status: u8,
    pub message: String,
    pub service: Option<String>,
    pub state: Option<String>,
    pub logs: Vec<String>,
    pub next: Option<String>,
    pub request_id: String,
}

impl ErrorReport {
    /// Gathers state and logs (bounded wait) for `error`.
    pub async fn gather(error: &ProxyError, status: &dyn ServiceStatus, request_id: &str) -> Self {
        let service = error.service().map(str::to_string);
        let (state, logs) = match (&service, error.source()) {
            (Some(service), ErrorSource::Upstream) => {
                let logs = tokio::time::timeout(
                    Duration::from_millis(500),
                    status.recent_logs(service, LOG_LINES),
                )
                .await
                .unwrap_or_default();
                (status.state(service), logs)
            }
            _ => (None, Vec::new()),
        };
        let next = match (&service, error) {
            (_, ProxyError::BodyTooLarge { route: None, .. }) => Some(
                "raise it in the manifest: `gateway: {max_request_body: SIZE}` (like `100m` or `1g`)"
                    .to_string(),
            ),
            (_, ProxyError::BodyTooLarge { route: Some(_), .. }) => Some(
                "raise it in the manifest: `max_request_body: SIZE` on that route in `gateway.routes` (like `100m` or `1g`)"
                    .to_string(),
            ),
            (_, ProxyError::OriginRefused { origin, .. }) => Some(format!(
                "allow it on the route: `grpc_web: {{allow_origins: [\"{origin}\"]}}`"
            )),
            (_, ProxyError::NoRoute { .. }) => {
                Some("see the routes with `curl http://<gateway>/__sandbox/routes`".to_string())
            }
            (Some(service), ProxyError::Overflow { .. }) => Some(format!(
                "raise `circuit_breaker` limits of `{service}`, or run `sandbox logs {service}`"
            )),
            (Some(service), _) => Some(format!("sandbox logs {service}")),
            _ => None,
        };
        ErrorReport {
            status: error.status(),
            grpc_status: error.grpc_status(),
            message: error.to_string(),
            service,
            state,
            logs,
            next,
            request_id: request_id.to_string(),
        }
    }

    /// The response, in the form `accept` asks for.
    pub fn into_response(self, accept: Option<&HeaderValue>) -> Response<ProxyBody> {
        let accept = accept
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let (content_type, body) = if accept.contains("text/html") {
            ("text/html; charset=utf-8", self.html())
        } else if accept.contains("json") {
            ("application/json", self.json())
        } else {
            ("text/plain; charset=utf-8", self.text())
        };
        let mut response = Response::new(full(body));
        *response.status_mut() = self.status;
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    }

    /// A gRPC trailers-only response: HTTP 200, no body, the status and a one-line message
    /// (error, state, next command, request id) in `grpc-status` and `grpc-message`.
    pub fn into_grpc_response(self) -> Response<ProxyBody> {
        let mut message = self.message.clone();
        if let Some(state) = &self.state {
            message.push_str(&format!("; state: {state}"));
        }
        if let Some(next) = &self.next {
            message.push_str(&format!("; next: {next}"));
        }
        message.push_str(&format!("; request id: {}", self.request_id));
        let mut response = Response::new(super::body::empty());
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        headers.insert(
            "grpc-status",
            HeaderValue::from(u16::from(self.grpc_status)),
        );
        if let Ok(value) = HeaderValue::from_str(&super::grpc::percent_encode(&message)) {
            headers.insert("grpc-message", value);
        }
        response
    }

    fn json(&self) -> String {
        json!({
            "error": self.message,
            "status": self.status.as_u16(),
            "service": self.service,
            "state": self.state,
            "logs": self.logs,
            "next": self.next,
            "request_id": self.request_id,
        })
        .to_string()
    }

    fn text(&self) -> String {
        let mut text = format!(
            "{} {}\n\nerror: {}\n",
            self.status.as_u16(),
            reason(self.status),
            self.message
        );
        if let Some(state) = &self.state {
            text.push_str(&format!("state: {state}\n"));
        }
        if !self.logs.is_empty() {
            text.push_str("\nlast log lines:\n");
            for line in &self.logs {
                text.push_str(&format!("  {line}\n"));
            }
        }
        if let Some(next) = &self.next {
            text.push_str(&format!("\nnext: {next}\n"));
        }
        text.push_str(&format!("request id: {}\n", self.request_id));
        text
    }

    fn html(&self) -> String {
        let mut html = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>{status} {reason} · sandbox</title>\
             <style>body{{font-family:system-ui,sans-serif;margin:2em auto;max-width:60em;padding:0 1em}}\
             pre{{background:#111;color:#eee;padding:1em;overflow:auto}}code{{background:#eee;padding:0 .3em}}</style>\
             </head><body><h1>{status} {reason}</h1><p>{message}</p>",
            status = self.status.as_u16(),
            reason = reason(self.status),
            message = escape_html(&self.message),
        );
        if let Some(state) = &self.state {
            html.push_str(&format!("<p><b>State:</b> {}</p>", escape_html(state)));
        }
        if !self.logs.is_empty() {
            html.push_str("<h2>Last log lines</h2><pre>");
            for line in &self.logs {
                html.push_str(&escape_html(line));
                html.push('\n');
            }
            html.push_str("</pre>");
        }
        if let Some(next) = &self.next {
            html.push_str(&format!(
                "<p><b>Next:</b> <code>{}</code></p>",
                escape_html(next)
            ));
        }
        html.push_str(&format!(
            "<p><small>request id {}</small></p></body></html>",
            escape_html(&self.request_id)
        ));
        html
    }
}

fn reason(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Error")
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_status_names_the_failure() {
        let no_route = ProxyError::NoRoute { path: "/x".into() };
        let down = ProxyError::NoReplica {
            service: "item".into(),
            reason: NoReplica::NoneRunning,
        };
        assert_eq!((no_route.grpc_status(), down.grpc_status()), (12, 14));
    }
}
