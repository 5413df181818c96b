//! `gateway:`: the front door's address, whether it serves HTTPS (`tls`), and its routes. Route targets are checked against the
//! services of the manifest here (with a did-you-mean), regexes are compiled once to report errors.

use std::collections::BTreeMap;

use super::super::model::{
    Gateway, GrpcWeb, HeaderEdits, HeaderMatch, PathMatch, Route, RouteMatch, RouteTarget,
    WeightedService,
};
use super::super::node::{Node, Value};
use super::super::suggest;
use super::check::{describe, join, Checker};
use super::{environment, traffic, volumes};

const KEYS: &[&str] = &[
    "host",
    "port",
    "routes",
    "allow_fault_headers",
    "max_request_body",
    "tls",
    "workers",
];
const ROUTE_KEYS: &[&str] = &[
    "match",
    "service",
    "split",
    "rewrite",
    "request_headers",
    "response_headers",
    "timeout",
    "retries",
    "faults",
    "max_request_body",
    "grpc_web",
];
const GRPC_WEB_KEYS: &[&str] = &["allow_origins"];
const MATCH_KEYS: &[&str] = &[
    "prefix", "exact", "regex", "method", "headers", "query", "host",
];
/// More data-plane workers than this is a typo (one per core is the most that helps).
const MAX_WORKERS: u16 = 1024;
const HEADER_MATCH_KEYS: &[&str] = &["exact", "regex", "present", "absent"];
const EDIT_KEYS: &[&str] = &["add", "remove"];
const SPLIT_KEYS: &[&str] = &["service", "weight"];

/// Reads `gateway:`; `services` are the names routes may target.
pub fn read(checker: &mut Checker<'_>, node: &Node, services: &[&str]) -> Gateway {
    let mut gateway = Gateway::default();
    let Some(fields) = checker.fields(node, "gateway", "`gateway`", KEYS) else {
        return gateway;
    };
    if let Some(node) = fields.get("host") {
        if let Some(host) = checker.string(node, "gateway.host") {
            if host.parse::<std::net::IpAddr>().is_ok() {
                gateway.host = host;
            } else {
                checker.error_with_hint(
                    node,
                    "gateway.host",
                    format!("`{host}` is not an IP address"),
                    "use `127.0.0.1` (this machine only) or `0.0.0.0` (every interface)",
                );
            }
        }
    }
    if let Some(node) = fields.get("port") {
        gateway.port = checker
            .integer_in(node, "gateway.port", 0..=65535)
            .map_or(gateway.port, |port| port as u16);
    }
    if let Some(node) = fields.get("allow_fault_headers") {
        gateway.allow_fault_headers = checker
            .boolean(node, "gateway.allow_fault_headers")
            .unwrap_or(true);
    }
    if let Some(node) = fields.get("max_request_body") {
        gateway.max_request_body = read_body_limit(checker, node, "gateway.max_request_body")
            .unwrap_or(gateway.max_request_body);
    }
    if let Some(node) = fields.get("tls") {
        gateway.tls = checker.boolean(node, "gateway.tls").unwrap_or(false);
    }
    if let Some(node) = fields.get("workers") {
        if let Some(workers) = checker.integer(node, "gateway.workers") {
            match u16::try_from(workers) {
                Ok(workers) if workers <= MAX_WORKERS => gateway.workers = workers,
                _ => checker.error_with_hint(
                    node,
                    "gateway.workers",
                    format!("{workers} is out of range: expected 0 to {MAX_WORKERS}"),
                    "leave it out or write 0 for one worker per core available",
                ),
            }
        }
    }
    if let Some(node) = fields.get("routes") {
        let Value::Sequence(items) = &node.value else {
            let found = describe(node);
            checker.error(
                node,
                "gateway.routes",
                format!("expected a list of routes, found {found}"),
            );
            return gateway;
        };
        for (index, item) in items.iter().enumerate() {
            let field = format!("gateway.routes[{index}]");
            if let Some(route) = read_route(checker, item, &field, services) {
                gateway.routes.push(route);
            }
        }
    }
    gateway
}

