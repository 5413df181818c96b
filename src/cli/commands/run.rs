//! `sandbox run -- CMD`: the CI round trip in one command — bring the sandbox up and wait until
//! healthy, run the smoke checks, run CMD with the sandbox's addresses in its environment, tear
//! everything down (unless kept), and exit with CMD's code.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::commands::test::{self, TestArgs};
use crate::cli::signals::Shutdown;
use crate::cli::{context, session, GlobalArgs};
use crate::control::{reaper, ControlPlaneState};
use crate::engine::UpOptions;
use crate::output::Printer;

/// Exit code when CMD could not be started.
pub const EXIT_COMMAND_FAILED: u8 = 8;

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Leave the sandbox running afterwards (a background control plane takes over).
    #[arg(long)]
    pub keep: bool,
    /// Leave it running only when something failed, to look at it.
    #[arg(long)]
    pub keep_on_failure: bool,
    /// Write the smoke checks' JUnit XML report here.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Seconds to wait for services to be healthy.
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    pub timeout: u64,
    /// The command to run, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

pub async fn run(global: &GlobalArgs, args: RunArgs, printer: &Printer) -> anyhow::Result<u8> {
    let manifest = context::load_manifest(global)?;
    context::announce(&manifest, printer);
    session::claim_project(&manifest)?;
    let mut state = session::state(&manifest, false);
    let _ = state.write();
    let lease = reaper::spawn(&manifest.project).ok();
    let shutdown = Shutdown::install();
    let events = printer.event_sink();
    let options = UpOptions {
        services: Vec::new(),
        timeout: Duration::from_secs(args.timeout),
        wait_healthy: true,
        rebuild: false,
        stop_timeout: None,
    };
    let running = match session::bring_up(&manifest, &options, &events, &shutdown, &mut state).await
    {
        Ok(running) => running,
        Err(error) => {
            printer.error(&crate::cli::report(&error));
            let code = crate::cli::exit_code(&error);
            if !(args.keep || args.keep_on_failure) && code != 130 {
                cleanup(&manifest.project, &shutdown, &events).await;
            }
            finish(&manifest.project, lease);
            return Ok(code);
        }
    };
    printer.finish_progress();

    let endpoints = test::endpoints(
        &running.docker,
        &manifest,
        state.gateway.clone(),
        state.zipkin.clone(),
    )
    .await?;
    let mut code = 0;
    if !manifest.smoke.is_empty() {
        let test_args = TestArgs {
            junit: args.junit.clone(),
            names: Vec::new(),
        };
        code = test::run_checks(
            &running.docker,
            &manifest,
            &endpoints,
            &test_args,
            global.json,
            printer,
        )
        .await?;
    }
    if code == 0 {
        code = run_command(&args.command, &endpoints, &shutdown, printer).await;
    }
    let keep = args.keep || (args.keep_on_failure && code != 0);
    if keep {
        // This process is the control plane; hand the sandbox to a background one.
        shutdown.graceful.cancel();
        running.plane.stopped().await;
        ControlPlaneState::remove_if_mine(&manifest.project, std::process::id());
        finish(&manifest.project, lease);
        let status = std::process::Command::new(std::env::current_exe()?)
            .args(manifest.source.arguments())
            .arg("--project-name")
            .arg(&manifest.project)
            .args(["up", "-d"])
            .status()?;
        if !status.success() {
            printer.error("the sandbox could not be handed to a background control plane; `sandbox down` removes it");
        }
        printer.stderr_line(&format!(
            "kept project `{}` running; `sandbox -p {} down` removes it",
            manifest.project, manifest.project
        ));
    } else {
        session::tear_down(&running.docker, &manifest.project, &events, &shutdown).await;
        shutdown.graceful.cancel();
        running.plane.stopped().await;
        printer.finish_progress();
        finish(&manifest.project, lease);
    }
    Ok(code)
}

async fn cleanup(project: &str, shutdown: &Shutdown, events: &crate::events::EventSink) {
    if let Ok(docker) = crate::engine::Docker::connect().await {
        session::tear_down(&docker, project, events, shutdown).await;
    }
}

fn finish(project: &str, lease: Option<reaper::Lease>) {
    if let Some(lease) = lease {
        lease.release();
    }
    ControlPlaneState::remove_if_mine(project, std::process::id());
}

/// Runs CMD with the sandbox's addresses; a signal to `run` is passed on to it.
async fn run_command(
    command: &[String],
    endpoints: &crate::smoke::Endpoints,
    shutdown: &Shutdown,
    printer: &Printer,
) -> u8 {
    let mut process = tokio::process::Command::new(&command[0]);
    process.args(&command[1..]);
    if let Some(gateway) = &endpoints.gateway {
        process.env("SANDBOX_GATEWAY_URL", gateway);
    }
    if let Some(zipkin) = &endpoints.zipkin {
        process.env("SANDBOX_ZIPKIN_URL", zipkin);
    }
    for (service, url) in &endpoints.services {
        process.env(
            format!("{}_URL", service.to_uppercase().replace('-', "_")),
            url,
        );
    }
    let mut child = match process.spawn() {
        Ok(child) => child,
        Err(error) => {
            printer.error(&format!("cannot run `{}`: {error}", command[0]));
            return EXIT_COMMAND_FAILED;
        }
    };
    let status = tokio::select! {
        status = child.wait() => status,
        _ = shutdown.graceful.cancelled() => {
            if let Some(pid) = child.id() {
                // SAFETY: signalling the child we started.
                unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            }
            tokio::select! {
                status = child.wait() => status,
                _ = tokio::time::sleep(Duration::from_secs(5)) => {
                    let _ = child.kill().await;
                    child.wait().await
                }
            }
        }
    };
    match status {
        Ok(status) => match status.code() {
            Some(code) => code.clamp(0, 255) as u8,
            // Killed by a signal: the shell's convention, 128 + signal.
            None => {
                use std::os::unix::process::ExitStatusExt;
                128u8.saturating_add(status.signal().unwrap_or(0) as u8)
            }
        },
        Err(error) => {
            printer.error(&format!("waiting for `{}` failed: {error}", command[0]));
            EXIT_COMMAND_FAILED
        }
    }
}
