//! Per-request state the phases share for every protocol (pingora's `CTX`): which listener a
//! request came in on, [`Session`] (who called, where it went, what happened) and [`Target`]
//! (where a request goes and with which policies). HTTP/1.1 on either transport and each HTTP/2
//! stream get one `Session`; `phases` fills it, `forward` and `logging` read it.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::HeaderValue;
use http::Method;
use hyper::body::Body;

use crate::manifest::{Faults, RetryPolicy};

use super::body::BoxError;
use super::error::ProxyError;
use super::grpc;
use super::grpc_web;
use super::propagation::TraceContext;
use super::upstream::{AdmitGuard, Replica, ReplicaGuard};

/// Which listener a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Gateway,
    /// `<service>.sandbox:15001`: the target is named by the `Host` header.
    Mesh,
    /// The mesh intake: a forwarder's connection, its target named by the PROXY header
    /// ([`Called`]), whatever the `Host` header says.
    Intake,
}

/// What a caller dialed, as a forwarder reports it on the intake: the service it stands for and
/// the port the caller connected to (upstream: the chosen replica's address at that port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Called {
    pub service: Arc<str>,
    pub port: u16,
}

/// A request body as a listener delivers it: hyper's `Incoming`, or the fast path's `Empty`.
pub trait RequestBody: Body<Data = Bytes, Error: Into<BoxError>> + Send + Unpin + 'static {}

impl<B> RequestBody for B where B: Body<Data = Bytes, Error: Into<BoxError>> + Send + Unpin + 'static
{}

/// A request extension: the request came over TLS (`X-Forwarded-Proto: https` upstream).
#[derive(Debug, Clone, Copy)]
pub struct OverTls;

/// Per-request state (pingora's `CTX`).
pub struct Session {
    pub listener: Listener,
    /// On the intake: the service and port the caller dialed.
    pub called: Option<Called>,
    /// `gateway` at the front door, else the calling service.
    pub caller: Cow<'static, str>,
    pub caller_replica: Option<String>,
    pub peer: SocketAddr,
    /// The request came over TLS.
    pub tls: bool,
    /// The request id (the client's `x-request-id`, else a new one), as the header value sent
    /// both ways; [`Session::request_id`] reads it as text. Kept once: no copy as a `String`.
    pub request_id: HeaderValue,
    pub started: Instant,
    pub start_micros: u64,
    pub method: Method,
    pub path: String,
    /// Route name (`prefix:/items`; `mesh` on the mesh; `-` when none matched).
    pub route: Cow<'static, str>,
    pub route_index: Option<usize>,
    pub service: Option<String>,
    pub replica: Option<Arc<Replica>>,
    pub retries: u32,
    pub annotations: Vec<(u64, String)>,
    /// The context of the proxy's own span (what is forwarded).
    pub trace: Option<TraceContext>,
    pub sampled: bool,
    pub status: u16,
    pub error: Option<String>,
    pub admit: Option<AdmitGuard>,
    pub replica_guard: Option<ReplicaGuard>,
    /// A gRPC call's method and status (`None`: not gRPC).
    pub grpc: Option<grpc::Call>,
    /// A gRPC-Web call's translation back (`None`: not gRPC-Web).
    pub web: Option<grpc_web::Web>,
}

impl Session {
    /// The request id as text (only visible ASCII is ever kept: see `phases::respond`).
    pub fn request_id(&self) -> &str {
        self.request_id.to_str().unwrap_or_default()
    }
}

/// Where a request goes, and with which policies.
pub struct Target<'c> {
    /// Borrowed from the route table at the gateway.
    pub service: Cow<'c, str>,
    pub timeout: Duration,
    pub retries: Option<&'c RetryPolicy>,
    pub faults: Option<&'c Faults>,
    /// Request bodies larger than this are refused (413).
    pub max_request_body: u64,
    /// The route whose own `max_request_body` applies (`None`: the gateway's).
    pub body_limit_route: Option<&'c str>,
}

impl Target<'_> {
    /// The 413 for a body over this target's limit, naming the limit that applies.
    pub(super) fn body_too_large(&self) -> ProxyError {
        ProxyError::BodyTooLarge {
            limit: self.max_request_body,
            route: self.body_limit_route.map(str::to_string),
        }
    }
}
