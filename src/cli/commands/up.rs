//! `sandbox up`: load the manifest → connect → network and volumes → images → plan → apply (parallel
//! along the dependency graph, health-checked) → ready → serve (foreground: stream logs until
//! Ctrl-C, then tear down; `-d`: a detached control plane keeps running).

use std::io::BufRead;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::cli::signals::Shutdown;
use crate::cli::{context, session, GlobalArgs};
use crate::control::wiring::{self, ContainerSide};
use crate::control::{process, reaper, ControlPlaneState, ReloadRequest};
use crate::engine::logs::LogSource;
use crate::engine::{self, Docker, UpOptions};
use crate::events::{Event, EventSink};
use crate::manifest::{LoadOptions, Manifest};
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
    let manifest = context::load_manifest_for(global, &args.services)?;
    context::check_services(&manifest, &args.services)?;
    if !args.control_plane {
        context::announce(&manifest, printer);
    }
    if (args.detach || args.wait) && !args.control_plane {
        return detach(&args, &manifest, printer).await;
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
        stop_timeout: None,
    }
}

/// Foreground: bring up, stream logs until Ctrl-C, then remove the containers.
async fn serve_foreground(
    manifest: &Manifest,
    args: &UpArgs,
    printer: &Printer,
) -> anyhow::Result<u8> {
    session::claim_project(manifest)?;
    let mut state = session::state(manifest, false);
    let _ = state.write();
    // If this process dies without tearing down (kill -9, a cancelled CI job), the reaper does.
    let lease = reaper::spawn(&manifest.project).ok();
    let shutdown = Shutdown::install();
    let events = printer.event_sink();
    let result = session::bring_up(
        manifest,
        &up_options(args, true),
        &events,
        &shutdown,
        &mut state,
    )
    .await;
    let running = match result {
        Ok(running) => running,
        Err(error) => {
            // Left as they are for `sandbox logs`; the report says how to remove them.
            if let Some(lease) = lease {
                lease.release();
            }
            ControlPlaneState::remove_if_mine(&manifest.project, std::process::id());
            return Err(error);
        }
    };
    printer.finish_progress();
    follow(&running, printer, &shutdown).await;
    if !shutdown.graceful.is_cancelled() {
        printer.stderr_line("every service has stopped; removing the containers");
    } else {
        printer.stderr_line("stopping (Ctrl-C again to force)");
    }
    session::tear_down(&running.docker, &manifest.project, &events, &shutdown).await;
    shutdown.graceful.cancel();
    running.plane.stopped().await;
    printer.finish_progress();
    if let Some(lease) = lease {
        lease.release();
    }
    ControlPlaneState::remove_if_mine(&manifest.project, std::process::id());
    Ok(if shutdown.graceful.is_cancelled() {
        130
    } else {
        0
    })
}

/// Streams the containers' output until Ctrl-C, or until every container has stopped. With no
/// container to follow (every service `external:`) nothing stops on its own: the gateway serves
/// until Ctrl-C.
async fn follow(running: &session::Running, printer: &Printer, shutdown: &Shutdown) {
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
    if sources.is_empty() {
        printer.stderr_line(
            "no containers to follow (every service is `external:`); serving until Ctrl-C",
        );
        shutdown.graceful.cancelled().await;
        return;
    }
    printer.stderr_line("attached to the services' output; Ctrl-C stops and removes them");
    super::logs::print_logs(
        &running.docker,
        &sources,
        true,
        None,
        false,
        printer,
        &shutdown.graceful,
    )
    .await;
}

