//! A standalone trace server, for the benchmark (`bench/zipkin.sh`) and manual runs until the CLI's
//! `sandbox zipkin` is wired: `cargo run --release --example zipkin_server -- [PORT] [MAX_SPANS]`.

use std::net::{Ipv4Addr, SocketAddr};

use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let port = args
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(sandbox::trace::DEFAULT_PORT);
    let max_spans = args.next().and_then(|m| m.parse().ok()).unwrap_or(500_000);
    let shutdown = CancellationToken::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            let _ = tokio::signal::ctrl_c().await;
            shutdown.cancel();
        }
    });
    let bind = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    match sandbox::trace::run_standalone(bind, max_spans, shutdown).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::from(2)
        }
    }
}
