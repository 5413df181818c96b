//! What a smoke check is, as the manifest's `smoke:` list describes it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// One check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub name: String,
    pub target: Target,
    pub request: Request,
    pub expect: Expect,
    /// Keep retrying a failing check until this much time has passed (eventually-consistent systems).
    #[serde(skip_serializing_if = "Option::is_none", with = "optional_duration")]
    pub retry_until: Option<Duration>,
}

/// Where the request goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Through the gateway, as a user would call.
    Gateway,
    /// Straight to one service's published HTTP port.
    Service(String),
}

/// The request to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Request {
    pub method: String,
    pub path: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// What the answer must look like. Every field is optional; an empty `Expect` checks only that
/// an answer came.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Expect {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Header values must contain these (case-insensitive names).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub body_contains: Vec<String>,
    /// `$.path` → expected JSON value.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub json: Vec<(String, serde_json::Value)>,
    #[serde(skip_serializing_if = "Option::is_none", with = "optional_duration")]
    pub max_duration: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceExpect>,
}

/// Expectations on the trace the proxy recorded for the request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TraceExpect {
    /// Services the trace must pass through (in any order; `gateway` is the front door).
    pub services: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_spans: Option<usize>,
    /// No span of the trace carries an `error` tag.
    pub no_errors: bool,
}

mod optional_duration {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => {
                serializer.serialize_str(&crate::manifest::duration_text::format(*duration))
            }
            None => serializer.serialize_none(),
        }
    }
}
