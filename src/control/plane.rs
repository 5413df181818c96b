//! The services a control plane runs beside the containers — today the trace server, the proxy next —
//! and the wiring that points the containers at them (variables and host entries).
//!
//! Listeners bind the loopback address for the developer and the project network's gateway address
//! for the containers; never all interfaces unless the manifest says so.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::engine::docker::NetworkInfo;
use crate::engine::spec::Wiring;
use crate::manifest::Manifest;
use crate::trace::{self, Store, TraceConfig};

/// The host name containers use for the control plane when the gateway address cannot be bound
/// (Docker Desktop): the engine maps it to the host.
const HOST_GATEWAY_NAME: &str = "host.docker.internal";

/// Why the control plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum ControlPlaneError {
    #[error("the trace server cannot listen on {address}: {source}\n  hint: set another `tracing: {{port: N}}` in the manifest, or stop what uses the port")]
    TraceBind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("the trace server could not start: {0}")]
    Trace(#[from] trace::TraceError),
}

/// The trace server's settings for a sandbox.
#[derive(Debug, Clone)]
pub struct TraceSettings {
    pub port: u16,
    /// The port was chosen in the manifest: a clash is an error, not a reason to pick another.
    pub port_explicit: bool,
    pub max_spans: usize,
    pub forward: Option<String>,
}

impl Default for TraceSettings {
    fn default() -> Self {
        TraceSettings {
            port: trace::DEFAULT_PORT,
            port_explicit: false,
            max_spans: TraceConfig::default().max_spans,
            forward: None,
        }
    }
}

/// A running control plane's services.
pub struct ControlPlane {
    /// Spans of this sandbox (the proxy writes here too).
    pub store: Store,
    /// The trace server as the developer reaches it (`http://127.0.0.1:9411`).
    pub zipkin_url: String,
    /// What containers get.
    pub wiring: Wiring,
    tasks: JoinSet<()>,
}

impl ControlPlane {
    /// Binds the listeners and starts serving; stops when `shutdown` fires.
    pub async fn start(
        manifest: &Manifest,
        network: &NetworkInfo,
        settings: &TraceSettings,
        shutdown: &CancellationToken,
    ) -> Result<ControlPlane, ControlPlaneError> {
        let local = bind_local(settings).await?;
        let local_port = local
            .local_addr()
            .map(|address| address.port())
            .unwrap_or(settings.port);
        let mut listeners = vec![local];
        // Containers reach the control plane on the network's gateway address (Linux engines), at
        // the configured port whatever the loopback side got: each project has its own gateway
        // address, and a stable address keeps the containers' config (and hash) stable.
        // Elsewhere they go through the engine's host-gateway name to the loopback listener.
        let gateway: Option<IpAddr> = network.gateway.as_deref().and_then(|ip| ip.parse().ok());
        let bound_gateway = match gateway {
            Some(ip) => match TcpListener::bind(SocketAddr::new(ip, settings.port)).await {
                Ok(listener) => {
                    listeners.push(listener);
                    Some(ip)
                }
                Err(error) => {
                    tracing::info!(%error, "gateway address not bindable; containers use the host-gateway name");
                    None
                }
            },
            None => None,
        };
        let (container_base, extra_hosts) = match bound_gateway {
            Some(ip) => (format!("http://{ip}:{}", settings.port), Vec::new()),
            None => (
                format!("http://{HOST_GATEWAY_NAME}:{local_port}"),
                vec![format!("{HOST_GATEWAY_NAME}:host-gateway")],
            ),
        };
        let store = Store::new(settings.max_spans);
        let config = TraceConfig {
            max_spans: settings.max_spans,
            forward: settings.forward.clone(),
            ..TraceConfig::default()
        };
        let mut tasks = JoinSet::new();
        let server = trace::serve(listeners, store.clone(), config, shutdown.clone());
        tasks.spawn(async move {
            if let Err(error) = server.await {
                tracing::error!(%error, "trace server stopped");
            }
        });
        let wiring = Wiring {
            network: network.name.clone(),
            environment: zipkin_environment(&container_base),
            service_environment: manifest
                .services
                .keys()
                .map(|name| {
                    (
                        name.clone(),
                        BTreeMap::from([("OTEL_SERVICE_NAME".to_string(), name.clone())]),
                    )
                })
                .collect(),
            extra_hosts,
        };
        Ok(ControlPlane {
            store,
            zipkin_url: format!("http://127.0.0.1:{local_port}"),
            wiring,
            tasks,
        })
    }

    /// Waits for the services to finish after shutdown (bounded by their own grace periods).
    pub async fn stopped(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

/// The loopback listener: the configured port, or a free one when the default is taken (so two
/// sandboxes run side by side) — unless the manifest named the port.
async fn bind_local(settings: &TraceSettings) -> Result<TcpListener, ControlPlaneError> {
    let wanted = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), settings.port);
    match TcpListener::bind(wanted).await {
        Ok(listener) => Ok(listener),
        Err(_) if !settings.port_explicit => {
            let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
            TcpListener::bind(any)
                .await
                .map_err(|source| ControlPlaneError::TraceBind {
                    address: any,
                    source,
                })
        }
        Err(source) => Err(ControlPlaneError::TraceBind {
            address: wanted,
            source,
        }),
    }
}

/// The variables common Zipkin and OpenTelemetry clients read, for a trace server at `base`.
pub fn zipkin_environment(base: &str) -> BTreeMap<String, String> {
    let spans = format!("{base}/api/v2/spans");
    BTreeMap::from([
        ("ZIPKIN_ENDPOINT".to_string(), spans.clone()),
        ("SPRING_ZIPKIN_BASE_URL".to_string(), format!("{base}/")),
        (
            "MANAGEMENT_ZIPKIN_TRACING_ENDPOINT".to_string(),
            spans.clone(),
        ),
        ("OTEL_EXPORTER_ZIPKIN_ENDPOINT".to_string(), spans),
        ("OTEL_TRACES_EXPORTER".to_string(), "zipkin".to_string()),
    ])
}

#[cfg(test)]
mod tests {
    #[test]
    fn clients_find_the_trace_server_under_their_usual_names() {
        let environment = super::zipkin_environment("http://172.18.0.1:9411");
        assert_eq!(
            environment["ZIPKIN_ENDPOINT"],
            "http://172.18.0.1:9411/api/v2/spans"
        );
        assert_eq!(
            environment["OTEL_EXPORTER_ZIPKIN_ENDPOINT"],
            "http://172.18.0.1:9411/api/v2/spans"
        );
        assert_eq!(
            environment["SPRING_ZIPKIN_BASE_URL"],
            "http://172.18.0.1:9411/"
        );
        assert_eq!(environment["OTEL_TRACES_EXPORTER"], "zipkin");
    }
}
