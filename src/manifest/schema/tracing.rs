//! `tracing:`: the trace server's ports (Zipkin, OTLP/HTTP, OTLP/gRPC), its bounds (spans, logs),
//! the proxy's sampling and forwarding.

use super::super::model::Tracing;
use super::super::node::Node;
use super::check::{Checker, Fields, Kind};

const KEYS: &[&str] = &[
    "port",
    "max_spans",
    "sample_rate",
    "forward",
    "otlp_http_port",
    "otlp_grpc_port",
    "max_logs",
];

pub fn read(checker: &mut Checker<'_>, node: &Node) -> Tracing {
    let mut tracing = Tracing::default();
    let Some(fields) = checker.fields(node, "tracing", "`tracing`", KEYS) else {
        return tracing;
    };
    if let Some(node) = fields.get("port") {
        tracing.port = checker
            .integer_in(node, "tracing.port", 0..=65535)
            .map(|port| port as u16);
    }
    for (key, port) in [
        ("otlp_http_port", &mut tracing.otlp_http_port),
        ("otlp_grpc_port", &mut tracing.otlp_grpc_port),
    ] {
        if let Some(node) = fields.get(key) {
            *port = checker
                .integer_in(node, &format!("tracing.{key}"), 0..=65535)
                .map(|port| port as u16);
        }
    }
    check_distinct_ports(checker, &fields, &tracing);
    if let Some(node) = fields.get("max_logs") {
        if let Some(count) = checker.integer_in(node, "tracing.max_logs", 1..=10_000_000) {
            tracing.max_logs = count as usize;
        }
    }
    if let Some(node) = fields.get("max_spans") {
        if let Some(count) = checker.integer_in(node, "tracing.max_spans", 1..=50_000_000) {
            tracing.max_spans = count as usize;
        }
    }
    if let Some(node) = fields.get("sample_rate") {
        if let Some(scalar) =
            checker.scalar(node, "tracing.sample_rate", "a number from 0.0 to 1.0")
        {
            match scalar.text.parse::<f64>() {
                Ok(rate) if (0.0..=1.0).contains(&rate) && scalar.kind != Kind::Null => {
                    tracing.sample_rate = rate
                }
                _ => checker.error_with_hint(
                    node,
                    "tracing.sample_rate",
                    format!("invalid sample rate `{}`", scalar.text),
                    "write a number from 0.0 (no new traces) to 1.0 (every request), like `0.1`",
                ),
            }
        }
    }
    if let Some(node) = fields.get("forward") {
        if let Some(url) = checker.string(node, "tracing.forward") {
            if url.starts_with("http://") && url.len() > "http://".len() {
                tracing.forward = Some(url);
            } else {
                checker.error_with_hint(
                    node,
                    "tracing.forward",
                    format!("`{url}` is not an http:// URL"),
                    "write the collector's span endpoint, like `http://collector:9411/api/v2/spans`",
                );
            }
        }
    }
    tracing
}

/// The three listeners need three ports (0, a free one each, may repeat).
fn check_distinct_ports(checker: &mut Checker<'_>, fields: &Fields<'_>, tracing: &Tracing) {
    let ports = [
        ("port", tracing.port),
        ("otlp_http_port", tracing.otlp_http_port),
        ("otlp_grpc_port", tracing.otlp_grpc_port),
    ];
    for (index, (key, port)) in ports.iter().enumerate() {
        let Some(port) = port.filter(|port| *port != 0) else {
            continue;
        };
        let earlier = ports[..index]
            .iter()
            .find(|(_, other)| *other == Some(port));
        if let (Some((other, _)), Some(node)) = (earlier, fields.get(key)) {
            checker.error_with_hint(
                node,
                &format!("tracing.{key}"),
                format!("port {port} is also `tracing.{other}`"),
                "the Zipkin, OTLP/HTTP and OTLP/gRPC listeners each need their own port",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::manifest::{load, LoadOptions, Manifest, ManifestErrors};

    fn load_text(text: &str) -> Result<Manifest, ManifestErrors> {
        let directory = tempfile::tempdir().unwrap();
        std::fs::write(directory.path().join("sandbox.yaml"), text).unwrap();
        load(&LoadOptions {
            working_dir: directory.path().to_path_buf(),
            ..LoadOptions::default()
        })
    }

    const SERVICE: &str = "services:\n  web:\n    image: web\n";

    #[test]
    fn otlp_ports_and_max_logs_are_read() {
        let manifest = load_text(&format!(
            "{SERVICE}tracing:\n  otlp_http_port: 14318\n  otlp_grpc_port: 0\n  max_logs: 500\n"
        ))
        .unwrap();
        assert_eq!(manifest.tracing.otlp_http_port, Some(14318));
        assert_eq!(manifest.tracing.otlp_grpc_port, Some(0));
        assert_eq!(manifest.tracing.max_logs, 500);
        let defaults = load_text(SERVICE).unwrap();
        assert_eq!(defaults.tracing.otlp_http_port, None);
        assert_eq!(defaults.tracing.max_logs, 100_000);
    }

    #[test]
    fn bad_otlp_keys_are_named() {
        for (yaml, expected) in [
            ("otlp_http_port: 70000", "tracing.otlp_http_port"),
            ("otlp_grpc_port: grpc", "tracing.otlp_grpc_port"),
            ("max_logs: 0", "tracing.max_logs"),
            (
                "port: 4318\n  otlp_http_port: 4318",
                "is also `tracing.port`",
            ),
        ] {
            let errors = load_text(&format!("{SERVICE}tracing:\n  {yaml}\n"))
                .unwrap_err()
                .to_string();
            assert!(errors.contains(expected), "{yaml}: {errors}");
        }
    }
}
