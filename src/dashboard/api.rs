//! Routing for the dashboard's paths: the page and its assets, the JSON API, the event stream
//! and the actions (behind [`auth::authorize`]). Every response forbids framing and sniffing;
//! none carries CORS headers, so other origins can neither read the API nor preflight an action.

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Body;

use super::events::{self, EventBody};
use super::graph;
use super::model::{Action, FaultView};
use super::{auth, ActionError, Dashboard};
use crate::trace::logs::LogQuery;
use crate::trace::query::Params;
use crate::trace::Store;

const INDEX_HTML: &str = include_str!("assets/index.html");
/// The page's scripts and style by path (the page loads the scripts in this order).
const ASSETS: [(&str, &str, &str); 7] = [
    ("/dashboard/common.js", JS, include_str!("assets/common.js")),
    (
        "/dashboard/resources.js",
        JS,
        include_str!("assets/resources.js"),
    ),
    ("/dashboard/logs.js", JS, include_str!("assets/logs.js")),
    ("/dashboard/traces.js", JS, include_str!("assets/traces.js")),
    ("/dashboard/graph.js", JS, include_str!("assets/graph.js")),
    ("/dashboard/app.js", JS, include_str!("assets/app.js")),
    (
        "/dashboard/app.css",
        "text/css; charset=utf-8",
        include_str!("assets/app.css"),
    ),
];
const JS: &str = "text/javascript; charset=utf-8";
const JSON: &str = "application/json; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";
/// The largest action body read (a fault is a few dozen bytes).
const MAX_ACTION_BODY: usize = 4096;
/// Where the page may load from and connect to: itself only.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// A dashboard response: a whole body, or an event stream.
pub type DashboardBody = Either<Full<Bytes>, EventBody>;

/// Whether `path` is the dashboard's (the rest of the port is the trace server's).
pub fn owns(path: &str) -> bool {
    path == "/" || path == "/index.html" || path.starts_with("/dashboard/")
}

fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<DashboardBody> {
    let mut response = Response::new(Either::Left(Full::new(body.into())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn text(status: StatusCode, message: impl std::fmt::Display) -> Response<DashboardBody> {
    reply(status, TEXT, format!("{message}\n"))
}

/// 503 for an event stream past [`events::MAX_STREAMS`]: the server's fault, for a while.
fn too_many_streams() -> Response<DashboardBody> {
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "{} dashboard event streams are open, the most allowed: close a dashboard tab (or another stream) and reload",
            events::MAX_STREAMS
        ),
    )
}

fn json(value: &impl serde::Serialize) -> Response<DashboardBody> {
    match serde_json::to_vec(value) {
        Ok(body) => reply(StatusCode::OK, JSON, body),
        Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, error),
    }
}

/// Answers a request for one of the dashboard's paths ([`owns`]) over the trace server's `store`;
/// never fails.
pub async fn handle<B>(
    request: Request<B>,
    dashboard: &Dashboard,
    store: &Store,
) -> Response<DashboardBody>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let path = request.uri().path().to_owned();
    if let (&Method::GET | &Method::HEAD, Some((_, content_type, body))) =
        (request.method(), asset_of(&path))
    {
        return reply(StatusCode::OK, content_type, body);
    }
    match (request.method().clone(), path.as_str()) {
        (Method::GET | Method::HEAD, "/" | "/index.html") => index(&request, dashboard),
        (Method::GET | Method::HEAD, "/dashboard/api/resources") => {
            let snapshot = dashboard.resources().borrow().clone();
            json(&*snapshot)
        }
        (Method::GET | Method::HEAD, "/dashboard/api/session") => {
            let can_act = auth::token_of(request.headers())
                .is_some_and(|token| dashboard.token_matches(token))
                && dashboard.system.is_some();
            json(&serde_json::json!({ "can_act": can_act }))
        }
        (Method::GET | Method::HEAD, "/dashboard/api/graph") => {
            let params = Params::parse(request.uri().query());
            let name = params.get("window").unwrap_or_default();
            match graph::window(name) {
                Some(lookback) => json(&graph::of_store(store, lookback)),
                None => text(
                    StatusCode::BAD_REQUEST,
                    format!("no window `{name}`: the windows are 5m, 15m, 1h and all"),
                ),
            }
        }
        (Method::GET, "/dashboard/api/logs/events") => {
            match LogQuery::from_params(&Params::parse(request.uri().query())) {
                Ok(query) => match dashboard.stream_place() {
                    Some(place) => {
                        let mut response = reply(StatusCode::OK, "text/event-stream", Bytes::new());
                        *response.body_mut() =
                            Either::Right(events::logs(store.logs().clone(), query, place));
                        response
                    }
                    None => too_many_streams(),
                },
                Err(error) => text(StatusCode::BAD_REQUEST, error),
            }
        }
        (Method::GET, "/dashboard/api/events") => match dashboard.stream_place() {
            Some(place) => {
                let mut response = reply(StatusCode::OK, "text/event-stream", Bytes::new());
                *response.body_mut() =
                    Either::Right(events::resources(dashboard.resources(), place));
                response
            }
            None => too_many_streams(),
        },
        (Method::POST, _) if path.starts_with("/dashboard/api/services/") => {
            if let Err(refusal) =
                auth::authorize(request.headers(), |token| dashboard.token_matches(token))
            {
                return text(StatusCode::FORBIDDEN, refusal);
            }
            action(request, dashboard).await
        }
        (Method::OPTIONS, _) => text(StatusCode::FORBIDDEN, auth::Refusal::CrossOrigin),
        (method, _) => text(
            StatusCode::NOT_FOUND,
            format!("no route for {method} {path}"),
        ),
    }
}

