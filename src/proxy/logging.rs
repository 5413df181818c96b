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
            request_id = %session.request_id(),
            error = session.error.as_deref().unwrap_or(""),
        );
        if session.sampled {
            if let Some(recorder) = &shared.recorder {
                if let Some((client, server)) = spans(session, elapsed.as_micros() as u64) {
                    recorder.record(client);
                    recorder.record(server);
                }
            }
        }
    }
}

/// The client span (the caller's side) and the server span (the target's, same id). The session
/// ends here: its strings move into the spans, and only what both spans hold is copied.
fn spans(session: Session, duration_micros: u64) -> Option<(ProxySpan, ProxySpan)> {
    let request_id = session.request_id().to_owned();
    let Session {
        trace,
        service,
        method,
        path,
        status,
        route,
        retries,
        grpc,
        error,
        replica,
        called,
        caller,
        caller_replica,
        peer,
        start_micros,
        annotations,
        ..
    } = session;
    let context = trace?;
    let service = service.unwrap_or_else(|| "unknown".into());
    let name = match &grpc {
        Some(_) => path.clone(),
        None => method.as_str().to_ascii_lowercase(),
    };
    let mut tags = BTreeMap::new();
    tags.insert("http.method", method.as_str().to_owned());
    tags.insert("http.path", path);
    tags.insert("http.status_code", status.to_string());
    tags.insert("sandbox.route", route.into_owned());
    tags.insert("sandbox.request_id", request_id);
    if retries > 0 {
        tags.insert("sandbox.retries", retries.to_string());
    }
    if let Some(call) = grpc {
        tags.insert("rpc.system", "grpc".to_string());
        tags.insert("rpc.service", call.service);
        tags.insert("rpc.method", call.method);
        if let Some(status) = call.status {
            tags.insert("rpc.grpc.status_code", status.0.to_string());
        }
    }
    if let Some(error) = error {
        tags.insert("error", error);
    } else if status >= 500 {
        tags.insert("error", status.to_string());
    }
    let remote_address = replica
        .as_ref()
        .map(|replica| replica.address_for(called.as_ref().map(|called| called.port)));
    let caller = caller.into_owned();
    let server = ProxySpan {
        trace_id: context.trace_id.clone(),
        id: context.span_id.clone(),
        parent_id: context.parent_id.clone(),
        kind: SpanKind::Server,
        shared: true,
        name: name.clone(),
        local_service: service.clone(),
        remote_service: caller.clone(),
        remote_replica: caller_replica,
        remote_address: Some(peer),
        start_micros,
        duration_micros,
        tags: tags.clone(),
        annotations: annotations.clone(),
    };
    let client = ProxySpan {
        trace_id: context.trace_id,
        id: context.span_id,
        parent_id: context.parent_id,
        kind: SpanKind::Client,
        shared: false,
        name,
        local_service: caller,
        remote_service: service,
        remote_replica: replica.map(|replica| replica.name.clone()),
        remote_address,
        start_micros,
        duration_micros,
        tags,
        annotations,
    };
    Some((client, server))
}
