//! Engine errors: each names the service it concerns and the command to run next.

use std::fmt::Write as _;
use std::time::Duration;

/// What can go wrong while talking to the engine or bringing services up.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot reach the Docker engine at {endpoint}: {reason}\n  hint: start Docker (or Podman's Docker API), or point DOCKER_HOST at it, e.g. DOCKER_HOST=unix:///var/run/docker.sock")]
    Unreachable { endpoint: String, reason: String },

    #[error("image `{image}` of service `{service}` is not on this machine and could not be pulled: {reason}\n  hint: check the image name, `docker login` for a private registry, or add a `build:` section to service `{service}`")]
    ImageNotFound {
        image: String,
        service: String,
        reason: String,
    },

    #[error("pulling image `{image}` of service `{service}` failed (`pull_policy: {policy}`): {reason}\n  hint: check the registry is reachable and `docker login`; `pull_policy: missing` uses the copy on this machine")]
    PullFailed {
        image: String,
        service: String,
        policy: String,
        reason: String,
    },

    #[error("{}", build_failed_message(.service, .image, .output))]
    BuildFailed {
        service: String,
        image: String,
        /// The build's last lines, ending with the failing step and its error.
        output: Vec<String>,
    },

    #[error("{}", port_taken_message(.service, .port, .holder))]
    PortTaken {
        service: String,
        port: String,
        /// The container holding the port, when it is one.
        holder: Option<String>,
    },

    #[error("{}", exited_message(.service, .container, *.exit_code, .logs))]
    ContainerExited {
        service: String,
        container: String,
        exit_code: i64,
        logs: Vec<String>,
    },

    #[error("{}", unhealthy_message(.service, .container, .last_probe, .logs))]
    Unhealthy {
        service: String,
        container: String,
        last_probe: String,
        logs: Vec<String>,
    },

    #[error("service `{service}` was not {condition} within {}s\n  last probe: {last_probe}\n  hint: run `sandbox logs {service}`, or give it more time with `--timeout`", .waited.as_secs())]
    Timeout {
        service: String,
        condition: String,
        waited: Duration,
        last_probe: String,
    },

    #[error("{}", no_image_healthcheck_message(.service, .image, .waiting))]
    NoImageHealthcheck {
        service: String,
        image: String,
        /// A service that waits for it to be healthy; `None`: its healthcheck has timings only.
        waiting: Option<String>,
    },

    #[error("service `{service}` was not started because its dependency `{dependency}` failed")]
    DependencyFailed { service: String, dependency: String },

    #[error("{action} for service `{service}` failed: {message}\n  hint: run `sandbox logs {service}` or `sandbox ps` to see its state")]
    Service {
        service: String,
        action: String,
        message: String,
    },

    #[error("{action} failed: {message}")]
    Api { action: String, message: String },

    #[error("interrupted")]
    Interrupted,
}

impl EngineError {
    /// The exit code this error maps to (see the README's exit code table).
    pub fn exit_code(&self) -> u8 {
        match self {
            EngineError::Unreachable { .. } => 4,
            EngineError::ImageNotFound { .. }
            | EngineError::PullFailed { .. }
            | EngineError::BuildFailed { .. }
            | EngineError::PortTaken { .. }
            | EngineError::Service { .. }
            | EngineError::NoImageHealthcheck { .. }
            | EngineError::Api { .. } => 5,
            EngineError::ContainerExited { .. }
            | EngineError::Unhealthy { .. }
            | EngineError::Timeout { .. }
            | EngineError::DependencyFailed { .. } => 6,
            EngineError::Interrupted => 130,
        }
    }
}

fn no_image_healthcheck_message(service: &str, image: &str, waiting: &Option<String>) -> String {
    let example = "`test: [\"CMD\", \"pg_isready\"]` or `http: /health`";
    let (what, fix) = match waiting {
        Some(dependent) => (
            format!("service `{dependent}` waits for `{service}` to be healthy, but `{service}` has no `healthcheck:`"),
            format!("add a `healthcheck:` to `{service}` with a probe, like {example}, or use `condition: service_started`"),
        ),
        None => (
            format!("the healthcheck of service `{service}` has timings but no `test`"),
            format!("add a `test:` to the healthcheck of `{service}`, like {example}"),
        ),
    };
    format!("{what}, and its image `{image}` has no HEALTHCHECK to take (container has no healthcheck configured)\n  hint: {fix}")
}

fn build_failed_message(service: &str, image: &str, output: &[String]) -> String {
    let mut message = format!("building image `{image}` for service `{service}` failed:\n");
    for line in output {
        let _ = writeln!(message, "  | {line}");
    }
    let _ = write!(
        message,
        "  hint: fix the Dockerfile step above, then run `sandbox up` again"
    );
    message
}

fn port_taken_message(service: &str, port: &str, holder: &Option<String>) -> String {
    let by = match holder {
        Some(container) => format!("container `{container}` holds it"),
        None => "another process on this machine holds it".to_string(),
    };
    format!(
        "service `{service}` cannot publish host port {port}: {by}\n  hint: stop that {}, or change the port in `ports:` of service `{service}`",
        if holder.is_some() { "container (`docker stop` it)" } else { "process" }
    )
}

fn exited_message(service: &str, container: &str, exit_code: i64, logs: &[String]) -> String {
    let mut message =
        format!("service `{service}` exited with code {exit_code} (container `{container}`)");
    append_logs(&mut message, logs);
    let _ = write!(
        message,
        "\n  hint: run `sandbox logs {service}` to see all of its output"
    );
    message
}

fn unhealthy_message(service: &str, container: &str, last_probe: &str, logs: &[String]) -> String {
    let mut message = format!(
        "service `{service}` is unhealthy (container `{container}`)\n  last probe: {last_probe}"
    );
    append_logs(&mut message, logs);
    let _ = write!(
        message,
        "\n  hint: run `sandbox logs {service}` to see all of its output"
    );
    message
}

fn append_logs(message: &mut String, logs: &[String]) {
    if logs.is_empty() {
        message.push_str("\n  (no log output)");
        return;
    }
    let _ = write!(message, "\n  last {} log lines:", logs.len());
    for line in logs {
        let _ = write!(message, "\n  | {line}");
    }
}