fn asset_of(path: &str) -> Option<(&'static str, &'static str, &'static str)> {
    ASSETS.iter().copied().find(|(name, _, _)| *name == path)
}

/// The page. `?token=…` with the right token sets the cookie and sends the browser to `/`, so the
/// token leaves the address bar and the history.
fn index<B>(request: &Request<B>, dashboard: &Dashboard) -> Response<DashboardBody> {
    let given = request
        .uri()
        .query()
        .into_iter()
        .flat_map(|query| query.split('&'))
        .find_map(|pair| pair.strip_prefix("token="));
    match given {
        Some(token) if dashboard.token_matches(token) => {
            let mut response = reply(StatusCode::SEE_OTHER, TEXT, Bytes::new());
            let headers = response.headers_mut();
            headers.insert(header::LOCATION, HeaderValue::from_static("/"));
            if let Ok(cookie) = HeaderValue::from_str(&auth::set_cookie(token)) {
                headers.insert(header::SET_COOKIE, cookie);
            }
            response
        }
        _ => reply(StatusCode::OK, "text/html; charset=utf-8", INDEX_HTML),
    }
}

/// `POST /dashboard/api/services/{name}/{restart|stop|start|fault}`.
async fn action<B>(request: Request<B>, dashboard: &Dashboard) -> Response<DashboardBody>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let path = request.uri().path().to_owned();
    let parsed = path
        .strip_prefix("/dashboard/api/services/")
        .and_then(|rest| rest.split_once('/'));
    let Some((service, verb)) = parsed else {
        return text(StatusCode::NOT_FOUND, format!("no route for POST {path}"));
    };
    let service = service.to_string();
    let action = match verb {
        "restart" => Action::Restart(service),
        "stop" => Action::Stop(service),
        "start" => Action::Start(service),
        "fault" => match read_fault(request).await {
            Ok(fault) => Action::Fault(service, fault),
            Err(message) => return text(StatusCode::BAD_REQUEST, message),
        },
        _ => {
            return text(
                StatusCode::NOT_FOUND,
                format!("no action `{verb}`: the actions are restart, stop, start and fault"),
            )
        }
    };
    match dashboard.act(action).await {
        Ok(done) => json(&serde_json::json!({ "done": done })),
        Err(error @ ActionError::UnknownService(_)) => text(StatusCode::NOT_FOUND, error),
        Err(error @ ActionError::BadRequest(_)) => text(StatusCode::BAD_REQUEST, error),
        Err(error @ ActionError::NoSystem) => text(StatusCode::CONFLICT, error),
        Err(error @ ActionError::Engine(_)) => text(StatusCode::BAD_GATEWAY, error),
    }
}

