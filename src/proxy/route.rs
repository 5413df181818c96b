//! The routing table: routes compiled from the manifest (regexes built once, header values
//! validated) and the first-match lookup. Pure; unit tests below.

use std::collections::BTreeMap;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use regex::Regex;
use serde::Serialize;

use crate::manifest::{
    Faults, HeaderEdits, HeaderMatch, PathMatch, RetryPolicy, Route, RouteMatch, RouteTarget,
    WeightedService,
};

/// A route ready to match: the manifest route plus what matching needs pre-built.
#[derive(Debug, Clone)]
pub struct CompiledRoute {
    /// Short name for logs and metrics, like `prefix:/items`.
    pub name: String,
    pub route: Route,
    path: PathMatcher,
    headers: Vec<(HeaderName, HeaderMatcher)>,
    pub(crate) request_add: Vec<(HeaderName, HeaderValue)>,
    pub(crate) request_remove: Vec<HeaderName>,
    pub(crate) response_add: Vec<(HeaderName, HeaderValue)>,
    pub(crate) response_remove: Vec<HeaderName>,
}

#[derive(Debug, Clone)]
enum PathMatcher {
    Prefix(String),
    Exact(String),
    Regex(Regex),
}

#[derive(Debug, Clone)]
enum HeaderMatcher {
    Exact(String),
    Regex(Regex),
    Present,
    Absent,
}

/// What a route looks at in a request.
pub struct RequestView<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub host: Option<&'a str>,
    pub headers: &'a HeaderMap,
}

fn anchored(pattern: &str) -> Option<Regex> {
    Regex::new(&format!("^(?:{pattern})$")).ok()
}

impl CompiledRoute {
    /// `None` when a regex does not compile (the manifest validation rejects those first).
    pub fn compile(route: Route) -> Option<CompiledRoute> {
        let path = match &route.matcher.path {
            PathMatch::Prefix(prefix) => PathMatcher::Prefix(prefix.clone()),
            PathMatch::Exact(path) => PathMatcher::Exact(path.clone()),
            PathMatch::Regex(pattern) => PathMatcher::Regex(anchored(pattern)?),
        };
        let mut headers = Vec::new();
        for (name, condition) in &route.matcher.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
            let matcher = match condition {
                HeaderMatch::Exact(value) => HeaderMatcher::Exact(value.clone()),
                HeaderMatch::Regex(pattern) => HeaderMatcher::Regex(anchored(pattern)?),
                HeaderMatch::Present => HeaderMatcher::Present,
                HeaderMatch::Absent => HeaderMatcher::Absent,
            };
            headers.push((name, matcher));
        }
        let (request_add, request_remove) = compile_edits(&route.request_headers);
        let (response_add, response_remove) = compile_edits(&route.response_headers);
        Some(CompiledRoute {
            name: describe(&route.matcher.path),
            path,
            headers,
            request_add,
            request_remove,
            response_add,
            response_remove,
            route,
        })
    }

    pub fn matches(&self, request: &RequestView<'_>) -> bool {
        let matcher = &self.route.matcher;
        let path_ok = match &self.path {
            PathMatcher::Prefix(prefix) => request.path.starts_with(prefix.as_str()),
            PathMatcher::Exact(path) => request.path == path,
            PathMatcher::Regex(regex) => regex.is_match(request.path),
        };
        path_ok
            && matcher
                .method
                .as_ref()
                .is_none_or(|method| method == request.method.as_str())
            && matcher.host.as_ref().is_none_or(|host| {
                request
                    .host
                    .is_some_and(|given| strip_port(given).eq_ignore_ascii_case(host))
            })
            && self.headers.iter().all(|(name, condition)| {
                let value = request
                    .headers
                    .get(name)
                    .and_then(|value| value.to_str().ok());
                match (condition, value) {
                    (HeaderMatcher::Present, _) => request.headers.contains_key(name),
                    (HeaderMatcher::Absent, _) => !request.headers.contains_key(name),
                    (HeaderMatcher::Exact(expected), Some(value)) => value == expected,
                    (HeaderMatcher::Regex(regex), Some(value)) => regex.is_match(value),
                    _ => false,
                }
            })
            && query_matches(&matcher.query, request.query)
    }

    /// The path sent upstream: the matched prefix (or the whole path) replaced by `rewrite`.
    pub fn rewrite_path(&self, path: &str) -> Option<String> {
        let rewrite = self.route.rewrite.as_deref()?;
        let rest = match &self.path {
            PathMatcher::Prefix(prefix) => path.get(prefix.len()..).unwrap_or_default(),
            _ => "",
        };
        Some(join_path(rewrite, rest))
    }

    /// The service for one request: the target, or a weighted draw over the split.
    pub fn pick_service(&self) -> &str {
        match &self.route.target {
            RouteTarget::Service(service) => service,
            RouteTarget::Split(split) => pick_weighted(split, rand::random_range(0..100)),
        }
    }

    pub fn timeout(&self) -> Option<Duration> {
        self.route.timeout
    }

    pub fn retries(&self) -> Option<&RetryPolicy> {
        self.route.retries.as_ref()
    }

    pub fn faults(&self) -> Option<&Faults> {
        self.route.faults.as_ref()
    }

    /// The route's own request body limit, if it sets one.
    pub fn max_request_body(&self) -> Option<u64> {
        self.route.max_request_body
    }

    /// The route's gRPC-Web settings, when it translates gRPC-Web (`grpc_web:`).
    pub fn grpc_web(&self) -> Option<&crate::manifest::GrpcWeb> {
        self.route.grpc_web.as_ref()
    }
}

