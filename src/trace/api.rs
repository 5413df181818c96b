//! The HTTP API: routes a request to the collector (POST spans) or the query API, the UI, health,
//! info and metrics. Answers as the Zipkin server does: 202 on accepted spans, 400 with a message
//! for bad input, 404 for an unknown trace. The query API is also served under `/zipkin/`.
//! OTLP/HTTP paths and gRPC calls go to [`crate::trace::otlp`]; `GET /api/v2/logs` searches the
//! log store. A listener's [`Surface`] decides which of these it answers.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Body;

use crate::trace::codec::{self, json, DecodeError};
use crate::trace::dependencies;
use crate::trace::logs::{self, LogQuery};
use crate::trace::metrics::{add, Metrics};
use crate::trace::model::TraceId;
use crate::trace::otlp::{self, grpc::GrpcBody};
use crate::trace::query::{self, Params, QueryError, QueryRequest, DEFAULT_LOOKBACK_MS};
use crate::trace::{Store, TraceConfig};

const UI_HTML: &str = include_str!("ui/index.html");
const JSON: &str = "application/json; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// What every request handler shares.
pub(crate) struct State {
    pub(crate) store: Store,
    pub(crate) config: TraceConfig,
    pub(crate) metrics: Arc<Metrics>,
    /// The dashboard at `/`, on the listeners that serve one (else `/` is the Zipkin UI).
    pub(crate) dashboard: Option<Arc<crate::dashboard::Dashboard>>,
}

/// What a listener answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Surface {
    /// The Zipkin port: the Zipkin API and UI, the log search, and OTLP too.
    Zipkin,
    /// An OTLP port: OTLP/HTTP and OTLP/gRPC only.
    Otlp,
}

pub(crate) type Reply = Response<Full<Bytes>>;

/// Every response body the server sends: a whole body, or a gRPC one with trailers.
pub(crate) type ServerBody = Either<Full<Bytes>, GrpcBody>;

pub(crate) fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Reply {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

fn json_reply(body: Vec<u8>) -> Reply {
    reply(StatusCode::OK, JSON, body)
}

pub(crate) fn error(status: StatusCode, message: impl std::fmt::Display) -> Reply {
    reply(status, TEXT, format!("{message}\n"))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Handles one request: the dashboard's paths go to the dashboard (when this server has one),
/// everything else to [`handle`].
pub(crate) async fn serve<B>(
    request: Request<B>,
    state: Arc<State>,
    surface: Surface,
) -> Response<Either<ServerBody, crate::dashboard::api::DashboardBody>>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        // A read sees every span recorded before it, queued ones included.
        state.store.settle().await;
    }
    match &state.dashboard {
        Some(dashboard)
            if surface == Surface::Zipkin && crate::dashboard::api::owns(request.uri().path()) =>
        {
            crate::dashboard::api::handle(request, dashboard, &state.store)
                .await
                .map(Either::Right)
        }
        _ => handle(request, state, surface).await.map(Either::Left),
    }
}

/// Handles one request; never fails (errors are responses).
pub(crate) async fn handle<B>(
    request: Request<B>,
    state: Arc<State>,
    surface: Surface,
) -> Response<ServerBody>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    if otlp::grpc::is_grpc(&request) {
        return otlp::grpc::handle(request, &state).await.map(Either::Right);
    }
    let mut response = if request.method() == Method::OPTIONS {
        preflight(&request)
    } else if surface == Surface::Otlp {
        otlp_route(request, &state).await
    } else {
        route(request, &state).await
    };
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response.map(Either::Left)
}

/// An OTLP port: the three OTLP/HTTP paths, nothing else.
async fn otlp_route<B>(request: Request<B>, state: &State) -> Reply
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    match otlp::http::signal_of(request.uri().path()) {
        Some(signal) => otlp::http::handle(request, state, signal).await,
        None => error(
            StatusCode::NOT_FOUND,
            format!(
                "no route for {} {}: this OTLP port takes POST /v1/traces, /v1/logs and /v1/metrics (and OTLP/gRPC); the Zipkin API is on the trace server's port",
                request.method(),
                request.uri().path()
            ),
        ),
    }
}

fn preflight<B>(request: &Request<B>) -> Reply {
    let mut response = reply(StatusCode::NO_CONTENT, TEXT, Bytes::new());
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    let requested = request
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        requested.unwrap_or(HeaderValue::from_static("content-type, content-encoding")),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    response
}

