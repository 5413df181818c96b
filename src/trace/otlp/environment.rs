//! The variables that point an OpenTelemetry SDK at sandbox's OTLP/HTTP port: the base endpoint,
//! the per-signal endpoints (for SDKs that read only those), the protocol, and `otlp` as the traces
//! and logs exporter. Pure; the control plane's wiring adds them to each container's environment
//! (a service that sets its own values keeps them).

use std::collections::BTreeMap;

/// The variables for an OTLP/HTTP receiver at `base` (`http://172.18.0.1:4318`, no trailing
/// slash needed).
pub fn otlp_environment(base: &str) -> BTreeMap<String, String> {
    let base = base.trim_end_matches('/');
    let variable = |name: &str, value: String| (name.to_string(), value);
    BTreeMap::from([
        variable("OTEL_EXPORTER_OTLP_ENDPOINT", base.to_string()),
        variable(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            format!("{base}/v1/traces"),
        ),
        variable(
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
            format!("{base}/v1/logs"),
        ),
        variable(
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            format!("{base}/v1/metrics"),
        ),
        variable("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_string()),
        variable("OTEL_TRACES_EXPORTER", "otlp".to_string()),
        variable("OTEL_LOGS_EXPORTER", "otlp".to_string()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signal_points_at_the_base() {
        let environment = otlp_environment("http://172.18.0.1:4318/");
        assert_eq!(
            environment["OTEL_EXPORTER_OTLP_ENDPOINT"],
            "http://172.18.0.1:4318"
        );
        assert_eq!(
            environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"],
            "http://172.18.0.1:4318/v1/traces"
        );
        assert_eq!(
            environment["OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"],
            "http://172.18.0.1:4318/v1/logs"
        );
        assert_eq!(
            environment["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"],
            "http://172.18.0.1:4318/v1/metrics"
        );
        assert_eq!(environment["OTEL_EXPORTER_OTLP_PROTOCOL"], "http/protobuf");
        assert_eq!(environment["OTEL_TRACES_EXPORTER"], "otlp");
        assert_eq!(environment["OTEL_LOGS_EXPORTER"], "otlp");
        assert_eq!(environment.len(), 7);
    }
}
