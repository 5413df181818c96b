//! [`ProxyConfig`]: everything the proxy needs from the manifest, compiled once, plus the limits
//! that protect it. A config is immutable; [`super::Proxy::swap_config`] replaces it whole.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use crate::manifest::{Manifest, TrafficPolicy};

use super::fasthash::FastMap;
use super::route::{default_routes, CompiledRoute};
use super::upstream::Endpoint;

/// Protections against bad or slow clients.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// A client must send its whole request head within this time (per request on a kept-alive
    /// connection); slower ones are disconnected.
    pub header_read_timeout: Duration,
    /// Request heads larger than this are answered 431 (hyper's read buffer; at least 8 KiB).
    pub max_header_bytes: usize,
    /// Connections open at once per listener; more are accepted and closed at once.
    pub max_connections: usize,
    /// Request bodies larger than this are refused with 413 (or cut off when streamed).
    pub max_request_body: u64,
    /// Bodies up to this size are kept in memory so the request can be retried; larger or
    /// streamed-without-length ones are sent once.
    pub retry_buffer: usize,
    /// Timeout to the response head when neither route nor service sets one.
    pub default_timeout: Duration,
    /// TCP connect timeout to replicas.
    pub connect_timeout: Duration,
    /// Whether the HTTP/1.1 fast path (`h1::server`, `h1::client`, `h1::codec`) serves the requests it
    /// can; off, every request goes through hyper, the reference implementation (server and
    /// client). Read per connection and per request.
    pub fast_path: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            max_connections: 10_000,
            max_request_body: 64 * 1024 * 1024,
            retry_buffer: 64 * 1024,
            default_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            fast_path: true,
        }
    }
}

impl Limits {
    /// How much of a request head the transports read before they stop: room for a head
    /// somewhat over [`Limits::max_header_bytes`], so the request phases answer it with the
    /// proxy's own 431 page (which names the limit); beyond this bound hyper's bare 431 (HTTP/1.1)
    /// or a stream reset (HTTP/2) ends the read, which keeps every buffer bounded. The fast path
    /// hands a head of `max_header_bytes` or more to hyper, which then applies this bound.
    pub fn head_read_bound(&self) -> usize {
        (self.max_header_bytes * 2).max(8192)
    }
}

/// A service as the proxy sees it.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub name: String,
    pub traffic: TrafficPolicy,
    /// For `external:` services: the one endpoint, resolved from the URL.
    pub external: Option<Endpoint>,
}

/// The proxy's whole configuration.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Gateway routes in order (first match wins).
    pub routes: Vec<CompiledRoute>,
    pub services: FastMap<String, ServiceConfig>,
    /// Whether `x-sandbox-fault-*` request headers inject faults.
    pub allow_fault_headers: bool,
    /// Share of new traces that are sampled (0.0–1.0); an incoming decision is honoured.
    pub sample_rate: f64,
    pub limits: Limits,
}

impl ProxyConfig {
    /// Builds the config from a validated manifest. With no `gateway.routes`, every service gets
    /// `/<service>/…` (prefix replaced by `/`). `external:` host names are resolved here.
    pub fn from_manifest(manifest: &Manifest) -> ProxyConfig {
        let routes = if manifest.gateway.routes.is_empty() {
            default_routes(manifest.services.keys().map(String::as_str))
        } else {
            manifest.gateway.routes.clone()
        };
        let services = manifest
            .services
            .values()
            .map(|service| {
                let external = service.external.as_deref().and_then(resolve_external);
                if service.external.is_some() && external.is_none() {
                    tracing::warn!(target: "sandbox::proxy", service = %service.name, "cannot resolve the `external` address");
                }
                let config = ServiceConfig {
                    name: service.name.clone(),
                    traffic: service.traffic.clone(),
                    external: external.map(|address| Endpoint {
                        name: format!("{}-external", service.name),
                        address,
                        healthy: true,
                    }),
                };
                (service.name.clone(), config)
            })
            .collect();
        ProxyConfig {
            routes: routes
                .into_iter()
                .filter_map(CompiledRoute::compile)
                .collect(),
            services,
            allow_fault_headers: manifest.gateway.allow_fault_headers,
            sample_rate: manifest.tracing.sample_rate,
            limits: Limits {
                max_request_body: manifest.gateway.max_request_body,
                ..Limits::default()
            },
        }
    }

    /// The policy for `service` (defaults for a service the config does not know).
    pub fn traffic(&self, service: &str) -> &TrafficPolicy {
        static DEFAULT: std::sync::LazyLock<TrafficPolicy> =
            std::sync::LazyLock::new(TrafficPolicy::default);
        self.services
            .get(service)
            .map_or(&*DEFAULT, |config| &config.traffic)
    }
}

/// `http://host:port` → the first address it resolves to.
fn resolve_external(url: &str) -> Option<SocketAddr> {
    let authority = url.strip_prefix("http://")?.trim_end_matches('/');
    authority.to_socket_addrs().ok()?.next()
}
