//! Upstreams: the replicas of each service as the control plane reports them, load balancing
//! (round robin, least request), passive outlier ejection and the circuit breaker.
//!
//! State here outlives configuration swaps: a service's replicas, counters and ejections are kept
//! when the routing table changes. Replicas are shared (`Arc`) with the requests using them, so a
//! health change or a new endpoint list never drops a request in flight.
//!
//! Also the one way every upstream connection is opened ([`connect`]): straight to the address,
//! or, where the control plane cannot open connections to container addresses (Docker Desktop,
//! or `SANDBOX_MESH_REACH=host`), through the [`DialRoutes`]: the forwarder of the replica's
//! service connects it on its network (its dial mode, `sandbox_forwarder::wire`).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, RwLock};
use std::time::{Duration, Instant};

use sandbox_forwarder::wire::{Header, DIAL_CONNECTED, DIAL_REFUSED};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::manifest::{CircuitBreaker, LoadBalancer, OutlierDetection};

use super::fasthash::FastMap;

/// One replica of a service, as the control plane reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Replica name, like `item-2` (sent back in `x-sandbox-upstream`).
    pub name: String,
    /// Where the replica serves the service's port (`port:`). Port 0: the service has none, and
    /// the replica is reached only through the mesh intake, at this IP and the port its caller
    /// dialed; requests routed by name (the gateway, `<service>.sandbox`) never go there.
    pub address: SocketAddr,
    /// From the control plane's health checks; unhealthy replicas get no new requests.
    pub healthy: bool,
}

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_nanos() -> u64 {
    EPOCH.elapsed().as_nanos() as u64
}

/// A replica with its live counters.
#[derive(Debug)]
pub struct Replica {
    pub name: String,
    pub address: SocketAddr,
    /// The address as a URI authority, prebuilt for request URIs.
    pub(crate) authority: Option<http::uri::Authority>,
    /// `name` as a header value, prebuilt for `x-sandbox-upstream`.
    pub(crate) name_header: Option<http::HeaderValue>,
    healthy: AtomicBool,
    in_flight: AtomicUsize,
    consecutive_errors: AtomicU32,
    /// Nanoseconds since [`EPOCH`] until which the replica is ejected; 0 when it is not.
    ejected_until: AtomicU64,
    ejections: AtomicU32,
}

impl Replica {
    fn new(endpoint: &Endpoint) -> Replica {
        Replica {
            name: endpoint.name.clone(),
            address: endpoint.address,
            authority: endpoint.address.to_string().parse().ok(),
            name_header: http::HeaderValue::from_str(&endpoint.name).ok(),
            healthy: AtomicBool::new(endpoint.healthy),
            in_flight: AtomicUsize::new(0),
            consecutive_errors: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            ejections: AtomicU32::new(0),
        }
    }

    fn ejected(&self) -> bool {
        let until = self.ejected_until.load(Ordering::Relaxed);
        if until == 0 {
            return false;
        }
        if now_nanos() >= until {
            // Back-off over: re-admit, and let one failure in a row count again from zero.
            self.ejected_until.store(0, Ordering::Relaxed);
            self.consecutive_errors.store(0, Ordering::Relaxed);
            tracing::info!(target: "sandbox::proxy", replica = %self.name, "replica re-admitted after ejection");
            return false;
        }
        true
    }

    fn available(&self) -> bool {
        self.healthy.load(Ordering::Relaxed) && !self.ejected()
    }

    /// Whether a request for `port` may go here: any replica for the intake (`Some`: the port
    /// the caller dialed), only those with the service's port for requests routed by name.
    fn serves(&self, port: Option<u16>) -> bool {
        port.is_some() || self.address.port() != 0
    }

    /// Where a request for `port` goes: the replica's IP at the port the caller dialed (the
    /// intake), else its service address.
    pub(crate) fn address_for(&self, port: Option<u16>) -> SocketAddr {
        match port {
            Some(port) => SocketAddr::new(self.address.ip(), port),
            None => self.address,
        }
    }