fn read_route(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
    services: &[&str],
) -> Option<Route> {
    let fields = checker.fields(node, field, "a route", ROUTE_KEYS)?;
    let key = |key: &str| join(field, key);
    let matcher = match fields.get("match") {
        Some(node) => read_match(checker, node, &key("match"))?,
        None => RouteMatch {
            path: PathMatch::Prefix("/".into()),
            method: None,
            headers: BTreeMap::new(),
            query: BTreeMap::new(),
            host: None,
        },
    };
    let target = match (fields.get("service"), fields.get("split")) {
        (Some(service), None) => {
            let name = checker.string(service, &key("service"))?;
            check_service(checker, service, &key("service"), &name, services);
            RouteTarget::Service(name)
        }
        (None, Some(split)) => {
            RouteTarget::Split(read_split(checker, split, &key("split"), services)?)
        }
        (Some(_), Some(_)) => {
            checker.error_with_hint(
                node,
                field,
                "a route has both `service` and `split`",
                "keep `service: NAME`, or `split: [{service: a, weight: 90}, {service: b, weight: 10}]`",
            );
            return None;
        }
        (None, None) => {
            checker.error_with_hint(
                node,
                field,
                "a route needs `service` or `split`",
                "add `service: NAME` to send matching requests to a service",
            );
            return None;
        }
    };
    let rewrite = fields.get("rewrite").and_then(|node| {
        let rewrite = checker.string(node, &key("rewrite"))?;
        if !rewrite.starts_with('/') {
            checker.error(
                node,
                &key("rewrite"),
                format!("`rewrite` must start with `/`, found `{rewrite}`"),
            );
            return None;
        }
        Some(rewrite)
    });
    Some(Route {
        matcher,
        target,
        rewrite,
        request_headers: fields
            .get("request_headers")
            .map(|node| read_edits(checker, node, &key("request_headers")))
            .unwrap_or_default(),
        response_headers: fields
            .get("response_headers")
            .map(|node| read_edits(checker, node, &key("response_headers")))
            .unwrap_or_default(),
        timeout: fields
            .get("timeout")
            .and_then(|node| traffic::read_duration(checker, node, &key("timeout"))),
        retries: fields
            .get("retries")
            .and_then(|node| traffic::read_retries(checker, node, &key("retries"))),
        faults: fields
            .get("faults")
            .and_then(|node| traffic::read_faults(checker, node, &key("faults"))),
        max_request_body: fields
            .get("max_request_body")
            .and_then(|node| read_body_limit(checker, node, &key("max_request_body"))),
        grpc_web: fields
            .get("grpc_web")
            .and_then(|node| read_grpc_web(checker, node, &key("grpc_web"))),
    })
}

