//! gRPC-Web at the gateway, per route (`grpc_web: true`, or `grpc_web: {allow_origins: [...]}`):
//! what a browser sends is translated to gRPC for the service, and the answer back, as Envoy's
//! `grpc_web` and `cors` filters do together.
//!
//! - Requests: `application/grpc-web` and `application/grpc-web+proto` carry gRPC's own message
//!   framing and pass as they are; `application/grpc-web-text` is base64, decoded as it streams
//!   (a quantum split across chunks waits for its rest; padded segments may follow each other).
//!   The service gets `application/grpc(+proto)` with `te: trailers`, over h2c, whichever
//!   protocol the browser spoke (HTTP/1.1 included).
//! - Responses: the trailers become a last frame in the body (flag `0x80`, then `name:value\r\n`
//!   lines); a trailers-only answer keeps its status in the headers; text responses are base64,
//!   encoded as they stream.
//! - CORS: a preflight (`OPTIONS` with `access-control-request-method`) is answered here with the
//!   methods and headers gRPC-Web clients send; every answer names the origin and exposes
//!   `grpc-status` and `grpc-message`. Allowed origins: the list given (`*` for any), by default
//!   any page served from this machine (`localhost`, `*.localhost`, `127.0.0.1`, `[::1]`, any
//!   port). A page from another origin gets `403` (`PERMISSION_DENIED`) saying which key allows
//!   it; a request without `Origin` (not from a browser) is served.
//!
//! It must not know about listeners or transports: `phases` calls [`route_filter`], wraps the
//! request body in [`Decoded`] and the response with [`Web::response`].

use std::pin::Pin;
use std::task::{Context, Poll};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};

use crate::manifest::GrpcWeb;

use super::body::{empty, BoxError, ProxyBody};
use super::config::ProxyConfig;
use super::error::ProxyError;
use super::session::Session;

/// Headers a browser may read from an answer.
const EXPOSE: &str = "grpc-status, grpc-message, grpc-status-details-bin, x-request-id, \
                      x-sandbox-upstream, x-sandbox-trace-id";
/// Headers gRPC-Web clients send, allowed when a preflight does not list its own.
const ALLOW_HEADERS: &str =
    "content-type, x-grpc-web, x-user-agent, grpc-timeout, authorization, x-request-id";

/// A gRPC-Web call in flight: how to translate its answer.
#[derive(Debug, Clone)]
pub struct Web {
    /// `application/grpc-web-text`: base64 both ways.
    text: bool,
    /// The page's origin, echoed in `access-control-allow-origin`.
    origin: Option<HeaderValue>,
    /// The call's own content type, which the answer gets back (`application/grpc-web+proto`).
    content_type: HeaderValue,
}

/// What the filter made of a request on a `grpc_web` route.
pub enum Filtered {
    /// Not gRPC-Web (plain gRPC, or anything else): proxied as it is.
    Pass,
    /// A CORS preflight, answered here.
    Preflight(Response<ProxyBody>),
    /// A gRPC-Web call, its headers now gRPC's.
    Call(Web),
}

/// On a route with `grpc_web`: a preflight's answer, or `None` to go on, with a gRPC-Web call's
/// headers made gRPC's and its translation back noted in the session.
pub fn route_filter<B>(
    config: &ProxyConfig,
    session: &mut Session,
    request: &mut http::Request<B>,
) -> Result<Option<Response<ProxyBody>>, ProxyError> {
    let settings = session
        .route_index
        .and_then(|index| config.routes.get(index))
        .and_then(|route| route.grpc_web());
    let Some(settings) = settings else {
        return Ok(None);
    };
    let method = request.method().clone();
    match request_filter(settings, &session.route, &method, request.headers_mut())? {
        Filtered::Preflight(response) => return Ok(Some(response)),
        Filtered::Call(web) => session.web = Some(web),
        Filtered::Pass => {}
    }
    Ok(None)
}

