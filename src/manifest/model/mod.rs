//! The validated manifest: what every other module consumes.
//!
//! Everything here is resolved: interpolation done, defaults filled, relative paths made absolute,
//! cross-references checked. No `Option` means "not checked yet"; an `Option` here means the user may
//! really leave it out.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

mod storage;
pub use storage::{
    Build, ExposedPort, PortPublish, PullPolicy, VolumeMount, VolumeSpec, VolumesFrom,
    VolumesFromSource,
};

mod health;
mod secret;
pub use health::HealthTiming;

mod container;
pub use container::{
    Blkio, BlkioRate, BlkioWeight, ContainerOptions, Device, DeviceRequest, Logging, Resources,
    Ulimit,
};

mod network;
pub use network::{
    by_priority, default_network, Ipam, IpamPool, Link, NetworkMode, NetworkSpec, ServiceNetwork,
    Subnet, DEFAULT_NETWORK,
};

pub use secret::{format_mode, FileGrant, FileObject, FileSource, SecretText};

mod grpc;
pub use grpc::{GrpcStatus, GrpcWeb};

/// A whole sandbox, as `sandbox.yaml` describes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Manifest {
    /// Project name: `name:`, `-p NAME`, or the manifest folder's name (normalised to `[a-z0-9_-]`).
    pub project: String,
    /// The main manifest file (the first one read).
    #[serde(skip)]
    pub file: PathBuf,
    /// How the project was read (files, profiles, env files), so a background control plane or a
    /// reload reads the very same project.
    #[serde(skip)]
    pub source: LoadSource,
    /// The folder relative paths are resolved against (the manifest's folder).
    #[serde(skip)]
    pub directory: PathBuf,
    /// Services by name (sorted, so output and hashes are stable).
    pub services: BTreeMap<String, Service>,
    /// Named volumes declared at the top level (`volumes: {data: {}}`). Every named volume a service
    /// mounts is declared here: using an undeclared one is an error (with a hint), as in compose.
    pub volumes: BTreeMap<String, VolumeSpec>,
    /// Smoke checks for `sandbox test` and `sandbox run`, in manifest order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub smoke: Vec<crate::smoke::Check>,
    /// The front door (`gateway:`): where it listens and how it routes. Left out, it listens on
    /// `127.0.0.1:8080` with one route per service (see [`Gateway::routes`]).
    #[serde(skip_serializing_if = "Gateway::is_default")]
    pub gateway: Gateway,
    /// The trace server and the proxy's sampling (`tracing:`).
    #[serde(skip_serializing_if = "Tracing::is_default")]
    pub tracing: Tracing,
    /// Top-level `secrets:`: sensitive files services may be granted (values never printed).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, FileObject>,
    /// Top-level `configs:`: files services may be granted.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub configs: BTreeMap<String, FileObject>,
    /// Networks by key (top-level `networks:` plus the implicit `default` when a service uses it).
    #[serde(skip_serializing_if = "network::only_implicit_default")]
    pub networks: BTreeMap<String, NetworkSpec>,
    /// `mesh:` at the top level (default on): `false` leaves every service out of the transparent
    /// mesh (calls by compose's names go straight to the containers).
    #[serde(skip_serializing_if = "is_true")]
    pub mesh: bool,
    /// Keys accepted without effect, with their place and why; the CLI prints them.
    #[serde(skip)]
    pub warnings: Vec<crate::manifest::ManifestWarning>,
}

/// Where a service's HTTP port was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PortSource {
    /// The first TCP port of `expose:`.
    Expose,
    /// The container side of the first TCP `ports:` entry.
    Ports,
    /// The image's first exposed TCP port (`EXPOSE`), found when the image is on the engine (`up`).
    Image,
}

/// The inputs a project was read from, as absolute paths.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct LoadSource {
    /// The files merged in order (the `-f` files, or the discovered file and its override); files
    /// brought in by `include` and `extends` are not listed: reading these brings them in again.
    pub files: Vec<PathBuf>,
    /// The active profiles.
    #[serde(default)]
    pub profiles: Vec<String>,
    /// `--env-file` files (empty: `.env` in the project folder).
    #[serde(default)]
    pub env_files: Vec<PathBuf>,
}