async fn read_fault<B>(request: Request<B>) -> Result<FaultView, String>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let body = Limited::new(request.into_body(), MAX_ACTION_BODY)
        .collect()
        .await
        .map_err(|error| format!("cannot read the fault: {error}"))?
        .to_bytes();
    if body.is_empty() {
        return Ok(FaultView::default());
    }
    let fault: FaultView = serde_json::from_slice(&body).map_err(|error| {
        format!("a fault is {{\"delay_ms\": N, \"abort\": STATUS}} (both optional): {error}")
    })?;
    if let Some(status) = fault.abort {
        if !(200..=599).contains(&status) {
            return Err(format!(
                "`abort` must be an HTTP status (200–599), not {status}"
            ));
        }
    }
    if fault.delay_ms.is_some_and(|delay| delay > 600_000) {
        return Err("`delay_ms` must be at most 600000 (10 minutes)".into());
    }
    Ok(fault)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    use futures_util::future::BoxFuture;
    use tokio::sync::watch;

    use crate::dashboard::{Resources, System};

    /// A system that records the actions it is asked for.
    struct Recording {
        resources: watch::Sender<Arc<Resources>>,
        actions: Mutex<Vec<Action>>,
    }

    impl System for Recording {
        fn resources(&self) -> watch::Receiver<Arc<Resources>> {
            self.resources.subscribe()
        }
        fn act(&self, action: Action) -> BoxFuture<'_, Result<String, ActionError>> {
            self.actions.lock().expect("lock").push(action);
            Box::pin(async { Ok("done".to_string()) })
        }
    }

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    fn dashboard() -> (Arc<Dashboard>, Arc<Recording>) {
        let system = Arc::new(Recording {
            resources: watch::channel(Arc::new(Resources {
                project: "shop".into(),
                services: Vec::new(),
            }))
            .0,
            actions: Mutex::new(Vec::new()),
        });
        (Dashboard::new(system.clone(), TOKEN.into()), system)
    }

    fn request(
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Request<Full<Bytes>> {
        let mut builder = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("request")
    }

    async fn body_text(response: Response<DashboardBody>) -> String {
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    #[tokio::test]
    async fn every_asset_the_page_names_is_served() {
        let (dashboard, _) = dashboard();
        let named: Vec<&str> = INDEX_HTML
            .split(['"', '\''])
            .filter(|part| part.starts_with("/dashboard/"))
            .collect();
        assert_eq!(named.len(), ASSETS.len(), "{named:?}");
        for path in named {
            let response = handle(
                request(Method::GET, path, &[], ""),
                &dashboard,
                &Store::new(100),
            )
            .await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert!(!body_text(response).await.is_empty(), "{path}");
        }
    }

    #[tokio::test]
    async fn event_streams_past_the_limit_are_refused_until_one_closes() {
        let (dashboard, _) = dashboard();
        let store = Store::new(100);
        let open =
            |path: &'static str| handle(request(Method::GET, path, &[], ""), &dashboard, &store);
        let mut streams = Vec::new();
        for index in 0..events::MAX_STREAMS {
            let path = if index % 2 == 0 {
                "/dashboard/api/events"
            } else {
                "/dashboard/api/logs/events"
            };
            let response = open(path).await;
            assert_eq!(response.status(), StatusCode::OK, "stream {index}");
            streams.push(response);
        }
        for path in ["/dashboard/api/events", "/dashboard/api/logs/events"] {
            let refused = open(path).await;
            assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert!(body_text(refused).await.contains("close a dashboard tab"));
        }
        // A client going away ends its stream's task, which gives its place back: a resources
        // stream's (index 0) and a log stream's (the last) both come back.
        drop(streams.remove(0));
        drop(streams.pop());
        let mut reopened = Vec::new();
        for _ in 0..200 {
            let response = open("/dashboard/api/events").await;
            if response.status() == StatusCode::OK {
                reopened.push(response);
                if reopened.len() == 2 {
                    break;
                }
            } else {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
        assert_eq!(reopened.len(), 2, "both places came back");
        assert_eq!(
            open("/dashboard/api/events").await.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn the_dashboard_takes_the_root_and_its_own_folder_only() {
        assert!(owns("/"));
        assert!(owns("/dashboard/api/resources"));
        assert!(!owns("/zipkin/"));
        assert!(!owns("/api/v2/traces"));
    }

    #[tokio::test]
    async fn the_token_in_the_url_becomes_a_cookie() {
        let (dashboard, _) = dashboard();
        let response = handle(
            request(Method::GET, &format!("/?token={TOKEN}"), &[], ""),
            &dashboard,
            &Store::new(100),
        )
        .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let cookie = response.headers()[header::SET_COOKIE]
            .to_str()
            .expect("text");
        assert!(
            cookie.contains(TOKEN)
                && cookie.contains("HttpOnly")
                && cookie.contains("SameSite=Strict")
        );
        let wrong = handle(
            request(Method::GET, "/?token=nope", &[], ""),
            &dashboard,
            &Store::new(100),
        )
        .await;
        assert_eq!(wrong.status(), StatusCode::OK);
        assert!(wrong.headers().get(header::SET_COOKIE).is_none());
    }

    #[tokio::test]
    async fn resources_are_served_as_json_without_cors() {
        let (dashboard, _) = dashboard();
        let response = handle(
            request(Method::GET, "/dashboard/api/resources", &[], ""),
            &dashboard,
            &Store::new(100),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none());
        let value: serde_json::Value =
            serde_json::from_str(&body_text(response).await).expect("json");
        assert_eq!(
            value,
            serde_json::json!({"project": "shop", "services": []})
        );
    }

    #[tokio::test]
    async fn an_action_needs_the_token_and_the_same_origin() {
        let (dashboard, system) = dashboard();
        let cookie = format!("sandbox_token={TOKEN}");
        let cross = request(
            Method::POST,
            "/dashboard/api/services/item/restart",
            &[
                ("host", "127.0.0.1:9411"),
                ("origin", "http://evil.example"),
                ("cookie", &cookie),
            ],
            "",
        );
        assert_eq!(
            handle(cross, &dashboard, &Store::new(100)).await.status(),
            StatusCode::FORBIDDEN
        );
        let anonymous = request(
            Method::POST,
            "/dashboard/api/services/item/restart",
            &[
                ("host", "127.0.0.1:9411"),
                ("origin", "http://127.0.0.1:9411"),
            ],
            "",
        );
        assert_eq!(
            handle(anonymous, &dashboard, &Store::new(100))
                .await
                .status(),
            StatusCode::FORBIDDEN
        );
        assert!(system.actions.lock().expect("lock").is_empty());
        let allowed = request(
            Method::POST,
            "/dashboard/api/services/item/fault",
            &[
                ("host", "127.0.0.1:9411"),
                ("origin", "http://127.0.0.1:9411"),
                ("cookie", &cookie),
            ],
            r#"{"abort": 503}"#,
        );
        let response = handle(allowed, &dashboard, &Store::new(100)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            *system.actions.lock().expect("lock"),
            vec![Action::Fault(
                "item".into(),
                FaultView {
                    delay_ms: None,
                    abort: Some(503)
                }
            )]
        );
    }

    #[tokio::test]
    async fn a_bad_fault_names_the_field() {
        let (dashboard, _) = dashboard();
        let bad = request(
            Method::POST,
            "/dashboard/api/services/item/fault",
            &[("x-sandbox-token", TOKEN)],
            r#"{"abort": 42}"#,
        );
        let response = handle(bad, &dashboard, &Store::new(100)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(body_text(response).await.contains("`abort`"));
    }

    #[tokio::test]
    async fn a_standalone_dashboard_cannot_act() {
        let dashboard = Dashboard::standalone();
        let response = handle(
            request(Method::GET, "/dashboard/api/session", &[], ""),
            &dashboard,
            &Store::new(100),
        )
        .await;
        assert_eq!(body_text(response).await, r#"{"can_act":false}"#);
    }

    #[tokio::test]
    async fn the_graph_takes_a_named_window() {
        let (dashboard, _) = dashboard();
        let store = Store::new(100);
        let ok = handle(
            request(Method::GET, "/dashboard/api/graph?window=15m", &[], ""),
            &dashboard,
            &store,
        )
        .await;
        assert_eq!(ok.status(), StatusCode::OK);
        let value: serde_json::Value = serde_json::from_str(&body_text(ok).await).expect("json");
        assert_eq!(value["edges"], serde_json::json!([]));
        let bad = handle(
            request(Method::GET, "/dashboard/api/graph?window=2d", &[], ""),
            &dashboard,
            &store,
        )
        .await;
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        assert!(body_text(bad).await.contains("5m, 15m, 1h and all"));
    }

    #[tokio::test]
    async fn a_bad_log_filter_is_refused_before_streaming() {
        let (dashboard, _) = dashboard();
        let response = handle(
            request(
                Method::GET,
                "/dashboard/api/logs/events?severity=loud",
                &[],
                "",
            ),
            &dashboard,
            &Store::new(100),
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }
}
