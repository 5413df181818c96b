//! The L7 proxy: the gateway (the developer's host → services) and the mesh (service → service).
//!
//! Owns: listeners, routing, upstream replicas and their health as the proxy sees it (outlier
//! detection, circuit breaking), retries and timeouts, fault injection, trace-context propagation,
//! access logs, metrics and the `/__sandbox/` admin pages. It must not touch Docker, the terminal or
//! the trace store: the control plane feeds it replicas ([`Proxy::set_endpoints`]), callers
//! ([`Proxy::set_callers`]) and service state ([`ServiceStatus`]), and receives spans through a
//! [`SpanRecorder`].
//!
//! # Using it (the control plane)
//! ```no_run
//! # use std::{collections::HashMap, sync::Arc};
//! # use sandbox::proxy::*;
//! # async fn example(manifest: sandbox::manifest::Manifest) -> std::io::Result<()> {
//! let proxy = Proxy::new(ProxyConfig::from_manifest(&manifest), Arc::new(NoStatus), None);
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! // The data plane: `gateway.workers` threads (0: one per core), each serving every listener.
//! let workers = proxy.start_workers(manifest.gateway.workers.into(), shutdown.clone())?;
//! let gateway = workers.listen_gateway(([127, 0, 0, 1], manifest.gateway.port).into()).await?;
//! workers.listen_mesh("172.18.0.1:15001".parse().unwrap()).await?; // the network's gateway
//! proxy.set_endpoints("item", vec![Endpoint {
//!     name: "item-1".into(), address: "172.18.0.5:8080".parse().unwrap(), healthy: true,
//! }]);
//! proxy.set_callers(HashMap::from([(
//!     "172.18.0.6".parse().unwrap(),
//!     Caller { service: "user".into(), replica: "user-1".into() },
//! )]));
//! // … until `shutdown` fires; then every worker drains within its grace period.
//! workers.stopped().await.map_err(std::io::Error::other)
//! # }
//! ```
//! Containers reach the mesh as `http://<service>.sandbox:<mesh port>` (the control plane adds the
//! host entries and the `<SERVICE>_URL` variables), and transparently through the mesh intake
//! ([`Proxy::serve_intake`], [`Workers::listen_intake`]): a forwarder that holds a service's
//! names hands each caller's connection over with a PROXY v2 header (the token of
//! [`Proxy::set_mesh_token`], the service, the caller's address, the port dialed). The intake
//! sniffs the first bytes: HTTP/1.x or the HTTP/2 preface go through the same request phases as
//! the mesh's (target: the header's service; upstream: the replica's IP at the port dialed),
//! anything else (TLS, databases, server-first protocols) is spliced at L4, one span per
//! connection (`intake`, `l4`). Where the engine shares this host's kernel, forwarders hand HTTP
//! connections over whole on a Unix socket instead ([`Proxy::serve_handoff`], [`handoff`]): the
//! same header, then the caller's socket itself, served here with one process hop fewer per
//! request. [`Proxy::swap_config`] replaces routes and
//! policies atomically when the manifest changes; requests in flight finish on the old table.
//!
//! # Data-plane workers
//! `sandbox up` does not serve the listeners on the control plane's runtime (tokio's
//! multi-thread one, shared with Docker calls, health probes and the trace store). It starts N
//! data-plane workers ([`Proxy::start_workers`], `workers`): N threads, each running a
//! single-threaded tokio runtime, each serving every proxy listener (the gateway, the mesh on each
//! network) with a listening socket of its own on the shared address. N is `gateway: {workers: N}`,
//! or, when it is 0 or absent, the cores this process may run on
//! (`std::thread::available_parallelism`, which follows `taskset`). A connection stays on the
//! worker that accepted it: no work stealing, no cross-thread wake-ups, as in nginx and Envoy.
//! Balance is per connection, so one long-lived client connection (an HTTP/2 or gRPC channel) is
//! served by one worker, however many streams it carries.
//! - Sockets: on Linux, one socket per worker bound with `SO_REUSEPORT`, and the kernel spreads
//!   new connections over them. A probe bound first without it fails where anything listens
//!   already (so a second sandbox on the port still gets "address in use" and falls back, instead
//!   of joining the first one's group) and, for port 0, picks the port every worker then binds.
//!   Elsewhere (macOS and the BSDs balance `SO_REUSEPORT` differently or not at all, Windows has
//!   none), and for one worker, the workers share one socket and each accepts from it.
//! - State: a tokio `TcpStream` belongs to the reactor of the runtime that opened it, so each
//!   worker has its own upstream clients and idle pool (`Shared::for_worker`); pooled
//!   connections never cross runtimes. Everything else (config, upstreams and their counters,
//!   callers, status, metrics, the span recorder) is the same `Arc`s for every worker.
//! - Shutdown: the one `CancellationToken` stops every worker's listeners; each lets its requests
//!   finish within the grace period, and [`Workers::stopped`] waits for all of them.
//! - Failures: a listener's task that panics or fails is logged at once (`error`) with the
//!   worker's number, the other workers keep serving (the kernel stops sending to a closed
//!   socket), and [`Workers::stopped`] returns the failure.
//! - Metrics: `sandbox_proxy_worker_accepted_connections_total{worker="i"}` at
//!   `/__sandbox/metrics`.
//!
//! [`Proxy::serve_gateway`] and [`Proxy::serve_mesh`] still serve one listener on the caller's
//! runtime (tests, embedding); [`Proxy::serve_gateway_workers`] is the short form of the above
//! for the gateway alone.
//!
//! # Two HTTP/1.1 transports: hyper, and the fast path beside it
//! hyper (`hyper_server` downstream, `hyper_client` upstream) is the reference implementation and
//! handles every request. The fast path (`h1/`: `h1::codec` reads and writes heads and frames
//! upstream bodies, `h1::server` serves client connections, `h1::client` talks to replicas) is
//! an accelerator beside it, as a SIMD routine beside its scalar version: it serves only the
//! common case (bodiless HTTP/1.1 requests without connection-level headers) and hands everything
//! else to hyper. It is kept for the figures in `bench/proxy-results.txt` and its history (same
//! VM, medians of 5 rounds): hyper alone (2851b18, before f5cf4d3) reached 27.5–29.3k req/s at
//! 23.5–25.3 µs CPU per request, 0.80× nginx; with the fast path, 35.2–36.9k req/s at
//! 17.7–18.6 µs, 1.02× nginx. That is about +30% req/s and 6–7 µs less CPU per request, and it
//! is what meets the "≥ nginx" goal; deleting it costs that.
//!
//! Where a request's CPU goes (a shared 2-core VM without hardware counters, so not speeds: a
//! `sandbox up -d` gateway with one worker in front of an nginx upstream, wrk with 32
//! connections; `perf record -e cpu-clock`, `strace -c`, and callgrind's user-space instruction
//! counts over a foreground `sandbox up`, wrk with 8 connections; the lead's quiet-machine
//! figures are `bench/proxy.sh`'s):
//! - the kernel takes about 58% of the process's CPU, user space 42%; each request costs two
//!   `recvfrom` and two `sendto` (client and upstream), with `epoll_wait` batched — the floor's
//!   syscalls. What is left to cut is in user space;
//! - untraced, about 26.2k instructions per request on the data-plane thread (after the changes
//!   below), spread thin: `forward::send` 9.2k (of which the fast client 7.0k, the upstream head's
//!   parse 3.6k), `upstream_request_filter` 3.5k (trace headers, `sampled=0` included, 1.5k),
//!   `response_filter` 2.2k, the request head's parse 2.0k, `memcpy` of futures and heads 2.6k,
//!   allocation and free 1.8k, the logging phase 0.9k;
//! - traced (every request sampled), about 58k instructions per request for the whole process:
//!   31k on the data-plane thread (the logging phase's two spans 4.9k) and 22k on the control
//!   plane, which converts the queued spans and ingests them into the store
//!   (`control::spans`, `trace::store`). That ingest, not the data plane, is most of the cost
//!   of tracing.
//!
//! Steps measured that way (instructions per request on the data-plane thread): the request id
//! kept once as a header value and the spans built by moving the finished session's strings,
//! untraced 26,963 → 26,784 and traced 31,969 → 30,693 (the logging phase 5,736 → 4,851).
//! gRPC look-ups by `HeaderName` (not `&str`, parsed and hashed every time) and `grpc-timeout`
//! read only for gRPC calls, `Connection: keep-alive` judged without splitting, raw lines'
//! lookup filter keyed by length and first letter, `HeaderValue`s inserted without a second
//! check, and the raw lines' extension table recycled: untraced 27,302 → 26,525.
//! `bench/proxy_instructions.sh` counts the whole process the same way (instructions and system
//! calls per request through `sandbox up`, no quiet machine needed): 29,072 → 28,249
//! instructions; 4.1–4.2 system calls, the floor's four (`recvfrom`, `sendto` on each side) and
//! `epoll_wait` about once per 8–10 requests: tokio already treats a short read as the socket
//! drained, so no read ends in `EAGAIN`, and the idle pool's check costs no call.
//!
//! # The seam between them
//! The two transports meet the rest of the proxy at four places, each one type:
//! - downstream, `h1::server` takes its handler as a parameter (`h1::server::Service`, as hyper's
//!   `service_fn`): `hyper_server::Downstream` answers with the request phases
//!   (`phases::respond`) and takes the connection over when the fast path declines a request;
//! - headers, `message::Headers`: the map, an upstream's raw lines kept as sent, and the lines
//!   the proxy adds, consistent inside, leaving by `write_h1` (fast writers) or
//!   `into_header_map` (hyper, HTTP/1.1 and HTTP/2);
//! - upstream, `clients::Clients` dispatches each request to one of three clients (fast h1 |
//!   hyper h1 | h2, linkerd's shape) and returns one failure vocabulary
//!   (`clients::UpstreamError`), which `forward::classify` matches on;
//! - connections, `idle_pool::IdlePool` keeps both HTTP/1.1 clients' idle connections, and one
//!   rule (`clients::may_resend`) says when a request that failed on a stale pooled connection
//!   is sent again.
//!
//! It is a switch, [`Limits::fast_path`] (default on); off, every request goes through hyper,
//! server and client. Every test in `tests/proxy/` runs both ways (`both_paths!`: `<test>::fast`
//! and `<test>::hyper`), so a divergence fails a test: when the two disagree, hyper's behaviour
//! is the reference unless it is clearly wrong (hyper accepts bare-LF line ends; both refuse them,
//! see `h1::line_ends`). A change to one transport is done when both runs pass. A third run,
//! `<test>::h2`, sends the same requests from an HTTP/2 client, so every feature must work the same
//! for HTTP/2 requests (tests of HTTP/1.1 framing opt out with `h1_only!`).
//!
//! # HTTP/2 from clients
//! A connection that opens with the HTTP/2 preface (h2c, prior knowledge: gRPC's way) goes to
//! hyper's HTTP/2 server on either path (`hyper_server::Downstream::http2`: the fast path sees the
//! preface in the bytes it read, the hyper path peeks at them), and each stream runs through the same
//! request phases (`phases`) as an HTTP/1.1 request. Bodies pass frame by frame, trailers
//! included, and `te: trailers` survives the hop-by-hop strip for h2c upstreams. gRPC calls get
//! their own semantics (`grpc`): all four call kinds stream both ways, `grpc-timeout` is the
//! call's deadline, retries on gRPC status, spans and logs by method and status, and the proxy's
//! own errors as gRPC statuses (`error`). Routes with `grpc_web` translate browsers' gRPC-Web,
//! over HTTP/1.1 or HTTP/2, with CORS (`grpc_web`). HTTPS (HTTP/2 by ALPN, or HTTP/1.1) is served
//! on the gateway's port beside cleartext when the control plane gives a TLS configuration
//! ([`Proxy::set_tls`], `tls`). Not yet: h2c upgrades from HTTP/1.1.
//!
//! # Layout
//! - `config`: [`ProxyConfig`] (from the manifest) and [`Limits`].
//! - `route`: the compiled routing table and first-match lookup (pure).
//! - `phases`: one request in pingora's phases (`request_filter` … `fail_to_proxy`); `session`:
//!   the per-request state they share (`Session`, `Target`, the listener), for every protocol.
//! - `forward`: circuit breaker, `upstream_peer`, tries, retries, back-off, upgrade tunnels.
//! - `upstream`: replicas, load balancing, outlier ejection, circuit-breaker slots.
//! - `faults`, `headers` (hop-by-hop, `X-Forwarded-*`, request ids), `propagation` (B3/W3C),
//!   `span` (the recorder hook).
//! - `error`: [`ProxyError`] with its source, and the developer-facing error pages.
//! - `logging`, `metrics`, `admin`, `body`.
//! - `serve`: the listeners' accept loop (connection cap, grace on shutdown).
//! - `intake`: the mesh intake (PROXY header, token, protocol sniffing, the TLS SNI); `l4`: TCP
//!   connections spliced to a replica, with the service's L4 policies and one span each.
//! - `message`: one message's headers (`Headers`), the seam's header type.
//! - `clients`: the one upstream dispatch and its failure vocabulary; `idle_pool`: idle
//!   connections per replica.
//! - `hyper_server`, `hyper_client`: the reference transport (hyper HTTP/1.1 and h2c downstream,
//!   hyper HTTP/1.1 upstream; h2c upstream is hyper-util's client, in `clients`).
//! - `h1/`: the accelerator (`codec`, `server`, `client`) and `line_ends` (bare-LF line ends in
//!   request heads refused, for both transports).
//! - `grpc` (gRPC calls: deadline, status, replayable bodies) and `grpc_web` (its translation).
//! - `tls`: HTTPS on the gateway (rustls, ALPN, certificates by SNI), handed to hyper.
//! - `workers`: the data-plane workers and their listening sockets ([`Workers`]).

