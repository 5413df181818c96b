//! One shutdown path: the first Ctrl-C or SIGTERM cancels `shutdown` (graceful stop); a second
//! cancels `force` (skip the grace).

use tokio_util::sync::CancellationToken;

/// The two cancellation stages.
#[derive(Clone)]
pub struct Shutdown {
    pub graceful: CancellationToken,
    pub force: CancellationToken,
}

impl Shutdown {
    /// Installs the signal handlers (call inside the runtime).
    pub fn install() -> Self {
        let shutdown = Shutdown {
            graceful: CancellationToken::new(),
            force: CancellationToken::new(),
        };
        let stages = shutdown.clone();
        tokio::spawn(async move {
            let Ok(mut terminate) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
                return;
            };
            let mut seen = 0;
            loop {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
                seen += 1;
                if seen == 1 {
                    stages.graceful.cancel();
                } else {
                    stages.force.cancel();
                }
            }
        });
        shutdown
    }
}
