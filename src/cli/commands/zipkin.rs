//! `sandbox zipkin`: the trace server alone, no Docker needed.

use std::net::{IpAddr, SocketAddr};

use crate::cli::signals::Shutdown;
use crate::output::Printer;
use crate::trace::{self, Store, TraceConfig};

#[derive(Debug, clap::Args)]
pub struct ZipkinArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = trace::DEFAULT_PORT)]
    pub port: u16,
    /// Address to listen on; loopback unless you widen it.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Spans kept before the oldest traces are evicted.
    #[arg(long, default_value_t = 500_000)]
    pub max_spans: usize,
    /// Send a copy of every span to this Zipkin collector (`http://host:9411/api/v2/spans`).
    #[arg(long, value_name = "URL")]
    pub forward: Option<String>,
}

pub async fn run(args: ZipkinArgs, printer: &Printer) -> anyhow::Result<u8> {
    let address = SocketAddr::new(args.host, args.port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|error| {
            anyhow::anyhow!(
                "cannot listen on {address}: {error}\n  hint: pick another port with `--port`"
            )
        })?;
    let bound = listener.local_addr()?;
    printer.stderr_line(&format!(
        "zipkin listening on http://{bound} (UI at http://{bound}/zipkin/, spans to http://{bound}/api/v2/spans); Ctrl-C stops"
    ));
    let shutdown = Shutdown::install();
    let config = TraceConfig {
        max_spans: args.max_spans,
        forward: args.forward,
        ..TraceConfig::default()
    };
    trace::serve(
        vec![listener],
        Store::new(args.max_spans),
        config,
        shutdown.graceful.clone(),
    )
    .await?;
    Ok(0)
}
