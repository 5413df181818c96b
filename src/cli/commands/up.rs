//! `sandbox up`: load the manifest → connect → network and volumes → images → plan → apply (parallel
//! along the dependency graph, health-checked) → ready → serve (foreground: stream logs until
//! Ctrl-C, then tear down; `-d`: a detached control plane keeps running).

use std::io::BufRead;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::cli::signals::Shutdown;
use crate::cli::{context, GlobalArgs};
use crate::control::{process, ControlPlaneState};
use crate::engine::logs::LogSource;
use crate::engine::spec::Wiring;
use crate::engine::{self, Docker, DownOptions, EngineError, UpOptions};
use crate::events::{Event, EventSink};
use crate::manifest::Manifest;
use crate::output::Printer;

#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// Leave the sandbox running in the background and return once it is up.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Wait until every service is healthy; non-zero exit if one is not (implies -d).
    #[arg(long)]
    pub wait: bool,
    /// Seconds to wait for services to be started/healthy.
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    pub timeout: u64,
    /// Build images that have a `build:` section even when they exist.
    #[arg(long)]
    pub build: bool,
    /// Only these services (and what they depend on).
    pub services: Vec<String>,
    /// Internal: run as the detached control plane, reporting events as JSON lines on stdout.
    #[arg(long, hide = true)]
    pub control_plane: bool,
}

pub async fn run(global: &GlobalArgs, args: UpArgs, printer: &Printer) -> anyhow::Result<u8> {
    let manifest = context::load_manifest(global)?;
    context::check_services(&manifest, &args.services)?;
    if (args.detach || args.wait) && !args.control_plane {
        return detach(&args, &manifest, printer);
    }
    if args.control_plane {
        serve_detached(&manifest, &args).await
    } else {
        serve_foreground(&manifest, &args, printer).await
    }
}

fn up_options(args: &UpArgs, wait_healthy: bool) -> UpOptions {
    UpOptions {
        services: args.services.clone(),
        timeout: Duration::from_secs(args.timeout),
        wait_healthy,
        rebuild: args.build,
        stop_timeout: Duration::from_secs(10),
    }
}

/// What a bring-up produced, common to both modes.
struct Running {
    docker: Docker,
    outcome: engine::UpOutcome,
}

/// Connects and applies the manifest; on interruption tears down what it started.
async fn bring_up(
    manifest: &Manifest,
    options: &UpOptions,
    events: &EventSink,
    shutdown: &Shutdown,
) -> Result<Running, EngineError> {
    let started = Instant::now();
    let docker = Docker::connect().await?;
    let network = engine::prepare(&docker, manifest, events).await?;
    let wiring = Wiring {
        network: network.name.clone(),
        ..Default::default()
    };
    let result = engine::up(&docker, manifest, &wiring, options, events, &shutdown.graceful).await;
    match result {
        Ok(outcome) => {
            events.emit(Event::Ready {
                gateway: None,
                zipkin: None,
                elapsed_ms: started.elapsed().as_millis() as u64,
            });
            Ok(Running { docker, outcome })
        }
        Err(error) => {
            if shutdown.graceful.is_cancelled() {
                tear_down(&docker, &manifest.project, events, shutdown).await;
                return Err(EngineError::Interrupted);
            }
            Err(error)
        }
    }
}

/// Removes the project's containers and network (volumes stay); a second signal skips the grace.
async fn tear_down(docker: &Docker, project: &str, events: &EventSink, shutdown: &Shutdown) {
    let graceful = DownOptions {
        remove_volumes: false,
        timeout: Duration::from_secs(10),
    };
    let forced = DownOptions {
        timeout: Duration::ZERO,
        ..graceful.clone()
    };
    let result = tokio::select! {
        result = engine::down(docker, project, &graceful, events) => result,
        _ = shutdown.force.cancelled() => engine::down(docker, project, &forced, events).await,
    };
    if let Err(error) = result {
        events.note(format!("cleaning up failed: {error}\n  hint: run `sandbox down -p {project}`"));
    }
}