    /// Counts this request against the replica until the guard drops (for least request).
    pub(crate) fn start(self: &Arc<Self>) -> ReplicaGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        ReplicaGuard(self.clone())
    }

    /// Feeds outlier detection; `true` when this result ejected the replica.
    pub(crate) fn record(&self, failed: bool, policy: &OutlierDetection) -> bool {
        if !failed {
            self.consecutive_errors.store(0, Ordering::Relaxed);
            return false;
        }
        let errors = self.consecutive_errors.fetch_add(1, Ordering::Relaxed) + 1;
        if errors < policy.consecutive_errors || self.ejected_until.load(Ordering::Relaxed) != 0 {
            return false;
        }
        let times = self.ejections.fetch_add(1, Ordering::Relaxed) + 1;
        let period = policy.base_ejection * times.min(10);
        self.ejected_until
            .store(now_nanos() + period.as_nanos() as u64, Ordering::Relaxed);
        tracing::warn!(target: "sandbox::proxy", replica = %self.name, errors, ?period, "replica ejected after consecutive errors");
        true
    }
}

/// Holds one request against a replica's in-flight count.
#[derive(Debug)]
pub struct ReplicaGuard(Arc<Replica>);

impl Drop for ReplicaGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why no replica could be chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoReplica {
    /// The control plane reported none (not started, exited, scaled to 0).
    NoneRunning,
    /// All are unhealthy.
    NoneHealthy,
    /// All healthy ones are ejected by outlier detection.
    AllEjected,
}

/// One service's replicas and counters.
#[derive(Debug, Default)]
pub struct Upstream {
    replicas: RwLock<Arc<Vec<Arc<Replica>>>>,
    next: AtomicUsize,
    in_flight: AtomicU32,
    pending: AtomicU32,
    released: Notify,
    pub(crate) overflows: AtomicU64,
}

impl Upstream {
    /// Replaces the replica list, keeping the counters of replicas that stay.
    pub fn set_endpoints(&self, endpoints: &[Endpoint]) {
        let mut slot = self
            .replicas
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        let old = slot.clone();
        let replicas = endpoints
            .iter()
            .map(|endpoint| {
                match old.iter().find(|replica| {
                    replica.name == endpoint.name && replica.address == endpoint.address
                }) {
                    Some(replica) => {
                        replica.healthy.store(endpoint.healthy, Ordering::Relaxed);
                        replica.clone()
                    }
                    None => Arc::new(Replica::new(endpoint)),
                }
            })
            .collect();
        *slot = Arc::new(replicas);
    }

