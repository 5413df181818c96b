//! Sending upstream: the circuit breaker, `upstream_peer` (a replica per try), tries with
//! per-try timeouts, retries with jittered exponential back-off, outlier feedback, and the
//! byte tunnel after a protocol switch (WebSocket).

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Response};
use hyper_util::rt::TokioIo;

use crate::manifest::{RetryOn, RetryPolicy};

use super::body::{empty, full, ProxyBody};
use super::clients::{UpstreamError, UpstreamRequest};
use super::config::ProxyConfig;
use super::error::ProxyError;
use super::grpc::{self, GrpcStatus};
use super::message::Headers;
use super::session::{Session, Target};
use super::span::now_micros;
use super::upstream::Replica;
use super::Shared;

/// The request body for the tries: in memory (every try gets a copy), a stream (one try only),
/// or a gRPC call's stream with a copy kept while it fits the retry buffer ([`grpc::Replay`]).
pub enum RequestBody {
    Bytes(Bytes),
    Stream(Option<ProxyBody>),
    Replay(grpc::Replay),
}

impl RequestBody {
    fn replayable(&self) -> bool {
        match self {
            RequestBody::Bytes(_) => true,
            RequestBody::Stream(_) => false,
            RequestBody::Replay(replay) => replay.replayable(),
        }
    }

    fn for_try(&mut self) -> ProxyBody {
        match self {
            RequestBody::Bytes(bytes) if bytes.is_empty() => empty(),
            RequestBody::Bytes(bytes) => full(bytes.clone()),
            RequestBody::Stream(stream) => stream.take().unwrap_or_else(empty),
            RequestBody::Replay(replay) => replay.body(),
        }
    }
}

/// What goes upstream, prepared by `upstream_request_filter`.
pub struct Outgoing {
    pub method: Method,
    pub path_and_query: http::uri::PathAndQuery,
    pub headers: Headers,
    pub body: RequestBody,
}

/// How a try failed, for retry conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    Connect,
    Reset,
    Timeout,
}

enum Try {
    Answered(Response<ProxyBody>),
    Failed(Failure, ProxyError),
    /// The client's request body failed while it was being sent (a malformed chunk, a cut
    /// stream): the client's fault, neither recorded against the replica nor retried.
    ClientFault(ProxyError),
}