mod admin;
mod body;
mod clients;
mod config;
mod deadline;
mod error;
mod fasthash;
mod faults;
mod forward;
mod grpc;
mod grpc_web;
mod h1;
#[cfg(unix)]
pub mod handoff;
mod headers;
mod hyper_client;
mod hyper_server;
mod idle_pool;
mod ids;
mod intake;
mod l4;
mod logging;
mod message;
mod metrics;
mod phases;
mod propagation;
mod route;
mod serve;
mod session;
mod span;
mod status;
mod tls;
mod upstream;
mod workers;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use body::ProxyBody;
pub use config::{Limits, ProxyConfig, ServiceConfig};
pub use error::{ErrorSource, ProxyError};
pub use metrics::Metrics;
pub use propagation::TraceContext;
pub use route::CompiledRoute;
pub use span::{ProxySpan, SpanKind, SpanRecorder};
pub use status::{Caller, NoStatus, ServiceStatus};
pub use tls::{tls_config, Issue, TlsError};
pub use upstream::{Endpoint, NoReplica};
pub use workers::{WorkerError, Workers};

/// The proxy: cheap to clone (one `Arc` inside); every clone serves the same tables.
#[derive(Clone)]
pub struct Proxy {
    shared: Arc<Shared>,
}

/// State shared by every listener and request. Each data-plane worker serves with its own copy
/// ([`Shared::for_worker`]): the `Arc`s are the same tables, `clients` are its own.
pub(crate) struct Shared {
    config: Arc<RwLock<Arc<ProxyConfig>>>,
    upstreams: Arc<upstream::Upstreams>,
    callers: Arc<RwLock<Arc<HashMap<IpAddr, Caller>>>>,
    status: Arc<dyn ServiceStatus>,
    recorder: Option<Arc<dyn SpanRecorder>>,
    metrics: Arc<Metrics>,
    /// Upstream connections, usable only on the runtime that opened them.
    clients: clients::Clients,
    /// The gateway's TLS configuration, when it serves HTTPS ([`Proxy::set_tls`]).
    tls: Arc<RwLock<Option<Arc<rustls::ServerConfig>>>>,
    /// The token the mesh intake's forwarders must present ([`Proxy::set_mesh_token`]); none:
    /// the intake refuses every connection.
    mesh_token: Arc<RwLock<Option<Arc<[u8]>>>>,
    /// The connections accepted by the worker serving with this copy, if it is a worker's.
    worker: Option<Arc<std::sync::atomic::AtomicU64>>,
}

