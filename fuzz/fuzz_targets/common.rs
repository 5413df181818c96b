//! What both targets do with a body: every signal decoded from it, and what decodes mapped and
//! stored, as the OTLP server does (no input may panic).

use sandbox::trace::otlp::proto::{
    ExportLogsServiceRequest, ExportMetricsServiceRequest, ExportTraceServiceRequest,
};
use sandbox::trace::otlp::{decode, map, Encoding, Signal};
use sandbox::trace::Store;

pub fn run(encoding: Encoding, body: &[u8]) {
    let store = Store::with_max_logs(1000, 1000);
    if let Ok(request) = decode::<ExportTraceServiceRequest>(Signal::Traces, encoding, body) {
        let mapped = map::spans(request);
        store.ingest(mapped.items);
    }
    if let Ok(request) = decode::<ExportLogsServiceRequest>(Signal::Logs, encoding, body) {
        store.logs().push(map::logs(request, 1).items);
    }
    if let Ok(request) = decode::<ExportMetricsServiceRequest>(Signal::Metrics, encoding, body) {
        let _ = request.data_points();
    }
}
