//! The command line: clap definitions, one file per command in [`commands`], and the mapping of
//! errors to exit codes. The only layer that prints (through [`crate::output::Printer`]).
//!
//! Exit codes (API for scripts and CI): 0 success · 1 failure of what was asked (e.g. `validate`
//! found nothing to run) · 2 usage error or an unexpected internal error · 3 invalid manifest ·
//! 4 Docker engine unreachable · 5 build, pull, create or start failure · 6 a service exited,
//! stayed unhealthy or timed out · 7 a smoke check failed · 8 `run` could not start its command ·
//! 130 interrupted. `sandbox run` exits with its command's own code once the sandbox is up.

pub mod commands;
mod context;
mod session;
mod signals;
mod trace_server;

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
    /// The manifest; repeat to merge several files in order (default: `COMPOSE_FILE`, else the
    /// first of sandbox.yaml, sandbox.yml, compose.yaml, compose.yml, docker-compose.yaml,
    /// docker-compose.yml here or in a parent folder, plus its override file).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Vec<PathBuf>,
    /// Project name (default: `COMPOSE_PROJECT_NAME`, else the manifest's `name:`, else its folder's name).
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    pub project: Option<String>,
    /// Enable services of this profile; repeatable (default: `COMPOSE_PROFILES`).
    #[arg(long = "profile", value_name = "NAME")]
    pub profile: Vec<String>,
    /// Read variables from this file instead of `.env`; repeatable.
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
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
    /// Show the services' output (`--trace ID`: the log lines of every service on that trace).
    Logs(commands::logs::LogsArgs),
    /// List recent traces, one line each.
    Traces(commands::traces::TracesArgs),
    /// Draw one trace as a waterfall with each span's log lines.
    Trace(commands::trace::TraceArgs),
    /// Print the resolved manifest.
    Config(commands::config::ConfigArgs),
    /// Check the manifest and report every problem.
    Validate,
    /// Write a starter manifest.
    Init(commands::init::InitArgs),
    /// Run the manifest's smoke checks against the running sandbox.
    Test(commands::test::TestArgs),
    /// Bring the sandbox up, run the smoke checks and CMD, then tear down; exits with CMD's code.
    Run(commands::run::RunArgs),
    /// Run the Zipkin-compatible trace server alone (no Docker needed).
    Zipkin(commands::zipkin::ZipkinArgs),
    /// Show the local CA behind `gateway: {tls: true}` (created if needed) and how to trust it.
    Ca(commands::ca::CaArgs),
    /// Remove every sandbox resource on this engine (`down --all`), listing what was removed.
    Prune(commands::down::PruneArgs),
    /// Internal: the reaper that cleans up after a sandbox whose owner died.
    #[command(hide = true)]
    Reap,
}

/// Parses arguments, runs the command, maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let printer = Printer::from_environment(cli.global.json);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
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
pub(crate) fn report(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(&format!("\n  caused by: {cause}"));
        }
    }
    text
}

pub(crate) fn exit_code(error: &anyhow::Error) -> u8 {
    if error
        .downcast_ref::<crate::manifest::ManifestErrors>()
        .is_some()
    {
        return EXIT_MANIFEST;
    }
    if let Some(engine) = error.downcast_ref::<crate::engine::EngineError>() {
        return engine.exit_code();
    }
    if error
        .downcast_ref::<crate::control::plane::ControlPlaneError>()
        .is_some()
    {
        return 5;
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

#[cfg(test)]
mod documented_workflow {
    //! The CI workflow in `docs/ci/` must keep working: it parses, and every `sandbox` command in it
    //! names only flags and commands that exist.
    use clap::Parser;

    const WORKFLOW: &str = include_str!("../../docs/ci/github-actions.yml");

    fn sandbox_commands() -> Vec<Vec<String>> {
        let document: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(WORKFLOW).expect("the workflow is YAML");
        let mut commands = Vec::new();
        for job in document["jobs"].as_mapping().expect("jobs").values() {
            for step in job["steps"].as_sequence().expect("steps") {
                if let Some(script) = step["run"].as_str() {
                    for line in script
                        .lines()
                        .filter(|line| line.trim_start().starts_with("sandbox "))
                    {
                        commands.push(line.split_whitespace().map(String::from).collect());
                    }
                }
            }
        }
        commands
    }

    #[test]
    fn every_sandbox_command_in_the_workflow_parses() {
        let commands = sandbox_commands();
        assert!(!commands.is_empty(), "the workflow runs sandbox");
        for command in &commands {
            if let Err(error) = super::Cli::try_parse_from(command) {
                panic!("`{}` does not parse: {error}", command.join(" "));
            }
        }
        let run = commands
            .iter()
            .find(|command| command.contains(&"run".to_string()))
            .expect("uses `sandbox run`");
        let parsed = super::Cli::try_parse_from(run).expect("parses");
        match parsed.command {
            super::Command::Run(args) => {
                assert!(args.junit.is_some(), "writes a JUnit report");
                let script =
                    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(&args.command[0]);
                assert!(
                    script.exists(),
                    "the workflow's test script {} exists",
                    script.display()
                );
            }
            other => panic!("expected `run`, got {other:?}"),
        }
        let manifest = parsed.global.file.first().expect("names the manifest");
        assert!(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(manifest)
            .exists());
    }
}
