//! One request through the proxy, in pingora's phases:
//!
//! 1. `request_filter`: admin pages, route (gateway) or `Host` (mesh) → target service, trace
//!    context, gRPC-Web translation and the call's deadline (`grpc_web`, `grpc`), injected
//!    faults, request body limits;
//! 2. `upstream_peer` (in [`super::forward`]): circuit breaker, then a replica per try;
//! 3. `upstream_request_filter`: the request sent upstream (rewrite, hop-by-hop headers,
//!    `X-Forwarded-*`, `x-request-id`, route header edits, trace headers);
//! 4. `response_filter`: hop-by-hop headers out, route header edits, `x-sandbox-*` headers;
//! 5. `logging` (in [`super::logging`]): when the response body ends — access log, metrics, spans;
//! 6. `fail_to_proxy`: an error becomes the page a developer can act on.
//!
//! The state the phases share is a [`Session`] (in `session`), one per request on every protocol.

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};

const X_REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");
const X_SANDBOX_UPSTREAM: header::HeaderName =
    header::HeaderName::from_static("x-sandbox-upstream");
const X_SANDBOX_TRACE_ID: header::HeaderName =
    header::HeaderName::from_static("x-sandbox-trace-id");

use super::body::{empty, full, ProxyBody, Tracked};
use super::config::ProxyConfig;
use super::deadline::Deadline;
use super::error::{ErrorReport, ProxyError};
use super::faults::{self, ABORT, DELAY};
use super::grpc;
use super::grpc_web::{self, Decoded};
use super::headers::{
    add_forwarded, is_hop_by_hop_name, is_upgrade, new_request_id, strip_hop_by_hop, Forwarded,
};
use super::logging::Finish;
use super::message::Headers;
use super::propagation::is_trace_header;
use super::propagation::TraceContext;
use super::route::{strip_port, RequestView};
use super::session::{Called, Listener, OverTls, RequestBody, Session, Target};
use super::span::now_micros;
use super::status::Caller;
use super::{admin, forward, Shared};

/// The whole request: every phase, errors turned into pages, the body wrapped for logging. For
/// hyper's servers, which write what the map holds: [`respond`]'s headers become the map.
pub async fn handle<B: RequestBody>(
    shared: Arc<Shared>,
    listener: Listener,
    peer: SocketAddr,
    caller: Option<Caller>,
    called: Option<Called>,
    request: Request<B>,
) -> Result<Response<ProxyBody>, Infallible> {
    let (mut response, headers) =
        respond(shared, listener, peer, caller, called, request, None).await;
    *response.headers_mut() = headers.into_header_map();
    Ok(response)
}

