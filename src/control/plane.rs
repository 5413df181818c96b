//! The services a control plane runs beside the containers: the trace server, the gateway and the
//! mesh (the proxy), and the monitor that feeds the proxy with replicas, callers and states.
//!
//! Listeners bind the loopback address for the developer and the gateway address of each of the
//! project's networks for the containers (mesh, mesh intake and trace server on every one, so a
//! service reaches them on any network it is on); never all interfaces unless the manifest says
//! so (`gateway.host`). The mesh intake also listens on loopback (for forwarders that reach the
//! host through the engine's host-gateway name); the control plane's owner gives the proxy the
//! sandbox's mesh token ([`Proxy::set_mesh_token`]).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::monitor::Monitor;
use super::spans::{SpanDrain, StoreRecorder, QUEUE_SPANS};
use super::wiring::{
    self, ContainerSide, HostGateway, Loopback, MESH_INTAKE_PORT, MESH_PORT, ZIPKIN_PORT,
};
use crate::engine::docker::{Docker, NetworkInfo};
use crate::engine::spec::Wiring;
use crate::manifest::Manifest;
use crate::proxy::{Proxy, ProxyConfig, Workers};
use crate::trace::{self, Store, TraceConfig};

/// When a gateway address is taken: the project's own control plane, or another project's on a
/// network they share (an external one, or `bridge`).
const BUSY_GATEWAY_HINT: &str = "another sandbox control plane may be running for this project, or for another project on a network they share; `sandbox down` it";