/// Answers preflights, checks the origin and turns a gRPC-Web request's headers into gRPC's.
pub fn request_filter(
    settings: &GrpcWeb,
    route: &str,
    method: &Method,
    headers: &mut HeaderMap,
) -> Result<Filtered, ProxyError> {
    let origin = headers.get(header::ORIGIN).cloned();
    let refused = || ProxyError::OriginRefused {
        origin: origin
            .as_ref()
            .map(|origin| String::from_utf8_lossy(origin.as_bytes()).into_owned())
            .unwrap_or_default(),
        route: route.to_string(),
    };
    let allowed = origin
        .as_ref()
        .is_none_or(|origin| origin.to_str().is_ok_and(|origin| settings.allows(origin)));
    if method == Method::OPTIONS && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
        if !allowed {
            return Err(refused());
        }
        return Ok(Filtered::Preflight(preflight(origin, headers)));
    }
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return Ok(Filtered::Pass);
    };
    let Some(rest) = content_type.strip_prefix("application/grpc-web") else {
        return Ok(Filtered::Pass);
    };
    if !allowed {
        return Err(refused());
    }
    let (text, suffix) = match rest.strip_prefix("-text") {
        Some(suffix) => (true, suffix),
        None => (false, rest),
    };
    let grpc = HeaderValue::from_str(&format!("application/grpc{suffix}"))
        .unwrap_or(HeaderValue::from_static("application/grpc"));
    let content_type = headers
        .insert(header::CONTENT_TYPE, grpc)
        .unwrap_or(HeaderValue::from_static("application/grpc-web"));
    headers.insert(header::TE, HeaderValue::from_static("trailers"));
    if text {
        headers.remove(header::CONTENT_LENGTH);
    }
    Ok(Filtered::Call(Web {
        text,
        origin,
        content_type,
    }))
}

fn preflight(origin: Option<HeaderValue>, request: &HeaderMap) -> Response<ProxyBody> {
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    let asked = request
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or(HeaderValue::from_static(ALLOW_HEADERS));
    cors(headers, origin);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, OPTIONS"),
    );
    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked);
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    response
}

fn cors(headers: &mut HeaderMap, origin: Option<HeaderValue>) {
    let Some(origin) = origin else {
        return;
    };
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE),
    );
    headers.append(header::VARY, HeaderValue::from_static("origin"));
}

impl Web {
    /// The service's (or the proxy's) gRPC answer as gRPC-Web: content type, CORS, trailers as
    /// the body's last frame, base64 for text.
    pub fn response(&self, response: Response<ProxyBody>) -> Response<ProxyBody> {
        let (mut parts, body) = response.into_parts();
        if super::grpc::is_grpc(&parts.headers) {
            parts
                .headers
                .insert(header::CONTENT_TYPE, self.content_type.clone());
        }
        parts.headers.remove(header::CONTENT_LENGTH);
        cors(&mut parts.headers, self.origin.clone());
        let body = Encoder {
            inner: body,
            text: self.text,
            carry: Vec::new(),
            done: false,
        };
        Response::from_parts(parts, body.boxed_unsync())
    }
}

/// The trailers as gRPC-Web's trailer frame: flag `0x80`, length, `name:value\r\n` lines.
fn trailer_frame(trailers: &HeaderMap) -> Bytes {
    let mut block = Vec::new();
    for (name, value) in trailers {
        block.extend_from_slice(name.as_str().as_bytes());
        block.push(b':');
        block.extend_from_slice(value.as_bytes());
        block.extend_from_slice(b"\r\n");
    }
    let mut frame = BytesMut::with_capacity(5 + block.len());
    frame.extend_from_slice(&[0x80]);
    frame.extend_from_slice(&(block.len() as u32).to_be_bytes());
    frame.extend_from_slice(&block);
    frame.freeze()
}

/// The response body as gRPC-Web.
struct Encoder {
    inner: ProxyBody,
    text: bool,
    /// Text: the bytes (fewer than 3) not yet encoded, waiting for the next chunk.
    carry: Vec<u8>,
    done: bool,
}

