//! One finished span and its Zipkin JSON v2 encoding.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::Context;
use crate::json::{self, Object};

/// Zipkin span kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A request this service answered.
    Server,
    /// A request this service made.
    Client,
}

/// A finished span.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// Ids, parent and flags.
    pub context: Context,
    /// SERVER or CLIENT.
    pub kind: Kind,
    /// Lowercase name such as `get /users/{id}`.
    pub name: String,
    /// Start, microseconds since the epoch.
    pub timestamp: u64,
    /// Duration in microseconds (at least 1).
    pub duration: u64,
    /// This service.
    pub local_service: String,
    /// The service called (CLIENT spans).
    pub remote_service: Option<String>,
    /// Tags in insertion order.
    pub tags: Vec<(String, String)>,
}

/// A clock reading for span timestamps: wall clock for the start, monotonic for the duration.
#[derive(Debug, Clone, Copy)]
pub struct Start {
    wall_micros: u64,
    instant: Instant,
}

impl Start {
    /// Now.
    pub fn now() -> Self {
        let wall_micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_micros() as u64)
            .unwrap_or(0);
        Self {
            wall_micros,
            instant: Instant::now(),
        }
    }

    /// `(timestamp, duration)` in microseconds, ending now.
    pub fn finish(&self) -> (u64, u64) {
        let duration = self.instant.elapsed().as_micros() as u64;
        (self.wall_micros, duration.max(1))
    }
}

impl Span {
    /// Zipkin JSON v2 for one span.
    pub fn to_json(&self) -> String {
        let kind = match self.kind {
            Kind::Server => "SERVER",
            Kind::Client => "CLIENT",
        };
        let tags = self
            .tags
            .iter()
            .fold(Object::new(), |tags, (key, value)| tags.string(key, value))
            .finish();
        let mut span = Object::new()
            .string("traceId", &self.context.trace_id)
            .optional_string("parentId", self.context.parent_id.as_deref())
            .string("id", &self.context.span_id)
            .string("kind", kind)
            .string("name", &self.name)
            .number("timestamp", self.timestamp)
            .number("duration", self.duration)
            .raw(
                "localEndpoint",
                &Object::new()
                    .string("serviceName", &self.local_service)
                    .finish(),
            );
        if let Some(remote) = &self.remote_service {
            span = span.raw(
                "remoteEndpoint",
                &Object::new().string("serviceName", remote).finish(),
            );
        }
        if self.context.debug {
            span = span.boolean("debug", true);
        }
        if self.context.shared && self.kind == Kind::Server {
            span = span.boolean("shared", true);
        }
        span.raw("tags", &tags).finish()
    }
}

/// A JSON array of spans, the body of `POST /api/v2/spans`.
pub fn encode(spans: &[Span]) -> String {
    json::array(spans.iter().map(Span::to_json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_a_shared_server_span() {
        let span = Span {
            context: Context {
                trace_id: "463ac35c9f6413ad48485a3953bb6124".to_string(),
                span_id: "a2fb4a1d1a96d312".to_string(),
                parent_id: Some("0020000000000001".to_string()),
                sampled: Some(true),
                debug: false,
                tracestate: None,
                shared: true,
            },
            kind: Kind::Server,
            name: "get /users/{id}".to_string(),
            timestamp: 1_700_000_000_000_000,
            duration: 1500,
            local_service: "user".to_string(),
            remote_service: None,
            tags: vec![("http.method".to_string(), "GET".to_string())],
        };
        assert_eq!(
            encode(&[span]),
            concat!(
                r#"[{"traceId":"463ac35c9f6413ad48485a3953bb6124","parentId":"0020000000000001","#,
                r#""id":"a2fb4a1d1a96d312","kind":"SERVER","name":"get /users/{id}","#,
                r#""timestamp":1700000000000000,"duration":1500,"localEndpoint":{"serviceName":"user"},"#,
                r#""shared":true,"tags":{"http.method":"GET"}}]"#
            )
        );
        assert!(json::is_valid(&encode(&[])));
    }

    #[test]
    fn durations_are_at_least_one_microsecond() {
        let (timestamp, duration) = Start::now().finish();
        assert!(timestamp > 1_600_000_000_000_000);
        assert!(duration >= 1);
    }
}
