//! `grpc-peer call URL KIND`: one gRPC call over h2c (prior knowledge), checked, reported as one
//! JSON line on stdout: `kind`, `ok`, `status`, `message`, `received` (the lengths of the messages
//! that came back), `trailers`, and `error` when the call failed before a status came back.
//!
//! Kinds: `unary`, `server-stream` (`--count` copies asked for), `client-stream` (`--count`
//! messages sent, their concatenation and an `echo-count` trailer expected), `bidi` (`--count`
//! messages, each sent only after the echo of the one before came back, so a proxy that buffers
//! the stream fails the call), `health` (`grpc.health.v1.Health/Check` for `--service`, `SERVING`
//! expected). Messages are `--size` bytes (default 16).

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Map, Value};
use tokio::net::TcpStream;

use crate::body::{channel, Sender};
use crate::frame::encode;
use crate::health::{decode_response, encode_request, ServingStatus};
use crate::messages::Messages;

/// What to call and how.
#[derive(Debug, Clone)]
pub struct Call {
    /// `http://host:port`, optionally with a path prefix.
    pub url: String,
    pub kind: String,
    pub size: usize,
    pub count: usize,
    /// For `health`: the service asked about.
    pub service: String,
    /// A B3 trace id (32 hex digits) to send, so the caller can find the call's spans.
    pub trace_id: Option<String>,
}

/// The whole call's bound.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Makes the call; the report, and whether it succeeded.
pub async fn call(call: &Call) -> (Value, bool) {
    let mut report = Map::new();
    report.insert("kind".into(), json!(call.kind));
    let outcome = tokio::time::timeout(CALL_TIMEOUT, run(call, &mut report)).await;
    let ok = match outcome {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            report.insert("error".into(), json!(error));
            false
        }
        Err(_) => {
            report.insert(
                "error".into(),
                json!(format!("no end of call within {CALL_TIMEOUT:?}")),
            );
            false
        }
    };
    report.insert("ok".into(), json!(ok));
    (Value::Object(report), ok)
}

/// Message `index` of a call: `size` letters, shifted by `index` so each differs.
pub fn payload(index: usize, size: usize) -> Vec<u8> {
    (0..size)
        .map(|at| b'a' + ((at + index) % 26) as u8)
        .collect()
}

