//! The gRPC health probe: `grpc.health.v1.Health/Check` over h2c (prior knowledge, as gRPC
//! servers without TLS expect), one call on a fresh connection through hyper's HTTP/2 client.
//! Healthy only when the answer is `SERVING`; otherwise the failure says what came back (the
//! serving status, or the gRPC status and what it means here).
//!
//! The two messages are protobuf (`HealthCheckRequest { string service = 1; }`,
//! `HealthCheckResponse { ServingStatus status = 1; }`), derived with `prost`.

use std::net::SocketAddr;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;
use tokio::net::TcpStream;

/// The method the probe calls.
pub const METHOD: &str = "/grpc.health.v1.Health/Check";

#[derive(Clone, PartialEq, Message)]
struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    service: String,
}

#[derive(Clone, PartialEq, Message)]
struct HealthCheckResponse {
    /// `ServingStatus`: 0 UNKNOWN, 1 SERVING, 2 NOT_SERVING, 3 SERVICE_UNKNOWN.
    #[prost(int32, tag = "1")]
    status: i32,
}

const SERVING: i32 = 1;

/// `HealthCheckResponse.ServingStatus` by number.
pub fn serving_status_name(status: i32) -> String {
    match status {
        0 => "UNKNOWN".into(),
        1 => "SERVING".into(),
        2 => "NOT_SERVING".into(),
        3 => "SERVICE_UNKNOWN".into(),
        other => format!("serving status {other}"),
    }
}

/// gRPC's status codes by number.
pub fn status_name(code: u32) -> &'static str {
    usize::try_from(code)
        .ok()
        .and_then(|code| crate::manifest::GrpcStatus::NAMES.get(code))
        .copied()
        .unwrap_or("an unknown status")
}

/// The request's body: one uncompressed gRPC message holding `HealthCheckRequest { service }`.
pub fn encode_request(service: &str) -> Bytes {
    let message = HealthCheckRequest {
        service: service.to_string(),
    }
    .encode_to_vec();
    frame(&message)
}

/// `message` as one uncompressed gRPC message: flag 0, big-endian length, the bytes.
fn frame(message: &[u8]) -> Bytes {
    let mut framed = BytesMut::with_capacity(5 + message.len());
    framed.put_u8(0);
    framed.put_u32(message.len() as u32);
    framed.put_slice(message);
    framed.freeze()
}

/// The serving status in a response body (one gRPC message).
pub fn decode_response(mut body: &[u8]) -> Result<i32, String> {
    if body.len() < 5 {
        return Err("the answer has no message".into());
    }
    let compressed = body.get_u8();
    let length = body.get_u32() as usize;
    if compressed != 0 {
        return Err("the answer is compressed, which the probe does not ask for".into());
    }
    if body.len() != length {
        return Err(format!(
            "the answer's message is {} bytes, its frame says {length}",
            body.len()
        ));
    }
    HealthCheckResponse::decode(body)
        .map(|response| response.status)
        .map_err(|error| format!("the answer is not a HealthCheckResponse: {error}"))
}

/// One `Health/Check` call for `service` at `address`. `Err` is what came back, in words.
pub async fn probe(address: SocketAddr, service: &str) -> Result<(), String> {
    let what = if service.is_empty() {
        "gRPC health".to_string()
    } else {
        format!("gRPC health of `{service}`")
    };
    let stream = TcpStream::connect(address)
        .await
        .map_err(|error| format!("{what}: connect to port {}: {error}", address.port()))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(|error| {
                format!(
                    "{what}: no HTTP/2 (h2c) on port {}: {error}",
                    address.port()
                )
            })?;
    let driver = AbortOnDrop(tokio::spawn(connection));
    let request = http::Request::post(format!("http://{address}{METHOD}"))
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header(http::header::TE, "trailers")
        .header(http::header::USER_AGENT, "sandbox-health")
        .body(Full::new(encode_request(service)))
        .map_err(|error| format!("{what}: {error}"))?;
    let response = sender.send_request(request).await.map_err(|error| {
        format!(
            "{what}: no HTTP/2 answer on port {} ({}); the probe speaks h2c, HTTP/2 without TLS",
            address.port(),
            describe(&error)
        )
    })?;
    let (head, body) = response.into_parts();
    if head.status != http::StatusCode::OK {
        return Err(format!("{what} → HTTP {}", head.status));
    }
    let body = body
        .collect()
        .await
        .map_err(|error| format!("{what}: reading the answer: {error}"))?;
    // A trailers-only answer (an error) carries the status in the headers.
    let trailers = body.trailers().cloned().unwrap_or_default();
    let field = |name: &str| trailers.get(name).or_else(|| head.headers.get(name));
    let status = field("grpc-status")
        .and_then(|value| value.to_str().ok()?.parse::<u32>().ok())
        .ok_or_else(|| format!("{what}: the answer has no grpc-status"))?;
    drop(driver);
    if status != 0 {
        let message = field("grpc-message")
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .unwrap_or_default();
        return Err(format!(
            "{what} → {}",
            failed_call(status, service, &message)
        ));
    }
    match decode_response(&body.to_bytes())? {
        SERVING => Ok(()),
        other => Err(format!("{what} → {}", serving_status_name(other))),
    }
}