fn now_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// Foreground: bring up, stream logs until Ctrl-C, then remove the containers.
async fn serve_foreground(manifest: &Manifest, args: &UpArgs, printer: &Printer) -> anyhow::Result<u8> {
    if let Some(other) = ControlPlaneState::read_live(&manifest.project) {
        if other.detached {
            // A detached control plane of this project is replaced by this foreground one.
            process::terminate(other.pid, Duration::from_secs(5));
        } else {
            return Err(context::UsageError {
                message: format!(
                    "project `{}` is already up in the foreground (pid {})\n  hint: stop it with Ctrl-C there, or pick another name with `-p`",
                    manifest.project, other.pid
                ),
            }
            .into());
        }
    }
    let state = ControlPlaneState {
        project: manifest.project.clone(),
        pid: std::process::id(),
        manifest: manifest.file.clone(),
        started_at: now_seconds(),
        detached: false,
        gateway: None,
        zipkin: None,
        log_file: None,
    };
    let _ = state.write();
    let shutdown = Shutdown::install();
    let events = printer.event_sink();
    let result = bring_up(manifest, &up_options(args, true), &events, &shutdown).await;
    let running = match result {
        Ok(running) => running,
        Err(error) => {
            ControlPlaneState::remove_if_mine(&manifest.project, std::process::id());
            return Err(error.into());
        }
    };
    printer.finish_progress();
    printer.stderr_line("attached to the services' output; Ctrl-C stops and removes them");
    let sources: Vec<LogSource> = running
        .outcome
        .replicas
        .iter()
        .map(|replica| LogSource {
            container_id: replica.container_id.clone(),
            service: replica.service.clone(),
            replica: replica.replica,
        })
        .collect();
    super::logs::print_logs(&running.docker, &sources, true, None, false, printer, &shutdown.graceful).await;
    if !shutdown.graceful.is_cancelled() {
        printer.stderr_line("every service has stopped; removing the containers");
    } else {
        printer.stderr_line("stopping (Ctrl-C again to force)");
    }
    tear_down(&running.docker, &manifest.project, &events, &shutdown).await;
    printer.finish_progress();
    ControlPlaneState::remove_if_mine(&manifest.project, std::process::id());
    Ok(if shutdown.graceful.is_cancelled() { 130 } else { 0 })
}

/// `up -d` / `up --wait`: start a detached control plane and render its bring-up events.
fn detach(args: &UpArgs, manifest: &Manifest, printer: &Printer) -> anyhow::Result<u8> {
    if let Some(other) = ControlPlaneState::read_live(&manifest.project) {
        if !other.detached {
            return Err(context::UsageError {
                message: format!(
                    "project `{}` is up in the foreground (pid {})\n  hint: stop it with Ctrl-C there first",
                    manifest.project, other.pid
                ),
            }
            .into());
        }
        // The new control plane takes over; containers are kept and reconciled by it.
        process::terminate(other.pid, Duration::from_secs(5));
    }
    let log_path = ControlPlaneState::log_path(&manifest.project);
    if let Some(parent) = log_path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let log = std::fs::File::create(&log_path)?;
    let mut command = std::process::Command::new(std::env::current_exe()?);
    command.arg("--file").arg(&manifest.file);
    command.arg("--project-name").arg(&manifest.project);
    command.args(["up", "--control-plane", "--timeout", &args.timeout.to_string()]);
    if args.wait {
        command.arg("--wait");
    }
    if args.build {
        command.arg("--build");
    }
    command.args(&args.services);
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log);
    process::detach_from_terminal(&mut command);
    let mut child = command.spawn()?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no pipe to the control plane"))?;
    for line in std::io::BufReader::new(stdout).lines() {
        let Ok(event) = serde_json::from_str::<Event>(&line?) else { continue };
        match event {
            Event::Failed { message, exit_code } => {
                printer.error(&message);
                return Ok(exit_code);
            }
            ready @ Event::Ready { .. } => {
                printer.event(&ready);
                printer.finish_progress();
                printer.stderr_line(&format!(
                    "control plane running in the background (pid {}); `sandbox down` stops everything",
                    child.id()
                ));
                return Ok(0);
            }
            other => printer.event(&other),
        }
    }
    let status = child.wait()?;
    Err(anyhow::anyhow!(
        "the control plane ended before the sandbox was up ({status})\n  hint: see its log: {}",
        log_path.display()
    ))
}

/// The detached control plane: events as JSON lines on stdout until ready, then runs until SIGTERM.
async fn serve_detached(manifest: &Manifest, args: &UpArgs) -> anyhow::Result<u8> {
    let events = EventSink::new(|event| {
        if let Ok(line) = serde_json::to_string(&event) {
            println!("{line}");
        }
    });
    let log_file: PathBuf = ControlPlaneState::log_path(&manifest.project);
    let state = ControlPlaneState {
        project: manifest.project.clone(),
        pid: std::process::id(),
        manifest: manifest.file.clone(),
        started_at: now_seconds(),
        detached: true,
        gateway: None,
        zipkin: None,
        log_file: Some(log_file.clone()),
    };
    let _ = state.write();
    let shutdown = Shutdown::install();
    match bring_up(manifest, &up_options(args, args.wait), &events, &shutdown).await {
        Ok(_running) => {}
        Err(error) => {
            events.emit(Event::Failed {
                message: error.to_string(),
                exit_code: error.exit_code(),
            });
            ControlPlaneState::remove_if_mine(&manifest.project, std::process::id());
            return Ok(error.exit_code());
        }
    }
    // The parent has what it needs; from here on output goes to the log file.
    if let Ok(file) = std::fs::OpenOptions::new().append(true).create(true).open(&log_file) {
        process::redirect_output(&file);
    }
    shutdown.graceful.cancelled().await;
    ControlPlaneState::remove_if_mine(&manifest.project, std::process::id());
    Ok(0)
}
