//! `sandbox logs`: the services' output, interleaved, with a coloured prefix per replica.

use futures_util::StreamExt;

use crate::cli::{context, GlobalArgs};
use crate::engine::logs::{merged, LogSource};
use crate::engine::Docker;
use crate::output::Printer;

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Keep following new output.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines of each replica.
    #[arg(short = 'n', long, value_name = "N")]
    pub tail: Option<usize>,
    /// Prefix each line with its timestamp.
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Services to show (default: all).
    pub services: Vec<String>,
}

pub async fn run(global: &GlobalArgs, args: LogsArgs, printer: &Printer) -> anyhow::Result<u8> {
    let (project, manifest) = context::project_name(global)?;
    if let Some(manifest) = &manifest {
        context::check_services(manifest, &args.services)?;
    }
    let docker = Docker::connect().await?;
    let sources: Vec<LogSource> = docker
        .project_containers(&project)
        .await?
        .into_iter()
        .filter(|container| args.services.is_empty() || args.services.contains(&container.service))
        .map(|container| LogSource {
            container_id: container.id,
            service: container.service,
            replica: container.replica,
        })
        .collect();
    if sources.is_empty() {
        printer.stderr_line(&format!("no containers of project `{project}`; start them with `sandbox up`"));
        return Ok(0);
    }
    let shutdown = crate::cli::signals::Shutdown::install();
    print_logs(&docker, &sources, args.follow, args.tail, args.timestamps, printer, &shutdown.graceful).await;
    Ok(0)
}

/// Prints merged output until it ends or `stop` fires.
pub async fn print_logs(
    docker: &Docker,
    sources: &[LogSource],
    follow: bool,
    tail: Option<usize>,
    timestamps: bool,
    printer: &Printer,
    stop: &tokio_util::sync::CancellationToken,
) {
    let mut services: Vec<&str> = sources.iter().map(|source| source.service.as_str()).collect();
    services.sort();
    services.dedup();
    let width = sources
        .iter()
        .map(|source| source.service.len() + 1 + source.replica.to_string().len())
        .max()
        .unwrap_or(0);
    let mut lines = std::pin::pin!(merged(docker, sources, follow, tail, timestamps));
    loop {
        tokio::select! {
            line = lines.next() => match line {
                Some(line) => {
                    let colour = services.iter().position(|service| *service == line.service).unwrap_or(0);
                    printer.log_line(&line.source, width, colour, &line.line.text);
                }
                None => break,
            },
            _ = stop.cancelled() => break,
        }
    }
}
