//! OTLP/gRPC over h2c: the unary `Export` of `TraceService`, `LogsService` and `MetricsService`.
//!
//! One length-prefixed message per call, optionally compressed with `grpc-encoding: gzip`
//! (decompression bounded by the body limit). Success answers the export response and
//! `grpc-status: 0` in trailers; a failure is a trailers-only response: `INVALID_ARGUMENT` for a
//! body that does not decode, `RESOURCE_EXHAUSTED` past the body limit, `UNIMPLEMENTED` for
//! another method or compression.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Frame, SizeHint};

use super::{export, Encoding, Signal};
use crate::trace::api::{gunzip, BodyError, State};
use crate::trace::metrics::add;

/// gRPC status codes used here.
mod code {
    pub const OK: u32 = 0;
    pub const INVALID_ARGUMENT: u32 = 3;
    pub const RESOURCE_EXHAUSTED: u32 = 8;
    pub const UNIMPLEMENTED: u32 = 12;
}

/// A gRPC call's failure: status code and message.
type Failure = (u32, String);

/// True for a gRPC request (`content-type: application/grpc...`).
pub(crate) fn is_grpc<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"))
}

/// The signal a gRPC method exports.
fn signal_of(path: &str) -> Option<Signal> {
    match path {
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export" => Some(Signal::Traces),
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export" => Some(Signal::Logs),
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export" => Some(Signal::Metrics),
        _ => None,
    }
}

/// A unary gRPC response body: at most one data frame, then trailers.
pub(crate) struct GrpcBody {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl Body for GrpcBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

/// Percent-encodes a `grpc-message` as gRPC asks (bytes outside printable ASCII, and `%`).
fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for byte in message.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn status_headers(headers: &mut HeaderMap, status: u32, message: &str) {
    headers.insert("grpc-status", HeaderValue::from(status));
    if !message.is_empty() {
        if let Ok(value) = HeaderValue::from_str(&percent_encode(message)) {
            headers.insert("grpc-message", value);
        }
    }
}

fn response(data: Option<Bytes>, failure: Option<&Failure>) -> Response<GrpcBody> {
    let mut response = Response::new(GrpcBody {
        data: None,
        trailers: None,
    });
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert("grpc-accept-encoding", HeaderValue::from_static("gzip"));
    match failure {
        // Trailers-only: the status travels in the headers.
        Some((status, message)) => status_headers(headers, *status, message),
        None => {
            let mut trailers = HeaderMap::new();
            status_headers(&mut trailers, code::OK, "");
            *response.body_mut() = GrpcBody {
                data,
                trailers: Some(trailers),
            };
        }
    }
    response
}

/// Frames a message: no compression, 4-byte big-endian length, the message.
pub(crate) fn frame(message: &[u8]) -> Bytes {
    let mut framed = Vec::with_capacity(message.len() + 5);
    framed.push(0);
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(message);
    framed.into()
}

/// The one message of a unary request body, decompressed when flagged.
fn unframe(body: &[u8], encoding: &str, limit: usize) -> Result<Bytes, Failure> {
    let invalid = |reason: String| (code::INVALID_ARGUMENT, reason);
    let [flag, a, b, c, d, rest @ ..] = body else {
        return Err(invalid(format!(
            "the request is not a gRPC message: {} bytes, fewer than the 5 of its prefix",
            body.len()
        )));
    };
    let length = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
    if rest.len() != length {
        return Err(invalid(format!(
            "the gRPC message says {length} bytes but {} came (one message per Export call)",
            rest.len()
        )));
    }
    match (flag, encoding) {
        (0, _) => Ok(Bytes::copy_from_slice(rest)),
        (1, "gzip") => gunzip(rest, limit).map_err(|e| match e {
            BodyError::TooLarge(limit) => (
                code::RESOURCE_EXHAUSTED,
                format!("the decompressed message is larger than the limit of {limit} bytes"),
            ),
            BodyError::Unreadable(reason) => invalid(reason),
        }),
        (1, "" | "identity") => Err(invalid(
            "the message is flagged compressed but no grpc-encoding was sent".into(),
        )),
        (1, other) => Err((
            code::UNIMPLEMENTED,
            format!("grpc-encoding {other} is not supported; use gzip or none"),
        )),
        (other, _) => Err(invalid(format!("invalid compressed flag {other}"))),
    }
}

async fn call<B>(request: Request<B>, state: &State, signal: Signal) -> Result<Bytes, Failure>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let limit = state.config.max_body_bytes;
    let encoding = request
        .headers()
        .get("grpc-encoding")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    // The 5-byte prefix rides on top of the message limit.
    let body = match Limited::new(request.into_body(), limit + 5).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err((
                code::RESOURCE_EXHAUSTED,
                format!("the message is larger than the limit of {limit} bytes"),
            ))
        }
        Err(e) => {
            return Err((
                code::INVALID_ARGUMENT,
                format!("could not read the request: {e}"),
            ))
        }
    };
    add(&state.metrics.otlp.bytes, body.len() as u64);
    let message = unframe(&body, &encoding, limit)?;
    let accepted = export(state, signal, Encoding::Protobuf, &message)
        .map_err(|e| (code::INVALID_ARGUMENT, e.to_string()))?;
    Ok(frame(&accepted.to_protobuf()))
}