/// Why the control plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum ControlPlaneError {
    #[error("the {what} cannot listen on {address}: {source}\n  hint: {hint}")]
    Bind {
        what: &'static str,
        address: SocketAddr,
        source: std::io::Error,
        hint: &'static str,
    },
    #[error("the trace server could not start: {0}")]
    Trace(#[from] trace::TraceError),
    #[error("the mesh cannot start: {0}")]
    MeshToken(#[from] super::mesh_token::MeshTokenError),
    #[error("the gateway cannot serve HTTPS: {0}")]
    Ca(#[from] crate::ca::CaError),
    #[error(transparent)]
    Tls(#[from] crate::proxy::TlsError),
    #[error("the proxy's data-plane workers could not start: {0}")]
    Workers(std::io::Error),
}

/// A running control plane's services.
pub struct ControlPlane {
    /// Spans of this sandbox (the proxy records here too).
    pub store: Store,
    pub proxy: Proxy,
    monitor: Arc<Monitor>,
    containers: crate::engine::watch::ContainerWatch,
    /// The trace server as the developer reaches it (`http://127.0.0.1:9411`).
    pub zipkin_url: String,
    /// The gateway as the developer reaches it (`http://127.0.0.1:8080`).
    pub gateway_url: String,
    /// The dashboard with its token (`http://127.0.0.1:9411/?token=…`): what `up` prints.
    pub dashboard_url: String,
    /// What the dashboard shows (told about re-ups).
    dashboard: Arc<crate::dashboard::live::LiveSystem>,
    /// The mesh intake's loopback port (15002 when it was free): where forwarders that reach the
    /// host through the engine's host-gateway name hand connections over.
    pub intake_port: u16,
    /// The OTLP receivers' ports.
    pub otlp: OtlpPorts,
    /// What containers get.
    pub wiring: Wiring,
    tasks: JoinSet<()>,
    /// The data plane: threads serving the gateway and the mesh listeners.
    workers: Workers,
    /// Ingests the proxy's spans; finished after the data plane.
    spans: SpanDrain,
    /// What a reload needs to listen on networks a re-up added.
    late: LateListeners,
}

/// The gateway addresses listened on, and how to listen on more (a re-up may add networks).
struct LateListeners {
    docker: Docker,
    shutdown: CancellationToken,
    store: Store,
    trace: TraceConfig,
    zipkin_port: u16,
    zipkin_fixed: u16,
    intake_port: u16,
    otlp: OtlpPorts,
    listening: std::sync::Mutex<std::collections::BTreeSet<IpAddr>>,
    tasks: std::sync::Mutex<JoinSet<()>>,
}

impl ControlPlane {
    /// Binds the listeners and starts serving; everything stops when `shutdown` fires.
    pub async fn start(
        manifest: &Manifest,
        networks: &[NetworkInfo],
        docker: &Docker,
        shutdown: &CancellationToken,
    ) -> Result<ControlPlane, ControlPlaneError> {
        let mut tasks = JoinSet::new();
        let store = Store::with_max_logs(manifest.tracing.max_spans, manifest.tracing.max_logs);
        // One look at the containers for the monitor, the log follower and the dashboard.
        let containers = crate::engine::watch::ContainerWatch::start(
            docker.clone(),
            manifest.project.clone(),
            shutdown.clone(),
        );
        let monitor = Monitor::new(docker.clone(), containers.clone(), manifest);
        // The data plane only queues spans; a task here ingests them (`control::spans`).
        let (recorder, spans) = StoreRecorder::start(store.clone(), QUEUE_SPANS);
        let proxy = Proxy::new(
            ProxyConfig::from_manifest(manifest),
            monitor.clone(),
            Some(Arc::new(recorder)),
        );
        // The intake takes only connections from this project's forwarders.
        proxy.set_mesh_token(super::mesh_token::mesh_token(&manifest.project)?.into_bytes());
        if manifest.gateway.tls {
            let (ca, _) = crate::ca::LocalCa::open()?;
            proxy.set_tls(Some(gateway_tls(ca)?));
        }
        // The data plane: its own threads, so the control plane's work (Docker, health, the
        // trace store) and the requests never wait for each other. Stopped if starting fails.
        let data_plane = shutdown.child_token();
        let stop_on_failure = data_plane.clone().drop_guard();
        let workers = proxy
            .start_workers(usize::from(manifest.gateway.workers), data_plane)
            .map_err(ControlPlaneError::Workers)?;
        tracing::info!(workers = workers.count(), "data-plane workers started");
        let zipkin_local = bind_fallback(
            "trace server",
            SocketAddr::new(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                manifest.tracing.port.unwrap_or(ZIPKIN_PORT),
            ),
            manifest.tracing.port.is_none(),
            "set another `tracing: {port: N}` in the manifest, or stop what uses the port",
        )
        .await?;
        let zipkin_port = zipkin_local
            .local_addr()
            .map(|address| address.port())
            .unwrap_or(ZIPKIN_PORT);
        let intake_port = listen_intake_loopback(&workers).await?;
        let (otlp, mut otlp_listeners) = bind_otlp_local(manifest).await?;
        let host_gateway = HostGateway::of(docker).await;
        let side = ContainerSide::detect(
            networks,
            Loopback {
                zipkin: zipkin_port,
                intake: intake_port,
                otlp_http: otlp.http,
            },
            host_gateway,
        )
        .with_handoff(wiring::handoff_folder(
            docker,
            &manifest.project,
            host_gateway,
        ));
        if let Some(folder) = &side.handoff {
            listen_handoff(&workers, folder).await;
        }
        let mut zipkin_listeners = vec![zipkin_local];
        if let Some(ip) = host_gateway.listen_address() {
            let (zipkin, otlp_http) =
                listen_host_gateway(&workers, ip, zipkin_port, intake_port, otlp.http).await?;
            zipkin_listeners.extend(zipkin);
            otlp_listeners.extend(otlp_http);
        }
        let zipkin_fixed = manifest.tracing.port.unwrap_or(ZIPKIN_PORT);
        for (ip, shared) in side.listen_addresses() {
            let listeners = async {
                let zipkin = bind(
                    "trace server",
                    SocketAddr::new(ip, zipkin_fixed),
                    BUSY_GATEWAY_HINT,
                )
                .await?;
                // Last: the workers serve them from here on.
                listen_mesh_and_intake(&workers, ip).await?;
                Ok::<_, ControlPlaneError>(zipkin)
            };
            match listeners.await {
                Ok(zipkin) => zipkin_listeners.push(zipkin),
                // A network other projects use too: another control plane may hold its ports, and
                // the project's services reach this one on their own networks first.
                Err(error) if shared => {
                    tracing::warn!(%error, "not listening on a shared network's gateway {ip}");
                }
                Err(error) => return Err(error),
            }
        }
        for (ip, _) in side.listen_addresses() {
            otlp_listeners.extend(bind_otlp_gateway(&otlp, ip).await);
        }
        let gateway_host: IpAddr = manifest
            .gateway
            .host
            .parse()
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let gateway_address = listen_gateway(
            &workers,
            SocketAddr::new(gateway_host, manifest.gateway.port),
            manifest.gateway.address_is_default(),
        )
        .await?;

        let config = TraceConfig {
            max_spans: manifest.tracing.max_spans,
            forward: manifest.tracing.forward.clone(),
            ..TraceConfig::default()
        };
        let listening: std::collections::BTreeSet<IpAddr> = zipkin_listeners
            .iter()
            .filter_map(|listener| listener.local_addr().ok())
            .map(|address| address.ip())
            .filter(|ip| !ip.is_loopback())
            .collect();
        let late = LateListeners {
            docker: docker.clone(),
            shutdown: shutdown.clone(),
            store: store.clone(),
            // The store forwards what it keeps: a second server must not forward again.
            trace: TraceConfig {
                forward: None,
                ..config.clone()
            },
            zipkin_port,
            zipkin_fixed,
            intake_port,
            otlp,
            listening: std::sync::Mutex::new(listening),
            tasks: std::sync::Mutex::new(JoinSet::new()),
        };
        // The dashboard answers on loopback only; the network gateways serve the Zipkin API.
        let dashboard = crate::dashboard::live::LiveSystem::start(
            docker.clone(),
            manifest,
            proxy.clone(),
            monitor.clone(),
            containers.clone(),
            shutdown,
        );
        let token = crate::dashboard::auth::new_token();
        let gateways = zipkin_listeners.split_off(1);
        let local = trace::Listeners {
            zipkin: zipkin_listeners,
            otlp: otlp_listeners,
        };
        let local = trace::serve_with_dashboard(
            local,
            store.clone(),
            config.clone(),
            Some(crate::dashboard::Dashboard::new(
                dashboard.clone(),
                token.clone(),
            )),
            shutdown.clone(),
        );
        let gateways = trace::Listeners {
            zipkin: gateways,
            otlp: Vec::new(),
        };
        // The store forwards what it keeps: the second server must not forward again.
        let gateways = trace::serve_listeners(
            gateways,
            store.clone(),
            late.trace.clone(),
            shutdown.clone(),
        );
        for server in [
            Box::pin(local) as std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>>,
            Box::pin(gateways),
        ] {
            tasks.spawn(async move {
                if let Err(error) = server.await {
                    tracing::error!(%error, "trace server stopped");
                }
            });
        }
        stop_on_failure.disarm();
        let display_host = if gateway_host.is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            gateway_host
        };
        Ok(ControlPlane {
            store,
            proxy,
            monitor,
            containers,
            zipkin_url: format!("http://127.0.0.1:{zipkin_port}"),
            dashboard_url: format!("http://127.0.0.1:{zipkin_port}/?token={token}"),
            dashboard,
            gateway_url: format!(
                "{}://{}",
                manifest.gateway.scheme(),
                SocketAddr::new(display_host, gateway_address.port())
            ),
            intake_port,
            otlp,
            wiring: wiring::wiring(manifest, &side),
            tasks,
            workers,
            spans,
            late,
        })
    }

    /// Once the containers are up: feeds the proxy now, then keeps it current until `shutdown`, and
    /// follows the containers' output into the log store ([`super::log_follow`]).
    pub async fn watch(&mut self, shutdown: &CancellationToken) {
        self.monitor.refresh(&self.proxy).await;
        let monitor = self.monitor.clone();
        self.tasks
            .spawn(monitor.run(self.proxy.clone(), shutdown.clone()));
        self.tasks.spawn(super::log_follow::run(
            self.late.docker.clone(),
            self.containers.clone(),
            self.store.logs().clone(),
            shutdown.clone(),
        ));
    }

    /// A re-up changed the manifest: routes and policies swap atomically, replicas are looked at again.
    pub async fn reload(&self, manifest: &Manifest) {
        self.proxy.swap_config(ProxyConfig::from_manifest(manifest));
        self.monitor.set_manifest(manifest);
        self.dashboard.set_manifest(manifest);
        self.listen_on_new_networks(manifest).await;
        self.monitor.refresh(&self.proxy).await;
    }

    /// A re-up may have added networks: the mesh and the trace server listen on their gateways too
    /// (a failure is logged; the control plane keeps serving).
    async fn listen_on_new_networks(&self, manifest: &Manifest) {
        let late = &self.late;
        let networks = match crate::engine::apply::existing_networks(&late.docker, manifest).await {
            Ok(networks) => networks,
            Err(error) => {
                tracing::warn!(%error, "cannot look at the project's networks");
                return;
            }
        };
        let side = ContainerSide::detect(
            &networks,
            Loopback {
                zipkin: late.zipkin_port,
                intake: late.intake_port,
                otlp_http: late.otlp.http,
            },
            HostGateway::of(&late.docker).await,
        );
        for (ip, _) in side.listen_addresses() {
            let new = late
                .listening
                .lock()
                .map(|mut listening| listening.insert(ip))
                .unwrap_or(false);
            if !new {
                continue;
            }
            let zipkin = bind(
                "trace server",
                SocketAddr::new(ip, late.zipkin_fixed),
                BUSY_GATEWAY_HINT,
            )
            .await;
            let zipkin = match zipkin {
                Ok(zipkin) => match listen_mesh_and_intake(&self.workers, ip).await {
                    Ok(()) => zipkin,
                    Err(error) => {
                        tracing::warn!(%error, "not listening on the gateway {ip} of a new network");
                        continue;
                    }
                },
                Err(error) => {
                    tracing::warn!(%error, "not listening on the gateway {ip} of a new network");
                    continue;
                }
            };
            let listeners = trace::Listeners {
                zipkin: vec![zipkin],
                otlp: bind_otlp_gateway(&late.otlp, ip).await,
            };
            let server = trace::serve_listeners(
                listeners,
                late.store.clone(),
                late.trace.clone(),
                late.shutdown.clone(),
            );
            if let Ok(mut tasks) = late.tasks.lock() {
                tasks.spawn(async move {
                    if let Err(error) = server.await {
                        tracing::error!(%error, "trace server stopped");
                    }
                });
            }
        }
    }

    /// Waits for the services to finish after shutdown (bounded by their own grace periods).
    pub async fn stopped(mut self) {
        while self.tasks.join_next().await.is_some() {}
        let late = self.late.tasks.into_inner();
        if let Ok(mut tasks) = late {
            while tasks.join_next().await.is_some() {}
        }
        if let Err(error) = self.workers.stopped().await {
            tracing::error!(%error, "the proxy's data plane stopped with a failure");
        }
        self.spans.finish().await;
    }
}

/// The mesh's handoff socket in `folder` (made private to the user first), served by the
/// workers. Forwarders relay through the intake's port when it is not there, so a failure is
/// only logged.
async fn listen_handoff(workers: &Workers, folder: &std::path::Path) {
    #[cfg(unix)]
    {
        let socket = folder.join(crate::proxy::handoff::SOCKET_NAME);
        let listening = match crate::ca::folder::create_private_dir(folder, true) {
            Ok(()) => workers.listen_handoff(&socket).await,
            Err(error) => Err(std::io::Error::other(error.to_string())),
        };
        match listening {
            Ok(()) => tracing::debug!(socket = %socket.display(), "mesh handoff socket listening"),
            Err(error) => tracing::warn!(
                %error,
                socket = %socket.display(),
                "forwarders relay HTTP through the mesh intake: no handoff socket"
            ),
        }
    }
    #[cfg(not(unix))]
    let _ = (workers, folder);
}

/// The mesh and its intake on the gateway address `ip` of a network, served by the workers.
async fn listen_mesh_and_intake(workers: &Workers, ip: IpAddr) -> Result<(), ControlPlaneError> {
    let bound = |what, address, result: std::io::Result<SocketAddr>| {
        result.map(drop).map_err(|source| ControlPlaneError::Bind {
            what,
            address,
            source,
            hint: BUSY_GATEWAY_HINT,
        })
    };
    let mesh = SocketAddr::new(ip, MESH_PORT);
    bound("mesh", mesh, workers.listen_mesh(mesh).await)?;
    let intake = SocketAddr::new(ip, MESH_INTAKE_PORT);
    bound("mesh intake", intake, workers.listen_intake(intake).await)
}

/// Where the engine's host-gateway name arrives when that path is forced on Linux (`ip`, the
/// default bridge's gateway): the mesh intake (required), the trace server and OTLP/HTTP
/// (logged when taken), each at its loopback port, as containers are told.
async fn listen_host_gateway(
    workers: &Workers,
    ip: IpAddr,
    zipkin_port: u16,
    intake_port: u16,
    otlp_http_port: u16,
) -> Result<(Option<TcpListener>, Option<TcpListener>), ControlPlaneError> {
    let intake = SocketAddr::new(ip, intake_port);
    workers
        .listen_intake(intake)
        .await
        .map_err(|source| ControlPlaneError::Bind {
            what: "mesh intake",
            address: intake,
            source,
            hint: "stop what uses the port, or unset `SANDBOX_MESH_REACH`",
        })?;
    let optional = |what, port| async move {
        bind(what, SocketAddr::new(ip, port), BUSY_GATEWAY_HINT)
            .await
            .map_err(|error| tracing::warn!(%error, "not listening on the host gateway {ip}"))
            .ok()
    };
    Ok((
        optional("trace server", zipkin_port).await,
        optional("OTLP/HTTP receiver", otlp_http_port).await,
    ))
}

/// The mesh intake on loopback, for forwarders that reach the host through the engine's
/// host-gateway name: [`MESH_INTAKE_PORT`] when it is free, else one the system picks (another
/// sandbox holds it). The port listened on.
async fn listen_intake_loopback(workers: &Workers) -> Result<u16, ControlPlaneError> {
    let fixed = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), MESH_INTAKE_PORT);
    let listening = match workers.listen_intake(fixed).await {
        Ok(listening) => listening,
        Err(_) => workers
            .listen_intake(SocketAddr::new(fixed.ip(), 0))
            .await
            .map_err(|source| ControlPlaneError::Bind {
                what: "mesh intake",
                address: fixed,
                source,
                hint: "stop what uses the port",
            })?,
    };
    Ok(listening.port())
}