/// `draw` in 0..100 → the entry whose cumulative weight range holds it.
pub fn pick_weighted(split: &[WeightedService], draw: u32) -> &str {
    let mut total = 0;
    for entry in split {
        total += entry.weight;
        if draw < total {
            return &entry.service;
        }
    }
    split.last().map_or("", |entry| entry.service.as_str())
}

fn join_path(rewrite: &str, rest: &str) -> String {
    match (rewrite.ends_with('/'), rest.starts_with('/')) {
        (true, true) => format!("{rewrite}{}", &rest[1..]),
        (false, false) if !rest.is_empty() => format!("{rewrite}/{rest}"),
        _ => format!("{rewrite}{rest}"),
    }
}

fn query_matches(expected: &BTreeMap<String, String>, query: Option<&str>) -> bool {
    expected.iter().all(|(key, value)| {
        query.unwrap_or_default().split('&').any(|pair| {
            let (name, given) = pair.split_once('=').unwrap_or((pair, ""));
            name == key && given == value
        })
    })
}

/// `host:port` → `host` (and `[::1]:80` → `[::1]`).
pub fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(address, _)| &host[..address.len() + 1]);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

fn describe(path: &PathMatch) -> String {
    match path {
        PathMatch::Prefix(prefix) => format!("prefix:{prefix}"),
        PathMatch::Exact(path) => format!("exact:{path}"),
        PathMatch::Regex(regex) => format!("regex:{regex}"),
    }
}

fn compile_edits(edits: &HeaderEdits) -> (Vec<(HeaderName, HeaderValue)>, Vec<HeaderName>) {
    let add = edits
        .add
        .iter()
        .filter_map(|(name, value)| {
            Some((
                HeaderName::from_bytes(name.as_bytes()).ok()?,
                HeaderValue::from_str(value).ok()?,
            ))
        })
        .collect();
    let remove = edits
        .remove
        .iter()
        .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
        .collect();
    (add, remove)
}

/// The routes used when the manifest has none: `/<service>/…` → `/…` on that service, and
/// `/<service>` → `/`.
pub fn default_routes<'a>(services: impl Iterator<Item = &'a str>) -> Vec<Route> {
    let mut routes = Vec::new();
    for service in services {
        for path in [
            PathMatch::Prefix(format!("/{service}/")),
            PathMatch::Exact(format!("/{service}")),
        ] {
            routes.push(Route {
                matcher: RouteMatch {
                    path,
                    method: None,
                    headers: BTreeMap::new(),
                    query: BTreeMap::new(),
                    host: None,
                },
                target: RouteTarget::Service(service.to_string()),
                rewrite: Some("/".into()),
                request_headers: HeaderEdits::default(),
                response_headers: HeaderEdits::default(),
                timeout: None,
                retries: None,
                faults: None,
                max_request_body: None,
                grpc_web: None,
            });
        }
    }
    routes
}

/// The live table as JSON for `/__sandbox/routes`.
#[derive(Serialize)]
pub struct RouteView<'a> {
    pub name: &'a str,
    #[serde(flatten)]
    pub route: &'a Route,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(path: PathMatch, rewrite: Option<&str>) -> CompiledRoute {
        let mut route = default_routes(["item"].into_iter()).remove(0);
        route.matcher.path = path;
        route.rewrite = rewrite.map(str::to_string);
        CompiledRoute::compile(route).expect("compiles")
    }

    fn view<'a>(path: &'a str, query: Option<&'a str>, headers: &'a HeaderMap) -> RequestView<'a> {
        RequestView {
            method: &Method::GET,
            path,
            query,
            host: Some("shop.local:8080"),
            headers,
        }
    }

    #[test]
    fn prefix_exact_and_regex() {
        let headers = HeaderMap::new();
        let prefix = route(PathMatch::Prefix("/items".into()), None);
        assert!(prefix.matches(&view("/items/1", None, &headers)));
        assert!(!prefix.matches(&view("/users", None, &headers)));
        let exact = route(PathMatch::Exact("/items".into()), None);
        assert!(!exact.matches(&view("/items/1", None, &headers)));
        let regex = route(PathMatch::Regex("/items/[0-9]+".into()), None);
        assert!(regex.matches(&view("/items/12", None, &headers)));
        assert!(!regex.matches(&view("/items/12/x", None, &headers)));
    }

    #[test]
    fn rewrites_replace_the_prefix() {
        let route = route(PathMatch::Prefix("/item/".into()), Some("/"));
        assert_eq!(route.rewrite_path("/item/a/b").as_deref(), Some("/a/b"));
        assert_eq!(route.rewrite_path("/item/").as_deref(), Some("/"));
        let api = super::tests::route(PathMatch::Prefix("/api".into()), Some("/v2"));
        assert_eq!(api.rewrite_path("/api/x").as_deref(), Some("/v2/x"));
    }

    #[test]
    fn query_and_host() {
        let headers = HeaderMap::new();
        let mut compiled = route(PathMatch::Prefix("/".into()), None);
        compiled
            .route
            .matcher
            .query
            .insert("page".into(), "2".into());
        compiled.route.matcher.host = Some("shop.local".into());
        assert!(compiled.matches(&view("/", Some("a=1&page=2"), &headers)));
        assert!(!compiled.matches(&view("/", Some("page=3"), &headers)));
        assert_eq!(strip_port("[::1]:80"), "[::1]");
    }

    #[test]
    fn weighted_picks() {
        let split = vec![
            WeightedService {
                service: "a".into(),
                weight: 90,
            },
            WeightedService {
                service: "b".into(),
                weight: 10,
            },
        ];
        assert_eq!(pick_weighted(&split, 0), "a");
        assert_eq!(pick_weighted(&split, 89), "a");
        assert_eq!(pick_weighted(&split, 90), "b");
        assert_eq!(pick_weighted(&split, 99), "b");
    }
}