    pub fn replicas(&self) -> Arc<Vec<Arc<Replica>>> {
        self.replicas
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    /// Chooses a replica, skipping `avoid` (the one a retry just failed on) when another is free.
    /// `port`: the port an intake connection's caller dialed (every replica serves it at its
    /// IP); `None` for requests routed by name, which only replicas with the service's port take.
    pub fn pick(
        &self,
        balancer: LoadBalancer,
        avoid: Option<&Replica>,
        port: Option<u16>,
    ) -> Result<Arc<Replica>, NoReplica> {
        let replicas = self.replicas();
        // Common case: one replica, available.
        if let [only] = replicas.as_slice() {
            if only.serves(port) && only.available() {
                return Ok(only.clone());
            }
        }
        if !replicas.iter().any(|replica| replica.serves(port)) {
            return Err(NoReplica::NoneRunning);
        }
        let available: Vec<&Arc<Replica>> = replicas
            .iter()
            .filter(|replica| replica.serves(port) && replica.available())
            .collect();
        if available.is_empty() {
            return Err(
                if replicas
                    .iter()
                    .any(|replica| replica.serves(port) && replica.healthy.load(Ordering::Relaxed))
                {
                    NoReplica::AllEjected
                } else {
                    NoReplica::NoneHealthy
                },
            );
        }
        let candidates: Vec<&Arc<Replica>> = match avoid {
            Some(avoid) if available.len() > 1 => available
                .iter()
                .copied()
                .filter(|replica| !std::ptr::eq(replica.as_ref(), avoid))
                .collect(),
            _ => available,
        };
        let chosen = match balancer {
            LoadBalancer::RoundRobin => {
                candidates[self.next.fetch_add(1, Ordering::Relaxed) % candidates.len()]
            }
            LoadBalancer::LeastRequest => {
                let first = candidates[rand::random_range(0..candidates.len())];
                let second = candidates[rand::random_range(0..candidates.len())];
                if second.in_flight.load(Ordering::Relaxed)
                    < first.in_flight.load(Ordering::Relaxed)
                {
                    second
                } else {
                    first
                }
            }
        };
        Ok(chosen.clone())
    }

    /// Takes a request slot under the circuit breaker: at once when one is free, after waiting when
    /// fewer than `max_pending` already wait, else `None` (overflow).
    pub async fn admit(self: &Arc<Self>, limits: &CircuitBreaker) -> Option<AdmitGuard> {
        let limit = limits.max_requests.min(limits.max_connections);
        let mut waiting = false;
        loop {
            let notified = self.released.notified();
            let current = self.in_flight.load(Ordering::Acquire);
            if current < limit {
                if self
                    .in_flight
                    .compare_exchange(current, current + 1, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    if waiting {
                        self.pending.fetch_sub(1, Ordering::Relaxed);
                    }
                    return Some(AdmitGuard(self.clone()));
                }
                continue;
            }
            if !waiting {
                if self.pending.fetch_add(1, Ordering::Relaxed) >= limits.max_pending {
                    self.pending.fetch_sub(1, Ordering::Relaxed);
                    self.overflows.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                waiting = true;
            }
            // Bounded: a free slot wakes us; the request's own timeout ends the wait otherwise.
            let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
        }
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// A circuit-breaker slot, released on drop.
#[derive(Debug)]
pub struct AdmitGuard(Arc<Upstream>);

impl Drop for AdmitGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.released.notify_one();
    }
}

/// Every service's upstream, created on first use.
#[derive(Debug, Default)]
pub struct Upstreams {
    services: RwLock<FastMap<String, Arc<Upstream>>>,
}

impl Upstreams {
    pub fn get(&self, service: &str) -> Arc<Upstream> {
        if let Some(upstream) = self
            .services
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .get(service)
        {
            return upstream.clone();
        }
        self.services
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
            .entry(service.to_string())
            .or_default()
            .clone()
    }

    /// `/__sandbox/upstreams`.
    pub fn view(&self) -> Vec<UpstreamView> {
        let services = self
            .services
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        let mut views: Vec<UpstreamView> = services
            .iter()
            .map(|(name, upstream)| UpstreamView {
                service: name.clone(),
                in_flight: upstream.in_flight(),
                overflows: upstream.overflows.load(Ordering::Relaxed),
                replicas: upstream
                    .replicas()
                    .iter()
                    .map(|replica| ReplicaView {
                        name: replica.name.clone(),
                        address: replica.address.to_string(),
                        healthy: replica.healthy.load(Ordering::Relaxed),
                        ejected: replica.ejected(),
                        ejections: replica.ejections.load(Ordering::Relaxed),
                        consecutive_errors: replica.consecutive_errors.load(Ordering::Relaxed),
                        in_flight: replica.in_flight.load(Ordering::Relaxed),
                    })
                    .collect(),
            })
            .collect();
        views.sort_by(|a, b| a.service.cmp(&b.service));
        views
    }
}

#[derive(Debug, Serialize)]
pub struct UpstreamView {
    pub service: String,
    pub in_flight: u32,
    pub overflows: u64,
    pub replicas: Vec<ReplicaView>,
}

#[derive(Debug, Serialize)]
pub struct ReplicaView {
    pub name: String,
    pub address: String,
    pub healthy: bool,
    pub ejected: bool,
    pub ejections: u32,
    pub consecutive_errors: u32,
    pub in_flight: usize,
}

/// Which container addresses are reached through a forwarder's dial port, and the token the
/// dial requests carry. Empty (the default) on engines whose host reaches containers: every
/// connection goes straight to its address.
#[derive(Clone, Default)]
pub struct DialRoutes {
    /// The sandbox's mesh token, presented in each dial request.
    token: Arc<[u8]>,
    /// A container's IP → the host-side address of a forwarder on one of its networks (the
    /// forwarder's dial port, published on the host's loopback).
    via: HashMap<IpAddr, SocketAddr>,
}

impl std::fmt::Debug for DialRoutes {
    // The token is a secret: never in logs.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("DialRoutes")
            .field("via", &self.via)
            .finish_non_exhaustive()
    }
}

impl DialRoutes {
    /// Routes `via` (container IP → forwarder dial address) with the mesh `token`.
    pub fn new(token: Arc<[u8]>, via: HashMap<IpAddr, SocketAddr>) -> DialRoutes {
        DialRoutes { token, via }
    }