impl Shared {
    /// A copy for a data-plane worker: the same tables and metrics, its own upstream clients
    /// (a pooled connection belongs to the runtime that opened it), counted as a worker.
    fn for_worker(&self) -> Shared {
        Shared {
            config: self.config.clone(),
            upstreams: self.upstreams.clone(),
            callers: self.callers.clone(),
            status: self.status.clone(),
            recorder: self.recorder.clone(),
            metrics: self.metrics.clone(),
            clients: clients::Clients::new(&self.config().limits),
            tls: self.tls.clone(),
            mesh_token: self.mesh_token.clone(),
            worker: Some(self.metrics.add_worker()),
        }
    }

    fn config(&self) -> Arc<ProxyConfig> {
        self.config
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    fn tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.tls
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    fn mesh_token(&self) -> Option<Arc<[u8]>> {
        self.mesh_token
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    fn caller(&self, address: IpAddr) -> Option<Caller> {
        self.callers
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .get(&address)
            .cloned()
    }
}

impl Proxy {
    /// A proxy serving `config`. `status` answers "what is wrong with service X" for error pages;
    /// `recorder`, when given, receives a client and a server span per sampled request. The
    /// upstream connect timeout is taken from this first config.
    pub fn new(
        config: ProxyConfig,
        status: Arc<dyn ServiceStatus>,
        recorder: Option<Arc<dyn SpanRecorder>>,
    ) -> Proxy {
        let proxy = Proxy {
            shared: Arc::new(Shared {
                clients: clients::Clients::new(&config.limits),
                config: Arc::new(RwLock::new(Arc::new(ProxyConfig {
                    routes: Vec::new(),
                    services: fasthash::FastMap::default(),
                    allow_fault_headers: false,
                    sample_rate: 0.0,
                    limits: config.limits.clone(),
                }))),
                upstreams: Arc::default(),
                callers: Arc::new(RwLock::new(Arc::new(HashMap::new()))),
                status,
                recorder,
                metrics: Arc::default(),
                tls: Arc::default(),
                mesh_token: Arc::default(),
                worker: None,
            }),
        };
        proxy.swap_config(config);
        proxy
    }

    /// Replaces routes, policies and limits at once. Requests in flight finish with the table they
    /// started with; listeners keep running. `external:` services get their endpoint here.
    pub fn swap_config(&self, config: ProxyConfig) {
        for service in config.services.values() {
            let upstream = self.shared.upstreams.get(&service.name);
            if let Some(endpoint) = &service.external {
                upstream.set_endpoints(std::slice::from_ref(endpoint));
            }
        }
        *self
            .shared
            .config
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = Arc::new(config);
    }

    /// The config now in use.
    pub fn config(&self) -> Arc<ProxyConfig> {
        self.shared.config()
    }

    /// Sets the replicas of `service` (all of them, healthy or not). Replicas that stay keep their
    /// counters; requests in flight on removed ones finish normally.
    pub fn set_endpoints(&self, service: &str, endpoints: Vec<Endpoint>) {
        self.shared.upstreams.get(service).set_endpoints(&endpoints);
    }

    /// Sets who is behind each source address on the mesh. Unknown sources get 403.
    pub fn set_callers(&self, callers: HashMap<IpAddr, Caller>) {
        *self
            .shared
            .callers
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = Arc::new(callers);
    }

    /// Serves HTTPS on the gateway with `config` (from [`tls_config`]) beside cleartext HTTP on
    /// the same port, or cleartext only with `None`; new connections see the change.
    pub fn set_tls(&self, config: Option<Arc<rustls::ServerConfig>>) {
        *self
            .shared
            .tls
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = config;
    }

    /// Sets the sandbox's mesh token: the mesh intake serves only connections whose PROXY header
    /// carries it (until it is set, none). New connections see the change. Never logged.
    pub fn set_mesh_token(&self, token: Vec<u8>) {
        *self
            .shared
            .mesh_token
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = Some(token.into());
    }

    /// Where the control plane cannot connect container addresses: each container IP of `via`
    /// is reached through the forwarder dial address it maps to, with the mesh token
    /// ([`Proxy::set_mesh_token`], set before). Empty: every connection goes straight. For the
    /// whole process (its one control plane), new connections see the change.
    pub fn set_dial_routes(&self, via: HashMap<IpAddr, SocketAddr>) {
        let token = self
            .shared
            .mesh_token()
            .unwrap_or_else(|| Arc::from(&[][..]));
        upstream::set_dial_routes(upstream::DialRoutes::new(token, via));
    }

    /// The metrics (also served at `/__sandbox/metrics`).
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Serves the gateway on `listener` until `shutdown`, then lets requests in flight finish
    /// (at most 5 s).
    pub async fn serve_gateway(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> io::Result<()> {
        serve::serve(
            self.shared,
            serve::Listening::Tcp(listener),
            shutdown,
            session::Listener::Gateway,
        )
        .await
    }

    /// Serves the mesh on `listener` until `shutdown`. Callers are identified by source address
    /// ([`Proxy::set_callers`]); requests are routed by the `Host` header's service name.
    pub async fn serve_mesh(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> io::Result<()> {
        serve::serve(
            self.shared,
            serve::Listening::Tcp(listener),
            shutdown,
            session::Listener::Mesh,
        )
        .await
    }

    /// Serves the mesh intake on `listener` until `shutdown`: forwarders' connections, each
    /// opening with a PROXY v2 header that carries the mesh token ([`Proxy::set_mesh_token`]),
    /// the service called and the caller's address; then HTTP at L7, anything else at L4.
    pub async fn serve_intake(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> io::Result<()> {
        serve::serve(
            self.shared,
            serve::Listening::Tcp(listener),
            shutdown,
            session::Listener::Intake,
        )
        .await
    }

    /// Serves the mesh's handoff socket on `listener` until `shutdown`: forwarders on this host
    /// hand HTTP connections over whole ([`handoff`]), each then served as the intake serves the
    /// connections it relays.
    #[cfg(unix)]
    pub async fn serve_handoff(
        self,
        listener: tokio::net::UnixListener,
        shutdown: CancellationToken,
    ) -> io::Result<()> {
        serve::serve(
            self.shared,
            serve::Listening::Handoff(listener),
            shutdown,
            session::Listener::Intake,
        )
        .await
    }
}
