//! Progress events the core emits while it works; only the CLI layer renders them (bars on a TTY, plain
//! lines in CI, JSON lines with `--json`). The core never prints.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A service (or one replica of it, `replica` > 0) reached a new step of its bring-up or tear-down.
    Service {
        service: String,
        /// 0 when the step is about the service as a whole (image pull/build); else the replica number.
        replica: u32,
        step: Step,
        /// Extra words for the step: the image, a build line, a reason.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        detail: String,
        /// Time since the service's bring-up began, in milliseconds.
        elapsed_ms: u64,
    },
    /// A resource of the project other than a container (network, volume, image).
    Resource {
        kind: String,
        name: String,
        action: String,
    },
    /// Pull progress of an image layer set, in bytes (`total` 0 when unknown).
    PullProgress {
        service: String,
        image: String,
        current: u64,
        total: u64,
    },
    /// A note for the user that is not about one service (e.g. a removed orphan).
    Note { message: String },
    /// Everything asked for is up (and healthy where a health check exists).
    Ready {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gateway: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        zipkin: Option<String>,
        elapsed_ms: u64,
    },
    /// The operation failed; `message` is the full user-facing report.
    Failed { message: String, exit_code: u8 },
}

/// The steps a service goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Pulling,
    Pulled,
    Building,
    Built,
    Waiting,
    Creating,
    Recreating,
    Starting,
    Started,
    Healthy,
    Unchanged,
    Completed,
    Failed,
    Stopping,
    Removed,
}

impl Step {
    /// The word shown to users.
    pub fn label(self) -> &'static str {
        match self {
            Step::Pulling => "pulling",
            Step::Pulled => "pulled",
            Step::Building => "building",
            Step::Built => "built",
            Step::Waiting => "waiting",
            Step::Creating => "creating",
            Step::Recreating => "recreating",
            Step::Starting => "starting",
            Step::Started => "started",
            Step::Healthy => "healthy",
            Step::Unchanged => "unchanged",
            Step::Completed => "completed",
            Step::Failed => "failed",
            Step::Stopping => "stopping",
            Step::Removed => "removed",
        }
    }

    /// Whether the step ends the service's bring-up (its bar can finish).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Step::Healthy | Step::Started | Step::Unchanged | Step::Completed | Step::Failed | Step::Removed
        )
    }
}

/// Where the core sends events. Cheap to clone; sending never blocks.
#[derive(Clone)]
pub struct EventSink(Arc<dyn Fn(Event) + Send + Sync>);

impl EventSink {
    pub fn new(send: impl Fn(Event) + Send + Sync + 'static) -> Self {
        EventSink(Arc::new(send))
    }

    /// A sink that drops everything (tests, quiet commands).
    pub fn discard() -> Self {
        EventSink::new(|_| {})
    }

    pub fn emit(&self, event: Event) {
        (self.0)(event)
    }

    /// Shorthand for a [`Event::Service`] step.
    pub fn step(&self, service: &str, replica: u32, step: Step, detail: impl Into<String>, elapsed: Duration) {
        self.emit(Event::Service {
            service: service.to_string(),
            replica,
            step,
            detail: detail.into(),
            elapsed_ms: elapsed.as_millis() as u64,
        });
    }

    pub fn note(&self, message: impl Into<String>) {
        self.emit(Event::Note { message: message.into() });
    }
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("EventSink")
    }
}