impl Encoder {
    /// Text: `bytes` after the carry, encoded up to a whole number of 3-byte groups (all of it,
    /// padded, when `last`).
    fn encode(&mut self, bytes: &[u8], last: bool) -> Bytes {
        if !self.text {
            return Bytes::copy_from_slice(bytes);
        }
        self.carry.extend_from_slice(bytes);
        let whole = if last {
            self.carry.len()
        } else {
            self.carry.len() / 3 * 3
        };
        let encoded = STANDARD.encode(&self.carry[..whole]);
        self.carry.drain(..whole);
        Bytes::from(encoded)
    }
}

impl Body for Encoder {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            let frame = match Pin::new(&mut this.inner).poll_frame(context) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error))),
                Poll::Ready(None) => {
                    this.done = true;
                    if this.carry.is_empty() {
                        return Poll::Ready(None);
                    }
                    let rest = this.encode(&[], true);
                    return Poll::Ready(Some(Ok(Frame::data(rest))));
                }
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            match frame.into_data() {
                Ok(data) if !this.text => return Poll::Ready(Some(Ok(Frame::data(data)))),
                Ok(data) => {
                    let encoded = this.encode(&data, false);
                    if !encoded.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(encoded))));
                    }
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        this.done = true;
                        let last = trailer_frame(&trailers);
                        let last = this.encode(&last, true);
                        return Poll::Ready(Some(Ok(Frame::data(last))));
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || (self.inner.is_end_stream() && self.carry.is_empty())
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// A request body as the service gets it: as sent, or decoded from base64 (gRPC-Web text).
pub enum Decoded<B> {
    Plain(B),
    Text {
        inner: B,
        /// Base64 characters (fewer than a 4-character quantum) waiting for the next chunk.
        carry: Vec<u8>,
    },
}

impl<B> Decoded<B> {
    /// `body`, decoded when `web` is a text call.
    pub fn new(body: B, web: Option<&Web>) -> Decoded<B> {
        match web {
            Some(web) if web.text => Decoded::Text {
                inner: body,
                carry: Vec::new(),
            },
            _ => Decoded::Plain(body),
        }
    }
}

/// Decodes the whole quanta of `carry` (a quantum with padding ends a segment; another may
/// follow), leaving the incomplete rest in it.
fn decode_quanta(carry: &mut Vec<u8>) -> Result<Vec<u8>, BoxError> {
    carry.retain(|byte| !byte.is_ascii_whitespace());
    let whole = carry.len() / 4 * 4;
    let mut decoded = Vec::with_capacity(whole / 4 * 3);
    let mut start = 0;
    for end in (4..=whole).step_by(4) {
        if carry[end - 1] == b'=' || end == whole {
            STANDARD
                .decode_vec(&carry[start..end], &mut decoded)
                .map_err(|error| format!("invalid base64 in a gRPC-Web text body: {error}"))?;
            start = end;
        }
    }
    carry.drain(..whole);
    Ok(decoded)
}