/// [`handle`] for a writer of [`Headers`]: the response comes with its map empty and its headers
/// beside it.
/// `timer`, the connection's, times the route timeout (else a timer is made for it). `called`:
/// on the intake, the service and port the caller dialed.
pub async fn respond<B: RequestBody>(
    shared: Arc<Shared>,
    listener: Listener,
    peer: SocketAddr,
    caller: Option<Caller>,
    called: Option<Called>,
    request: Request<B>,
    timer: Option<&mut Deadline>,
) -> (Response<ProxyBody>, Headers) {
    let config = shared.config();
    let incoming_id = request
        .headers()
        .get(X_REQUEST_ID)
        .filter(|value| {
            value
                .to_str()
                .is_ok_and(|id| !id.is_empty() && id.len() <= 200)
        })
        .cloned();
    // One allocation for a new id (its text becomes the value's bytes), none for the client's.
    let request_id = incoming_id.unwrap_or_else(|| {
        HeaderValue::from_maybe_shared(Bytes::from(new_request_id()))
            .unwrap_or_else(|_| HeaderValue::from_static("-"))
    });
    let mut session = Session {
        listener,
        called,
        caller: match (&caller, listener) {
            (Some(caller), _) => Cow::Owned(caller.service.clone()),
            (None, Listener::Gateway) => Cow::Borrowed("gateway"),
            (None, Listener::Mesh | Listener::Intake) => Cow::Borrowed("unknown"),
        },
        caller_replica: caller.as_ref().map(|caller| caller.replica.clone()),
        peer,
        tls: request.extensions().get::<OverTls>().is_some(),
        request_id,
        started: Instant::now(),
        start_micros: now_micros(),
        method: request.method().clone(),
        path: request.uri().path().to_string(),
        route: Cow::Borrowed("-"),
        route_index: None,
        service: None,
        replica: None,
        retries: 0,
        annotations: Vec::new(),
        trace: None,
        sampled: false,
        status: 0,
        error: None,
        admit: None,
        replica_guard: None,
        grpc: None,
        web: None,
    };
    if listener == Listener::Gateway && session.path.starts_with("/__sandbox/") {
        let mut response = admin::answer(&shared, &config, &session.path);
        let headers = Headers::take_from(&mut response);
        return (response, headers);
    }
    let accept = request.headers().get(header::ACCEPT).cloned();
    let grpc = grpc::is_grpc(request.headers());
    if grpc {
        session.grpc = Some(grpc::Call::of(&session.path));
    }
    // The intake's forwarders proved themselves with the token: a caller the monitor does not
    // know yet (a container that just started, a one-off one) is served as `unknown`.
    let known_caller = listener != Listener::Mesh || caller.is_some();
    let result = if head_size(&request) > config.limits.max_header_bytes {
        Err(ProxyError::HeadersTooLarge {
            limit: config.limits.max_header_bytes,
        })
    } else if known_caller {
        proxy(&shared, &config, &mut session, request, timer).await
    } else {
        Err(ProxyError::UnknownCaller { address: peer.ip() })
    };
    let mut close = false;
    let mut response = match result {
        Ok(response) => response,
        Err(error) => {
            close = matches!(error, ProxyError::HeadersTooLarge { .. });
            fail_to_proxy(&shared, &mut session, &error, accept.as_ref(), grpc).await
        }
    };
    if let Some(call) = &mut session.grpc {
        call.note(response.headers());
    }
    let mut headers = response_filter(&shared, &config, &session, &mut response);
    if close {
        // Do not read what else such a client sends on this connection.
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    session.status = response.status().as_u16();
    let web = session.web.take();
    let finish = Box::new(Finish {
        shared: shared.clone(),
        session,
    });
    let response = response.map(|body| {
        use http_body_util::BodyExt;
        Tracked::new(body, finish).boxed_unsync()
    });
    match web {
        // gRPC-Web's translation edits the map: the headers go back in for it.
        Some(web) => {
            let mut response = response;
            *response.headers_mut() = headers.into_header_map();
            let mut response = web.response(response);
            let headers = Headers::take_from(&mut response);
            (response, headers)
        }
        None => (response, headers),
    }
}

/// The request head's size as sent: request line and `name: value` lines. hyper bounds its read
/// buffer; this makes the limit exact whatever the read sizes were.
fn head_size<B>(request: &Request<B>) -> usize {
    let line = request.method().as_str().len() + display_len(request.uri()) + 12;
    request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum::<usize>()
        + line
}

/// The length of `value` as displayed, without building the text.
fn display_len(value: &impl std::fmt::Display) -> usize {
    struct Count(usize);
    impl std::fmt::Write for Count {
        fn write_str(&mut self, text: &str) -> std::fmt::Result {
            self.0 += text.len();
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = std::fmt::write(&mut count, format_args!("{value}"));
    count.0
}

async fn proxy<B: RequestBody>(
    shared: &Arc<Shared>,
    config: &Arc<ProxyConfig>,
    session: &mut Session,
    mut request: Request<B>,
    timer: Option<&mut Deadline>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let target = request_filter(shared, config, session, &request)?;
    if let Some(preflight) = grpc_web::route_filter(config, session, &mut request)? {
        return Ok(preflight);
    }
    // The caller's deadline, when it is a gRPC call that sends one.
    let deadline = session
        .grpc
        .as_ref()
        .and_then(|_| grpc::timeout(request.headers()));
    let decision = faults::decide(target.faults, request.headers(), config.allow_fault_headers);
    if let Some(delay) = decision.delay {
        shared
            .metrics
            .faults
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        session.annotations.push((
            now_micros(),
            format!(
                "fault: delay {}",
                crate::manifest::duration_text::format(delay)
            ),
        ));
        tokio::time::sleep(delay).await;
    }
    if let Some(status) = decision.abort {
        shared
            .metrics
            .faults
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        session
            .annotations
            .push((now_micros(), format!("fault: abort {status}")));
        return Ok(match session.grpc {
            Some(_) => grpc::abort_response(&target.service, status, decision.abort_grpc),
            None => abort_response(&target.service, status),
        });
    }
    let upgrade = is_upgrade(request.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
    let (mut parts, body) = request.into_parts();
    // An HTTP/2 request names its host in `:authority`: upstream it is the `Host` an HTTP/1.1
    // request carries (and the source of `X-Forwarded-Host`), not the replica's address.
    if let Some(authority) = parts
        .uri
        .authority()
        .filter(|_| !parts.headers.contains_key(header::HOST))
    {
        if let Ok(host) = HeaderValue::from_str(authority.as_str()) {
            parts.headers.insert(header::HOST, host);
        }
    }
    let retries_wanted = target.retries.is_some_and(|policy| policy.attempts > 0);
    let over_limit = Arc::new(AtomicBool::new(false));
    let body = read_body(
        config,
        &parts.headers,
        Decoded::new(body, session.web.as_ref()),
        retries_wanted && !upgrade,
        (target.max_request_body, &over_limit),
    )
    .await?;
    let path_and_query = upstream_path(config, session, &parts.uri)?;
    let mut headers = upstream_request_filter(config, session, parts.headers, upgrade);
    // What is left of the caller's deadline: the timeout if it is the nearer one, and the
    // `grpc-timeout` the service gets.
    let remaining = deadline.map(|deadline| deadline.saturating_sub(session.started.elapsed()));
    if let Some(remaining) = remaining {
        grpc::pass_timeout(&mut headers, remaining);
    }
    let outgoing = forward::Outgoing {
        method: parts.method,
        path_and_query,
        headers,
        body,
    };
    let (timeout, caller_deadline) = match (remaining, deadline) {
        (Some(remaining), Some(deadline)) if remaining < target.timeout => {
            (remaining, Some(deadline))
        }
        _ => (target.timeout, None),
    };
    // The route timeout, polled beside the exchange where both lie (`tokio::time::timeout` would
    // move the large exchange future into its own, twice).
    let mut own_timer = None;
    let timer = match timer {
        Some(timer) => timer,
        None => own_timer.insert(Deadline::default()),
    };
    timer.start(timeout);
    let response = {
        let mut sending = std::pin::pin!(forward::send(shared, config, session, &target, outgoing));
        std::future::poll_fn(|context| {
            if let std::task::Poll::Ready(result) = sending.as_mut().poll(context) {
                return std::task::Poll::Ready(result);
            }
            timer.poll_expired(context).map(|()| {
                let service = target.service.to_string();
                Err(match caller_deadline {
                    Some(after) => ProxyError::Deadline { service, after },
                    None => ProxyError::Timeout {
                        service,
                        after: timeout,
                    },
                })
            })
        })
        .await
    };
    // A streamed body that grew past the limit before the response started: the client's fault.
    if response.is_err() && over_limit.load(Ordering::Relaxed) {
        return Err(target.body_too_large());
    }
    let mut response = response?;
    if let (Some(client_upgrade), StatusCode::SWITCHING_PROTOCOLS) =
        (client_upgrade, response.status())
    {
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        tokio::spawn(forward::tunnel(client_upgrade, upstream_upgrade));
        let (parts, _) = response.into_parts();
        return Ok(Response::from_parts(parts, empty()));
    }
    // The caller's deadline also bounds a response that is still streaming.
    if let Some(after) = deadline {
        let error = ProxyError::Deadline {
            service: target.service.to_string(),
            after,
        };
        let ends = tokio::time::Instant::from_std(session.started + after);
        let response = response.map(|body| {
            use http_body_util::BodyExt;
            grpc::Bounded::new(body, ends, error.to_string()).boxed_unsync()
        });
        return Ok(response);
    }
    Ok(response)
}

/// Admin pages aside: finds the target, starts or continues the trace.
fn request_filter<'c, B>(
    shared: &Shared,
    config: &'c ProxyConfig,
    session: &mut Session,
    request: &Request<B>,
) -> Result<Target<'c>, ProxyError> {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| {
            request
                .uri()
                .authority()
                .map(|authority| authority.as_str())
        });
    let target = match session.listener {
        Listener::Gateway => {
            let view = RequestView {
                method: request.method(),
                path: request.uri().path(),
                query: request.uri().query(),
                host,
                headers: request.headers(),
            };
            let (index, route) = config
                .routes
                .iter()
                .enumerate()
                .find(|(_, route)| route.matches(&view))
                .ok_or_else(|| ProxyError::NoRoute {
                    path: session.path.clone(),
                })?;
            session.route = Cow::Owned(route.name.clone());
            session.route_index = Some(index);
            let service = Cow::Borrowed(route.pick_service());
            let traffic = config.traffic(&service);
            Target {
                timeout: route.timeout().unwrap_or(config.limits.default_timeout),
                retries: route.retries(),
                faults: route.faults().or(Some(&traffic.faults)),
                max_request_body: route
                    .max_request_body()
                    .unwrap_or(config.limits.max_request_body),
                body_limit_route: route.max_request_body().map(|_| route.name.as_str()),
                service,
            }
        }
        Listener::Mesh | Listener::Intake => {
            // The intake's target is the one its forwarder stands for; the `Host` header is
            // the caller's and goes upstream unchanged.
            let service = match &session.called {
                Some(called) => called.service.to_string(),
                None => {
                    let host = host.map(strip_port).unwrap_or_default();
                    host.strip_suffix(".sandbox")
                        .unwrap_or(host)
                        .to_ascii_lowercase()
                }
            };
            let Some(service_config) = config.services.get(&service) else {
                return Err(ProxyError::UnknownService { service });
            };
            session.route = Cow::Borrowed("mesh");
            let traffic = &service_config.traffic;
            Target {
                timeout: traffic.timeout.unwrap_or(config.limits.default_timeout),
                retries: traffic.retries.as_ref(),
                faults: Some(&traffic.faults),
                max_request_body: config.limits.max_request_body,
                body_limit_route: None,
                service: Cow::Owned(service),
            }
        }
    };
    session.service = Some(target.service.to_string());
    if let Some(length) = content_length(request.headers()) {
        if length > target.max_request_body {
            return Err(target.body_too_large());
        }
    }
    if shared.recorder.is_none() {
        // No span store: the proxy takes no part in traces (a span id it forwarded as the parent
        // would be reported by no one); trace headers pass through as sent, as Envoy's do
        // without a tracer.
        return Ok(target);
    }
    let incoming = TraceContext::extract(request.headers());
    let context = match incoming {
        Some(incoming) => {
            let mut child = incoming.child();
            if child.sampled.is_none() {
                child.sampled = Some(sample(config.sample_rate));
            }
            child
        }
        None => TraceContext::root(sample(config.sample_rate)),
    };
    session.sampled = context.sampled == Some(true);
    session.trace = Some(context);
    Ok(target)
}

