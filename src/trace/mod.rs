//! # Trace server
//!
//! An in-memory Zipkin: unmodified Zipkin and OpenTelemetry clients report to it (v2 JSON, proto3,
//! v1 JSON, optionally gzipped, and OTLP over HTTP and gRPC) and its API answers as the Zipkin
//! server's does; a small web UI reads that API. OTLP log records go to a bounded log store beside
//! the spans. The proxy's spans reach the [`Store`] in process (queued off the request path and
//! ingested in batches by `control::spans`).
//!
//! Owns everything under `src/trace/`; touches no other module's state.
//!
//! # Layout
//! - [`model`]: the v2 [`Span`] and its identifiers.
//! - [`codec`]: v2 JSON, proto3 and v1 JSON (with the server's v1 → v2 conversion).
//! - [`store`](Store): the bounded, sharded, interned span store and its searches.
//! - [`logs`]: the bounded log store (held by the [`Store`]) and its search.
//! - [`otlp`]: OTLP/HTTP and OTLP/gRPC ingest (traces, logs; metrics counted).
//! - [`query`]: query parameters and their validation.
//! - `merge`, [`dependencies`]: read-side span merging and dependency links.
//! - `api`, `server`: HTTP routing and the hyper server; `forward`: copy to another collector;
//!   [`metrics`]: `/prometheus` counters; `ui/`: the embedded page.
//!
//! # Endpoints
//! `POST /api/v2/spans` (JSON v2 or `application/x-protobuf`), `POST /api/v1/spans` (JSON v1), both
//! optionally `Content-Encoding: gzip`; `GET /api/v2/{services, remoteServices, spans, traces,
//! trace/{id}, traceMany, dependencies, autocompleteKeys, autocompleteValues}`; `/health`, `/info`,
//! `/prometheus`; the UI at `/`. Everything is also served under `/zipkin/`; CORS allows any origin.
//! `GET /api/v2/logs` searches the log store ([`logs::query`] lists its parameters).
//! `POST /v1/traces`, `/v1/logs`, `/v1/metrics` (OTLP/HTTP) and the OTLP/gRPC `Export` methods are
//! served on the OTLP listeners and on the Zipkin port too.
//!
//! # Choices where the Zipkin server leaves room
//! - Eviction removes whole traces in first-ingest order (the server's in-memory storage goes by
//!   span timestamp); see [`Store`].
//! - Reads merge span fragments as the server's `Trace.merge` (for `/trace`, `/traceMany`, `/traces`
//!   and dependency linking).
//! - `/api/v2/spans` takes an optional `spanKind` filter; autocomplete keys come from
//!   [`TraceConfig::autocomplete_keys`] (none by default, as the server).
//! - v1 Thrift is refused with a 400 that says so.

mod api;
pub mod codec;
pub mod dependencies;
mod forward;
pub mod logs;
mod merge;
pub mod metrics;
pub mod model;
pub mod otlp;
pub mod query;
mod server;
mod store;
mod symbols;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use model::{Annotation, Endpoint, Kind, Span, SpanId, TraceId};
pub use store::{Pending, Store};

/// The standard Zipkin port.
pub const DEFAULT_PORT: u16 = 9411;

/// How the trace server runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceConfig {
    /// Spans kept in memory before the oldest traces are evicted (used when creating the [`Store`]).
    pub max_spans: usize,
    /// Largest accepted request body, before and after gunzip; larger bodies get 413.
    pub max_body_bytes: usize,
    /// An `http://` Zipkin collector that receives a copy of every span (JSON v2, batched).
    pub forward: Option<String>,
    /// Tag keys offered by `/api/v2/autocompleteKeys` and whose values `/api/v2/autocompleteValues`
    /// lists; empty by default, as the server's `AUTOCOMPLETE_KEYS`.
    pub autocomplete_keys: Vec<String>,
}

impl Default for TraceConfig {
    fn default() -> Self {
        TraceConfig {
            max_spans: 500_000,
            max_body_bytes: 10 * 1024 * 1024,
            forward: None,
            autocomplete_keys: Vec::new(),
        }
    }
}

/// Why the trace server could not start. Problems while serving (a bad request, a failed forward)
/// are answered or logged, never returned.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The listen address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The `forward` URL is unusable.
    #[error("invalid forward URL `{url}`: {reason}")]
    InvalidForwardUrl {
        /// The URL as configured.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The sockets a trace server answers on.
#[derive(Debug, Default)]
pub struct Listeners {
    /// The Zipkin API and UI (and OTLP too).
    pub zipkin: Vec<TcpListener>,
    /// OTLP only: OTLP/HTTP and OTLP/gRPC (one port can take both; sandbox binds one of each).
    pub otlp: Vec<TcpListener>,
}

/// Serves the Zipkin API and UI on `listeners` until `shutdown` is cancelled; in-flight requests
/// then get a bounded grace period. Spans go into (and queries read) `store`.
pub async fn serve(
    listeners: Vec<TcpListener>,
    store: Store,
    config: TraceConfig,
    shutdown: CancellationToken,
) -> Result<(), TraceError> {
    let listeners = Listeners {
        zipkin: listeners,
        otlp: Vec::new(),
    };
    serve_listeners(listeners, store, config, shutdown).await
}

/// [`serve`] with OTLP listeners as well.
pub async fn serve_listeners(
    listeners: Listeners,
    store: Store,
    config: TraceConfig,
    shutdown: CancellationToken,
) -> Result<(), TraceError> {
    serve_with_dashboard(listeners, store, config, None, shutdown).await
}

/// [`serve_listeners`] with the dashboard at `/` on the Zipkin listeners (`/zipkin/` keeps the
/// Zipkin UI); without one, `/` is the Zipkin UI too.
pub async fn serve_with_dashboard(
    listeners: Listeners,
    store: Store,
    config: TraceConfig,
    dashboard: Option<Arc<crate::dashboard::Dashboard>>,
    shutdown: CancellationToken,
) -> Result<(), TraceError> {
    let metrics = Arc::new(metrics::Metrics::default());
    if let Some(url) = &config.forward {
        store.forward_to(forward::start(url, metrics.clone(), shutdown.clone())?);
    }
    let state = Arc::new(api::State {
        store,
        config,
        metrics,
        dashboard,
    });
    let listeners = (listeners
        .zipkin
        .into_iter()
        .map(|l| (l, api::Surface::Zipkin)))
    .chain(listeners.otlp.into_iter().map(|l| (l, api::Surface::Otlp)))
    .collect();
    server::run(listeners, state, shutdown).await;
    Ok(())
}

/// Runs a standalone trace server on `bind` (callers default it to `127.0.0.1:9411`); what
/// `sandbox zipkin --port N --max-spans N` calls. Serves the dashboard's pages at `/` (with no
/// resources).
pub async fn run_standalone(
    bind: SocketAddr,
    max_spans: usize,
    shutdown: CancellationToken,
) -> Result<(), TraceError> {
    let listener = TcpListener::bind(bind)
        .await
        .map_err(|source| TraceError::Bind {
            address: bind,
            source,
        })?;
    tracing::info!(address = %listener.local_addr().unwrap_or(bind), "zipkin listening");
    let config = TraceConfig {
        max_spans,
        ..TraceConfig::default()
    };
    let listeners = Listeners {
        zipkin: vec![listener],
        otlp: Vec::new(),
    };
    let dashboard = Some(crate::dashboard::Dashboard::standalone());
    serve_with_dashboard(
        listeners,
        Store::new(max_spans),
        config,
        dashboard,
        shutdown,
    )
    .await
}
