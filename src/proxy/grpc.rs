//! gRPC semantics on top of HTTP/2 forwarding: what makes a request a gRPC call, its method and
//! status as spans and logs show them, `grpc-timeout` (the caller's deadline), the body a retry
//! can replay, and the statuses the proxy answers itself.
//!
//! - A call is a request whose `content-type` starts with `application/grpc` (`+proto`,
//!   `+json`, …). Its status is `grpc-status` in the response trailers, or in the response headers
//!   for a trailers-only response (how servers and the proxy answer an immediate failure): both
//!   are noted ([`Call::note`]) for the access log, the metrics and the spans.
//! - `grpc-timeout` (`100m`, `5S`, `1H`: at most 8 digits and a unit, gRPC's HTTP/2 spec) bounds
//!   the call: the smaller of it and the route's (or service's) timeout applies to the response
//!   head, its expiry is `DEADLINE_EXCEEDED`, and the header goes upstream reduced by the time
//!   already spent. A response still streaming when the deadline passes is ended by the proxy
//!   ([`Bounded`]): the stream to the service is dropped (reset) and the client gets trailers
//!   with `DEADLINE_EXCEEDED`.
//! - Retries: a gRPC status can be retried only when it arrives in the response headers (the
//!   trailers-only answer, as Envoy does: a status in trailers comes after messages were passed
//!   on), and only while the request body still fits the retry buffer: [`Replay`] streams the
//!   body to the first try at once (a bidirectional call may wait for an answer before sending
//!   more) and keeps a copy until it outgrows the buffer.
//! - Calls always go upstream over h2c: gRPC is HTTP/2 only (gRPC-Web passed untranslated goes
//!   as the service's `http2` says).
//!
//! It must not know about listeners or transports: `phases`, `forward`, `logging` and `body` call
//! in.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response};
use hyper::body::{Body, Frame, SizeHint};

pub use crate::manifest::GrpcStatus;

use super::body::{empty, BoxError, ProxyBody};

const GRPC_STATUS: &str = "grpc-status";
const GRPC_MESSAGE: &str = "grpc-message";
const GRPC_TIMEOUT: &str = "grpc-timeout";
/// The names above as `HeaderName`s, for look-ups: a `&str` key is parsed and hashed on every
/// look-up, even in an empty map.
static GRPC_STATUS_NAME: header::HeaderName = header::HeaderName::from_static(GRPC_STATUS);
static GRPC_TIMEOUT_NAME: header::HeaderName = header::HeaderName::from_static(GRPC_TIMEOUT);

/// Whether `headers` are those of a gRPC call (gRPC-Web included: it says `application/grpc-web`).
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"))
}

/// Whether a request with `headers` must go upstream over HTTP/2: gRPC proper (not gRPC-Web,
/// which a route without `grpc_web` passes as it is, to a service that may speak HTTP/1.1).
pub fn needs_http2(content_type: Option<&[u8]>) -> bool {
    content_type.is_some_and(|value| {
        value.starts_with(b"application/grpc") && !value.starts_with(b"application/grpc-web")
    })
}

/// One gRPC call as the logs and spans describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// `pkg.Service`.
    pub service: String,
    /// `Method`.
    pub method: String,
    /// From the response headers (trailers-only) or trailers; `None` until one is seen.
    pub status: Option<GrpcStatus>,
    /// `grpc-message`, percent-decoded.
    pub message: Option<String>,
}

impl Call {
    /// The call for a request to `path` (`/pkg.Service/Method`).
    pub fn of(path: &str) -> Call {
        let trimmed = path.trim_start_matches('/');
        let (service, method) = trimmed.rsplit_once('/').unwrap_or(("", trimmed));
        Call {
            service: service.to_string(),
            method: method.to_string(),
            status: None,
            message: None,
        }
    }

    /// Takes the status and message from response headers or trailers that hold them.
    pub fn note(&mut self, headers: &HeaderMap) {
        if let Some(status) = status_in(headers) {
            self.status = Some(status);
            self.message = headers
                .get(GRPC_MESSAGE)
                .map(|value| percent_decode(value.as_bytes()));
        }
    }

    /// `UNAVAILABLE: no healthy replica` when the call failed; `None` when OK or unknown.
    pub fn error(&self) -> Option<String> {
        let status = self.status.filter(|status| *status != GrpcStatus::OK)?;
        Some(match self.message.as_deref() {
            Some(message) if !message.is_empty() => format!("{}: {message}", status.name()),
            _ => status.name().into_owned(),
        })
    }
}