/// The gateway on `address`, served by the workers; when the address is taken and `may_move`, a
/// free port on the same host instead (so sandboxes on default ports run side by side). The
/// address listened on.
async fn listen_gateway(
    workers: &Workers,
    address: SocketAddr,
    may_move: bool,
) -> Result<SocketAddr, ControlPlaneError> {
    let error = |source| ControlPlaneError::Bind {
        what: "gateway",
        address,
        source,
        hint: "set another `gateway: {port: N}` (0 picks a free one), or stop what uses the port",
    };
    match workers.listen_gateway(address).await {
        Ok(listening) => Ok(listening),
        Err(_) if may_move => workers
            .listen_gateway(SocketAddr::new(address.ip(), 0))
            .await
            .map_err(error),
        Err(source) => Err(error(source)),
    }
}

/// The gateway's TLS configuration: `ca` (the user's local CA, [`crate::ca::LocalCa::open`])
/// issues a certificate for `localhost`, `127.0.0.1` and `::1` now, and one per `*.localhost`
/// name that clients ask for.
pub fn gateway_tls(ca: crate::ca::LocalCa) -> Result<Arc<rustls::ServerConfig>, ControlPlaneError> {
    let leaf = ca.issue_localhost()?;
    let ca = Arc::new(ca);
    let issue = move |name: &str| {
        ca.issue(&[name])
            .inspect_err(|error| tracing::warn!(%error, "cannot issue a certificate for {name}"))
            .ok()
            .map(|leaf| (leaf.chain, leaf.key))
    };
    Ok(crate::proxy::tls_config(
        leaf.chain,
        leaf.key,
        Some(Box::new(issue)),
    )?)
}

