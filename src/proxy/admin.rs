//! `/__sandbox/…` on the gateway: `routes` (the live table), `upstreams` (replicas, health,
//! ejections) and `metrics` (Prometheus text).

use http::{header, HeaderValue, Response, StatusCode};

use super::body::{full, ProxyBody};
use super::config::ProxyConfig;
use super::route::RouteView;
use super::Shared;

pub fn answer(shared: &Shared, config: &ProxyConfig, path: &str) -> Response<ProxyBody> {
    match path.trim_end_matches('/') {
        "/__sandbox/routes" => {
            let routes: Vec<RouteView<'_>> = config
                .routes
                .iter()
                .map(|route| RouteView {
                    name: &route.name,
                    route: &route.route,
                })
                .collect();
            json(StatusCode::OK, serde_json::to_string_pretty(&routes))
        }
        "/__sandbox/upstreams" => json(
            StatusCode::OK,
            serde_json::to_string_pretty(&shared.upstreams.view()),
        ),
        "/__sandbox/metrics" => {
            let mut response = Response::new(full(shared.metrics.render()));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            response
        }
        _ => json(
            StatusCode::NOT_FOUND,
            Ok(r#"{"error":"unknown admin page","pages":["/__sandbox/routes","/__sandbox/upstreams","/__sandbox/metrics"]}"#.to_string()),
        ),
    }
}

fn json(status: StatusCode, body: serde_json::Result<String>) -> Response<ProxyBody> {
    let body = body.unwrap_or_else(|error| format!("{{\"error\":\"{error}\"}}"));
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
