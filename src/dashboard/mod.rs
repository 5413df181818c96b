//! # Dashboard
//!
//! The live web dashboard served on the trace server's port at `/`: the Resources page (every
//! service and replica with state, health, ports, uptime, restarts, routes and request rates,
//! pushed by server-sent events; restart, stop/start and faults as actions), and the Logs
//! (live), Traces and Graph pages over the trace server's store: its own API, plus a log stream
//! and the call graph computed here. Plain HTML/CSS/JS embedded in the binary (`assets/`, one
//! script per page), no CDN, no build step.
//!
//! Owns `src/dashboard/`; reads the running system only through a [`System`] the control plane
//! hands in ([`live::LiveSystem`] is the control plane's), so `sandbox zipkin` serves the same
//! pages with no resources ([`Dashboard::standalone`]); reads the trace server's
//! [`Store`](crate::trace::Store) (never writes it) through the handle the trace server passes to
//! [`api::handle`].
//!
//! # Layout
//! - [`auth`]: the per-sandbox token, its cookie, and the same-origin check on state changes.
//! - [`api`]: routing of `/`, `/dashboard/…` and the JSON API.
//! - [`events`]: the server-sent-events bodies (resources, log lines).
//! - [`graph`]: the Graph page's services and calls, with counts, errors, p95 and traces.
//! - [`live`]: the control plane's [`System`]: engine, monitor, proxy routes, metrics, faults.
//! - [`model`]: the snapshot the API serves ([`Resources`]).
//!
//! # Endpoints
//! `GET /` (the page; `?token=…` sets the cookie), `GET /dashboard/{common,resources,logs,traces,graph,app}.js` and `app.css`,
//! `GET /dashboard/api/resources`, `GET /dashboard/api/events` (SSE, `event: resources`),
//! `GET /dashboard/api/logs/events?serviceName=&severity=&q=` (SSE, `event: logs`; the filters of
//! `/api/v2/logs`), `GET /dashboard/api/graph?window={5m,15m,1h,all}`,
//! `POST /dashboard/api/services/{name}/{restart,stop,start}`,
//! `POST /dashboard/api/services/{name}/fault` (`{"delay_ms": 300, "abort": 503}`; both absent
//! clears). Every POST needs the token (cookie or `x-sandbox-token`) and a same-origin request.

pub mod api;
pub mod auth;
pub mod events;
pub mod graph;
pub mod live;
pub mod model;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::watch;

pub use model::{Action, FaultView, ReplicaResource, Resources, ServiceResource};

/// What the dashboard needs from the running system.
pub trait System: Send + Sync {
    /// The current resources, and every change after (the receiver sees the latest snapshot).
    fn resources(&self) -> watch::Receiver<Arc<Resources>>;
    /// Carries out `action`; `Ok` holds a line saying what was done.
    fn act(&self, action: Action) -> BoxFuture<'_, Result<String, ActionError>>;
}

/// Why an action was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The service is not in the manifest.
    #[error("no service `{0}` in this sandbox")]
    UnknownService(String),
    /// The request was malformed (names the field).
    #[error("{0}")]
    BadRequest(String),
    /// The engine refused or failed.
    #[error("{0}")]
    Engine(String),
    /// This dashboard serves no running system (`sandbox zipkin`).
    #[error("this dashboard has no sandbox to act on (started by `sandbox zipkin`)")]
    NoSystem,
}

/// The dashboard: the system it shows (none for a standalone trace server) and the token that
/// state-changing requests must carry.
pub struct Dashboard {
    system: Option<Arc<dyn System>>,
    token: String,
    /// The snapshot served when there is no system.
    empty: watch::Sender<Arc<Resources>>,
    /// Places for open event streams ([`events::MAX_STREAMS`]): each holds a task and its buffer.
    streams: Arc<tokio::sync::Semaphore>,
}

impl Dashboard {
    /// A dashboard over `system`, whose actions need `token` ([`auth::new_token`]).
    pub fn new(system: Arc<dyn System>, token: String) -> Arc<Dashboard> {
        Arc::new(Dashboard {
            system: Some(system),
            token,
            empty: watch::channel(Arc::new(Resources::default())).0,
            streams: Arc::new(tokio::sync::Semaphore::new(events::MAX_STREAMS)),
        })
    }

    /// The pages with no resources and no actions (a standalone trace server).
    pub fn standalone() -> Arc<Dashboard> {
        Arc::new(Dashboard {
            system: None,
            token: auth::new_token(),
            empty: watch::channel(Arc::new(Resources::default())).0,
            streams: Arc::new(tokio::sync::Semaphore::new(events::MAX_STREAMS)),
        })
    }

    /// The resources now, and their changes.
    pub fn resources(&self) -> watch::Receiver<Arc<Resources>> {
        match &self.system {
            Some(system) => system.resources(),
            None => self.empty.subscribe(),
        }
    }

    async fn act(&self, action: Action) -> Result<String, ActionError> {
        match &self.system {
            Some(system) => system.act(action).await,
            None => Err(ActionError::NoSystem),
        }
    }

    /// A place for one more event stream, held until the stream ends; none when
    /// [`events::MAX_STREAMS`] are open.
    fn stream_place(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.streams.clone().try_acquire_owned().ok()
    }

    /// Whether `token` is this dashboard's (constant time).
    pub fn token_matches(&self, token: &str) -> bool {
        auth::same_secret(&self.token, token)
    }
}
