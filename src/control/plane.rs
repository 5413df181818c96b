//! The services a control plane runs beside the containers: the trace server, the gateway and the
//! mesh (the proxy), and the monitor that feeds the proxy with replicas, callers and states.
//!
//! Listeners bind the loopback address for the developer and the project network's gateway address
//! for the containers; never all interfaces unless the manifest says so (`gateway.host`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::monitor::Monitor;
use super::spans::StoreRecorder;
use super::wiring::{self, ContainerSide, MESH_PORT, ZIPKIN_PORT};
use crate::engine::docker::{Docker, NetworkInfo};
use crate::engine::spec::Wiring;
use crate::manifest::Manifest;
use crate::proxy::{Proxy, ProxyConfig};
use crate::trace::{self, Store, TraceConfig};

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
}

/// A running control plane's services.
pub struct ControlPlane {
    /// Spans of this sandbox (the proxy records here too).
    pub store: Store,
    pub proxy: Proxy,
    monitor: Arc<Monitor>,
    /// The trace server as the developer reaches it (`http://127.0.0.1:9411`).
    pub zipkin_url: String,
    /// The gateway as the developer reaches it (`http://127.0.0.1:8080`).
    pub gateway_url: String,
    /// What containers get.
    pub wiring: Wiring,
    tasks: JoinSet<()>,
}

impl ControlPlane {
    /// Binds the listeners and starts serving; everything stops when `shutdown` fires.
    pub async fn start(
        manifest: &Manifest,
        network: &NetworkInfo,
        docker: &Docker,
        shutdown: &CancellationToken,
    ) -> Result<ControlPlane, ControlPlaneError> {
        let mut tasks = JoinSet::new();
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
        let side = ContainerSide::detect(network, zipkin_port);
        let mut zipkin_listeners = vec![zipkin_local];
        let mut mesh_listener = None;
        if let ContainerSide::Gateway(ip) = side {
            zipkin_listeners.push(
                bind("trace server", SocketAddr::new(ip, manifest.tracing.port.unwrap_or(ZIPKIN_PORT)), "another sandbox control plane may be running for this project; `sandbox down` it").await?,
            );
            mesh_listener = Some(
                bind("mesh", SocketAddr::new(ip, MESH_PORT), "another sandbox control plane may be running for this project; `sandbox down` it").await?,
            );
        }
        let gateway_host: IpAddr = manifest
            .gateway
            .host
            .parse()
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let gateway_listener = bind_fallback(
            "gateway",
            SocketAddr::new(gateway_host, manifest.gateway.port),
            manifest.gateway.is_default(),
            "set another `gateway: {port: N}` (0 picks a free one), or stop what uses the port",
        )
        .await?;
        let gateway_address =
            gateway_listener
                .local_addr()
                .map_err(|source| ControlPlaneError::Bind {
                    what: "gateway",
                    address: SocketAddr::new(gateway_host, manifest.gateway.port),
                    source,
                    hint: "check the gateway address",
                })?;

        let store = Store::new(manifest.tracing.max_spans);
        let config = TraceConfig {
            max_spans: manifest.tracing.max_spans,
            forward: manifest.tracing.forward.clone(),
            ..TraceConfig::default()
        };
        let server = trace::serve(zipkin_listeners, store.clone(), config, shutdown.clone());
        tasks.spawn(async move {
            if let Err(error) = server.await {
                tracing::error!(%error, "trace server stopped");
            }
        });

        let monitor = Monitor::new(docker.clone(), manifest);
        let recorder = Arc::new(StoreRecorder {
            store: store.clone(),
        });
        let proxy = Proxy::new(
            ProxyConfig::from_manifest(manifest),
            monitor.clone(),
            Some(recorder),
        );
        tasks.spawn(log_failure(
            "gateway",
            proxy
                .clone()
                .serve_gateway(gateway_listener, shutdown.clone()),
        ));
        if let Some(listener) = mesh_listener {
            tasks.spawn(log_failure(
                "mesh",
                proxy.clone().serve_mesh(listener, shutdown.clone()),
            ));
        }
        let display_host = if gateway_host.is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            gateway_host
        };
        Ok(ControlPlane {
            store,
            proxy,
            monitor,
            zipkin_url: format!("http://127.0.0.1:{zipkin_port}"),
            gateway_url: format!(
                "http://{}",
                SocketAddr::new(display_host, gateway_address.port())
            ),
            wiring: wiring::wiring(manifest, network, side),
            tasks,
        })
    }

    /// Once the containers are up: feeds the proxy now, then keeps it current until `shutdown`.
    pub async fn watch(&mut self, shutdown: &CancellationToken) {
        self.monitor.refresh(&self.proxy).await;
        let monitor = self.monitor.clone();
        self.tasks
            .spawn(monitor.run(self.proxy.clone(), shutdown.clone()));
    }

    /// A re-up changed the manifest: routes and policies swap atomically, replicas are looked at again.
    pub async fn reload(&self, manifest: &Manifest) {
        self.proxy.swap_config(ProxyConfig::from_manifest(manifest));
        self.monitor.set_manifest(manifest);
        self.monitor.refresh(&self.proxy).await;
    }

    /// Waits for the services to finish after shutdown (bounded by their own grace periods).
    pub async fn stopped(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

async fn log_failure(
    what: &'static str,
    serving: impl std::future::Future<Output = std::io::Result<()>>,
) {
    if let Err(error) = serving.await {
        tracing::error!(%error, "{what} stopped");
    }
}

async fn bind(
    what: &'static str,
    address: SocketAddr,
    hint: &'static str,
) -> Result<TcpListener, ControlPlaneError> {
    TcpListener::bind(address)
        .await
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