/// `grpc_web: true` (pages from this machine may call), or `grpc_web: {allow_origins: [...]}`.
fn read_grpc_web(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<GrpcWeb> {
    if !matches!(node.value, Value::Mapping(_)) {
        return checker.boolean(node, field)?.then(GrpcWeb::default);
    }
    let fields = checker.fields(node, field, "`grpc_web`", GRPC_WEB_KEYS)?;
    let mut web = GrpcWeb::default();
    if let Some(node) = fields.get("allow_origins") {
        let origins_field = join(field, "allow_origins");
        let origins = checker
            .strings(node, &origins_field, true)
            .unwrap_or_default();
        for origin in origins {
            if origin == "*" || origin.contains("://") {
                web.allow_origins.push(origin);
            } else {
                checker.error_with_hint(
                    node,
                    &origins_field,
                    format!("`{origin}` is not an origin"),
                    "write an origin as a browser sends it, like `http://localhost:3000`, or `*` for any",
                );
            }
        }
    }
    Some(web)
}

/// A request body limit: a size (`10m`, `1g`, bytes) of at least one byte.
fn read_body_limit(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<u64> {
    let limit = volumes::read_size(checker, node, field)?;
    if limit == 0 {
        checker.error_with_hint(
            node,
            field,
            "a request body limit of 0 bytes refuses every body",
            "write a size like `10m` or `1g`",
        );
        return None;
    }
    Some(limit)
}

fn read_match(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<RouteMatch> {
    let fields = checker.fields(node, field, "a route match", MATCH_KEYS)?;
    let key = |key: &str| join(field, key);
    let mut paths = Vec::new();
    for kind in ["prefix", "exact", "regex"] {
        if let Some(node) = fields.get(kind) {
            paths.push((kind, node));
        }
    }
    let path = match paths.as_slice() {
        [] => PathMatch::Prefix("/".into()),
        [(kind, node)] => {
            let text = checker.string(node, &key(kind))?;
            match *kind {
                "prefix" | "exact" if !text.starts_with('/') => {
                    let message = format!("the path `{text}` must start with `/`");
                    checker.error(node, &key(kind), message);
                    return None;
                }
                "prefix" => PathMatch::Prefix(text),
                "exact" => PathMatch::Exact(text),
                _ => {
                    check_regex(checker, node, &key(kind), &text)?;
                    PathMatch::Regex(text)
                }
            }
        }
        [_, (kind, node), ..] => {
            checker.error_with_hint(
                node,
                &key(kind),
                "a route match has more than one of `prefix`, `exact` and `regex`",
                "keep one",
            );
            return None;
        }
    };
    let method = fields
        .get("method")
        .and_then(|node| checker.string(node, &key("method")))
        .map(|method| method.to_ascii_uppercase());
    let mut headers = BTreeMap::new();
    if let Some(node) = fields.get("headers") {
        let field = key("headers");
        for entry in checker
            .entries(node, &field, "a map of header names")
            .unwrap_or_default()
        {
            let header_field = join(&field, entry.key);
            if let Some(condition) = read_header_match(checker, entry.value, &header_field) {
                headers.insert(entry.key.to_ascii_lowercase(), condition);
            }
        }
    }
    let query = fields
        .get("query")
        .map(|node| environment::read_pairs(checker, node, &key("query"), environment::Bare::Empty))
        .unwrap_or_default();
    let host = fields
        .get("host")
        .and_then(|node| checker.string(node, &key("host")))
        .map(|host| host.to_ascii_lowercase());
    Some(RouteMatch {
        path,
        method,
        headers,
        query,
        host,
    })
}

fn read_header_match(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<HeaderMatch> {
    let fields = checker.fields(node, field, "a header match", HEADER_MATCH_KEYS)?;
    let given: Vec<&str> = HEADER_MATCH_KEYS
        .iter()
        .copied()
        .filter(|key| fields.get(key).is_some())
        .collect();
    let [kind] = given.as_slice() else {
        checker.error_with_hint(
            node,
            field,
            "a header match needs exactly one of `exact`, `regex`, `present` and `absent`",
            "write `{exact: value}`, `{regex: \"v[0-9]+\"}`, `{present: true}` or `{absent: true}`",
        );
        return None;
    };
    let value_node = fields.get(kind)?;
    let value_field = join(field, kind);
    match *kind {
        "exact" => checker
            .string(value_node, &value_field)
            .map(HeaderMatch::Exact),
        "regex" => {
            let text = checker.string(value_node, &value_field)?;
            check_regex(checker, value_node, &value_field, &text)?;
            Some(HeaderMatch::Regex(text))
        }
        "present" => match checker.boolean(value_node, &value_field)? {
            true => Some(HeaderMatch::Present),
            false => Some(HeaderMatch::Absent),
        },
        _ => match checker.boolean(value_node, &value_field)? {
            true => Some(HeaderMatch::Absent),
            false => Some(HeaderMatch::Present),
        },
    }
}

fn check_regex(checker: &mut Checker<'_>, node: &Node, field: &str, text: &str) -> Option<()> {
    match regex::Regex::new(text) {
        Ok(_) => Some(()),
        Err(error) => {
            let detail = error.to_string();
            let last = detail.lines().last().unwrap_or_default().trim().to_string();
            checker.error_with_hint(
                node,
                field,
                format!("invalid regex `{text}`: {last}"),
                "regexes use Rust `regex` syntax and match the whole value",
            );
            None
        }
    }
}

fn read_split(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
    services: &[&str],
) -> Option<Vec<WeightedService>> {
    let Value::Sequence(items) = &node.value else {
        let found = describe(node);
        checker.error(
            node,
            field,
            format!("expected a list of `{{service, weight}}`, found {found}"),
        );
        return None;
    };
    let mut split = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let item_field = format!("{field}[{index}]");
        let Some(fields) = checker.fields(item, &item_field, "a split entry", SPLIT_KEYS) else {
            continue;
        };
        let (Some(service_node), Some(weight_node)) = (fields.get("service"), fields.get("weight"))
        else {
            checker.error(
                item,
                &item_field,
                "a split entry needs `service` and `weight`",
            );
            continue;
        };
        let service_field = join(&item_field, "service");
        let service = checker.string(service_node, &service_field);
        let weight = checker.integer_in(weight_node, &join(&item_field, "weight"), 0..=100);
        if let (Some(service), Some(weight)) = (service, weight) {
            check_service(checker, service_node, &service_field, &service, services);
            split.push(WeightedService {
                service,
                weight: weight as u32,
            });
        }
    }
    let total: u32 = split.iter().map(|entry| entry.weight).sum();
    if split.len() == items.len() && total != 100 {
        checker.error_with_hint(
            node,
            field,
            format!("split weights add up to {total}, not 100"),
            "weights are percentages of the route's requests",
        );
        return None;
    }
    Some(split)
}

fn check_service(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
    name: &str,
    services: &[&str],
) {
    if services.contains(&name) {
        return;
    }
    let hint = match suggest::did_you_mean(name, services.iter().copied()) {
        Some(suggestion) => format!("did you mean `{suggestion}`?"),
        None => format!("services in this manifest: {}", suggest::list(services)),
    };
    checker.error_with_hint(
        node,
        field,
        format!("route to `{name}`, which is not a service"),
        hint,
    );
}

fn read_edits(checker: &mut Checker<'_>, node: &Node, field: &str) -> HeaderEdits {
    let mut edits = HeaderEdits::default();
    let Some(fields) = checker.fields(node, field, "header edits", EDIT_KEYS) else {
        return edits;
    };
    if let Some(node) = fields.get("add") {
        let field = join(field, "add");
        for (name, value) in
            environment::read_pairs(checker, node, &field, environment::Bare::Empty)
        {
            if http_header_name(&name) {
                edits.add.insert(name.to_ascii_lowercase(), value);
            } else {
                checker.error(node, &field, format!("`{name}` is not a valid header name"));
            }
        }
    }
    if let Some(node) = fields.get("remove") {
        let names = checker
            .strings(node, &join(field, "remove"), true)
            .unwrap_or_default();
        edits.remove = names.iter().map(|name| name.to_ascii_lowercase()).collect();
    }
    edits
}

fn http_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}
