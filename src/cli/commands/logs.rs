//! `sandbox logs`: the services' output, interleaved, with a coloured prefix per replica;
//! `--trace ID`: the lines of every service joined to that trace (container output that names it,
//! OTLP log records), in time order, from the running control plane's trace server.

use futures_util::StreamExt;

use crate::cli::trace_server::{parse_trace_id, TraceServer};
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
    /// Only the lines joined to this trace (hex id), from every service, in time order.
    #[arg(long, value_name = "ID", conflicts_with_all = ["follow", "tail", "timestamps", "services"])]
    pub trace: Option<String>,
    /// Services to show (default: all).
    pub services: Vec<String>,
}

pub async fn run(global: &GlobalArgs, args: LogsArgs, printer: &Printer) -> anyhow::Result<u8> {
    if let Some(trace_id) = &args.trace {
        return print_trace_logs(global, trace_id, printer).await;
    }
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
        printer.stderr_line(&format!(
            "no containers of project `{project}`; start them with `sandbox up`"
        ));
        return Ok(0);
    }
    let shutdown = crate::cli::signals::Shutdown::install();
    print_logs(
        &docker,
        &sources,
        args.follow,
        args.tail,
        args.timestamps,
        printer,
        &shutdown.graceful,
    )
    .await;
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
    let mut services: Vec<&str> = sources
        .iter()
        .map(|source| source.service.as_str())
        .collect();
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

/// `--trace ID`: the trace's log lines, each prefixed with its time and origin.
async fn print_trace_logs(global: &GlobalArgs, id: &str, printer: &Printer) -> anyhow::Result<u8> {
    let trace_id = parse_trace_id(id)?;
    let server = TraceServer::find(global)?;
    let (raw, records) = server.logs(trace_id).await?;
    if global.json {
        printer.stdout_line(&raw);
        return Ok(0);
    }
    if records.is_empty() {
        printer.stderr_line(&format!(
            "no log lines joined to trace {trace_id}\n  hint: a line joins a trace when it carries its id (W3C `traceparent`, B3, or `trace_id=`); see the spans with `sandbox trace {trace_id}`"
        ));
        return Ok(0);
    }
    let mut services: Vec<&str> = records
        .iter()
        .filter_map(|r| r.service.as_deref())
        .collect();
    services.sort();
    services.dedup();
    for record in &records {
        let colour = services
            .iter()
            .position(|service| Some(*service) == record.service.as_deref())
            .unwrap_or(0);
        let line = crate::output::logs::line(record);
        let (prefix, text) = line.split_once(" | ").unwrap_or((line.as_str(), ""));
        printer.log_line(prefix, 0, colour, text);
    }
    Ok(0)
}
