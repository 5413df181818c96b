//! `grpc-peer serve`: an h2c gRPC server (prior knowledge, as gRPC clients connect).
//!
//! - `demo.Echo/Unary`: answers the request's message. Request metadata `echo-status: N` makes it
//!   answer gRPC status N instead (with `grpc-message: requested status N`), to prove statuses
//!   pass through a proxy.
//! - `demo.Echo/ServerStream`: `echo-count` copies (metadata, default 3) of the request's message.
//! - `demo.Echo/ClientStream`: one message, all the request's messages concatenated, and the
//!   trailer `echo-count` with how many there were.
//! - `demo.Echo/Bidi`: each message echoed as soon as it arrives.
//! - `grpc.health.v1.Health/Check`: `SERVING` for `""` and `demo.Echo`, `NOT_SERVING` while
//!   `HEALTH_DELAY` (e.g. `5s`) has not passed since start, gRPC status `NOT_FOUND` for any other
//!   service.
//!
//! Every answer carries `grpc-status` in its trailers (a trailers-only answer for errors). SIGTERM
//! or SIGINT stops accepting connections and lets calls in flight finish (at most 5 s).

use std::convert::Infallible;
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, Request, Response};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::body::{channel, ChannelBody, Sender};
use crate::frame::encode;
use crate::health::{decode_request, encode_response, ServingStatus};
use crate::messages::Messages;

/// The echo service's name, as the health service knows it.
pub const ECHO_SERVICE: &str = "demo.Echo";
const DRAIN: Duration = Duration::from_secs(5);

/// What the server is told by its environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `NOT_SERVING` until this long after start.
    pub health_delay: Duration,
}

/// Serves `listener` until `shutdown` turns true, then drains.
pub async fn serve(listener: TcpListener, settings: Settings, mut shutdown: watch::Receiver<bool>) {
    let started = Instant::now();
    let mut connections = JoinSet::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    eprintln!("grpc-peer: accept: {error}");
                    continue;
                }
            },
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let _ = stream.set_nodelay(true);
        let health_ready = started + settings.health_delay;
        let mut stop = shutdown.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| answer(request, health_ready));
            let connection = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                _ = stop.wait_for(|stop| *stop) => connection.as_mut().graceful_shutdown(),
            }
            let _ = connection.await;
        });
        while connections.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}

async fn answer(
    request: Request<Incoming>,
    health_ready: Instant,
) -> Result<Response<ChannelBody>, Infallible> {
    let path = request.uri().path().to_string();
    let metadata = request.headers().clone();
    let (sender, body) = channel();
    let mut messages = Messages::new(request.into_body());
    match path.as_str() {
        "/demo.Echo/Unary" => {
            tokio::spawn(async move {
                let status = metadata
                    .get("echo-status")
                    .and_then(|value| value.to_str().ok()?.parse::<u32>().ok());
                match (messages.all().await, status) {
                    (Err(error), _) => finish(&sender, 13, &error, &[]).await,
                    (Ok(_), Some(status)) => {
                        let message = format!("requested status {status}");
                        finish(&sender, status, &message, &[]).await
                    }
                    (Ok(received), None) => match received.as_slice() {
                        [message] => {
                            send(&sender, message).await;
                            finish(&sender, 0, "", &[]).await
                        }
                        _ => {
                            let message =
                                format!("a unary call takes one message, not {}", received.len());
                            finish(&sender, 3, &message, &[]).await
                        }
                    },
                }
            });
        }
        "/demo.Echo/ServerStream" => {
            let count = metadata
                .get("echo-count")
                .and_then(|value| value.to_str().ok()?.parse::<usize>().ok())
                .unwrap_or(3);
            tokio::spawn(async move {
                match messages.all().await {
                    Ok(received) => {
                        let message = received.concat();
                        for _ in 0..count {
                            send(&sender, &message).await;
                        }
                        finish(&sender, 0, "", &[]).await;
                    }
                    Err(error) => finish(&sender, 13, &error, &[]).await,
                }
            });
        }
        "/demo.Echo/ClientStream" => {
            tokio::spawn(async move {
                match messages.all().await {
                    Ok(received) => {
                        send(&sender, &received.concat()).await;
                        let count = received.len().to_string();
                        finish(&sender, 0, "", &[("echo-count", &count)]).await;
                    }
                    Err(error) => finish(&sender, 13, &error, &[]).await,
                }
            });
        }
        "/demo.Echo/Bidi" => {
            tokio::spawn(async move {
                loop {
                    match messages.next().await {
                        Ok(Some(message)) => send(&sender, &message).await,
                        Ok(None) => break finish(&sender, 0, "", &[]).await,
                        Err(error) => break finish(&sender, 13, &error, &[]).await,
                    }
                }
            });
        }
        "/grpc.health.v1.Health/Check" => {
            tokio::spawn(async move {
                let request = match messages.all().await {
                    Ok(received) => received.concat(),
                    Err(error) => return finish(&sender, 13, &error, &[]).await,
                };
                match decode_request(&request) {
                    Ok(service) if service.is_empty() || service == ECHO_SERVICE => {
                        let status = if Instant::now() < health_ready {
                            ServingStatus::NotServing
                        } else {
                            ServingStatus::Serving
                        };
                        send(&sender, &encode_response(status)).await;
                        finish(&sender, 0, "", &[]).await;
                    }
                    Ok(service) => {
                        let message = format!("unknown service {service}");
                        finish(&sender, 5, &message, &[]).await
                    }
                    Err(error) => finish(&sender, 3, &error, &[]).await,
                }
            });
        }
        _ => return Ok(trailers_only(12, &format!("no method {path}"))),
    }
    Ok(grpc_response(body))
}

fn grpc_response(body: ChannelBody) -> Response<ChannelBody> {
    let mut response = Response::new(body);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    response
}

/// An answer with no messages: the status in the headers, as gRPC servers send errors.
fn trailers_only(status: u32, message: &str) -> Response<ChannelBody> {
    let (_, body) = channel();
    let mut response = grpc_response(body);
    response
        .headers_mut()
        .extend(status_headers(status, message, &[]));
    response
}

fn status_headers(status: u32, message: &str, extra: &[(&str, &str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("grpc-status", HeaderValue::from(status));
    if let Ok(message) = HeaderValue::from_str(&percent_encode(message)) {
        if !message.is_empty() {
            headers.insert("grpc-message", message);
        }
    }
    for (name, value) in extra {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
    headers
}

/// gRPC's `grpc-message` encoding: bytes outside printable ASCII and `%` as `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (0x20..0x7f).contains(&byte) && byte != b'%' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

async fn send(sender: &Sender, message: &[u8]) {
    let _ = sender.send(Frame::data(encode(message))).await;
}

async fn finish(sender: &Sender, status: u32, message: &str, extra: &[(&str, &str)]) {
    let _ = sender
        .send(Frame::trailers(status_headers(status, message, extra)))
        .await;
}