/// `grpc-status` in `headers`.
pub fn status_in(headers: &HeaderMap) -> Option<GrpcStatus> {
    let value = headers.get(&GRPC_STATUS_NAME)?.to_str().ok()?;
    value.trim().parse().ok().map(GrpcStatus)
}

/// The caller's deadline: `grpc-timeout` in `headers`, if valid.
pub fn timeout(headers: &HeaderMap) -> Option<Duration> {
    parse_timeout(headers.get(&GRPC_TIMEOUT_NAME)?.to_str().ok()?)
}

/// `100m` → 100 ms; at most 8 digits, units `H M S m u n` (gRPC over HTTP/2).
pub fn parse_timeout(text: &str) -> Option<Duration> {
    let unit = text.chars().last()?;
    let digits = &text[..text.len() - unit.len_utf8()];
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let value: u64 = digits.parse().ok()?;
    Some(match unit {
        'H' => Duration::from_secs(value * 3600),
        'M' => Duration::from_secs(value * 60),
        'S' => Duration::from_secs(value),
        'm' => Duration::from_millis(value),
        'u' => Duration::from_micros(value),
        'n' => Duration::from_nanos(value),
        _ => return None,
    })
}

/// `remaining` as a `grpc-timeout` value: the finest unit whose figure fits 8 digits.
pub fn format_timeout(remaining: Duration) -> String {
    const MAX: u128 = 99_999_999;
    let nanos = remaining.as_nanos();
    let units: [(u128, char); 6] = [
        (1, 'n'),
        (1_000, 'u'),
        (1_000_000, 'm'),
        (1_000_000_000, 'S'),
        (60_000_000_000, 'M'),
        (3_600_000_000_000, 'H'),
    ];
    for (size, unit) in units {
        // Rounded up, so the upstream never gets a later deadline than the caller's.
        let value = nanos.div_ceil(size);
        if value <= MAX {
            return format!("{value}{unit}");
        }
    }
    format!("{MAX}H")
}

/// Sets the `grpc-timeout` sent upstream to what is left of the caller's deadline.
pub fn pass_timeout(headers: &mut super::message::Headers, remaining: Duration) {
    if let Ok(value) = HeaderValue::from_str(&format_timeout(remaining)) {
        headers.insert(header::HeaderName::from_static(GRPC_TIMEOUT), value);
    }
}

/// The gRPC status for an HTTP status, as Envoy maps a response without `grpc-status`
/// (and the proxy maps an injected abort): 400 `INTERNAL`, 401 `UNAUTHENTICATED`, 403
/// `PERMISSION_DENIED`, 404 `UNIMPLEMENTED`, 429/502/503/504 `UNAVAILABLE`, else `UNKNOWN`.
pub fn from_http(status: u16) -> GrpcStatus {
    match status {
        200 => GrpcStatus::OK,
        400 => GrpcStatus::INTERNAL,
        401 => GrpcStatus::UNAUTHENTICATED,
        403 => GrpcStatus::PERMISSION_DENIED,
        404 => GrpcStatus::UNIMPLEMENTED,
        429 | 502 | 503 | 504 => GrpcStatus::UNAVAILABLE,
        _ => GrpcStatus::UNKNOWN,
    }
}

/// A trailers-only gRPC response (HTTP 200, no body) with `status` and `message`.
pub fn status_response(status: GrpcStatus, message: &str) -> Response<ProxyBody> {
    let mut response = Response::new(empty());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert(GRPC_STATUS, HeaderValue::from(u16::from(status.0)));
    if let Ok(value) = HeaderValue::from_str(&percent_encode(message)) {
        headers.insert(GRPC_MESSAGE, value);
    }
    response
}

/// An injected abort (`faults.abort`, `x-sandbox-fault-abort`) answered as a gRPC status: the
/// one given (`grpc_status`), else one mapped from the HTTP status ([`from_http`]).
pub fn abort_response(
    service: &str,
    http_status: u16,
    given: Option<GrpcStatus>,
) -> Response<ProxyBody> {
    let (status, message) = match given {
        Some(status) => (
            status,
            format!(
                "fault injected by sandbox: abort with {} for `{service}`",
                status.name()
            ),
        ),
        None => {
            let status = from_http(http_status);
            let message = format!(
                "fault injected by sandbox: abort with {http_status} ({}) for `{service}`",
                status.name()
            );
            (status, message)
        }
    };
    let mut response = status_response(status, &message);
    response
        .headers_mut()
        .insert("x-sandbox-fault", HeaderValue::from_static("abort"));
    response
}