/// Handles one gRPC call.
pub(crate) async fn handle<B>(request: Request<B>, state: &State) -> Response<GrpcBody>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let Some(signal) = signal_of(request.uri().path()) else {
        let failure = (
            code::UNIMPLEMENTED,
            format!(
                "unknown method {}: this server takes the OTLP TraceService, LogsService and MetricsService Export",
                request.uri().path()
            ),
        );
        return response(None, Some(&failure));
    };
    let counters = &state.metrics.otlp;
    add(&counters.requests[signal.index()][1], 1);
    match call(request, state, signal).await {
        Ok(data) => response(Some(data), None),
        Err(failure) => {
            add(&counters.failed[signal.index()][1], 1);
            tracing::debug!(signal = signal.as_str(), message = %failure.1, "OTLP/gRPC export refused");
            response(None, Some(&failure))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_unframed_and_checked() {
        assert_eq!(
            unframe(&frame(b"abc"), "", 100).unwrap(),
            Bytes::from("abc")
        );
        assert!(unframe(b"\0\0\0", "", 100)
            .unwrap_err()
            .1
            .contains("fewer than"));
        let mut long = frame(b"abc").to_vec();
        long.push(1);
        assert!(unframe(&long, "", 100)
            .unwrap_err()
            .1
            .contains("says 3 bytes but 4"));
        let mut flagged = frame(b"abc").to_vec();
        flagged[0] = 1;
        assert_eq!(
            unframe(&flagged, "snappy", 100).unwrap_err().0,
            code::UNIMPLEMENTED
        );
        assert!(unframe(&flagged, "", 100)
            .unwrap_err()
            .1
            .contains("no grpc-encoding"));
        assert_eq!(
            unframe(&flagged, "gzip", 100).unwrap_err().0,
            code::INVALID_ARGUMENT
        );
    }

    #[test]
    fn a_gzip_bomb_in_a_message_is_resource_exhausted() {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&vec![0u8; 1 << 20]).unwrap();
        let mut framed = frame(&encoder.finish().unwrap()).to_vec();
        framed[0] = 1;
        let failure = unframe(&framed, "gzip", 64 * 1024).unwrap_err();
        assert_eq!(failure.0, code::RESOURCE_EXHAUSTED, "{}", failure.1);
    }

    #[test]
    fn grpc_messages_are_percent_encoded() {
        assert_eq!(percent_encode("bad 100% é\n"), "bad 100%25 %C3%A9%0A");
    }
}
