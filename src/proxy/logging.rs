//! The `logging` phase: when a response body ends (or the client goes away), one access-log line
//! (`tracing` target `sandbox::access`), the metrics, and the client and server spans. A gRPC
//! call's status (trailers, or headers when trailers-only) is part of all three: a non-OK status
//! is an error, and the spans are named by the method (`/pkg.Service/Method`) with `rpc.*` tags.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::body::OnFinish;
use super::session::Session;
use super::span::{ProxySpan, SpanKind};
use super::Shared;

/// What the response body wrapper runs at the end.
pub struct Finish {
    pub shared: Arc<Shared>,
    pub session: Session,
}

impl OnFinish for Finish {
    fn trailers(&mut self, trailers: &http::HeaderMap) {
        if let Some(call) = &mut self.session.grpc {
            call.note(trailers);
        }
    }

    fn finish(self: Box<Self>, bytes: u64, completed: bool) {
        let Finish {
            shared,
            mut session,
        } = *self;
        let grpc_status = session.grpc.as_ref().and_then(|call| call.status);
        if let Some(error) = session.grpc.as_ref().and_then(|call| call.error()) {
            session.error.get_or_insert(error);
        }
        let elapsed = session.started.elapsed();
        let service = session.service.as_deref().unwrap_or("-");
        let upstream = session
            .replica
            .as_ref()
            .map_or("-", |replica| replica.name.as_str());
        shared.metrics.record(
            &session.route,
            service,
            session.status,
            elapsed,
            session.retries,
        );
        if let Some(status) = grpc_status {
            shared
                .metrics
                .record_grpc_status(&session.route, service, status);
        }
        tracing::info!(
            target: "sandbox::access",
            caller = %session.caller,
            method = %session.method,
            path = %session.path,
            route = %session.route,
            service,
            upstream,
            status = session.status,
            grpc_status = grpc_status.map(|status| status.name()).as_deref().unwrap_or(""),
            bytes,
            completed,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            retries = session.retries,
            request_id = %session.request_id,
            error = session.error.as_deref().unwrap_or(""),
        );
        if session.sampled {
            if let Some(recorder) = &shared.recorder {
                for span in spans(&session, elapsed.as_micros() as u64) {
                    recorder.record(span);
                }
            }
        }
    }
}

/// The client span (the caller's side) and the server span (the target's, same id).
fn spans(session: &Session, duration_micros: u64) -> Vec<ProxySpan> {
    let Some(context) = &session.trace else {
        return Vec::new();
    };
    let service = session.service.clone().unwrap_or_else(|| "unknown".into());
    let mut tags = BTreeMap::new();
    tags.insert("http.method", session.method.to_string());
    tags.insert("http.path", session.path.clone());
    tags.insert("http.status_code", session.status.to_string());
    tags.insert("sandbox.route", session.route.to_string());
    tags.insert("sandbox.request_id", session.request_id.clone());
    if session.retries > 0 {
        tags.insert("sandbox.retries", session.retries.to_string());
    }
    if let Some(call) = &session.grpc {
        tags.insert("rpc.system", "grpc".to_string());
        tags.insert("rpc.service", call.service.clone());
        tags.insert("rpc.method", call.method.clone());
        if let Some(status) = call.status {
            tags.insert("rpc.grpc.status_code", status.0.to_string());
        }
    }
    if let Some(error) = &session.error {
        tags.insert("error", error.clone());
    } else if session.status >= 500 {
        tags.insert("error", session.status.to_string());
    }
    let replica = session.replica.as_ref();
    let client = ProxySpan {
        trace_id: context.trace_id.clone(),
        id: context.span_id.clone(),
        parent_id: context.parent_id.clone(),
        kind: SpanKind::Client,
        shared: false,
        name: match &session.grpc {
            Some(_) => session.path.clone(),
            None => session.method.as_str().to_ascii_lowercase(),
        },
        local_service: session.caller.to_string(),
        remote_service: service.clone(),
        remote_replica: replica.map(|replica| replica.name.clone()),
        remote_address: replica
            .map(|replica| replica.address_for(session.called.as_ref().map(|called| called.port))),
        start_micros: session.start_micros,
        duration_micros,
        tags,
        annotations: session.annotations.clone(),
    };
    let server = ProxySpan {
        kind: SpanKind::Server,
        shared: true,
        local_service: service,
        remote_service: session.caller.to_string(),
        remote_replica: session.caller_replica.clone(),
        remote_address: Some(session.peer),
        ..client.clone()
    };
    vec![client, server]
}
