//! What the proxy asks the control plane when a request cannot be served: the target service's
//! state and its last log lines, so the error page says what to do next.

use futures_util::future::BoxFuture;

/// The caller behind a mesh connection, found by source address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub service: String,
    /// The container replica, like `user-1`.
    pub replica: String,
}

/// Provided by the control plane (it knows containers, exit codes, health and logs).
pub trait ServiceStatus: Send + Sync {
    /// A one-line state, like `exited with code 1 at 10:42:03`, `unhealthy: GET /health → 500`,
    /// `starting`; `None` when unknown.
    fn state(&self, service: &str) -> Option<String>;

    /// The service's last `lines` log lines (all replicas, oldest first). The proxy waits at most
    /// half a second for them.
    fn recent_logs<'a>(&'a self, service: &'a str, lines: usize) -> BoxFuture<'a, Vec<String>>;
}

/// A [`ServiceStatus`] that knows nothing (tests, and before the control plane is ready).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoStatus;

impl ServiceStatus for NoStatus {
    fn state(&self, _service: &str) -> Option<String> {
        None
    }

    fn recent_logs<'a>(&'a self, _service: &'a str, _lines: usize) -> BoxFuture<'a, Vec<String>> {
        Box::pin(async { Vec::new() })
    }
}