async fn route<B>(request: Request<B>, state: &State) -> Reply
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let full_path = request.uri().path().to_owned();
    let path = match full_path.strip_prefix("/zipkin") {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => full_path.as_str(),
    };
    let params = Params::parse(request.uri().query());
    let method = request.method().clone();
    if let Some(signal) = otlp::http::signal_of(path) {
        return otlp::http::handle(request, state, signal).await;
    }
    match (path, &method) {
        ("/api/v2/spans" | "/api/v1/spans", &Method::POST) => {
            let version = if path.starts_with("/api/v1") { 1 } else { 2 };
            collect(request, state, version).await
        }
        (_, &Method::GET | &Method::HEAD) => query_route(path, &params, state),
        ("/api/v2/spans", _) => not_allowed("GET, HEAD, POST, OPTIONS"),
        ("/api/v1/spans", _) => not_allowed("POST, OPTIONS"),
        _ if known_get(path) => not_allowed("GET, HEAD, OPTIONS"),
        _ => error(
            StatusCode::NOT_FOUND,
            format!("no route for {method} {full_path}"),
        ),
    }
}

fn not_allowed(allow: &'static str) -> Reply {
    let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

fn known_get(path: &str) -> bool {
    path == "/"
        || path.starts_with("/api/v2/")
        || matches!(path, "/health" | "/info" | "/prometheus" | "/index.html")
}

fn query_route(path: &str, params: &Params, state: &State) -> Reply {
    let result = match path {
        "/" | "/index.html" => return reply(StatusCode::OK, "text/html; charset=utf-8", UI_HTML),
        "/health" => {
            return json_reply(
                br#"{"status":"UP","zipkin":{"status":"UP","details":{"InMemoryStorage{}":{"status":"UP"}}}}"#
                    .to_vec(),
            )
        }
        "/info" => {
            let info = format!(
                r#"{{"zipkin":{{"version":"{}","commit":"sandbox"}}}}"#,
                env!("CARGO_PKG_VERSION")
            );
            return json_reply(info.into_bytes());
        }
        "/prometheus" => {
            let text = state.metrics.render(&state.store);
            return reply(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", text);
        }
        "/api/v2/services" => Ok(json::encode_strings(&state.store.service_names())),
        "/api/v2/remoteServices" => names_for_service(params, |s| state.store.remote_service_names(s)),
        "/api/v2/spans" => query::parse_span_kind(params)
            .and_then(|kind| names_for_service(params, |s| state.store.span_names(s, kind))),
        "/api/v2/traces" => QueryRequest::from_params(params, now_ms())
            .map(|request| json::encode_traces(&state.store.search(&request))),
        "/api/v2/traceMany" => trace_many(params, state),
        "/api/v2/logs" => LogQuery::from_params(params)
            .map(|query| logs::query::encode(&state.store.logs().search(&query))),
        "/api/v2/dependencies" => dependencies(params, state),
        "/api/v2/autocompleteKeys" => Ok(json::encode_strings(&state.config.autocomplete_keys)),
        "/api/v2/autocompleteValues" => params.raw("key").ok_or_else(|| QueryError("missing required parameter: key".into())).map(|key| {
            if state.config.autocomplete_keys.iter().any(|k| k == key) {
                json::encode_strings(&state.store.tag_values(key))
            } else {
                json::encode_strings::<String>(&[])
            }
        }),
        _ => match path.strip_prefix("/api/v2/trace/") {
            Some(id) => return trace(id, state),
            None => return error(StatusCode::NOT_FOUND, format!("no route for GET {path}")),
        },
    };
    match result {
        Ok(body) => json_reply(body),
        Err(QueryError(message)) => error(StatusCode::BAD_REQUEST, message),
    }
}

/// `serviceName` is required; present but empty gives an empty list, as the server's storage does.
fn names_for_service(
    params: &Params,
    names: impl Fn(&str) -> Vec<String>,
) -> Result<Vec<u8>, QueryError> {
    match params.raw("serviceName") {
        None => Err(QueryError("missing required parameter: serviceName".into())),
        Some("") => Ok(json::encode_strings::<String>(&[])),
        Some(service) => Ok(json::encode_strings(&names(service))),
    }
}

fn trace(id: &str, state: &State) -> Reply {
    let trace_id = match TraceId::parse(id) {
        Ok(trace_id) => trace_id,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match state.store.trace(trace_id) {
        Some(spans) => json_reply(json::encode(&spans)),
        None => error(StatusCode::NOT_FOUND, format!("{id} not found")),
    }
}

fn trace_many(params: &Params, state: &State) -> Result<Vec<u8>, QueryError> {
    let ids = params.required("traceIds")?;
    let mut normalized: Vec<TraceId> = Vec::new();
    for text in ids.split(',') {
        let id = TraceId::parse(text.trim()).map_err(|e| QueryError(e.to_string()))?;
        if normalized.contains(&id) {
            return Err(QueryError(format!("redundant traceId: {text}")));
        }
        normalized.push(id);
    }
    if normalized.len() < 2 {
        return Err(QueryError(
            "Use /api/v2/trace/{traceId} endpoint to retrieve a single trace".into(),
        ));
    }
    Ok(json::encode_traces(&state.store.traces_by_id(&normalized)))
}

fn dependencies(params: &Params, state: &State) -> Result<Vec<u8>, QueryError> {
    params.required("endTs")?;
    let end_ts = params.integer("endTs")?.unwrap_or_default();
    let lookback = params
        .integer("lookback")?
        .unwrap_or(DEFAULT_LOOKBACK_MS as i64);
    if end_ts <= 0 {
        return Err(QueryError("endTs <= 0".into()));
    }
    if lookback <= 0 {
        return Err(QueryError("lookback <= 0".into()));
    }
    let links = state.store.dependencies(end_ts as u64, lookback as u64);
    Ok(dependencies::encode(&links))
}

/// Why a POST body could not be read.
pub(crate) enum BodyError {
    /// Larger than the limit (before or after gunzip).
    TooLarge(usize),
    /// Not readable: a broken connection, a bad gzip stream, an unknown encoding, no body.
    Unreadable(String),
}

/// Why a POST of spans was refused.
enum CollectError {
    Body(BodyError),
    Decode(DecodeError),
}

impl From<BodyError> for CollectError {
    fn from(error: BodyError) -> Self {
        CollectError::Body(error)
    }
}

async fn collect<B>(request: Request<B>, state: &State, version: u8) -> Reply
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    add(&state.metrics.messages, 1);
    match read_spans(request, state, version).await {
        Ok(spans) => {
            add(&state.metrics.spans, spans.len() as u64);
            state.store.ingest(spans);
            reply(StatusCode::ACCEPTED, TEXT, Bytes::new())
        }
        Err(failure) => {
            add(&state.metrics.messages_dropped, 1);
            match failure {
                CollectError::Body(BodyError::TooLarge(limit)) => error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body is larger than the limit of {limit} bytes"),
                ),
                CollectError::Body(BodyError::Unreadable(message)) => {
                    error(StatusCode::BAD_REQUEST, message)
                }
                CollectError::Decode(e) => error(StatusCode::BAD_REQUEST, e),
            }
        }
    }
}

async fn read_spans<B>(
    request: Request<B>,
    state: &State,
    version: u8,
) -> Result<Vec<crate::trace::model::Span>, CollectError>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let content_type = header_text(request.headers(), header::CONTENT_TYPE).to_ascii_lowercase();
    let body = read_body(request, state.config.max_body_bytes, &state.metrics.bytes).await?;
    if body.is_empty() {
        return Err(BodyError::Unreadable("empty POST body".into()).into());
    }
    let decoded = if version == 1 {
        if content_type.contains("thrift") {
            return Err(BodyError::Unreadable(
                "v1 thrift is not supported; send v1 or v2 JSON".into(),
            )
            .into());
        }
        codec::v1::decode(&body)
    } else if content_type.starts_with("application/x-protobuf")
        || content_type.starts_with("application/protobuf")
    {
        codec::proto::decode(&body)
    } else {
        json::decode(&body)
    };
    decoded.map_err(CollectError::Decode)
}

