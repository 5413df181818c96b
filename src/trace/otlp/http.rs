//! OTLP/HTTP: `POST /v1/{traces,logs,metrics}` with an `application/x-protobuf` or
//! `application/json` body, optionally `Content-Encoding: gzip`. Success is 200 with the export
//! response (carrying the partial success, if any) in the request's encoding; a bad body is 400
//! and a too large one 413, each with a `google.rpc.Status` in the request's encoding; another
//! content type is 415.

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, StatusCode};
use hyper::body::Body;
use prost::Message;

use super::proto::RpcStatus;
use super::{export, Encoding, Signal};
use crate::trace::api::{error, read_body, reply, BodyError, Reply, State};
use crate::trace::metrics::add;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// `google.rpc.Code` values used in error bodies.
const INVALID_ARGUMENT: i32 = 3;
const RESOURCE_EXHAUSTED: i32 = 8;

/// The body encoding a `Content-Type` names, if OTLP/HTTP has it.
pub(crate) fn encoding_of(content_type: &str) -> Option<Encoding> {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
        "application/json" => Some(Encoding::Json),
        _ => None,
    }
}

/// The signal an OTLP/HTTP path carries.
pub(crate) fn signal_of(path: &str) -> Option<Signal> {
    match path {
        "/v1/traces" => Some(Signal::Traces),
        "/v1/logs" => Some(Signal::Logs),
        "/v1/metrics" => Some(Signal::Metrics),
        _ => None,
    }
}

/// Handles one OTLP/HTTP export request.
pub(crate) async fn handle<B>(request: Request<B>, state: &State, signal: Signal) -> Reply
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    if request.method() != Method::POST {
        let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "OTLP/HTTP takes POST");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST, OPTIONS"));
        return response;
    }
    let counters = &state.metrics.otlp;
    add(&counters.requests[signal.index()][0], 1);
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let Some(encoding) = encoding_of(&content_type) else {
        add(&counters.failed[signal.index()][0], 1);
        let shown = if content_type.is_empty() {
            "none"
        } else {
            &content_type
        };
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported Content-Type `{shown}`: OTLP/HTTP takes {PROTOBUF} or {JSON}"),
        );
    };
    let limit = state.config.max_body_bytes;
    let result = match read_body(request, limit, &counters.bytes).await {
        Ok(body) => export(state, signal, encoding, &body)
            .map_err(|e| (StatusCode::BAD_REQUEST, INVALID_ARGUMENT, e.to_string())),
        Err(BodyError::TooLarge(limit)) => Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            RESOURCE_EXHAUSTED,
            format!("request body is larger than the limit of {limit} bytes"),
        )),
        Err(BodyError::Unreadable(message)) => {
            Err((StatusCode::BAD_REQUEST, INVALID_ARGUMENT, message))
        }
    };
    match result {
        Ok(accepted) => {
            let body = match encoding {
                Encoding::Protobuf => accepted.to_protobuf(),
                Encoding::Json => accepted.to_json(signal),
            };
            reply(StatusCode::OK, media(encoding), body)
        }
        Err((status, code, message)) => {
            add(&counters.failed[signal.index()][0], 1);
            tracing::debug!(signal = signal.as_str(), %message, "OTLP/HTTP export refused");
            let body: Bytes = match encoding {
                Encoding::Protobuf => RpcStatus { code, message }.encode_to_vec().into(),
                Encoding::Json => serde_json::json!({ "code": code, "message": message })
                    .to_string()
                    .into(),
            };
            reply(status, media(encoding), body)
        }
    }
}

fn media(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Protobuf => PROTOBUF,
        Encoding::Json => JSON,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_and_paths() {
        assert_eq!(
            encoding_of("application/x-protobuf"),
            Some(Encoding::Protobuf)
        );
        assert_eq!(
            encoding_of("Application/JSON; charset=utf-8"),
            Some(Encoding::Json)
        );
        assert_eq!(encoding_of("text/plain"), None);
        assert_eq!(encoding_of(""), None);
        assert_eq!(signal_of("/v1/logs"), Some(Signal::Logs));
        assert_eq!(signal_of("/v1/spans"), None);
    }
}
