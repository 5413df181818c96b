//! The snapshot the dashboard serves, and the actions it asks for. Plain data, serialised as the
//! API's JSON (the shape is locked by the tests below).

use serde::{Deserialize, Serialize};

/// Every service of the sandbox, in manifest order.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Resources {
    /// The project's name (empty for a standalone trace server).
    pub project: String,
    pub services: Vec<ServiceResource>,
}

/// One service.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServiceResource {
    pub name: String,
    /// The image as the manifest names it.
    pub image: String,
    /// The monitor's one-line state (`running (1 of 1 replicas healthy)`, `exited with code 137 …`).
    pub summary: String,
    /// Gateway routes that can reach it (`prefix:/user`).
    pub routes: Vec<String>,
    /// Requests the proxy answered for it so far, and those answered 5xx.
    pub requests: u64,
    pub errors: u64,
    /// Requests per second over the last seconds, and the share of them that failed (0–1).
    pub request_rate: f64,
    pub error_rate: f64,
    /// Faults the proxy injects now.
    pub faults: FaultView,
    /// Its environment, secret-looking values masked as `sandbox config` masks them.
    pub environment: Vec<(String, String)>,
    pub replicas: Vec<ReplicaResource>,
}

/// One container of a service.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReplicaResource {
    /// `user-1`.
    pub name: String,
    /// The first 12 characters of the container id.
    pub id: String,
    /// The engine's state: `running`, `exited`, `created`, ...
    pub state: String,
    /// `healthy`, `unhealthy`, `starting` (not probed yet) or `none` (no check, or not running).
    pub health: String,
    /// The last probe's result when unhealthy.
    pub health_detail: Option<String>,
    /// The engine's words (`Up 2 minutes`, `Exited (137) 1 second ago`).
    pub status: String,
    /// Published ports, `127.0.0.1:49153->8080/tcp`.
    pub ports: Vec<String>,
    /// Unix seconds it last started at (0: unknown); the page counts the uptime from it.
    pub started_at: i64,
    /// Times it was seen starting again since the dashboard began watching.
    pub restarts: u32,
}

/// The faults injected into a service's requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultView {
    /// A fixed delay in milliseconds, on every request.
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// An HTTP status every request is answered with.
    #[serde(default)]
    pub abort: Option<u16>,
}

/// What the dashboard can ask of the system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Stop then start every container of the service.
    Restart(String),
    Stop(String),
    Start(String),
    /// Replace the service's injected faults (none: clear them).
    Fault(String, FaultView),
}

impl Action {
    /// The service acted on.
    pub fn service(&self) -> &str {
        match self {
            Action::Restart(service)
            | Action::Stop(service)
            | Action::Start(service)
            | Action::Fault(service, _) => service,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_shape_the_page_reads() {
        let resources = Resources {
            project: "shop".into(),
            services: vec![ServiceResource {
                name: "item".into(),
                image: "demo:1".into(),
                summary: "running (1 of 1 replicas healthy)".into(),
                routes: vec!["prefix:/item".into()],
                requests: 10,
                errors: 1,
                request_rate: 2.0,
                error_rate: 0.1,
                faults: FaultView {
                    delay_ms: None,
                    abort: Some(503),
                },
                environment: vec![("API_TOKEN".into(), "********".into())],
                replicas: vec![ReplicaResource {
                    name: "item-1".into(),
                    id: "0123456789ab".into(),
                    state: "running".into(),
                    health: "healthy".into(),
                    health_detail: None,
                    status: "Up 2 seconds".into(),
                    ports: vec!["127.0.0.1:49153->8080/tcp".into()],
                    started_at: 1_700_000_000,
                    restarts: 0,
                }],
            }],
        };
        let json = serde_json::to_value(&resources).expect("serialises");
        assert_eq!(
            json,
            serde_json::json!({
                "project": "shop",
                "services": [{
                    "name": "item", "image": "demo:1",
                    "summary": "running (1 of 1 replicas healthy)",
                    "routes": ["prefix:/item"], "requests": 10, "errors": 1,
                    "request_rate": 2.0, "error_rate": 0.1,
                    "faults": {"delay_ms": null, "abort": 503},
                    "environment": [["API_TOKEN", "********"]],
                    "replicas": [{
                        "name": "item-1", "id": "0123456789ab", "state": "running",
                        "health": "healthy", "health_detail": null, "status": "Up 2 seconds",
                        "ports": ["127.0.0.1:49153->8080/tcp"], "started_at": 1_700_000_000,
                        "restarts": 0
                    }]
                }]
            })
        );
    }

    #[test]
    fn a_fault_body_may_leave_out_either_field() {
        let fault: FaultView = serde_json::from_str(r#"{"abort": 503}"#).expect("parses");
        assert_eq!(
            fault,
            FaultView {
                delay_ms: None,
                abort: Some(503)
            }
        );
        let cleared: FaultView = serde_json::from_str("{}").expect("parses");
        assert_eq!(cleared, FaultView::default());
    }
}
