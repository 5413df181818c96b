//! `tracing:`: the trace server's port, its bound, the proxy's sampling and forwarding.

use super::super::model::Tracing;
use super::super::node::Node;
use super::check::{Checker, Kind};

const KEYS: &[&str] = &["port", "max_spans", "sample_rate", "forward"];

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
