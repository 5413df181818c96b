//! `grpc-peer`: a gRPC server and client over h2c for sandbox's end-to-end tests, built static
//! (`build.sh`) so it runs in a `FROM scratch` image.
//!
//! ```text
//! grpc-peer serve                      # PORT (default 50051), HEALTH_DELAY (e.g. 5s)
//! grpc-peer call URL KIND [--size N] [--count N] [--service NAME] [--trace-id HEX]
//! ```
//! `serve` is described in `server`, `call` in `client`. Exit codes: 0 success, 1 the call failed
//! (its JSON line says why), 2 bad arguments or the port could not be bound.
//!
//! # Layout
//! - `frame`: gRPC's length-prefixed messages; `messages`: a body read as messages.
//! - `health`: `grpc.health.v1`'s messages, hand-encoded protobuf.
//! - `body`: a body fed from a channel; `server`, `client`: the two verbs.

// Tests may unwrap: a failure there is the test failing.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod body;
mod client;
mod frame;
mod health;
mod messages;
mod server;

use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: grpc-peer serve | grpc-peer call URL KIND [--size N] [--count N] [--service NAME] [--trace-id HEX]
  KIND: unary, server-stream, client-stream, bidi, health";

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("grpc-peer: cannot start the runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match arguments.first().map(String::as_str) {
        Some("serve") => runtime.block_on(serve()),
        Some("call") => match parse_call(&arguments[1..]) {
            Ok(call) => {
                let (report, ok) = runtime.block_on(client::call(&call));
                println!("{report}");
                ExitCode::from(if ok { 0 } else { 1 })
            }
            Err(error) => {
                eprintln!("grpc-peer: {error}\n{USAGE}");
                ExitCode::from(2)
            }
        },
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

async fn serve() -> ExitCode {
    let port = std::env::var("PORT").unwrap_or_else(|_| "50051".into());
    let health_delay = match std::env::var("HEALTH_DELAY") {
        Ok(text) => match parse_duration(&text) {
            Some(delay) => delay,
            None => {
                eprintln!(
                    "grpc-peer: HEALTH_DELAY `{text}` is not a duration like `5s` or `500ms`"
                );
                return ExitCode::from(2);
            }
        },
        Err(_) => Duration::ZERO,
    };
    let listener = match tokio::net::TcpListener::bind(format!("0.0.0.0:{port}")).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("grpc-peer: cannot listen on port {port}: {error}");
            return ExitCode::from(2);
        }
    };
    eprintln!("grpc-peer: serving h2c on port {port} (health SERVING after {health_delay:?})");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        eprintln!("grpc-peer: stopping");
        let _ = stop.send(true);
    });
    server::serve(listener, server::Settings { health_delay }, stopped).await;
    ExitCode::SUCCESS
}

/// SIGTERM (what `docker stop` sends) or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut terminate), Ok(mut interrupt)) => {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

fn parse_call(arguments: &[String]) -> Result<client::Call, String> {
    let [url, kind, options @ ..] = arguments else {
        return Err("`call` needs a URL and a KIND".into());
    };
    let mut call = client::Call {
        url: url.clone(),
        kind: kind.clone(),
        size: 16,
        count: 3,
        service: String::new(),
        trace_id: None,
    };
    let mut options = options.iter();
    while let Some(option) = options.next() {
        let value = options
            .next()
            .ok_or_else(|| format!("`{option}` needs a value"))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|_| format!("`{option}` takes a number, not `{value}`"))
        };
        match option.as_str() {
            "--size" => call.size = number()?,
            "--count" => call.count = number()?,
            "--service" => call.service = value.clone(),
            "--trace-id" => {
                let hex = value.len() == 32 && value.bytes().all(|byte| byte.is_ascii_hexdigit());
                if !hex {
                    return Err(format!("`--trace-id` takes 32 hex digits, not `{value}`"));
                }
                call.trace_id = Some(value.to_ascii_lowercase());
            }
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    Ok(call)
}

/// `500ms`, `5s`, `2m`, `1h`.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    Some(match unit {
        "ms" => Duration::from_millis(number),
        "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number * 60),
        "h" => Duration::from_secs(number * 3600),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_options_parse() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("5"), None);
        let words = |text: &str| text.split(' ').map(String::from).collect::<Vec<_>>();
        let call = parse_call(&words("http://echo:50051 bidi --count 5 --size 100")).unwrap();
        assert_eq!((call.count, call.size), (5, 100));
        assert!(parse_call(&words("http://echo:50051 bidi --trace-id 12")).is_err());
        assert!(parse_call(&words("http://echo:50051")).is_err());
    }
}
