//! A sandbox brought up by this process: the steps `up` (both modes) and `run` share — claim the
//! project, connect, start the control plane's services, apply the manifest, and tear down.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::cli::context;
use crate::cli::signals::Shutdown;
use crate::control::plane::ControlPlane;
use crate::control::{process, ControlPlaneState};
use crate::engine::{self, Docker, DownOptions, EngineError, UpOptions};
use crate::events::{Event, EventSink};
use crate::manifest::Manifest;

/// Makes sure no other foreground sandbox of the project runs; a detached control plane of the
/// project is stopped (its containers stay and this process takes them over).
pub fn claim_project(manifest: &Manifest) -> Result<(), context::UsageError> {
    if let Some(other) = ControlPlaneState::read_live(&manifest.project) {
        if !other.detached {
            return Err(context::UsageError {
                message: format!(
                    "project `{}` is already up in the foreground (pid {})\n  hint: stop it with Ctrl-C there, or pick another name with `-p`",
                    manifest.project, other.pid
                ),
            });
        }
        process::terminate(other.pid, Duration::from_secs(5));
    }
    Ok(())
}

/// The state record of this process as the project's control plane.
pub fn state(manifest: &Manifest, detached: bool) -> ControlPlaneState {
    ControlPlaneState {
        project: manifest.project.clone(),
        pid: std::process::id(),
        source: manifest.source.clone(),
        started_at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs(),
        detached,
        gateway: None,
        zipkin: None,
        intake_port: None,
        otlp_http: None,
        otlp_grpc: None,
        log_file: None,
        listeners: ControlPlaneState::listeners_of(manifest),
        reloads: 0,
    }
}

/// What a bring-up produced, common to both modes.
pub struct Running {
    pub docker: Docker,
    pub outcome: engine::UpOutcome,
    pub plane: ControlPlane,
}

/// Connects, starts the control plane's services and applies the manifest; on interruption tears
/// down what it started.
pub async fn bring_up(
    manifest: &Manifest,
    options: &UpOptions,
    events: &EventSink,
    shutdown: &Shutdown,
    state: &mut ControlPlaneState,
) -> anyhow::Result<Running> {
    let started = Instant::now();
    let docker = Docker::connect().await?;
    let network = engine::prepare(&docker, manifest, events).await?;
    let mut plane = ControlPlane::start(manifest, &network, &docker, &shutdown.graceful).await?;
    state.zipkin = Some(plane.zipkin_url.clone());
    state.otlp_http = Some(plane.otlp.http_url());
    state.otlp_grpc = Some(plane.otlp.grpc_url());
    state.gateway = Some(plane.gateway_url.clone());
    state.intake_port = Some(plane.intake_port);
    let _ = state.write();
    let result = engine::up(
        &docker,
        manifest,
        &plane.wiring,
        options,
        events,
        &shutdown.graceful,
    )
    .await;
    match result {
        Ok(outcome) => {
            if outcome.manifest != *manifest {
                plane.reload(&outcome.manifest).await;
            }
            plane.watch(&shutdown.graceful).await;
            // As Aspire does: the token that lets this browser act is in the link.
            events.note(format!("dashboard: {}", plane.dashboard_url));
            events.emit(Event::Ready {
                gateway: Some(plane.gateway_url.clone()),
                zipkin: Some(plane.zipkin_url.clone()),
                elapsed_ms: started.elapsed().as_millis() as u64,
            });
            Ok(Running {
                docker,
                outcome,
                plane,
            })
        }
        Err(error) => {
            if shutdown.graceful.is_cancelled() {
                tear_down(&docker, &manifest.project, events, shutdown).await;
                return Err(EngineError::Interrupted.into());
            }
            Err(error.into())
        }
    }
}

/// Removes the project's containers and network (volumes stay); a second signal skips the grace.
pub async fn tear_down(docker: &Docker, project: &str, events: &EventSink, shutdown: &Shutdown) {
    let graceful = DownOptions {
        remove_volumes: false,
        timeout: None,
    };
    let forced = DownOptions {
        timeout: Some(Duration::ZERO),
        ..graceful.clone()
    };
    let result = tokio::select! {
        result = engine::down(docker, project, &graceful, events) => result,
        _ = shutdown.force.cancelled() => engine::down(docker, project, &forced, events).await,
    };
    if let Err(error) = result {
        events.note(format!(
            "cleaning up failed: {error}\n  hint: run `sandbox down -p {project}`"
        ));
    }
}