/// A transport error with its causes (hyper's own text is terse: `connection error`).
fn describe(error: &hyper::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// A failed call's status, with what it means for a health probe.
fn failed_call(status: u32, service: &str, message: &str) -> String {
    let name = status_name(status);
    let meaning = match status {
        12 => "the service has no grpc.health.v1.Health".to_string(),
        5 => format!("the health service does not know `{service}`"),
        _ => message.to_string(),
    };
    if meaning.is_empty() {
        name.to_string()
    } else {
        format!("{name}: {meaning}")
    }
}

/// Ends the connection's task when the probe is done (or dropped by its timeout).
struct AbortOnDrop(tokio::task::JoinHandle<Result<(), hyper::Error>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http::{HeaderMap, HeaderValue, Request, Response};
    use http_body_util::StreamBody;
    use hyper::body::{Frame, Incoming};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    type Frames = StreamBody<
        futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>,
    >;

    fn grpc_status(code: u32, message: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", HeaderValue::from(code));
        if !message.is_empty() {
            headers.insert("grpc-message", HeaderValue::from_str(message).unwrap());
        }
        headers
    }

    /// What the test server does with a `Health/Check` for `service`, like grpc's own health
    /// servers: `""` serves, `starting` does not, anything else is unknown; with `health: false`
    /// it has no health service at all.
    async fn answer(
        request: Request<Incoming>,
        health: bool,
    ) -> Result<Response<Frames>, Infallible> {
        let path = request.uri().path().to_string();
        let body = request.into_body().collect().await.unwrap().to_bytes();
        let mut frames = Vec::new();
        let mut response = Response::builder().header("content-type", "application/grpc");
        if !health || path != METHOD {
            for (name, value) in grpc_status(12, "unknown service grpc.health.v1.Health").iter() {
                response = response.header(name, value);
            }
        } else {
            let request = HealthCheckRequest::decode(&body[5..]).unwrap();
            let status = match request.service.as_str() {
                "" => Some(SERVING),
                "starting" => Some(2),
                _ => None,
            };
            match status {
                Some(status) => {
                    let message = HealthCheckResponse { status }.encode_to_vec();
                    frames.push(Ok(Frame::data(frame(&message))));
                    frames.push(Ok(Frame::trailers(grpc_status(0, ""))));
                }
                None => frames.push(Ok(Frame::trailers(grpc_status(5, "unknown service")))),
            }
        }
        Ok(response
            .body(StreamBody::new(futures_util::stream::iter(frames)))
            .unwrap())
    }

    async fn h2c_server(health: bool) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |request| answer(request, health));
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        address
    }

    #[test]
    fn requests_encode_and_responses_decode() {
        assert_eq!(&encode_request("")[..], [0, 0, 0, 0, 0]);
        assert_eq!(&encode_request("a.B")[..], b"\0\0\0\0\x05\x0a\x03a.B");
        assert_eq!(decode_response(&frame(&[0x08, 0x01])), Ok(SERVING));
        assert_eq!(
            decode_response(&frame(&[])),
            Ok(0),
            "proto3 leaves UNKNOWN out"
        );
        assert!(decode_response(&[0, 0, 0, 0, 9, 1]).is_err());
        assert!(decode_response(&frame(&[0x08])).is_err());
        assert_eq!(serving_status_name(2), "NOT_SERVING");
        assert_eq!(status_name(14), "UNAVAILABLE");
        assert_eq!(status_name(99), "an unknown status");
    }

    #[tokio::test]
    async fn the_probe_is_healthy_only_on_serving_and_says_what_came_back() {
        let server = h2c_server(true).await;
        assert_eq!(probe(server, "").await, Ok(()));
        assert_eq!(
            probe(server, "starting").await,
            Err("gRPC health of `starting` → NOT_SERVING".into())
        );
        assert_eq!(
            probe(server, "pkg.Other").await,
            Err("gRPC health of `pkg.Other` → NOT_FOUND: the health service does not know `pkg.Other`".into())
        );
        let without_health = h2c_server(false).await;
        assert_eq!(
            probe(without_health, "").await,
            Err("gRPC health → UNIMPLEMENTED: the service has no grpc.health.v1.Health".into())
        );
    }

    #[tokio::test]
    async fn a_server_without_h2c_or_a_closed_port_is_named() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buffer = [0u8; 1024];
            let _ = socket.read(&mut buffer).await;
            let _ = socket
                .write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
                .await;
        });
        let error = probe(address, "").await.unwrap_err();
        assert!(
            error.starts_with(&format!(
                "gRPC health: no HTTP/2 answer on port {}",
                address.port()
            )),
            "{error}"
        );
        assert!(
            error.ends_with("the probe speaks h2c, HTTP/2 without TLS"),
            "{error}"
        );
        drop(TcpListener::bind(address).await);
        let closed = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let error = probe(closed, "").await.unwrap_err();
        assert!(error.contains("connect to port"), "{error}");
    }
}
