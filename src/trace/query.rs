//! Query parameters of the read API, validated as the server's `QueryRequest.Builder` does.
//!
//! Pure: parses and checks; [`super::Store`] runs the search.

use std::collections::HashMap;

use crate::trace::model::Kind;

/// The server's default `QUERY_LOOKBACK`: one day in milliseconds.
pub const DEFAULT_LOOKBACK_MS: u64 = 86_400_000;
/// The default `limit` of `/api/v2/traces`.
pub const DEFAULT_LIMIT: usize = 10;

/// A bad query parameter; answered with 400 and this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

/// A validated `/api/v2/traces` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRequest {
    /// Lower-case local service name; constrains the other criteria to its spans.
    pub service_name: Option<String>,
    /// Lower-case remote service name.
    pub remote_service_name: Option<String>,
    /// Lower-case span name (`all` means any, as the server reads it).
    pub span_name: Option<String>,
    /// `key` → `value`; an empty value matches an annotation value or a tag key.
    pub annotation_query: Vec<(String, String)>,
    /// Microseconds; some span in the trace must last at least this long.
    pub min_duration: Option<u64>,
    /// Microseconds; only valid with `min_duration`.
    pub max_duration: Option<u64>,
    /// Epoch milliseconds.
    pub end_ts: u64,
    /// Milliseconds before `end_ts`.
    pub lookback: u64,
    /// Maximum number of traces.
    pub limit: usize,
}