impl LoadSource {
    /// The global flags that read the same project again (`-f A -f B --profile P --env-file E`).
    pub fn arguments(&self) -> Vec<std::ffi::OsString> {
        let mut arguments = Vec::new();
        for file in &self.files {
            arguments.push("--file".into());
            arguments.push(file.clone().into_os_string());
        }
        for profile in &self.profiles {
            arguments.push("--profile".into());
            arguments.push(profile.into());
        }
        for file in &self.env_files {
            arguments.push("--env-file".into());
            arguments.push(file.clone().into_os_string());
        }
        arguments
    }
}

/// One service: a container template run as `replicas` containers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Service {
    pub name: String,
    /// The image to run. When only `build:` is given this is `<project>-<service>:latest`, the tag the
    /// build produces (compose's naming).
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
    /// Replaces the image's CMD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Replaces the image's ENTRYPOINT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// `env_file` entries first, then `environment` on top (compose's precedence).
    pub environment: BTreeMap<String, String>,
    /// The port the service serves HTTP on inside its container (health probes, proxy routes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Where `port` came from when the manifest does not write it, shown by `sandbox config`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_from: Option<PortSource>,
    /// Extra host publishes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortPublish>,
    /// Container ports made known without publishing them (`expose:`; ranges expanded).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expose: Vec<ExposedPort>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeMount>,
    /// Mounts copied from other services' or containers' containers (`volumes_from:`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes_from: Vec<VolumesFrom>,
    /// When the image is pulled or built (`pull_policy:`).
    #[serde(skip_serializing_if = "PullPolicy::is_default")]
    pub pull_policy: PullPolicy,
    /// Dependencies and the condition each must reach before this service starts.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub depends_on: BTreeMap<String, DependencyCondition>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// `healthcheck: {disable: true}` or `test: ["NONE"]`: the image's own `HEALTHCHECK` is turned
    /// off too, as compose does.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub healthcheck_disabled: bool,
    pub replicas: u32,
    pub restart: RestartPolicy,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `external: http://127.0.0.1:3000`: a process on the host, not a container; the proxy sends the
    /// service's traffic there. Such a service has no `image` (it is the empty string).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<String>,
    /// How the proxy treats traffic to this service (faults, circuit breaker, outlier detection, load
    /// balancing, h2c), from the gateway and from the mesh alike.
    #[serde(skip_serializing_if = "TrafficPolicy::is_default")]
    pub traffic: TrafficPolicy,
    /// The profiles that enable this service (it is here, so one of them is active, or none is set).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// The container's own configuration (`cap_add`, `read_only`, limits, DNS, stop signal, ...).
    #[serde(skip_serializing_if = "ContainerOptions::is_default")]
    pub container: ContainerOptions,
    /// Project networks the containers join (keys of [`Manifest::networks`]): `default` when the
    /// service names none; empty under a `network_mode` other than [`NetworkMode::Networks`].
    #[serde(skip_serializing_if = "network::is_implicit_default")]
    pub networks: BTreeMap<String, ServiceNetwork>,
    #[serde(skip_serializing_if = "NetworkMode::is_networks")]
    pub network_mode: NetworkMode,
    /// `links:`: services whose containers answer to an alias from this one (also dependencies).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    /// `external_links:`: containers outside the project, by name, with an alias.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub external_links: Vec<Link>,
    /// Secrets mounted in the containers (`/run/secrets/...`), in manifest order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<FileGrant>,
    /// Configs mounted in the containers, in manifest order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<FileGrant>,
    /// The service's `mesh:` (default on): `false` keeps its DNS names on its own containers, so
    /// callers reach it directly. Whether it is meshed also depends on the project's `mesh`, its
    /// `network_mode`, `external` and its ports (see `engine::mesh::verdict`).
    #[serde(skip_serializing_if = "is_true")]
    pub mesh: bool,
}

/// For `skip_serializing_if`: a setting that is on by default is written only when off.
fn is_true(value: &bool) -> bool {
    *value
}

/// What a dependency must reach before its dependent starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DependencyCondition {
    /// The container is running.
    Started,
    /// Its health check passes (requires a `healthcheck` on the dependency).
    Healthy,
    /// It ran to completion with exit code 0.
    Completed,
}

/// A health check that the control plane probes itself. Serialised by hand (`health.rs`): the
/// timings still to come from the image are left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Healthcheck {
    pub probe: HealthProbe,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive failures (after `start_period`) before the service is unhealthy.
    pub retries: u32,
    pub start_period: Duration,
    /// Compose's `start_interval`: probe spacing during `start_period`. The control plane probes a
    /// starting replica every 150 ms anyway; kept to show what the file says.
    pub start_interval: Option<Duration>,
    /// With [`HealthProbe::Image`]: the timings the file leaves out, which `up` takes from the
    /// image's `HEALTHCHECK` when it sets them (else the defaults above stay).
    pub from_image: Vec<HealthTiming>,
}