async fn bind(
    what: &'static str,
    address: SocketAddr,
    hint: &'static str,
) -> Result<TcpListener, ControlPlaneError> {
    // A gateway address may come up only with the network's first container (Podman).
    crate::engine::podman::gateway_listener(address)
        .and_then(TcpListener::from_std)
        .map_err(|source| ControlPlaneError::Bind {
            what,
            address,
            source,
            hint,
        })
}

/// Binds `address`; when it is taken and `may_move`, a free port on the same host instead (so
/// sandboxes on default ports run side by side).
async fn bind_fallback(
    what: &'static str,
    address: SocketAddr,
    may_move: bool,
    hint: &'static str,
) -> Result<TcpListener, ControlPlaneError> {
    match TcpListener::bind(address).await {
        Ok(listener) => Ok(listener),
        Err(_) if may_move => bind(what, SocketAddr::new(address.ip(), 0), hint).await,
        Err(source) => Err(ControlPlaneError::Bind {
            what,
            address,
            source,
            hint,
        }),
    }
}

// OTLP receivers ---------------------------------------------------------------------------------

/// Where the OTLP receivers listen: on loopback for the developer (moved to a free port when the
/// default is taken, as the trace server's), and on each network gateway at the fixed port for the
/// containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtlpPorts {
    /// OTLP/HTTP on loopback.
    pub http: u16,
    /// OTLP/gRPC on loopback.
    pub grpc: u16,
    /// OTLP/HTTP on the gateways: `tracing.otlp_http_port`, else 4318.
    pub http_fixed: u16,
    /// OTLP/gRPC on the gateways: `tracing.otlp_grpc_port`, else 4317.
    pub grpc_fixed: u16,
}

