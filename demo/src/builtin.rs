//! The endpoints every instance has, whatever `ROUTES` says: health, admin, echo, status, delay, bytes,
//! stream, ws, exit and the `/` listing. Each returns the route pattern (for span names) and a response.

use std::time::Duration;

use crate::app::App;
use crate::http::request::Request;
use crate::http::response::{Body, Response, Then};
use crate::json::{self, Object};
use crate::websocket;

/// The built-in endpoints as `/` lists them.
pub const LISTING: &[&str] = &[
    "GET /health",
    "POST /admin/health?status=CODE",
    "* /echo",
    "* /status/{code}",
    "* /delay/{ms}",
    "GET /bytes/{n}",
    "GET /stream?chunks=N&interval_ms=M",
    "GET /ws",
    "* /exit/{code}",
    "GET /",
];

/// The pattern and answer of the built-in endpoint matching `request`, if any.
pub fn handle(app: &App, request: &Request) -> Option<(&'static str, Response)> {
    let service = app.service();
    let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
    let get = matches!(request.method.as_str(), "GET" | "HEAD");
    let handled = match (segments.as_slice(), get) {
        (["health"], true) => ("/health", health(app)),
        (["admin", "health"], _) if request.method == "POST" => {
            ("/admin/health", set_health(app, request))
        }
        (["echo", ..], _) => ("/echo", echo(request, service)),
        (["status", code], _) => ("/status/{code}", status(code, service)),
        (["delay", millis], _) => ("/delay/{ms}", delay(millis, service)),
        (["bytes", size], true) => ("/bytes/{n}", bytes(size, service)),
        (["stream"], true) => ("/stream", stream(request, service)),
        (["ws"], _) => ("/ws", websocket::handshake(request, service)),
        (["exit", code], _) => ("/exit/{code}", exit(code, service)),
        ([""], true) => ("/", listing(app)),
        _ => return None,
    };
    Some(handled)
}

fn number<T: std::str::FromStr + PartialOrd>(
    text: &str,
    range: std::ops::RangeInclusive<T>,
) -> Option<T> {
    text.parse().ok().filter(|value| range.contains(value))
}

fn bad(what: &str, service: &str) -> Response {
    Response::error(400, what, service)
}

fn health(app: &App) -> Response {
    let status = app.health();
    let state = if status < 400 { "UP" } else { "DOWN" };
    Response::json(
        status,
        Object::new()
            .string("status", state)
            .string("service", app.service())
            .finish(),
    )
}

fn set_health(app: &App, request: &Request) -> Response {
    let status = match request.query_param("status") {
        None | Some("") => None,
        Some(text) => match number(text, 200..=599) {
            Some(status) => Some(status),
            None => return bad("`status` must be a code within 200..=599", app.service()),
        },
    };
    let status = app.set_health(status);
    Response::json(
        200,
        Object::new()
            .string("service", app.service())
            .number("health_status", status)
            .finish(),
    )
}

fn echo(request: &Request, service: &str) -> Response {
    let mut headers: Vec<(String, String)> = Vec::new();
    for (name, value) in &request.headers.0 {
        let name = name.to_ascii_lowercase();
        match headers.iter_mut().find(|(key, _)| *key == name) {
            Some((_, existing)) => *existing = format!("{existing}, {value}"),
            None => headers.push((name, value.clone())),
        }
    }
    let headers = headers
        .iter()
        .fold(Object::new(), |object, (k, v)| object.string(k, v))
        .finish();
    let body = Object::new()
        .string("service", service)
        .string("method", &request.method)
        .string("path", &request.path)
        .string("query", &request.query)
        .raw("headers", &headers)
        .string("body", &String::from_utf8_lossy(&request.body))
        .finish();
    Response::json(200, body)
}

fn status(code: &str, service: &str) -> Response {
    match number(code, 200..=599) {
        Some(code) => Response::json(
            code,
            Object::new()
                .string("service", service)
                .number("status", code)
                .finish(),
        ),
        None => bad("the status code must be within 200..=599", service),
    }
}

fn delay(millis: &str, service: &str) -> Response {
    let Some(millis) = number(millis, 0..=600_000u64) else {
        return bad("the delay must be 0..=600000 ms", service);
    };
    std::thread::sleep(Duration::from_millis(millis));
    Response::json(
        200,
        Object::new()
            .string("service", service)
            .number("delayed_ms", millis)
            .finish(),
    )
}

fn bytes(size: &str, service: &str) -> Response {
    match number(size, 0..=100 * 1024 * 1024u64) {
        Some(size) => Response {
            body: Body::Pattern(size),
            ..Response::new(200, "application/octet-stream", "")
        },
        None => bad("the size must be 0..=104857600 bytes", service),
    }
}

fn stream(request: &Request, service: &str) -> Response {
    let chunks = request
        .query_param("chunks")
        .map_or(Some(5), |text| number(text, 0..=10_000u32));
    let interval = request
        .query_param("interval_ms")
        .map_or(Some(100), |text| number(text, 0..=60_000u64));
    let (Some(chunks), Some(interval)) = (chunks, interval) else {
        return bad(
            "`chunks` must be 0..=10000 and `interval_ms` 0..=60000",
            service,
        );
    };
    let lines = (1..=chunks)
        .map(|index| {
            let line = Object::new()
                .string("service", service)
                .number("chunk", index)
                .number("of", chunks);
            format!("{}\n", line.finish())
        })
        .collect();
    Response {
        body: Body::Chunks {
            lines,
            interval: Duration::from_millis(interval),
        },
        ..Response::new(200, "application/x-ndjson", "")
    }
}

fn exit(code: &str, service: &str) -> Response {
    match number(code, 0..=255i32) {
        Some(code) => Response::json(
            200,
            Object::new()
                .string("service", service)
                .number("exiting", code)
                .finish(),
        )
        .then(Then::Exit(code)),
        None => bad("the exit code must be 0..=255", service),
    }
}

fn listing(app: &App) -> Response {
    let routes = json::array(
        app.config
            .routes
            .iter()
            .map(|route| json::string(&route.describe())),
    );
    let builtin = json::array(LISTING.iter().map(|entry| json::string(entry)));
    Response::json(
        200,
        Object::new()
            .string("service", app.service())
            .raw("routes", &routes)
            .raw("builtin", &builtin)
            .finish(),
    )
}
