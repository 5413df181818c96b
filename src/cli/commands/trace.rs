//! `sandbox trace ID`: one trace as a waterfall (colours on a terminal), each span's log lines
//! under it; `--json` gives the spans and the log lines as the trace server's API does.

use crate::cli::trace_server::{parse_trace_id, TraceServer};
use crate::cli::GlobalArgs;
use crate::output::{waterfall, Printer};

#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    /// The trace's id (hex, as `sandbox traces` lists it).
    #[arg(value_name = "ID")]
    pub id: String,
}

pub async fn run(global: &GlobalArgs, args: TraceArgs, printer: &Printer) -> anyhow::Result<u8> {
    let trace_id = parse_trace_id(&args.id)?;
    let server = TraceServer::find(global)?;
    let spans = server.trace(trace_id).await?;
    let (raw_logs, logs) = server.logs(trace_id).await?;
    if global.json {
        let spans = crate::trace::codec::json::encode(&spans);
        printer.stdout_line(&format!(
            "{{\"traceId\":\"{trace_id}\",\"spans\":{},\"logs\":{raw_logs}}}",
            String::from_utf8_lossy(&spans)
        ));
        return Ok(0);
    }
    let link = server.link(trace_id);
    printer.stdout_text(&waterfall::render_with_logs(
        &spans,
        Some(&link),
        &logs,
        printer.colour(),
    ));
    Ok(0)
}