impl OtlpPorts {
    /// OTLP/HTTP as the developer reaches it (`http://127.0.0.1:4318`).
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }

    /// OTLP/gRPC as the developer reaches it (`http://127.0.0.1:4317`).
    pub fn grpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc)
    }
}

/// The OTLP listeners on loopback; a port the manifest names is used or fails.
async fn bind_otlp_local(
    manifest: &Manifest,
) -> Result<(OtlpPorts, Vec<TcpListener>), ControlPlaneError> {
    let tracing = &manifest.tracing;
    let http_fixed = tracing
        .otlp_http_port
        .unwrap_or(trace::otlp::DEFAULT_HTTP_PORT);
    let grpc_fixed = tracing
        .otlp_grpc_port
        .unwrap_or(trace::otlp::DEFAULT_GRPC_PORT);
    let local = |port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let http = bind_fallback(
        "OTLP/HTTP receiver",
        local(http_fixed),
        tracing.otlp_http_port.is_none(),
        "set another `tracing: {otlp_http_port: N}` in the manifest, or stop what uses the port",
    )
    .await?;
    let grpc = bind_fallback(
        "OTLP/gRPC receiver",
        local(grpc_fixed),
        tracing.otlp_grpc_port.is_none(),
        "set another `tracing: {otlp_grpc_port: N}` in the manifest, or stop what uses the port",
    )
    .await?;
    let port = |listener: &TcpListener, fallback| {
        listener
            .local_addr()
            .map_or(fallback, |address| address.port())
    };
    let ports = OtlpPorts {
        http: port(&http, http_fixed),
        grpc: port(&grpc, grpc_fixed),
        http_fixed,
        grpc_fixed,
    };
    Ok((ports, vec![http, grpc]))
}

/// The OTLP listeners on a network's gateway address. A port taken there (often by a collector
/// the developer runs on all interfaces) is logged, not fatal: the containers then reach whatever
/// holds it.
async fn bind_otlp_gateway(ports: &OtlpPorts, ip: IpAddr) -> Vec<TcpListener> {
    let mut listeners = Vec::new();
    for (what, port) in [
        ("OTLP/HTTP receiver", ports.http_fixed),
        ("OTLP/gRPC receiver", ports.grpc_fixed),
    ] {
        // Port 0 in the manifest: loopback only (a gateway port must be known to the containers).
        if port == 0 {
            continue;
        }
        match bind(what, SocketAddr::new(ip, port), BUSY_GATEWAY_HINT).await {
            Ok(listener) => listeners.push(listener),
            Err(error) => tracing::warn!(%error, "not listening on the gateway {ip}"),
        }
    }
    listeners
}