/// Query string parameters, last value wins; values are percent-decoded.
#[derive(Debug, Default, Clone)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Parses `a=1&b=two%20words`.
    pub fn parse(query: Option<&str>) -> Self {
        let mut map = HashMap::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            map.insert(percent_decode(key), percent_decode(value));
        }
        Params(map)
    }

    /// A parameter's value, `None` when absent or empty (as the server treats empty values).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A parameter's value as sent, even when empty.
    pub fn raw(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A required parameter.
    pub fn required(&self, key: &str) -> Result<&str, QueryError> {
        self.get(key)
            .ok_or_else(|| QueryError(format!("missing required parameter: {key}")))
    }

    /// An optional integer parameter; present but empty is an error, as on the server.
    pub fn integer(&self, key: &str) -> Result<Option<i64>, QueryError> {
        self.raw(key)
            .map(|text| {
                text.trim().parse::<i64>().map_err(|_| {
                    QueryError(format!("invalid {key}: expected an integer, got {text:?}"))
                })
            })
            .transpose()
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' if index + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        index += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `http.method=GET and error` into ordered key/value pairs. Keys without `=` match an
/// annotation value or a tag key and never override a more specific `key=value`; `key=value`
/// entries are put regardless (last wins). Keys and values are trimmed; empty keys are skipped.
pub fn parse_annotation_query(text: &str) -> Vec<(String, String)> {
    let mut entries: Vec<(String, String)> = Vec::new();
    for part in text.split(" and ") {
        let (key, value) = match part.split_once('=') {
            None => {
                let key = part.trim();
                if key.is_empty() || entries.iter().any(|(k, _)| k == key) {
                    continue;
                }
                (key.to_owned(), String::new())
            }
            Some((key, value)) => {
                let key = key.trim();
                if key.is_empty() {
                    continue;
                }
                entries.retain(|(k, _)| k != key);
                (key.to_owned(), value.trim().to_owned())
            }
        };
        entries.push((key, value));
    }
    entries
}

fn lower(value: Option<&str>) -> Option<String> {
    value.map(str::to_lowercase).filter(|v| !v.is_empty())
}

fn positive(params: &Params, key: &str) -> Result<Option<u64>, QueryError> {
    match params.integer(key)? {
        Some(value) if value <= 0 => Err(QueryError(format!("{key} <= 0"))),
        other => Ok(other.map(|v| v as u64)),
    }
}

impl QueryRequest {
    /// Reads and validates `/api/v2/traces` parameters; `now_ms` is the default `endTs`.
    pub fn from_params(params: &Params, now_ms: u64) -> Result<Self, QueryError> {
        let end_ts = positive(params, "endTs")?.unwrap_or(now_ms);
        let lookback = positive(params, "lookback")?.unwrap_or(DEFAULT_LOOKBACK_MS);
        let limit = positive(params, "limit")?.map_or(DEFAULT_LIMIT, |l| l as usize);
        let min_duration = positive(params, "minDuration")?;
        let max_duration = params.integer("maxDuration")?;
        let max_duration = match (min_duration, max_duration) {
            (None, Some(_)) => {
                return Err(QueryError(
                    "maxDuration is only valid with minDuration".into(),
                ))
            }
            (Some(min), Some(max)) if max < min as i64 => {
                return Err(QueryError("maxDuration < minDuration".into()))
            }
            (_, max) => max.map(|m| m as u64),
        };
        Ok(QueryRequest {
            service_name: lower(params.get("serviceName")),
            remote_service_name: lower(params.get("remoteServiceName")),
            span_name: lower(params.get("spanName")).filter(|name| name != "all"),
            annotation_query: params
                .get("annotationQuery")
                .map(parse_annotation_query)
                .unwrap_or_default(),
            min_duration,
            max_duration,
            end_ts,
            lookback,
            limit,
        })
    }

    /// The window of trace timestamps, in epoch microseconds, inclusive.
    pub fn window_micros(&self) -> (u64, u64) {
        window_micros(self.end_ts, self.lookback)
    }
}

/// `[endTs - lookback, endTs]` in epoch microseconds.
pub fn window_micros(end_ts: u64, lookback: u64) -> (u64, u64) {
    (
        end_ts.saturating_sub(lookback).saturating_mul(1000),
        end_ts.saturating_mul(1000),
    )
}

/// Reads the optional `spanKind` filter of `/api/v2/spans` (case-insensitive).
pub fn parse_span_kind(params: &Params) -> Result<Option<Kind>, QueryError> {
    params
        .get("spanKind")
        .map(|text| {
            Kind::parse(&text.to_ascii_uppercase()).ok_or_else(|| {
                QueryError(format!(
                    "invalid spanKind: {text:?}; expected CLIENT, SERVER, PRODUCER or CONSUMER"
                ))
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str) -> Result<QueryRequest, QueryError> {
        QueryRequest::from_params(&Params::parse(Some(query)), 1_000_000)
    }

    #[test]
    fn annotation_query_parses_like_the_server() {
        assert_eq!(
            parse_annotation_query("error and http.method=GET and  retried "),
            vec![
                ("error".into(), String::new()),
                ("http.method".into(), "GET".into()),
                ("retried".into(), String::new())
            ]
        );
        // A bare key does not override a key=value; key=value overrides a bare key; last wins.
        assert_eq!(
            parse_annotation_query("a=1 and a"),
            vec![("a".into(), "1".into())]
        );
        assert_eq!(
            parse_annotation_query("a and a=2 and a=3"),
            vec![("a".into(), "3".into())]
        );
        assert_eq!(
            parse_annotation_query("url=/x?a=b"),
            vec![("url".into(), "/x?a=b".into())]
        );
        assert!(parse_annotation_query(" and ").is_empty());
    }

    #[test]
    fn defaults_and_lower_casing() {
        let request = request("serviceName=FrontEnd&spanName=all").unwrap();
        assert_eq!(request.service_name.as_deref(), Some("frontend"));
        assert_eq!(request.span_name, None);
        assert_eq!(
            (request.end_ts, request.lookback, request.limit),
            (1_000_000, DEFAULT_LOOKBACK_MS, 10)
        );
    }

    #[test]
    fn invalid_parameters_are_errors_with_the_server_wording() {
        for (query, message) in [
            ("limit=0", "limit <= 0"),
            ("endTs=-1", "endTs <= 0"),
            ("lookback=0", "lookback <= 0"),
            ("minDuration=0", "minDuration <= 0"),
            (
                "maxDuration=5",
                "maxDuration is only valid with minDuration",
            ),
            ("minDuration=10&maxDuration=5", "maxDuration < minDuration"),
            ("limit=ten", "invalid limit"),
        ] {
            assert!(request(query).unwrap_err().0.contains(message), "{query}");
        }
    }

    #[test]
    fn percent_decoding() {
        let params = Params::parse(Some("annotationQuery=http.method%3DGET+and+error&x=%zz"));
        assert_eq!(
            params.get("annotationQuery"),
            Some("http.method=GET and error")
        );
        assert_eq!(params.get("x"), Some("%zz"));
    }
}
