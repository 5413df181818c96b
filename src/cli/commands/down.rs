//! `sandbox down` (one project) and `sandbox down --all` / `sandbox prune` (every sandbox on the
//! engine): stop control planes, then remove everything found by label.

use std::time::Duration;

use crate::cli::{context, GlobalArgs};
use crate::control::{process, ControlPlaneState};
use crate::engine::{self, Docker, DownOptions, DownOutcome};
use crate::output::Printer;

#[derive(Debug, clap::Args)]
pub struct DownArgs {
    /// Also remove the project's named volumes.
    #[arg(short = 'v', long = "volumes")]
    pub volumes: bool,
    /// Seconds to wait for each container to stop before killing it (default: its service's
    /// `stop_grace_period`, else 10).
    #[arg(short = 't', long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Every sandbox on this engine, not just this project (same as `sandbox prune`).
    #[arg(long)]
    pub all: bool,
    /// With `--all`: only projects whose names start with PREFIX (e.g. one CI job's sandboxes on a
    /// shared engine); the mesh forwarder image the other projects share is kept.
    #[arg(long, value_name = "PREFIX", requires = "all")]
    pub prefix: Option<String>,
}

/// `sandbox prune`: `down --all` under its own name.
#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Also remove named volumes.
    #[arg(short = 'v', long = "volumes")]
    pub volumes: bool,
    /// Only projects whose names start with PREFIX; the mesh forwarder image the other projects
    /// share is kept.
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
}

impl From<PruneArgs> for DownArgs {
    fn from(args: PruneArgs) -> DownArgs {
        DownArgs {
            volumes: args.volumes,
            timeout: None,
            all: true,
            prefix: args.prefix,
        }
    }
}

pub async fn run(global: &GlobalArgs, args: DownArgs, printer: &Printer) -> anyhow::Result<u8> {
    if args.all {
        return prune(&args, printer).await;
    }
    let (project, _) = context::project_name(global)?;
    stop_control_plane(&project);
    let docker = Docker::connect().await?;
    let outcome = engine::down(&docker, &project, &options(&args), &printer.event_sink()).await?;
    printer.finish_progress();
    if outcome == DownOutcome::default() {
        printer.stderr_line(&format!("nothing to remove for project `{project}`"));
    }
    Ok(0)
}

fn options(args: &DownArgs) -> DownOptions {
    DownOptions {
        remove_volumes: args.volumes,
        timeout: args.timeout.map(Duration::from_secs),
    }
}

fn stop_control_plane(project: &str) {
    if let Some(state) = ControlPlaneState::read_live(project) {
        process::terminate(state.pid, Duration::from_secs(5));
        ControlPlaneState::remove_if_mine(project, state.pid);
    }
}

/// Removes every sandbox resource on the engine and lists what it removed: each project's, then
/// the mesh forwarder images no container uses any more.
pub async fn prune(args: &DownArgs, printer: &Printer) -> anyhow::Result<u8> {
    let docker = Docker::connect().await?;
    let mut projects = docker.sandbox_projects().await?;
    if let Some(prefix) = &args.prefix {
        projects.retain(|project| project.starts_with(prefix.as_str()));
    }
    let quiet = crate::events::EventSink::discard();
    let mut removed = Vec::new();
    for project in &projects {
        stop_control_plane(project);
        let outcome = engine::down(&docker, project, &options(args), &quiet).await?;
        removed.extend(
            outcome
                .containers
                .into_iter()
                .map(|name| format!("container {name}")),
        );
        removed.extend(
            outcome
                .networks
                .into_iter()
                .map(|name| format!("network {name}")),
        );
        removed.extend(
            outcome
                .volumes
                .into_iter()
                .map(|name| format!("volume {name}")),
        );
    }
    let images = engine::forwarder::remove_unused_images(&docker, args.prefix.is_some()).await?;
    removed.extend(images.into_iter().map(|image| format!("image {image}")));
    if removed.is_empty() {
        printer.stderr_line("no sandbox resources on this engine");
    } else {
        for line in &removed {
            printer.stdout_line(&format!("removed {line}"));
        }
        printer.stderr_line(&format!(
            "removed {} resource{} of {} project{}",
            removed.len(),
            if removed.len() == 1 { "" } else { "s" },
            projects.len(),
            if projects.len() == 1 { "" } else { "s" }
        ));
    }
    Ok(0)
}