    /// Whether no address is dialed through a forwarder.
    pub fn is_empty(&self) -> bool {
        self.via.is_empty()
    }

    /// Opens a connection to `address`: through the forwarder that reaches its IP, if one does,
    /// else straight. A refusal the forwarder reports is a `ConnectionRefused` error, as a
    /// direct connect's is, so retries and outlier detection treat both alike.
    pub async fn connect(&self, address: SocketAddr) -> io::Result<TcpStream> {
        match self.via.get(&address.ip()) {
            None => TcpStream::connect(address).await,
            Some(via) => self.dial(*via, address).await,
        }
    }

    async fn dial(&self, via: SocketAddr, address: SocketAddr) -> io::Result<TcpStream> {
        let mut stream = TcpStream::connect(via).await.map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("the mesh forwarder that dials {address} ({via}): {error}"),
            )
        })?;
        let header = Header {
            source: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            destination: address,
            token: self.token.to_vec(),
            service: String::new(),
            dial: true,
            sniffed: None,
        };
        stream.write_all(&header.encode()).await?;
        let mut answer = [0u8; 1];
        let answered = stream.read(&mut answer).await;
        match (answered, answer[0]) {
            (Ok(1), DIAL_CONNECTED) => {
                let _ = stream.set_nodelay(true);
                Ok(stream)
            }
            (Ok(1), DIAL_REFUSED) => Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("connection refused (dialed by the mesh forwarder at {via})"),
            )),
            (Ok(1), _) => Err(io::Error::other(format!(
                "the mesh forwarder at {via} could not connect {address}"
            ))),
            // No answer: the forwarder refused the request (a wrong token) or went away.
            (Ok(_) | Err(_), _) => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                format!("the mesh forwarder at {via} refused to dial {address}"),
            )),
        }
    }
}

/// The process's dial routes: one control plane per process, and the upstream clients (per
/// data-plane worker, pooled by address) open connections by address alone.
static DIAL_ROUTES: RwLock<Option<Arc<DialRoutes>>> = RwLock::new(None);

/// Replaces the process's dial routes (the monitor, at each look at the containers).
pub fn set_dial_routes(routes: DialRoutes) {
    let routes = (!routes.is_empty()).then(|| Arc::new(routes));
    *DIAL_ROUTES
        .write()
        .unwrap_or_else(|poison| poison.into_inner()) = routes;
}