async fn run(call: &Call, report: &mut Map<String, Value>) -> Result<(), String> {
    let (authority, prefix) = split_url(&call.url)?;
    let method = match call.kind.as_str() {
        "unary" => "demo.Echo/Unary",
        "server-stream" => "demo.Echo/ServerStream",
        "client-stream" => "demo.Echo/ClientStream",
        "bidi" => "demo.Echo/Bidi",
        "health" => "grpc.health.v1.Health/Check",
        other => {
            return Err(format!(
                "unknown kind `{other}` (unary, server-stream, client-stream, bidi, health)"
            ))
        }
    };
    let stream = TcpStream::connect(&authority)
        .await
        .map_err(|error| format!("connect to {authority}: {error}"))?;
    let _ = stream.set_nodelay(true);
    let (mut client, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(|error| format!("HTTP/2 handshake with {authority}: {error}"))?;
    tokio::spawn(connection);

    let (body_sender, body) = channel();
    let mut request = Request::post(format!("http://{authority}{prefix}/{method}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("echo-count", call.count.to_string());
    if let Some(trace_id) = &call.trace_id {
        request = request.header(
            "b3",
            format!("{trace_id}-{}-1", &trace_id[trace_id.len() - 16..]),
        );
    }
    let request = request.body(body).map_err(|error| error.to_string())?;
    let response = client.send_request(request);

    let sent: Vec<Vec<u8>> = match call.kind.as_str() {
        "health" => vec![encode_request(&call.service)],
        "client-stream" | "bidi" => (0..call.count)
            .map(|index| payload(index, call.size))
            .collect(),
        _ => vec![payload(0, call.size)],
    };
    let bidi = call.kind == "bidi";
    // A bidi call sends one message at a time, each after the echo of the one before.
    let upfront = if bidi { 1 } else { sent.len() };
    for message in &sent[..upfront.min(sent.len())] {
        send(&body_sender, message).await?;
    }
    let body_sender = if bidi {
        Some(body_sender)
    } else {
        drop(body_sender);
        None
    };

    let response = response
        .await
        .map_err(|error| format!("POST /{method}: {error}"))?;
    report.insert("http_status".into(), json!(response.status().as_u16()));
    if let Some(trace) = response.headers().get("x-sandbox-trace-id") {
        report.insert("trace_id".into(), json!(trace.to_str().unwrap_or_default()));
    }
    let headers = response.headers().clone();
    let mut messages = Messages::new(response.into_body());
    let mut received: Vec<Bytes> = Vec::new();
    let mut body_sender = body_sender;
    loop {
        let message = match messages.next().await {
            Ok(Some(message)) => message,
            Ok(None) => break,
            Err(error) => {
                report_received(report, &received);
                return Err(error);
            }
        };
        received.push(message);
        if let Some(sender) = &body_sender {
            match sent.get(received.len()) {
                Some(next) => send(sender, next).await?,
                None => body_sender = None,
            }
        }
    }
    drop(body_sender);
    report_received(report, &received);

    // A trailers-only answer carries the status in the headers.
    let trailers = messages.trailers.clone().unwrap_or(headers);
    let status = trailers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok()?.parse::<u32>().ok());
    let message = trailers
        .get("grpc-message")
        .map(|value| percent_decode(value.as_bytes()))
        .unwrap_or_default();
    report.insert("status".into(), json!(status));
    report.insert("message".into(), json!(message));
    report.insert("trailers".into(), trailers_json(&trailers));
    match status {
        Some(0) => {}
        Some(status) => return Err(format!("grpc-status {status}: {message}")),
        None => return Err("the answer has no grpc-status".into()),
    }
    check(call, &sent, &received, &trailers)
}

/// Whether what came back is what the kind promises.
fn check(
    call: &Call,
    sent: &[Vec<u8>],
    received: &[Bytes],
    trailers: &HeaderMap,
) -> Result<(), String> {
    let expected: Vec<Vec<u8>> = match call.kind.as_str() {
        "unary" => sent.to_vec(),
        "server-stream" => vec![sent[0].clone(); call.count],
        "client-stream" => {
            let count = trailers
                .get("echo-count")
                .and_then(|value| value.to_str().ok());
            if count != Some(call.count.to_string().as_str()) {
                return Err(format!(
                    "trailer echo-count is {count:?}, not {}",
                    call.count
                ));
            }
            vec![sent.concat()]
        }
        "bidi" => sent.to_vec(),
        _ => {
            let [message] = received else {
                return Err(format!("{} health answers, not one", received.len()));
            };
            let status = decode_response(message)?;
            return if status == ServingStatus::Serving {
                Ok(())
            } else {
                Err(format!("the service is {}", status.name()))
            };
        }
    };
    if received.len() != expected.len() {
        return Err(format!(
            "{} messages came back, not {}",
            received.len(),
            expected.len()
        ));
    }
    match received
        .iter()
        .zip(&expected)
        .position(|(got, want)| got[..] != want[..])
    {
        Some(index) => Err(format!("message {index} came back changed")),
        None => Ok(()),
    }
}

async fn send(sender: &Sender, message: &[u8]) -> Result<(), String> {
    sender
        .send(Frame::data(encode(message)))
        .await
        .map_err(|_| "the request stream closed early".to_string())
}

fn report_received(report: &mut Map<String, Value>, received: &[Bytes]) {
    let lengths: Vec<usize> = received.iter().map(Bytes::len).collect();
    report.insert("received".into(), json!(lengths));
}

fn trailers_json(trailers: &HeaderMap) -> Value {
    let map: Map<String, Value> = trailers
        .iter()
        .filter(|(name, _)| {
            name.as_str().starts_with("grpc-") || name.as_str().starts_with("echo-")
        })
        .map(|(name, value)| {
            (
                name.to_string(),
                json!(String::from_utf8_lossy(value.as_bytes())),
            )
        })
        .collect();
    Value::Object(map)
}

/// `http://host:port/prefix` → (`host:port`, `/prefix` without its trailing `/`).
fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("`{url}` is not an http:// URL (h2c only)"))?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let authority = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let prefix = path.trim_end_matches('/');
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("/{prefix}")
    };
    Ok((authority, prefix))
}

fn percent_decode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = bytes
            .get(at + 1..at + 3)
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match (bytes[at], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                at += 3;
            }
            (byte, _) => {
                out.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_authority_and_prefix() {
        assert_eq!(
            split_url("http://echo.sandbox:15001").unwrap(),
            ("echo.sandbox:15001".into(), String::new())
        );
        assert_eq!(
            split_url("http://echo/api/").unwrap(),
            ("echo:80".into(), "/api".into())
        );
        assert!(split_url("https://echo").is_err());
    }

    #[test]
    fn grpc_messages_are_percent_decoded() {
        assert_eq!(percent_decode(b"no%20such%ZZ"), "no such%ZZ");
    }
}