/// Admits the request under the service's circuit breaker, then tries replicas until one answers
/// or the retry policy gives up.
pub async fn send(
    shared: &Shared,
    config: &ProxyConfig,
    session: &mut Session,
    target: &Target<'_>,
    mut outgoing: Outgoing,
) -> Result<Response<ProxyBody>, ProxyError> {
    let service: &str = &target.service;
    let upstream = shared.upstreams.get(service);
    let traffic = config.traffic(service);
    let Some(admit) = upstream.admit(&traffic.circuit_breaker).await else {
        return Err(ProxyError::Overflow {
            service: service.to_string(),
        });
    };
    session.admit = Some(admit);
    let policy = target.retries;
    let max_retries = match policy {
        Some(policy) if outgoing.body.replayable() => policy.attempts,
        _ => 0,
    };
    // gRPC is HTTP/2 only: calls go over h2c whatever the service says.
    let http2 =
        traffic.http2 || grpc::needs_http2(outgoing.headers.get(&http::header::CONTENT_TYPE));
    let mut last_failed: Option<std::sync::Arc<Replica>> = None;
    let mut last_error: Option<ProxyError> = None;
    let mut attempt = 0;
    loop {
        // upstream_peer
        let port = session.called.as_ref().map(|called| called.port);
        let replica = match upstream.pick(traffic.load_balancer, last_failed.as_deref(), port) {
            Ok(replica) => replica,
            Err(reason) => {
                return Err(last_error.unwrap_or(ProxyError::NoReplica {
                    service: service.to_string(),
                    reason,
                }))
            }
        };
        session.replica = Some(replica.clone());
        let guard = replica.start();
        let address = replica.address_for(port);
        let request = build_request(&replica, port, &mut outgoing, attempt >= max_retries, http2);
        let exchange = shared
            .clients
            .send(http2, config.limits.fast_path, address, request);
        let result = match policy.and_then(|policy| policy.per_try_timeout) {
            Some(limit) => match tokio::time::timeout(limit, exchange).await {
                Ok(result) => classify(result, service, &replica),
                Err(_) => Try::Failed(
                    Failure::Timeout,
                    ProxyError::Timeout {
                        service: service.to_string(),
                        after: limit,
                    },
                ),
            },
            None => classify(exchange.await, service, &replica),
        };
        let result = match result {
            Try::ClientFault(error) => {
                session.replica_guard = Some(guard);
                return Err(error);
            }
            result => result,
        };
        let failed = match &result {
            Try::Answered(response) => {
                response.status().is_server_error()
                    || grpc::status_in(response.headers()) == Some(GrpcStatus::UNAVAILABLE)
            }
            Try::Failed(..) | Try::ClientFault(_) => true,
        };
        if replica.record(failed, &traffic.outlier_detection) {
            shared.metrics.record_ejection(service);
        }
        let retry = attempt < max_retries
            && outgoing.body.replayable()
            && policy.is_some_and(|policy| retriable(policy, &result));
        if !retry {
            session.replica_guard = Some(guard);
            return match result {
                Try::Answered(response) => Ok(response),
                Try::Failed(_, error) | Try::ClientFault(error) => Err(error),
            };
        }
        let reason = match &result {
            Try::Answered(response) => match grpc::status_in(response.headers()) {
                Some(status) => format!("gRPC {}", status.name()),
                None => response.status().as_u16().to_string(),
            },
            Try::Failed(_, error) | Try::ClientFault(error) => error.to_string(),
        };
        attempt += 1;
        session.retries = attempt;
        session.annotations.push((
            now_micros(),
            format!("retry {attempt}: {reason} from {}", replica.name),
        ));
        if let Try::Failed(_, error) = result {
            last_error = Some(error);
        }
        drop(guard);
        last_failed = Some(replica);
        if let Some(policy) = policy {
            tokio::time::sleep(backoff(policy, attempt)).await;
        }
    }
}

/// The request for one try. HTTP/1.1 connections get the origin form (`/path`), h2c the absolute
/// form; a request without `Host` gets the replica's address.
fn build_request(
    replica: &Replica,
    port: Option<u16>,
    outgoing: &mut Outgoing,
    last: bool,
    http2: bool,
) -> UpstreamRequest {
    let mut headers = if last {
        std::mem::take(&mut outgoing.headers)
    } else {
        outgoing.headers.clone()
    };
    // On the intake, the replica is reached at the port its caller dialed.
    let authority = match port {
        Some(port) => replica.address_for(Some(port)).to_string().parse().ok(),
        None => replica.authority.clone(),
    };
    if !headers.contains(&http::header::HOST) {
        if let Some(Ok(host)) = authority
            .as_ref()
            .map(|authority: &http::uri::Authority| http::HeaderValue::from_str(authority.as_str()))
        {
            headers.append(&http::header::HOST, &host);
        }
    }
    let mut parts = http::uri::Parts::default();
    if http2 {
        parts.scheme = Some(http::uri::Scheme::HTTP);
        parts.authority = authority;
    }
    parts.path_and_query = Some(outgoing.path_and_query.clone());
    UpstreamRequest {
        method: outgoing.method.clone(),
        uri: http::Uri::from_parts(parts).unwrap_or_default(),
        headers,
        body: outgoing.body.for_try(),
    }
}