/// Opens an upstream connection to `address` (straight, or through a forwarder: see
/// [`DialRoutes`]); the callers bound it with their connect timeout.
pub async fn connect(address: SocketAddr) -> io::Result<TcpStream> {
    let routes = DIAL_ROUTES
        .read()
        .unwrap_or_else(|poison| poison.into_inner())
        .clone();
    match routes {
        Some(routes) => routes.connect(address).await,
        None => TcpStream::connect(address).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(name: &str, port: u16, healthy: bool) -> Endpoint {
        Endpoint {
            name: name.into(),
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            healthy,
        }
    }

    #[test]
    fn round_robin_skips_unhealthy() {
        let upstream = Upstream::default();
        assert_eq!(
            upstream.pick(LoadBalancer::RoundRobin, None, None).err(),
            Some(NoReplica::NoneRunning)
        );
        upstream.set_endpoints(&[
            endpoint("a", 1, true),
            endpoint("b", 2, false),
            endpoint("c", 3, true),
        ]);
        let names: Vec<String> = (0..4)
            .map(|_| {
                upstream
                    .pick(LoadBalancer::RoundRobin, None, None)
                    .expect("replica")
                    .name
                    .clone()
            })
            .collect();
        assert_eq!(names, ["a", "c", "a", "c"]);
        upstream.set_endpoints(&[endpoint("b", 2, false)]);
        assert_eq!(
            upstream.pick(LoadBalancer::RoundRobin, None, None).err(),
            Some(NoReplica::NoneHealthy)
        );
    }

    #[test]
    fn replicas_without_the_service_port_serve_only_the_intake() {
        let upstream = Upstream::default();
        upstream.set_endpoints(&[endpoint("a", 0, true)]);
        assert_eq!(
            upstream.pick(LoadBalancer::RoundRobin, None, None).err(),
            Some(NoReplica::NoneRunning),
            "routed by name: as if the service had no replica"
        );
        let replica = upstream
            .pick(LoadBalancer::RoundRobin, None, Some(6379))
            .expect("the intake reaches it");
        assert_eq!(
            replica.address_for(Some(6379)),
            SocketAddr::from(([127, 0, 0, 1], 6379))
        );
        upstream.set_endpoints(&[endpoint("a", 0, false)]);
        assert_eq!(
            upstream
                .pick(LoadBalancer::RoundRobin, None, Some(6379))
                .err(),
            Some(NoReplica::NoneHealthy)
        );
    }

    /// A forwarder in dial mode on loopback (its service port unused) with `token`.
    fn dialing_forwarder(token: &[u8]) -> SocketAddr {
        use sandbox_forwarder::config::{Config, Intake};
        use sandbox_forwarder::forward::{Forwarder, Limits};
        let forwarder = Forwarder::bind(
            Config {
                service: "item".into(),
                ports: vec![0],
                intake: Intake {
                    host: "127.0.0.1".into(),
                    port: 9,
                },
                token: token.to_vec(),
                dial_port: Some(0),
                handoff: None,
            },
            Limits::default(),
        )
        .expect("a forwarder");
        let dial = forwarder
            .dial_addresses()
            .into_iter()
            .find(SocketAddr::is_ipv4)
            .or_else(|| forwarder.dial_addresses().first().copied())
            .expect("a dial address");
        std::thread::spawn(move || forwarder.serve());
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), dial.port())
    }

    #[tokio::test]
    async fn connections_to_routed_addresses_go_through_the_forwarder() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = echo.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let (mut reader, mut writer) = stream.split();
                    let _ = tokio::io::copy(&mut reader, &mut writer).await;
                });
            }
        });
        let via = dialing_forwarder(b"secret");
        let routes = DialRoutes::new(
            Arc::from(&b"secret"[..]),
            HashMap::from([(target.ip(), via)]),
        );
        let mut stream = routes.connect(target).await.expect("dialed");
        assert_eq!(
            stream.peer_addr().unwrap(),
            via,
            "connected to the forwarder, not the target"
        );
        stream.write_all(b"ping").await.unwrap();
        let mut answer = [0u8; 4];
        stream.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"ping", "the target's bytes come back");

        // A closed port is refused as a direct connect is.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_address = closed.local_addr().unwrap();
        drop(closed);
        let refused = routes.connect(closed_address).await.unwrap_err();
        assert_eq!(
            refused.kind(),
            io::ErrorKind::ConnectionRefused,
            "{refused}"
        );
    }

    #[tokio::test]
    async fn a_dial_without_the_token_is_refused() {
        let via = dialing_forwarder(b"secret");
        let target: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let routes = DialRoutes::new(
            Arc::from(&b"not it"[..]),
            HashMap::from([(target.ip(), via)]),
        );
        let refused = tokio::time::timeout(Duration::from_secs(5), routes.connect(target))
            .await
            .expect("never a hang")
            .unwrap_err();
        assert_eq!(
            refused.kind(),
            io::ErrorKind::ConnectionAborted,
            "{refused}"
        );
        assert!(refused.to_string().contains("refused to dial"), "{refused}");
        assert!(
            !format!("{routes:?}").contains("not it"),
            "no token in logs"
        );
    }

    #[test]
    fn ejection_after_consecutive_errors() {
        let upstream = Upstream::default();
        upstream.set_endpoints(&[endpoint("a", 1, true)]);
        let replica = upstream
            .pick(LoadBalancer::RoundRobin, None, None)
            .expect("replica");
        let policy = OutlierDetection {
            consecutive_errors: 2,
            base_ejection: Duration::from_millis(30),
        };
        assert!(!replica.record(true, &policy));
        assert!(replica.record(true, &policy));
        assert_eq!(
            upstream.pick(LoadBalancer::RoundRobin, None, None).err(),
            Some(NoReplica::AllEjected)
        );
        std::thread::sleep(Duration::from_millis(40));
        assert!(upstream.pick(LoadBalancer::RoundRobin, None, None).is_ok());
    }
}