/// How a health check probes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthProbe {
    /// `GET http://<container>:<port><path>` answers 2xx/3xx.
    Http { path: String },
    /// A TCP connection to `<container>:<port>` opens.
    Tcp,
    /// `grpc.health.v1.Health/Check` over h2c on `<container>:<port>` answers `SERVING` for
    /// `service` (`""`: the server as a whole).
    Grpc { service: String },
    /// A command run inside the container (exec) exits 0. Compose's `CMD-SHELL x` becomes
    /// `["sh", "-c", "x"]`, `CMD a b` becomes `["a", "b"]`.
    Command(Vec<String>),
    /// The image's own `HEALTHCHECK` command (a `healthcheck:` with timings only, or none on a
    /// service that a dependent waits `service_healthy` for). `up` turns it into a
    /// [`HealthProbe::Command`] once the image is on the engine.
    Image,
}

/// Restart policy handed to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    No,
    Always,
    UnlessStopped,
    OnFailure { max_retries: Option<u32> },
}

/// `tracing:`: the trace server of the sandbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tracing {
    /// Port of the trace server. `None`: 9411, or a free port when 9411 is taken (so sandboxes
    /// run side by side); a port written in the manifest is used or fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Spans kept before the oldest traces are evicted (Zipkin's default, 500 000).
    pub max_spans: usize,
    /// Share of new traces the proxy records (an incoming sampling decision is always honoured).
    pub sample_rate: f64,
    /// A Zipkin collector that gets a copy of every span.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward: Option<String>,
    /// Port of the OTLP/HTTP receiver. `None`: 4318, or a free port when 4318 is taken; a port
    /// written in the manifest is used or fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_http_port: Option<u16>,
    /// Port of the OTLP/gRPC receiver. `None`: 4317, or a free port when 4317 is taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_grpc_port: Option<u16>,
    /// Log records kept before the oldest are evicted (100 000 by default).
    #[serde(skip_serializing_if = "is_default_max_logs")]
    pub max_logs: usize,
}

fn is_default_max_logs(max_logs: &usize) -> bool {
    *max_logs == crate::trace::logs::DEFAULT_MAX_LOGS
}

impl Default for Tracing {
    fn default() -> Self {
        Tracing {
            port: None,
            max_spans: 500_000,
            sample_rate: 1.0,
            forward: None,
            otlp_http_port: None,
            otlp_grpc_port: None,
            max_logs: crate::trace::logs::DEFAULT_MAX_LOGS,
        }
    }
}

impl Tracing {
    pub fn is_default(&self) -> bool {
        self == &Tracing::default()
    }
}

/// `gateway:`: the listener on the developer's host and its routing table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gateway {
    /// Address to bind (default `127.0.0.1`).
    pub host: String,
    /// Port to bind (default 8080; 0 picks a free one).
    pub port: u16,
    /// Routes in order; the first that matches wins. Empty means one route per service under
    /// `/<service>/` with that prefix replaced by `/` (the proxy builds them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// Whether `x-sandbox-fault-delay` / `x-sandbox-fault-abort` request headers inject faults.
    pub allow_fault_headers: bool,
    /// Request bodies larger than this (bytes) are refused with 413, at the gateway and in the
    /// mesh; a gateway route may set its own.
    #[serde(skip_serializing_if = "Gateway::is_default_body_limit")]
    pub max_request_body: u64,
    /// Whether the gateway serves HTTPS (and HTTP/2 by ALPN) with a certificate from the user's
    /// local CA (`sandbox ca`), beside plain HTTP on the same port.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tls: bool,
    /// Data-plane workers serving the gateway and the mesh (threads, each with its own listening
    /// socket on the shared port); 0 means one per core available to the control plane. They
    /// start with the control plane: an `up -d` that changes the count replaces it.
    #[serde(skip_serializing_if = "Gateway::is_auto_workers")]
    pub workers: u16,
}

impl Default for Gateway {
    fn default() -> Self {
        Gateway {
            host: "127.0.0.1".to_string(),
            port: 8080,
            routes: Vec::new(),
            allow_fault_headers: true,
            max_request_body: Gateway::DEFAULT_MAX_REQUEST_BODY,
            tls: false,
            workers: 0,
        }
    }
}