/// Whether `result` meets one of the policy's conditions. A gRPC status counts only in the
/// response headers (a trailers-only answer: nothing was passed on yet).
fn retriable(policy: &RetryPolicy, result: &Try) -> bool {
    let grpc_status = match result {
        Try::Answered(response) => grpc::status_in(response.headers()),
        _ => None,
    };
    policy.on.iter().any(|condition| match (condition, result) {
        (RetryOn::Unavailable, _) => grpc_status == Some(GrpcStatus::UNAVAILABLE),
        (RetryOn::ResourceExhausted, _) => grpc_status == Some(GrpcStatus::RESOURCE_EXHAUSTED),
        (RetryOn::Cancelled, _) => grpc_status == Some(GrpcStatus::CANCELLED),
        (RetryOn::DeadlineExceeded, _) => grpc_status == Some(GrpcStatus::DEADLINE_EXCEEDED),
        (RetryOn::RetriableStatus, Try::Answered(_))
            if grpc_status.is_some_and(|status| policy.retriable_grpc_status.contains(&status)) =>
        {
            true
        }
        (RetryOn::ServerError, Try::Answered(response)) => response.status().is_server_error(),
        (RetryOn::GatewayError, Try::Answered(response)) => {
            matches!(response.status().as_u16(), 502..=504)
        }
        (RetryOn::RetriableStatus, Try::Answered(response)) => policy
            .retriable_status
            .contains(&response.status().as_u16()),
        (RetryOn::ServerError | RetryOn::GatewayError, Try::Failed(..)) => true,
        (RetryOn::ConnectFailure, Try::Failed(Failure::Connect, _)) => true,
        (RetryOn::Reset, Try::Failed(Failure::Reset, _)) => true,
        _ => false,
    })
}

/// Full jitter over an exponential cap: `base × 2^(n-1)`, at most `max`, then a random point in
/// its upper half.
pub(super) fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let exponent = attempt.saturating_sub(1).min(16);
    let cap = policy
        .backoff
        .base
        .saturating_mul(1 << exponent)
        .min(policy.backoff.max);
    let nanos = cap.as_nanos() as u64;
    if nanos < 2 {
        return cap;
    }
    Duration::from_nanos(rand::random_range(nanos / 2..=nanos))
}

fn classify(
    result: Result<Response<ProxyBody>, UpstreamError>,
    service: &str,
    replica: &Replica,
) -> Try {
    let error = match result {
        Ok(response) => return Try::Answered(response),
        Err(error) => error,
    };
    let (service, replica) = (service.to_string(), replica.name.clone());
    let detail = error.to_string();
    match error {
        UpstreamError::RequestBody(detail) => Try::ClientFault(ProxyError::BadRequest {
            detail: format!("cannot read the request body: {detail}"),
        }),
        UpstreamError::Connect(_) | UpstreamError::ConnectTimeout(_) => Try::Failed(
            Failure::Connect,
            ProxyError::ConnectFailed {
                service,
                replica,
                detail,
            },
        ),
        UpstreamError::Malformed(_) => Try::Failed(
            Failure::Reset,
            ProxyError::InvalidResponse {
                service,
                replica,
                detail,
            },
        ),
        UpstreamError::ClosedBeforeResponse(_) | UpstreamError::Reset(_) => Try::Failed(
            Failure::Reset,
            ProxyError::Reset {
                service,
                replica,
                detail,
            },
        ),
    }
}

/// After `101 Switching Protocols`: copies bytes both ways until either side closes.
pub async fn tunnel(client: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade) {
    let (client, upstream) = match tokio::join!(client, upstream) {
        (Ok(client), Ok(upstream)) => (client, upstream),
        (client, upstream) => {
            tracing::debug!(target: "sandbox::proxy", client_ok = client.is_ok(), upstream_ok = upstream.is_ok(), "upgrade failed");
            return;
        }
    };
    let mut client = TokioIo::new(client);
    let mut upstream = TokioIo::new(upstream);
    if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!(target: "sandbox::proxy", %error, "tunnel closed");
    }
}