impl<B> Body for Decoded<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Decoded::Plain(inner) => Pin::new(inner)
                .poll_frame(context)
                .map(|frame| frame.map(|frame| frame.map_err(Into::into))),
            Decoded::Text { inner, carry } => loop {
                let frame = match Pin::new(&mut *inner).poll_frame(context) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(None) if carry.is_empty() => return Poll::Ready(None),
                    Poll::Ready(None) => {
                        let error = "a gRPC-Web text body ends inside a base64 quantum";
                        carry.clear();
                        return Poll::Ready(Some(Err(error.into())));
                    }
                    Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error.into()))),
                    Poll::Ready(Some(Ok(frame))) => frame,
                };
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                carry.extend_from_slice(&data);
                let decoded = decode_quanta(carry);
                match decoded {
                    Ok(decoded) if decoded.is_empty() => continue,
                    Ok(decoded) => return Poll::Ready(Some(Ok(Frame::data(Bytes::from(decoded))))),
                    Err(error) => return Poll::Ready(Some(Err(error))),
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Decoded::Plain(inner) => inner.is_end_stream(),
            Decoded::Text { inner, carry } => inner.is_end_stream() && carry.is_empty(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Decoded::Plain(inner) => inner.size_hint(),
            Decoded::Text { .. } => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    fn chunked(parts: Vec<Frame<Bytes>>) -> ProxyBody {
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = parts.into_iter().map(Ok).collect();
        StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync()
    }

    fn data(text: &'static [u8]) -> Frame<Bytes> {
        Frame::data(Bytes::from_static(text))
    }

    #[tokio::test]
    async fn text_bodies_decode_across_chunks_and_padded_segments() {
        // "hello" = aGVsbG8= ; "!" = IQ== ; split mid-quantum.
        let body = chunked(vec![data(b"aGV"), data(b"sbG8="), data(b"I"), data(b"Q==")]);
        let web = Web {
            text: true,
            origin: None,
            content_type: HeaderValue::from_static("application/grpc-web-text"),
        };
        let decoded = Decoded::new(body, Some(&web));
        let bytes = decoded.collect().await.expect("decodes").to_bytes();
        assert_eq!(bytes, Bytes::from_static(b"hello!"));
        let broken = Decoded::new(chunked(vec![data(b"aGV")]), Some(&web));
        assert!(broken.collect().await.is_err());
    }

    #[tokio::test]
    async fn responses_end_with_a_trailer_frame() {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        let upstream = chunked(vec![data(b"\0\0\0\0\x02hi"), Frame::trailers(trailers)]);
        let mut response = Response::new(upstream);
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc+proto"),
        );
        let web = Web {
            text: false,
            origin: Some(HeaderValue::from_static("http://localhost:3000")),
            content_type: HeaderValue::from_static("application/grpc-web+proto"),
        };
        let translated = web.response(response);
        assert_eq!(
            translated.headers()[header::CONTENT_TYPE],
            "application/grpc-web+proto"
        );
        assert_eq!(
            translated.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "http://localhost:3000"
        );
        let collected = translated.into_body().collect().await.expect("body");
        assert!(collected.trailers().is_none());
        let bytes = collected.to_bytes();
        assert_eq!(&bytes[..7], b"\0\0\0\0\x02hi");
        assert_eq!(&bytes[7..], b"\x80\0\0\0\x0fgrpc-status:0\r\n");
    }

    #[tokio::test]
    async fn text_responses_are_base64_whatever_the_chunks() {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        let upstream = chunked(vec![
            data(b"ab"),
            data(b"cde"),
            Frame::trailers(trailers.clone()),
        ]);
        let web = Web {
            text: true,
            origin: None,
            content_type: HeaderValue::from_static("application/grpc-web-text"),
        };
        let bytes = web
            .response(Response::new(upstream))
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let mut expected = b"abcde".to_vec();
        expected.extend_from_slice(&trailer_frame(&trailers));
        assert_eq!(STANDARD.decode(&bytes).expect("one base64 text"), expected);
    }

    #[test]
    fn preflights_and_origins() {
        let web = GrpcWeb::default();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://localhost:3000"),
        );
        headers.insert(
            header::ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_static("POST"),
        );
        let Ok(Filtered::Preflight(response)) =
            request_filter(&web, "prefix:/", &Method::OPTIONS, &mut headers)
        else {
            panic!("a preflight");
        };
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert!(response.headers()[header::ACCESS_CONTROL_EXPOSE_HEADERS]
            .to_str()
            .expect("text")
            .contains("grpc-status"));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(matches!(
            request_filter(&web, "prefix:/", &Method::OPTIONS, &mut headers),
            Err(ProxyError::OriginRefused { .. })
        ));
        let mut call = HeaderMap::new();
        call.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc-web-text+proto"),
        );
        let Ok(Filtered::Call(found)) = request_filter(&web, "prefix:/", &Method::POST, &mut call)
        else {
            panic!("a call");
        };
        assert!(found.text);
        assert_eq!(call[header::CONTENT_TYPE], "application/grpc+proto");
        assert_eq!(call[header::TE], "trailers");
    }
}
