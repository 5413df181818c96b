//! The state every connection shares: configuration, the runtime health status and the span reporter.

use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use crate::config::Config;
use crate::log;
use crate::trace::{Reporter, Span};

/// Shared service state.
#[derive(Debug)]
pub struct App {
    /// The configuration read at startup.
    pub config: Config,
    /// What `GET /health` answers; changed by `POST /admin/health`.
    health: AtomicU16,
    /// Present when `ZIPKIN_ENDPOINT` is set.
    pub reporter: Option<Reporter>,
}

impl App {
    /// State for `config`; starts the span reporter when an endpoint is configured.
    pub fn new(config: Config) -> Self {
        let reporter = config.zipkin.clone().map(Reporter::start);
        Self {
            health: AtomicU16::new(config.health_status),
            config,
            reporter,
        }
    }

    /// The service name.
    pub fn service(&self) -> &str {
        &self.config.service
    }

    /// The current health status code.
    pub fn health(&self) -> u16 {
        self.health.load(Ordering::Relaxed)
    }

    /// Sets the health status code (`None` restores the configured one).
    pub fn set_health(&self, status: Option<u16>) -> u16 {
        let status = status.unwrap_or(self.config.health_status);
        self.health.store(status, Ordering::Relaxed);
        status
    }

    /// Reports `span` if reporting is on.
    pub fn report(&self, span: Span) {
        if let Some(reporter) = &self.reporter {
            if span.context.reportable() {
                reporter.report(span);
            }
        }
    }

    /// Sends queued spans (up to 500 ms), logs and exits the process with `code`.
    pub fn exit(&self, code: i32, why: &str) -> ! {
        if let Some(reporter) = &self.reporter {
            reporter.flush(Duration::from_millis(500));
        }
        log::info(&format!(
            "{} exiting with code {code}: {why}",
            self.service()
        ));
        std::process::exit(code)
    }
}
