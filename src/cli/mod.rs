//! The command line: clap definitions, one file per command in [`commands`], and the mapping of
//! errors to exit codes. The only layer that prints (through [`crate::output::Printer`]).
//!
//! Exit codes (API for scripts and CI): 0 success · 1 failure of what was asked (e.g. `validate`
//! found nothing to run) · 2 usage error or an unexpected internal error · 3 invalid manifest ·
//! 4 Docker engine unreachable · 5 build, pull, create or start failure · 6 a service exited,
//! stayed unhealthy or timed out · 130 interrupted.

pub mod commands;
mod context;
mod signals;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::output::Printer;

/// Exit code for an invalid manifest.
pub const EXIT_MANIFEST: u8 = 3;
/// Exit code for an unexpected error.
pub const EXIT_INTERNAL: u8 = 2;

/// A whole microservice system on one machine.
#[derive(Debug, Parser)]
#[command(name = "sandbox", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes. `-f` and `-p` go before the command, as with `docker compose`
/// (`sandbox -f other.yaml up`), which leaves `-f` free for `logs -f`.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalArgs {
    /// The manifest (default: sandbox.yaml or sandbox.yml in the current folder).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Project name (default: the manifest's `name:`, else its folder's name).
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    pub project: Option<String>,
    /// Machine-readable output: JSON events and results.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build or find images, start every service and wait until healthy.
    Up(commands::up::UpArgs),
    /// Stop and remove the project's containers and network (named volumes with -v).
    Down(commands::down::DownArgs),
    /// List the project's containers with state, health, ports and uptime.
    Ps(commands::ps::PsArgs),
    /// Show the services' output.
    Logs(commands::logs::LogsArgs),
    /// Print the resolved manifest.
    Config(commands::config::ConfigArgs),
    /// Check the manifest and report every problem.
    Validate,
    /// Write a starter manifest.
    Init(commands::init::InitArgs),
}

/// Parses arguments, runs the command, maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let printer = Printer::from_environment(cli.global.json);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            printer.error(&format!("cannot start the async runtime: {error}"));
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    let outcome = runtime.block_on(commands::run(cli, &printer));
    // Background tasks (log followers, probes) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            printer.error(&report(&error));
            ExitCode::from(exit_code(&error))
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SANDBOX_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// The user-facing text of an error: its own message, then the chain of causes.
fn report(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(&format!("\n  caused by: {cause}"));
        }
    }
    text
}

fn exit_code(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<crate::manifest::ManifestErrors>().is_some() {
        return EXIT_MANIFEST;
    }
    if let Some(engine) = error.downcast_ref::<crate::engine::EngineError>() {
        return engine.exit_code();
    }
    if let Some(usage) = error.downcast_ref::<context::UsageError>() {
        return usage.exit_code();
    }
    1
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
