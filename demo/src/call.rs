//! Runs a `call` route: one downstream GET per call, in order, with a child trace context each, and a JSON
//! answer that embeds every downstream body. A downstream status outside 2xx is passed on (the first one
//! wins); a downstream that cannot be reached or answers garbage makes the answer 502.

use crate::app::App;
use crate::http::client::{self, Url};
use crate::http::response::Response;
use crate::http::Headers;
use crate::json::{self, Object};
use crate::routes::{percent_decode, Call, Params};
use crate::trace::span::Start;
use crate::trace::{Context, Kind, Span};

/// The answer to a `call` route.
pub fn respond(app: &App, calls: &[Call], params: &Params, context: Option<&Context>) -> Response {
    let mut body = Object::new().string("service", app.service());
    for (name, value) in params {
        body = body.string(name, &percent_decode(value));
    }
    let mut status = 200;
    for call in calls {
        let url_text = call.url.render(params, str::to_string);
        match call_one(app, call, &url_text, context) {
            Ok((downstream_status, embedded)) => {
                if !(200..300).contains(&downstream_status) && status == 200 {
                    status = downstream_status;
                }
                body = body.raw(&call.name, &embedded);
            }
            Err(detail) => {
                let failure = Object::new()
                    .string("service", app.service())
                    .string("error", &format!("call `{}` failed", call.name))
                    .string("url", &url_text)
                    .string("detail", &detail)
                    .finish();
                return Response::json(502, failure);
            }
        }
    }
    Response::json(status, body.finish())
}

/// `(status, body as JSON)` of one downstream call; the body is embedded as a string when it is not JSON.
fn call_one(
    app: &App,
    call: &Call,
    url_text: &str,
    context: Option<&Context>,
) -> Result<(u16, String), String> {
    let url = Url::parse(url_text)?;
    let child = context.map(Context::child);
    let mut headers = Headers::default();
    if let Some(child) = &child {
        child.inject(&mut headers);
    }
    let start = Start::now();
    let result = client::get(&url, &headers, app.config.call_timeout);
    if let Some(child) = child {
        app.report(client_span(app, call, &url, child, start, &result));
    }
    let response = result?;
    let text = String::from_utf8_lossy(&response.body);
    let embedded = if json::is_valid(&text) {
        text.trim().to_string()
    } else {
        json::string(&text)
    };
    Ok((response.status, embedded))
}

fn client_span(
    app: &App,
    call: &Call,
    url: &Url,
    context: Context,
    start: Start,
    result: &Result<client::ClientResponse, String>,
) -> Span {
    let (timestamp, duration) = start.finish();
    let template_path = Url::parse(call.url.text())
        .map(|u| u.path().to_string())
        .unwrap_or_default();
    let mut tags = vec![
        ("http.method".to_string(), "GET".to_string()),
        ("http.path".to_string(), url.path().to_string()),
    ];
    match result {
        Ok(response) => {
            tags.push(("http.status_code".to_string(), response.status.to_string()));
            if response.status >= 500 {
                tags.push(("error".to_string(), response.status.to_string()));
            }
        }
        Err(error) => tags.push(("error".to_string(), error.clone())),
    }
    Span {
        context,
        kind: Kind::Client,
        name: format!("get {}", template_path.to_lowercase()),
        timestamp,
        duration,
        local_service: app.service().to_string(),
        // `item.sandbox` (the sandbox mesh) and `item` (Docker DNS) are both service `item`.
        remote_service: Some(url.host.split('.').next().unwrap_or(&url.host).to_string()),
        tags,
    }
}