/// Whether a new trace is sampled at `rate`.
pub(super) fn sample(rate: f64) -> bool {
    rate >= 1.0 || (rate > 0.0 && rand::random::<f64>() < rate)
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The request body: kept in memory (replayable) when small and retries may need it, else
/// streamed once under the size limit (`limit`: bytes, and the flag set when a stream passes it).
async fn read_body<B: RequestBody>(
    config: &ProxyConfig,
    headers: &HeaderMap,
    body: B,
    keep_for_retries: bool,
    (limit, over_limit): (u64, &Arc<AtomicBool>),
) -> Result<forward::RequestBody, ProxyError> {
    if body.is_end_stream() {
        return Ok(forward::RequestBody::Bytes(Bytes::new()));
    }
    let small =
        content_length(headers).is_some_and(|length| length <= config.limits.retry_buffer as u64);
    let grpc = grpc::is_grpc(headers);
    if keep_for_retries && small && !grpc {
        let collected = Limited::new(body, config.limits.retry_buffer)
            .collect()
            .await
            .map_err(|error| ProxyError::BadRequest {
                detail: format!("cannot read the request body: {error}"),
            })?;
        return Ok(forward::RequestBody::Bytes(collected.to_bytes()));
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let over_limit = over_limit.clone();
    let limited = Limited::new(body, limit).map_err(move |error| {
        if error.is::<LengthLimitError>() {
            over_limit.store(true, Ordering::Relaxed);
        }
        error
    });
    if keep_for_retries && grpc {
        // Streamed at once (a call may wait for answers before it sends more), replayable while
        // it fits the retry buffer.
        let replay = grpc::Replay::new(limited.boxed_unsync(), config.limits.retry_buffer);
        return Ok(forward::RequestBody::Replay(replay));
    }
    Ok(forward::RequestBody::Stream(Some(limited.boxed_unsync())))
}

/// The path and query sent upstream: rewritten by the route, if it says so (else the original,
/// shared, not copied).
fn upstream_path(
    config: &ProxyConfig,
    session: &Session,
    uri: &http::Uri,
) -> Result<http::uri::PathAndQuery, ProxyError> {
    let rewritten = session
        .route_index
        .and_then(|index| config.routes.get(index))
        .and_then(|route| route.rewrite_path(uri.path()));
    let invalid = |error: http::uri::InvalidUri| ProxyError::BadRequest {
        detail: format!("invalid path: {error}"),
    };
    match (rewritten, uri.path_and_query()) {
        (None, Some(original)) => Ok(original.clone()),
        (None, None) => Ok(http::uri::PathAndQuery::from_static("/")),
        (Some(path), _) => match uri.query() {
            Some(query) => format!("{path}?{query}").parse().map_err(invalid),
            None => path.parse().map_err(invalid),
        },
    }
}

/// Names in a request that change how its headers are edited, found in one pass.
#[derive(Default)]
struct RequestNames {
    hop_by_hop: bool,
    forwarded: Forwarded,
    request_id: bool,
    faults: bool,
    trace: bool,
}

impl RequestNames {
    fn of(headers: &HeaderMap) -> RequestNames {
        let mut found = RequestNames::default();
        for name in headers.keys() {
            let name = name.as_str();
            if found.forwarded.note(name) {
                continue;
            }
            match name {
                "x-request-id" => found.request_id = true,
                "upgrade" => found.hop_by_hop = true,
                _ if is_hop_by_hop_name(name.as_bytes()) => found.hop_by_hop = true,
                _ if faults::is_fault_header(name) => found.faults = true,
                _ if is_trace_header(name) => found.trace = true,
                _ => {}
            }
        }
        found
    }
}

/// The headers sent upstream. Names the request does not have are added without a lookup.
fn upstream_request_filter(
    config: &ProxyConfig,
    session: &Session,
    mut headers: HeaderMap,
    upgrade: bool,
) -> Headers {
    let mut names = RequestNames::of(&headers);
    if names.hop_by_hop || upgrade {
        // `te: trailers` is how gRPC clients say they accept trailers; an h2c upstream needs it,
        // and it asks nothing of an HTTP/1.1 one.
        let trailers = headers
            .get_all(header::TE)
            .iter()
            .any(|value| value.as_bytes().eq_ignore_ascii_case(b"trailers"));
        strip_hop_by_hop(&mut headers, upgrade);
        if trailers {
            headers.insert(header::TE, HeaderValue::from_static("trailers"));
        }
        // `Connection` may have named any header.
        names = RequestNames::of(&headers);
    }
    let mut headers = Headers::from_map(headers);
    let scheme: &[u8] = if session.tls { b"https" } else { b"http" };
    add_forwarded(&mut headers, names.forwarded, session.peer.ip(), scheme);
    if names.request_id {
        headers.insert(X_REQUEST_ID, session.request_id.clone());
    } else {
        headers.append(&X_REQUEST_ID, &session.request_id);
    }
    if names.faults {
        headers.remove(&DELAY);
        headers.remove(&ABORT);
    }
    let route = session
        .route_index
        .and_then(|index| config.routes.get(index))
        .filter(|route| !route.request_remove.is_empty() || !route.request_add.is_empty());
    if let Some(route) = route {
        for name in &route.request_remove {
            headers.remove(name);
        }
        for (name, value) in &route.request_add {
            headers.insert(name.clone(), value.clone());
        }
    }
    if let Some(context) = &session.trace {
        if names.trace || route.is_some() {
            context.inject(&mut headers);
        } else {
            context.append_to(&mut headers);
        }
    }
    headers
}

/// The headers sent back to the client, taken out of `response` (its map is left empty).
fn response_filter(
    shared: &Shared,
    config: &ProxyConfig,
    session: &Session,
    response: &mut Response<ProxyBody>,
) -> Headers {
    let upgrade = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    let route = session
        .route_index
        .and_then(|index| config.routes.get(index))
        .filter(|route| !route.response_remove.is_empty() || !route.response_add.is_empty());
    let mut headers = Headers::take_from(response);
    headers.strip_hop_by_hop(upgrade);
    if let Some(route) = route {
        for name in &route.response_remove {
            headers.remove(name);
        }
        for (name, value) in &route.response_add {
            headers.insert(name.clone(), value.clone());
        }
    }
    // Values that are `HeaderValue`s already: inserted as they are, not checked again.
    let upstream = match &session.replica {
        Some(replica) => replica.name_header.clone(),
        None => Some(HeaderValue::from_static("none")),
    };
    if let Some(value) = upstream {
        headers.insert(X_SANDBOX_UPSTREAM, value);
    }
    headers.insert(X_REQUEST_ID, session.request_id.clone());
    if shared.recorder.is_some() {
        if let Some(context) = &session.trace {
            headers.insert_text(X_SANDBOX_TRACE_ID, &[context.trace_id.as_bytes()]);
        }
    }
    headers
}

/// An error becomes a page naming the service, its state, its logs and what to run next (a gRPC
/// status with the same facts for a gRPC call).
async fn fail_to_proxy(
    shared: &Shared,
    session: &mut Session,
    error: &ProxyError,
    accept: Option<&HeaderValue>,
    grpc: bool,
) -> Response<ProxyBody> {
    session.error = Some(error.to_string());
    let report = ErrorReport::gather(error, shared.status.as_ref(), session.request_id()).await;
    let mut response = if grpc {
        report.into_grpc_response()
    } else {
        report.into_response(accept)
    };
    if matches!(error, ProxyError::Overflow { .. }) {
        response
            .headers_mut()
            .insert("x-sandbox-overflow", HeaderValue::from_static("true"));
    }
    let source = match error.source() {
        super::error::ErrorSource::Downstream => "downstream",
        super::error::ErrorSource::Upstream => "upstream",
        super::error::ErrorSource::Internal => "internal",
    };
    if let Ok(value) = HeaderValue::from_str(source) {
        response
            .headers_mut()
            .insert("x-sandbox-error-source", value);
    }
    response
}

fn abort_response(service: &str, status: u16) -> Response<ProxyBody> {
    let body = format!("fault injected by sandbox: abort with {status} for `{service}`\n");
    let mut response = Response::new(full(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    response
        .headers_mut()
        .insert("x-sandbox-fault", HeaderValue::from_static("abort"));
    response
}