impl Gateway {
    /// The request body limit when `gateway.max_request_body` is not set (64 MiB).
    pub const DEFAULT_MAX_REQUEST_BODY: u64 = 64 * 1024 * 1024;

    pub fn is_default(&self) -> bool {
        *self == Gateway::default()
    }

    /// Whether the address (host and port) is left as the default, which may move to a free port
    /// when taken; the other keys do not matter for that.
    pub fn address_is_default(&self) -> bool {
        let default = Gateway::default();
        self.host == default.host && self.port == default.port
    }

    /// The scheme the gateway is announced with: `https` when it serves TLS.
    pub fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }

    fn is_default_body_limit(limit: &u64) -> bool {
        *limit == Gateway::DEFAULT_MAX_REQUEST_BODY
    }

    fn is_auto_workers(workers: &u16) -> bool {
        *workers == 0
    }
}

/// One gateway route.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Route {
    #[serde(rename = "match")]
    pub matcher: RouteMatch,
    /// Where matching requests go.
    pub target: RouteTarget,
    /// Replaces the matched path prefix (for `prefix` matches; the whole path otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<String>,
    #[serde(skip_serializing_if = "HeaderEdits::is_empty")]
    pub request_headers: HeaderEdits,
    #[serde(skip_serializing_if = "HeaderEdits::is_empty")]
    pub response_headers: HeaderEdits,
    /// Whole-request timeout, retries included (to the response head).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "duration_text::serialize_option"
    )]
    pub timeout: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<RetryPolicy>,
    /// Replaces the target service's `faults` for requests on this route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub faults: Option<Faults>,
    /// Replaces `gateway.max_request_body` for requests on this route (bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_request_body: Option<u64>,
    /// gRPC-Web calls from browsers translated to gRPC, with CORS (`grpc_web: true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_web: Option<GrpcWeb>,
}

/// What a request must look like for a route to apply; every condition given must hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteMatch {
    pub path: PathMatch,
    /// Upper-case method, like `GET`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Lower-case header names.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, HeaderMatch>,
    /// Query parameters that must have exactly this value.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    /// The `Host` header without its port (case-insensitive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// How a route matches the path. `prefix: /` matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PathMatch {
    Prefix(String),
    Exact(String),
    /// Matches the whole path (anchored); validated when the manifest is read.
    Regex(String),
}

/// A condition on one request header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HeaderMatch {
    Exact(String),
    /// Matches the whole value (anchored).
    Regex(String),
    Present,
    Absent,
}

/// A route's destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteTarget {
    Service(String),
    /// Weighted split; weights add up to 100.
    Split(Vec<WeightedService>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WeightedService {
    pub service: String,
    pub weight: u32,
}

/// Headers to add (replacing any of the same name) and to remove; names are lower-case.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HeaderEdits {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub add: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

impl HeaderEdits {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }
}

/// When and how often to try again.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetryPolicy {
    /// Retries after the first try (Istio's and Envoy's `num_retries` meaning).
    pub attempts: u32,
    pub on: Vec<RetryOn>,
    /// Statuses that `retriable-status` retries.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retriable_status: Vec<u16>,
    /// gRPC statuses that `retriable-status` retries (given by name in `retriable_status`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retriable_grpc_status: Vec<GrpcStatus>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "duration_text::serialize_option"
    )]
    pub per_try_timeout: Option<Duration>,
    pub backoff: Backoff,
}

/// Conditions that make a try retriable (Envoy's `retry_on` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RetryOn {
    /// Any 5xx, a connect failure, a reset or a per-try timeout.
    #[serde(rename = "5xx")]
    ServerError,
    /// 502, 503, 504, a connect failure, a reset or a per-try timeout.
    GatewayError,
    ConnectFailure,
    Reset,
    /// A status listed in `retriable_status`.
    RetriableStatus,
    /// gRPC `UNAVAILABLE` (the next four: a gRPC status in the response headers, as servers send
    /// an immediate failure; one in trailers comes after the response started and is final).
    Unavailable,
    /// gRPC `RESOURCE_EXHAUSTED`.
    ResourceExhausted,
    /// gRPC `CANCELLED`.
    Cancelled,
    /// gRPC `DEADLINE_EXCEEDED`.
    DeadlineExceeded,
}

/// Exponential back-off between tries, with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Backoff {
    #[serde(with = "duration_text")]
    pub base: Duration,
    #[serde(with = "duration_text")]
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(25),
            max: Duration::from_millis(250),
        }
    }
}

