//! `sandbox traces`: recent traces one line each (start, id, duration, spans, root, services, `✘`
//! on errors), oldest first; `--follow` keeps printing new ones.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use crate::cli::trace_server::{TraceFilter, TraceServer};
use crate::cli::{context, GlobalArgs};
use crate::output::traces::TraceSummary;
use crate::output::Printer;

/// How often `--follow` asks for new traces.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);
/// Trace ids `--follow` remembers as printed.
const FOLLOW_REMEMBERED: usize = 10_000;

#[derive(Debug, clap::Args)]
pub struct TracesArgs {
    /// Only traces through this service.
    #[arg(long, value_name = "S")]
    pub service: Option<String>,
    /// Only traces with an error.
    #[arg(long)]
    pub errors: bool,
    /// Only traces at least this long (`250ms`, `1s`).
    #[arg(long, value_name = "D", value_parser = duration)]
    pub min_duration: Option<Duration>,
    /// At most N traces (the newest).
    #[arg(short = 'n', long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
    /// Keep printing new traces as they arrive.
    #[arg(short = 'f', long)]
    pub follow: bool,
}

fn duration(text: &str) -> Result<Duration, String> {
    crate::manifest::parse_duration(text)
        .ok_or_else(|| format!("`{text}` is not a duration: use `250ms`, `5s` or `1m`"))
}

pub async fn run(global: &GlobalArgs, args: TracesArgs, printer: &Printer) -> anyhow::Result<u8> {
    if args.limit == 0 {
        return Err(context::UsageError {
            message: "--limit must be at least 1".into(),
        }
        .into());
    }
    let server = TraceServer::find(global)?;
    let filter = TraceFilter {
        service: args.service.clone(),
        errors: args.errors,
        min_duration: args.min_duration,
        limit: args.limit,
    };
    let shutdown = crate::cli::signals::Shutdown::install();
    let mut printed: BTreeSet<String> = BTreeSet::new();
    let mut order: VecDeque<String> = VecDeque::new();
    loop {
        let mut summaries: Vec<TraceSummary> = server
            .traces(&filter)
            .await?
            .iter()
            .filter_map(|spans| TraceSummary::of(spans))
            .filter(|summary| !printed.contains(&summary.trace_id))
            .collect();
        summaries.sort_by_key(|summary| summary.start);
        for summary in summaries {
            if global.json {
                printer.stdout_line(&serde_json::to_string(&summary)?);
            } else {
                printer.stdout_line(&summary.line());
            }
            if args.follow {
                printed.insert(summary.trace_id.clone());
                order.push_back(summary.trace_id);
                if order.len() > FOLLOW_REMEMBERED {
                    if let Some(oldest) = order.pop_front() {
                        printed.remove(&oldest);
                    }
                }
            }
        }
        if !args.follow {
            return Ok(0);
        }
        tokio::select! {
            _ = tokio::time::sleep(FOLLOW_EVERY) => {}
            _ = shutdown.graceful.cancelled() => return Ok(0),
        }
    }
}
