//! Configuration from environment variables (all optional; see `demo/README.md`). Pure: takes a lookup
//! function so tests need no process environment.

use std::time::Duration;

use crate::http::client::Url;
use crate::routes::{self, Route};

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `PORT`, default 8080.
    pub port: u16,
    /// `SERVICE_NAME`, else `OTEL_SERVICE_NAME`, else `demo`.
    pub service: String,
    /// `ROUTES`, with `${VAR}` expanded.
    pub routes: Vec<Route>,
    /// `HEALTH_STATUS`, default 200: the initial status of `GET /health`.
    pub health_status: u16,
    /// `ZIPKIN_ENDPOINT`: where spans go; no reporting without it.
    pub zipkin: Option<Url>,
    /// `CALL_TIMEOUT_MS`, default 10000: connect and read timeout of `call`.
    pub call_timeout: Duration,
    /// `MAX_CONNECTIONS`, default 512: connections served at once; more get 503.
    pub max_connections: usize,
}

/// Reads the configuration; errors name the variable.
pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
    let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
    let number = |name: &str, default: u64| -> Result<u64, String> {
        get(name).map_or(Ok(default), |value| {
            value
                .trim()
                .parse()
                .map_err(|_| format!("`{name}` must be a number: got `{value}`"))
        })
    };
    let port = u16::try_from(number("PORT", 8080)?)
        .map_err(|_| "`PORT` must be at most 65535".to_string())?;
    let health_status = number("HEALTH_STATUS", 200)?;
    if !(200..=599).contains(&health_status) {
        return Err(format!(
            "`HEALTH_STATUS` must be within 200..=599: got {health_status}"
        ));
    }
    let routes = match get("ROUTES") {
        Some(text) => {
            routes::parse(&routes::expand_env(&text, &lookup).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?
        }
        None => Vec::new(),
    };
    let zipkin = get("ZIPKIN_ENDPOINT")
        .map(|text| Url::parse(text.trim()).map_err(|e| format!("`ZIPKIN_ENDPOINT`: {e}")))
        .transpose()?;
    Ok(Config {
        port,
        service: get("SERVICE_NAME")
            .or_else(|| get("OTEL_SERVICE_NAME"))
            .unwrap_or_else(|| "demo".to_string()),
        routes,
        health_status: health_status as u16,
        zipkin,
        call_timeout: Duration::from_millis(number("CALL_TIMEOUT_MS", 10_000)?),
        max_connections: number("MAX_CONNECTIONS", 512)?.max(1) as usize,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        from_env(move |name| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        })
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let config = config(&[]).expect("valid");
        assert_eq!(
            (config.port, config.service.as_str(), config.health_status),
            (8080, "demo", 200)
        );
        assert!(config.routes.is_empty() && config.zipkin.is_none());
        assert_eq!(config.max_connections, 512);
    }

    #[test]
    fn service_name_falls_back_to_otel() {
        assert_eq!(
            config(&[("OTEL_SERVICE_NAME", "otel")])
                .expect("valid")
                .service,
            "otel"
        );
        let both =
            config(&[("OTEL_SERVICE_NAME", "otel"), ("SERVICE_NAME", "own")]).expect("valid");
        assert_eq!(both.service, "own");
    }

    #[test]
    fn routes_expand_the_environment() {
        let config = config(&[
            (
                "ROUTES",
                "GET /users/{id} => call ${ITEM_URL}/items/{id} as item",
            ),
            ("ITEM_URL", "http://item:8080"),
        ])
        .expect("valid");
        assert_eq!(
            config.routes[0].describe(),
            "GET /users/{id} => call http://item:8080/items/{id} as item"
        );
    }

    #[test]
    fn errors_name_the_variable() {
        assert_eq!(
            config(&[("PORT", "http")]).err(),
            Some("`PORT` must be a number: got `http`".to_string())
        );
        assert_eq!(
            config(&[("PORT", "70000")]).err(),
            Some("`PORT` must be at most 65535".to_string())
        );
        assert_eq!(
            config(&[("ZIPKIN_ENDPOINT", "https://z/api/v2/spans")]).err(),
            Some("`ZIPKIN_ENDPOINT`: only `http://` URLs are supported".to_string())
        );
        assert_eq!(
            config(&[("ROUTES", "GET /a => call ${MISSING}/x")]).err(),
            Some("invalid `ROUTES`: environment variable `MISSING` is not set".to_string())
        );
    }
}
