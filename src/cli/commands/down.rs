//! `sandbox down`: stop the control plane, then remove everything of the project found by label.

use std::time::Duration;

use crate::cli::{context, GlobalArgs};
use crate::control::{process, ControlPlaneState};
use crate::engine::{self, Docker, DownOptions};
use crate::output::Printer;

#[derive(Debug, clap::Args)]
pub struct DownArgs {
    /// Also remove the project's named volumes.
    #[arg(short = 'v', long = "volumes")]
    pub volumes: bool,
    /// Seconds to wait for each container to stop before killing it.
    #[arg(short = 't', long, default_value_t = 10, value_name = "SECS")]
    pub timeout: u64,
}

pub async fn run(global: &GlobalArgs, args: DownArgs, printer: &Printer) -> anyhow::Result<u8> {
    let (project, _) = context::project_name(global)?;
    if let Some(state) = ControlPlaneState::read_live(&project) {
        process::terminate(state.pid, Duration::from_secs(5));
        ControlPlaneState::remove_if_mine(&project, state.pid);
    }
    let docker = Docker::connect().await?;
    let options = DownOptions {
        remove_volumes: args.volumes,
        timeout: Duration::from_secs(args.timeout),
    };
    let outcome = engine::down(&docker, &project, &options, &printer.event_sink()).await?;
    printer.finish_progress();
    if outcome.containers.is_empty() && outcome.networks.is_empty() && outcome.volumes.is_empty() {
        printer.stderr_line(&format!("nothing to remove for project `{project}`"));
    }
    Ok(0)
}
