//! `sandbox zipkin`: the trace server alone, no Docker needed: the Zipkin API and UI, and the
//! OTLP/HTTP and OTLP/gRPC receivers.

use std::net::{IpAddr, SocketAddr};

use tokio::net::TcpListener;

use crate::cli::signals::Shutdown;
use crate::output::Printer;
use crate::trace::{self, otlp, Listeners, Store, TraceConfig};

#[derive(Debug, clap::Args)]
pub struct ZipkinArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = trace::DEFAULT_PORT)]
    pub port: u16,
    /// Port of the OTLP/HTTP receiver [default: 4318, or a free one when 4318 is taken].
    #[arg(long, value_name = "N")]
    pub otlp_http_port: Option<u16>,
    /// Port of the OTLP/gRPC receiver [default: 4317, or a free one when 4317 is taken].
    #[arg(long, value_name = "N")]
    pub otlp_grpc_port: Option<u16>,
    /// Address to listen on; loopback unless you widen it.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Spans kept before the oldest traces are evicted.
    #[arg(long, default_value_t = 500_000)]
    pub max_spans: usize,
    /// Log records kept before the oldest are evicted.
    #[arg(long, default_value_t = trace::logs::DEFAULT_MAX_LOGS)]
    pub max_logs: usize,
    /// Send a copy of every span to this Zipkin collector (`http://host:9411/api/v2/spans`).
    #[arg(long, value_name = "URL")]
    pub forward: Option<String>,
}

/// Binds `port` on `host`; a default port that is taken moves to a free one.
async fn listen(
    host: IpAddr,
    port: Option<u16>,
    default: u16,
    flag: &str,
) -> anyhow::Result<TcpListener> {
    let address = SocketAddr::new(host, port.unwrap_or(default));
    match TcpListener::bind(address).await {
        Ok(listener) => Ok(listener),
        Err(_) if port.is_none() => Ok(TcpListener::bind(SocketAddr::new(host, 0)).await?),
        Err(error) => Err(anyhow::anyhow!(
            "cannot listen on {address}: {error}\n  hint: pick another port with `{flag}`"
        )),
    }
}

pub async fn run(args: ZipkinArgs, printer: &Printer) -> anyhow::Result<u8> {
    let zipkin = listen(args.host, Some(args.port), trace::DEFAULT_PORT, "--port").await?;
    let http = listen(
        args.host,
        args.otlp_http_port,
        otlp::DEFAULT_HTTP_PORT,
        "--otlp-http-port",
    )
    .await?;
    let grpc = listen(
        args.host,
        args.otlp_grpc_port,
        otlp::DEFAULT_GRPC_PORT,
        "--otlp-grpc-port",
    )
    .await?;
    let bound = zipkin.local_addr()?;
    let (http_bound, grpc_bound) = (http.local_addr()?, grpc.local_addr()?);
    printer.stderr_line(&format!(
        "zipkin listening on http://{bound} (UI at http://{bound}/zipkin/, spans to http://{bound}/api/v2/spans)\n\
         OTLP/HTTP on http://{http_bound} (/v1/traces, /v1/logs, /v1/metrics), OTLP/gRPC on http://{grpc_bound}; Ctrl-C stops"
    ));
    let shutdown = Shutdown::install();
    let config = TraceConfig {
        max_spans: args.max_spans,
        forward: args.forward,
        ..TraceConfig::default()
    };
    let listeners = Listeners {
        zipkin: vec![zipkin],
        otlp: vec![http, grpc],
    };
    trace::serve_listeners(
        listeners,
        Store::with_max_logs(args.max_spans, args.max_logs),
        config,
        shutdown.graceful.clone(),
    )
    .await?;
    Ok(0)
}