/// `up -d` / `up --wait`: reconcile and reload a running detached control plane in place (no
/// restart, no dropped connection), or start a new one and render its bring-up events.
async fn detach(args: &UpArgs, manifest: &Manifest, printer: &Printer) -> anyhow::Result<u8> {
    if let Some(running) = ControlPlaneState::read_live(&manifest.project) {
        if running.detached && running.listeners == ControlPlaneState::listeners_of(manifest) {
            return reload_in_place(args, manifest, printer, running).await;
        }
    }
    // The new control plane takes over; containers are kept and reconciled by it.
    session::claim_project(manifest)?;
    let log_path = ControlPlaneState::log_path(&manifest.project);
    if let Some(parent) = log_path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let log = std::fs::File::create(&log_path)?;
    let mut command = std::process::Command::new(std::env::current_exe()?);
    command.args(manifest.source.arguments());
    command.arg("--project-name").arg(&manifest.project);
    command.args([
        "up",
        "--control-plane",
        "--timeout",
        &args.timeout.to_string(),
    ]);
    if args.wait {
        command.arg("--wait");
    }
    if args.build {
        command.arg("--build");
    }
    command.args(&args.services);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    process::detach_from_terminal(&mut command);
    let mut child = command.spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no pipe to the control plane"))?;
    for line in std::io::BufReader::new(stdout).lines() {
        let Ok(event) = serde_json::from_str::<Event>(&line?) else {
            continue;
        };
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

/// Applies the manifest from this process, then has the running control plane load it too (routes
/// swap atomically there) and waits until it has.
async fn reload_in_place(
    args: &UpArgs,
    manifest: &Manifest,
    printer: &Printer,
    running: ControlPlaneState,
) -> anyhow::Result<u8> {
    let started = std::time::Instant::now();
    let events = printer.event_sink();
    let shutdown = Shutdown::install();
    let docker = Docker::connect().await?;
    let network = engine::prepare(&docker, manifest, &events).await?;
    let port_of = |url: &Option<String>, default: u16| {
        url.as_deref()
            .and_then(|url| url.rsplit(':').next()?.parse().ok())
            .unwrap_or(default)
    };
    let host_gateway = wiring::HostGateway::of(&docker).await;
    let side = ContainerSide::detect(
        &network,
        wiring::Loopback {
            zipkin: port_of(&running.zipkin, wiring::ZIPKIN_PORT),
            intake: running.intake_port.unwrap_or(wiring::MESH_INTAKE_PORT),
            otlp_http: port_of(&running.otlp_http, crate::trace::otlp::DEFAULT_HTTP_PORT),
        },
        host_gateway,
    )
    .with_handoff(wiring::handoff_folder(
        &docker,
        &manifest.project,
        host_gateway,
    ));
    let wiring = wiring::wiring(manifest, &side);
    engine::up(
        &docker,
        manifest,
        &wiring,
        &up_options(args, args.wait),
        &events,
        &shutdown.graceful,
    )
    .await?;
    ReloadRequest {
        source: manifest.source.clone(),
        project: manifest.project.clone(),
        working_dir: std::env::current_dir().unwrap_or_else(|_| manifest.directory.clone()),
        environment: std::env::vars().collect(),
    }
    .write()?;
    // SAFETY: signalling the recorded control plane, which handles SIGHUP as "reload".
    unsafe { libc::kill(running.pid as i32, libc::SIGHUP) };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match ControlPlaneState::read_live(&manifest.project) {
            Some(state) if state.reloads > running.reloads => break,
            Some(_) if std::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(20)).await,
            _ => {
                return Err(anyhow::anyhow!(
                    "the control plane (pid {}) did not take the new manifest\n  hint: see its log{}, or restart it with `sandbox down` and `sandbox up -d`",
                    running.pid,
                    running.log_file.map(|path| format!(" ({})", path.display())).unwrap_or_default()
                ))
            }
        }
    }
    printer.event(&Event::Ready {
        gateway: running.gateway.clone(),
        zipkin: running.zipkin.clone(),
        elapsed_ms: started.elapsed().as_millis() as u64,
    });
    printer.finish_progress();
    printer.stderr_line(&format!(
        "control plane (pid {}) reloaded in place",
        running.pid
    ));
    Ok(0)
}

/// The detached control plane: events as JSON lines on stdout until ready, then serves until
/// SIGTERM; SIGHUP loads the manifest a re-up left (see [`reload_in_place`]).
async fn serve_detached(manifest: &Manifest, args: &UpArgs) -> anyhow::Result<u8> {
    let events = EventSink::new(|event| {
        if let Ok(line) = serde_json::to_string(&event) {
            println!("{line}");
        }
    });
    let log_file: PathBuf = ControlPlaneState::log_path(&manifest.project);
    let mut state = session::state(manifest, true);
    state.log_file = Some(log_file.clone());
    let _ = state.write();
    let shutdown = Shutdown::install();
    let running = match session::bring_up(
        manifest,
        &up_options(args, args.wait),
        &events,
        &shutdown,
        &mut state,
    )
    .await
    {
        Ok(running) => running,
        Err(error) => {
            let exit_code = crate::cli::exit_code(&error);
            events.emit(Event::Failed {
                message: crate::cli::report(&error),
                exit_code,
            });
            ControlPlaneState::remove_if_mine(&manifest.project, std::process::id());
            return Ok(exit_code);
        }
    };
    // The parent has what it needs; from here on output goes to the log file.
    if let Ok(file) = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&log_file)
    {
        process::redirect_output(&file);
    }
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = shutdown.graceful.cancelled() => break,
            _ = hangup.recv() => {
                let Some(request) = ReloadRequest::take(&manifest.project) else { continue };
                let options = LoadOptions {
                    files: request.source.files,
                    profiles: request.source.profiles,
                    env_files: request.source.env_files,
                    services: Vec::new(),
                    project: Some(request.project),
                    working_dir: request.working_dir,
                    environment: request.environment,
                };
                let loaded = crate::manifest::load(&options).map_err(|errors| errors.to_string());
                let reloaded = match loaded {
                    Ok(reloaded) => crate::engine::image::from_images(&running.docker, &reloaded, &[])
                        .await
                        .map_err(|error| error.to_string()),
                    Err(errors) => Err(errors),
                };
                match reloaded {
                    Ok(reloaded) => {
                        running.plane.reload(&reloaded).await;
                        state.reloads += 1;
                        let _ = state.write();
                        tracing::info!(reloads = state.reloads, "manifest reloaded");
                    }
                    Err(errors) => tracing::error!("reload refused: {errors}"),
                }
            }
        }
    }
    running.plane.stopped().await;
    ControlPlaneState::remove_if_mine(&manifest.project, std::process::id());
    Ok(0)
}