/// Injected faults; each applies to `percent` of requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Faults {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<DelayFault>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort: Option<AbortFault>,
}

impl Faults {
    pub fn is_empty(&self) -> bool {
        self.delay.is_none() && self.abort.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DelayFault {
    #[serde(with = "duration_text")]
    pub fixed: Duration,
    /// 0 to 100 (default 100).
    pub percent: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AbortFault {
    /// The HTTP status (503 when only `grpc_status` is given).
    pub status: u16,
    /// The status gRPC calls get; `None`: mapped from `status` as Envoy maps HTTP to gRPC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_status: Option<GrpcStatus>,
    /// 0 to 100 (default 100).
    pub percent: f64,
}

/// A service's traffic policy: what the proxy applies to every request sent to it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TrafficPolicy {
    #[serde(skip_serializing_if = "Faults::is_empty")]
    pub faults: Faults,
    pub circuit_breaker: CircuitBreaker,
    pub outlier_detection: OutlierDetection,
    pub load_balancer: LoadBalancer,
    /// Talk HTTP/2 without TLS (h2c, prior knowledge) to the replicas.
    pub http2: bool,
    /// Timeout for mesh calls to this service (the gateway uses the route's).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "duration_text::serialize_option"
    )]
    pub timeout: Option<Duration>,
    /// Retries for mesh calls to this service (the gateway uses the route's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<RetryPolicy>,
}

impl TrafficPolicy {
    pub fn is_default(&self) -> bool {
        *self == TrafficPolicy::default()
    }
}

/// Limits beyond which the proxy answers 503 with `x-sandbox-overflow` instead of queueing
/// (Envoy's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CircuitBreaker {
    /// Upstream connections at once (for HTTP/1.1, one per request in flight).
    pub max_connections: u32,
    /// Requests waiting for a connection or request slot.
    pub max_pending: u32,
    /// Requests in flight at once.
    pub max_requests: u32,
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        CircuitBreaker {
            max_connections: 1024,
            max_pending: 1024,
            max_requests: 1024,
        }
    }
}

/// Passive health: a replica that fails `consecutive_errors` times in a row (5xx or connect
/// failure) is ejected for `base_ejection` × the number of times it was ejected (at most 10×).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OutlierDetection {
    pub consecutive_errors: u32,
    #[serde(with = "duration_text")]
    pub base_ejection: Duration,
}

impl Default for OutlierDetection {
    fn default() -> Self {
        OutlierDetection {
            consecutive_errors: 5,
            base_ejection: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadBalancer {
    #[default]
    RoundRobin,
    /// Power of two choices: the less busy of two random replicas.
    LeastRequest,
}

impl Manifest {
    /// Services in an order where every service comes after its dependencies.
    /// The manifest is validated to be acyclic, so this always succeeds.
    pub fn start_order(&self) -> Vec<&Service> {
        let mut order: Vec<&Service> = Vec::with_capacity(self.services.len());
        let mut placed = std::collections::BTreeSet::new();
        while order.len() < self.services.len() {
            let before = order.len();
            for service in self.services.values() {
                if !placed.contains(service.name.as_str())
                    && service
                        .depends_on
                        .keys()
                        .all(|dependency| placed.contains(dependency.as_str()))
                {
                    placed.insert(service.name.as_str());
                    order.push(service);
                }
            }
            if order.len() == before {
                break; // only reachable with a cycle, which validation rejects
            }
        }
        order
    }
}

/// Durations serialise as the manifest writes them (`250ms`, `1s`, `2m`).
pub mod duration_text {
    use std::time::Duration;

    /// `1500ms` → "1500ms", `2s` → "2s", `120s` → "2m".
    pub fn format(duration: Duration) -> String {
        let millis = duration.as_millis();
        if millis == 0 {
            "0s".to_string()
        } else if millis % 3_600_000 == 0 {
            format!("{}h", millis / 3_600_000)
        } else if millis % 60_000 == 0 {
            format!("{}m", millis / 60_000)
        } else if millis % 1000 == 0 {
            format!("{}s", millis / 1000)
        } else {
            format!("{millis}ms")
        }
    }

    pub fn serialize_option<S: serde::Serializer>(
        duration: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match duration {
            Some(duration) => serializer.serialize_str(&format(*duration)),
            None => serializer.serialize_none(),
        }
    }

    pub fn serialize<S: serde::Serializer>(
        duration: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format(*duration))
    }
}