/// `grpc-message` encoding: bytes outside printable ASCII, and `%`, as `%XX`.
pub fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// The reverse of [`percent_encode`]; a malformed escape is kept as written.
pub fn percent_decode(bytes: &[u8]) -> String {
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = (bytes[index] == b'%')
            .then(|| bytes.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                index += 3;
            }
            None => {
                decoded.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// A request body streamed to the first try at once, with a copy kept for retries while it fits
/// `limit` bytes. Each [`Replay::body`] is one try's body: the copy first, then the rest of the
/// client's stream; a try superseded by a retry fails if its client polls it again.
pub struct Replay {
    state: Arc<Mutex<ReplayState>>,
}

struct ReplayState {
    source: ProxyBody,
    kept: Vec<Bytes>,
    kept_bytes: usize,
    limit: usize,
    /// The body outgrew `limit`: the copy is dropped and no retry can replay it.
    overflowed: bool,
    ended: bool,
    trailers: Option<HeaderMap>,
    /// The try whose body may read from `source`.
    generation: u64,
}

impl Replay {
    pub fn new(source: ProxyBody, limit: usize) -> Replay {
        Replay {
            state: Arc::new(Mutex::new(ReplayState {
                source,
                kept: Vec::new(),
                kept_bytes: 0,
                limit,
                overflowed: false,
                ended: false,
                trailers: None,
                generation: 0,
            })),
        }
    }

    /// Whether another try can still get the whole body.
    pub fn replayable(&self) -> bool {
        !self.lock().overflowed
    }

    /// The body for the next try (earlier tries' bodies stop).
    pub fn body(&self) -> ProxyBody {
        use http_body_util::BodyExt;
        let mut state = self.lock();
        state.generation += 1;
        TryBody {
            state: self.state.clone(),
            generation: state.generation,
            position: 0,
            sent_trailers: false,
        }
        .boxed_unsync()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ReplayState> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

struct TryBody {
    state: Arc<Mutex<ReplayState>>,
    generation: u64,
    /// The next kept chunk this try sends.
    position: usize,
    sent_trailers: bool,
}

impl Body for TryBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let mut state = this
            .state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if state.generation != this.generation {
            return Poll::Ready(Some(Err("the request was sent again (retry)".into())));
        }
        if let Some(chunk) = state.kept.get(this.position) {
            this.position += 1;
            return Poll::Ready(Some(Ok(Frame::data(chunk.clone()))));
        }
        if state.ended {
            let trailers = (!this.sent_trailers)
                .then(|| state.trailers.clone())
                .flatten();
            this.sent_trailers = true;
            return Poll::Ready(trailers.map(|trailers| Ok(Frame::trailers(trailers))));
        }
        let frame = match Pin::new(&mut state.source).poll_frame(context) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => {
                state.ended = true;
                return Poll::Ready(None);
            }
            Poll::Ready(Some(Err(error))) => {
                state.overflowed = true;
                return Poll::Ready(Some(Err(error)));
            }
            Poll::Ready(Some(Ok(frame))) => frame,
        };
        if let Some(data) = frame.data_ref() {
            if !state.overflowed && state.kept_bytes + data.len() <= state.limit {
                state.kept_bytes += data.len();
                state.kept.push(data.clone());
                this.position = state.kept.len();
            } else if !state.overflowed {
                state.overflowed = true;
                state.kept = Vec::new();
            }
        } else if let Some(trailers) = frame.trailers_ref() {
            state.trailers = Some(trailers.clone());
            this.sent_trailers = true;
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        let state = self
            .state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        state.generation == self.generation
            && state.ended
            && self.position >= state.kept.len()
            && (self.sent_trailers || state.trailers.is_none())
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// A gRPC response body bounded by the call's deadline: when it passes before the body ends, the
/// service's stream is dropped (reset) and the client gets trailers with `DEADLINE_EXCEEDED` and
/// `message` instead of the rest.
pub struct Bounded {
    inner: Option<ProxyBody>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    message: String,
}

impl Bounded {
    pub fn new(inner: ProxyBody, deadline: tokio::time::Instant, message: String) -> Bounded {
        Bounded {
            inner: Some(inner),
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            message,
        }
    }
}

impl Body for Bounded {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if let Poll::Ready(frame) = Pin::new(inner).poll_frame(context) {
            if !matches!(frame, Some(Ok(ref frame)) if frame.is_data()) {
                self.inner = None;
            }
            return Poll::Ready(frame);
        }
        if self.deadline.as_mut().poll(context).is_pending() {
            return Poll::Pending;
        }
        self.inner = None;
        let mut trailers = HeaderMap::new();
        trailers.insert(GRPC_STATUS, HeaderValue::from_static("4"));
        if let Ok(value) = HeaderValue::from_str(&percent_encode(&self.message)) {
            trailers.insert(GRPC_MESSAGE, value);
        }
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn timeouts_parse_and_format() {
        assert_eq!(parse_timeout("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_timeout("250u"), Some(Duration::from_micros(250)));
        assert_eq!(parse_timeout("123456789n"), None, "9 digits");
        assert_eq!(parse_timeout("m"), None);
        assert_eq!(parse_timeout("10x"), None);
        assert_eq!(parse_timeout("-1S"), None);
        assert_eq!(format_timeout(Duration::from_millis(150)), "150000u");
        assert_eq!(format_timeout(Duration::from_secs(5)), "5000000u");
        assert_eq!(format_timeout(Duration::from_nanos(999)), "999n");
        assert_eq!(format_timeout(Duration::from_secs(3600)), "3600000m");
        assert_eq!(
            format_timeout(Duration::from_nanos(1_000_000_001)),
            "1000001u"
        );
        for text in ["100m", "5S", "1H", "42u"] {
            let parsed = parse_timeout(text).expect("valid");
            assert_eq!(parse_timeout(&format_timeout(parsed)), Some(parsed));
        }
    }

    #[test]
    fn messages_round_trip() {
        let text = "`item` is 100% down: é\n";
        assert_eq!(percent_encode(text), "`item` is 100%25 down: %C3%A9%0A");
        assert_eq!(percent_decode(percent_encode(text).as_bytes()), text);
        assert_eq!(percent_decode(b"50%zz"), "50%zz");
    }

    #[test]
    fn calls_note_status_and_name_errors() {
        let mut call = Call::of("/shop.Items/Get");
        assert_eq!(
            (call.service.as_str(), call.method.as_str()),
            ("shop.Items", "Get")
        );
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("14"));
        trailers.insert("grpc-message", HeaderValue::from_static("down%21"));
        call.note(&trailers);
        assert_eq!(call.error().as_deref(), Some("UNAVAILABLE: down!"));
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        trailers.remove("grpc-message");
        call.note(&trailers);
        assert_eq!(call.error(), None);
    }

    #[test]
    fn grpc_proper_goes_over_http2_and_grpc_web_as_it_is() {
        let with = |content_type: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers
        };
        assert!(needs_http2(
            with("application/grpc+proto")
                .get(header::CONTENT_TYPE)
                .map(HeaderValue::as_bytes)
        ));
        assert!(!needs_http2(
            with("application/grpc-web+proto")
                .get(header::CONTENT_TYPE)
                .map(HeaderValue::as_bytes)
        ));
        assert!(is_grpc(&with("application/grpc-web-text")));
        assert!(!is_grpc(&with("application/json")));
    }

    #[test]
    fn http_statuses_map_as_envoy_maps_them() {
        assert_eq!(from_http(503), GrpcStatus::UNAVAILABLE);
        assert_eq!(from_http(404), GrpcStatus::UNIMPLEMENTED);
        assert_eq!(from_http(500), GrpcStatus::UNKNOWN);
        assert_eq!(from_http(429), GrpcStatus::UNAVAILABLE);
    }

    fn chunks(parts: &[&'static str]) -> ProxyBody {
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = parts
            .iter()
            .map(|part| Ok(Frame::data(Bytes::from_static(part.as_bytes()))))
            .collect();
        http_body_util::StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync()
    }

    #[tokio::test]
    async fn a_small_body_replays_and_a_superseded_try_stops() {
        let replay = Replay::new(chunks(&["ab", "cd", "ef"]), 16);
        let mut first = replay.body();
        let frame = first.frame().await.expect("frame").expect("data");
        assert_eq!(frame.into_data().ok(), Some(Bytes::from_static(b"ab")));
        assert!(replay.replayable());
        let second = replay.body();
        assert!(first.frame().await.expect("frame").is_err(), "superseded");
        let whole = second.collect().await.expect("body").to_bytes();
        assert_eq!(whole, Bytes::from_static(b"abcdef"));
        assert!(replay.replayable());
        let third = replay.body().collect().await.expect("body").to_bytes();
        assert_eq!(third, Bytes::from_static(b"abcdef"));
    }

    #[tokio::test]
    async fn a_large_body_streams_once() {
        let replay = Replay::new(chunks(&["abc", "def", "ghi"]), 4);
        let whole = replay.body().collect().await.expect("body").to_bytes();
        assert_eq!(whole, Bytes::from_static(b"abcdefghi"));
        assert!(!replay.replayable());
    }
}