/// Reads a request body within `limit` bytes (refused early when `Content-Length` says more),
/// gunzipped within `limit` when `Content-Encoding: gzip`; `received` counts the bytes as sent.
pub(crate) async fn read_body<B>(
    request: Request<B>,
    limit: usize,
    received: &std::sync::atomic::AtomicU64,
) -> Result<Bytes, BodyError>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let headers = request.headers();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(BodyError::TooLarge(limit));
    }
    let encoding = header_text(headers, header::CONTENT_ENCODING)
        .trim()
        .to_ascii_lowercase();
    let body = match Limited::new(request.into_body(), limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(BodyError::TooLarge(limit))
        }
        Err(e) => {
            return Err(BodyError::Unreadable(format!(
                "could not read the request body: {e}"
            )))
        }
    };
    add(received, body.len() as u64);
    match encoding.as_str() {
        "" | "identity" => Ok(body),
        "gzip" => gunzip(&body, limit),
        other => Err(BodyError::Unreadable(format!(
            "unsupported Content-Encoding: {other}; use gzip or none"
        ))),
    }
}

fn header_text(headers: &http::HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Gunzips `body`, refusing output past `limit` bytes (read no further than that).
pub(crate) fn gunzip(body: &[u8], limit: usize) -> Result<Bytes, BodyError> {
    use std::io::Read;
    let mut out = Vec::with_capacity((body.len() * 4).min(limit + 1));
    let decoder = flate2::read::MultiGzDecoder::new(body);
    match decoder.take(limit as u64 + 1).read_to_end(&mut out) {
        Ok(_) if out.len() > limit => Err(BodyError::TooLarge(limit)),
        Ok(_) => Ok(Bytes::from(out)),
        Err(e) => Err(BodyError::Unreadable(format!("invalid gzip body: {e}"))),
    }
}
