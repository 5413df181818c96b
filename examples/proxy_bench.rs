//! Starts the proxy's gateway from a manifest, on one thread: a profiling aid (run it under
//! `perf record` without Docker or the control plane). It is not what `bench/proxy.sh` measures:
//! that is the product, started by `sandbox up -d` (the proxy on its data-plane workers).
//!
//! `proxy_bench MANIFEST [--trace]` — `--trace` adds a span recorder (a bounded in-memory buffer)
//! with sampling rate 1.0. Prints `listening on ADDRESS`, serves until SIGINT/SIGTERM.
//! `PROXY_BENCH_WORKERS=N` runs it on a multi-thread runtime with N workers.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use sandbox::manifest::{load, LoadOptions};
use sandbox::proxy::{NoStatus, Proxy, ProxyConfig, ProxySpan, SpanRecorder};

/// Keeps the last `capacity` spans, like the trace store's ring.
struct Ring {
    spans: Mutex<std::collections::VecDeque<ProxySpan>>,
    capacity: usize,
}

impl SpanRecorder for Ring {
    fn record(&self, span: ProxySpan) {
        let mut spans = self
            .spans
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if spans.len() == self.capacity {
            spans.pop_front();
        }
        spans.push_back(span);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut arguments = std::env::args().skip(1);
    let file = PathBuf::from(
        arguments
            .next()
            .ok_or("usage: proxy_bench MANIFEST [--trace]")?,
    );
    let trace = arguments.any(|argument| argument == "--trace");
    let options = LoadOptions {
        files: vec![file],
        project: Some("bench".into()),
        working_dir: std::env::current_dir()?,
        environment: std::env::vars().collect(),
        ..LoadOptions::default()
    };
    let manifest = load(&options).map_err(|errors| errors.to_string())?;
    let mut config = ProxyConfig::from_manifest(&manifest);
    config.sample_rate = 1.0;
    let recorder: Option<Arc<dyn SpanRecorder>> = trace.then(|| {
        Arc::new(Ring {
            spans: Mutex::new(std::collections::VecDeque::with_capacity(10_000)),
            capacity: 10_000,
        }) as Arc<dyn SpanRecorder>
    });
    // `PROXY_BENCH_WORKERS=N`: tokio's multi-thread runtime with N workers (as `sandbox up`
    // runs the proxy) instead of the current-thread one.
    let runtime = match std::env::var("PROXY_BENCH_WORKERS")
        .ok()
        .and_then(|workers| workers.parse::<usize>().ok())
    {
        Some(workers) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .enable_all()
            .build()?,
        None => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
    };
    runtime.block_on(async move {
        let listener =
            tokio::net::TcpListener::bind((manifest.gateway.host.as_str(), manifest.gateway.port))
                .await?;
        println!("listening on {}", listener.local_addr()?);
        let shutdown = tokio_util::sync::CancellationToken::new();
        let proxy = Proxy::new(config, Arc::new(NoStatus), recorder);
        let signal = shutdown.clone();
        tokio::spawn(async move {
            let mut terminate =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            signal.cancel();
            Ok::<_, std::io::Error>(())
        });
        proxy.serve_gateway(listener, shutdown).await
    })?;
    Ok(())
}
