//! Trace context (B3 and W3C propagation) and Zipkin v2 span reporting.
//! Owns ids, header formats, span JSON and the background reporter; the server decides when spans start.

mod propagation;
mod random;
pub mod reporter;
pub mod span;

pub use propagation::extract;
pub use reporter::Reporter;
pub use span::{Kind, Span};

use crate::http::Headers;

/// The trace position of one span, as received or created.
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    /// 16 or 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// The parent span's id, when known.
    pub parent_id: Option<String>,
    /// The sampling decision; `None` means not decided yet.
    pub sampled: Option<bool>,
    /// B3 debug flag (forces sampling).
    pub debug: bool,
    /// W3C `tracestate`, passed through unchanged.
    pub tracestate: Option<String>,
    /// The span id came from the caller, so a server span shares it (B3 style).
    pub shared: bool,
}

impl Context {
    /// A new trace: 128-bit trace id, random span id, no parent.
    pub fn new_root(sampled: Option<bool>) -> Self {
        Self {
            trace_id: format!("{:016x}{:016x}", random::id(), random::id()),
            span_id: format!("{:016x}", random::id()),
            parent_id: None,
            sampled,
            debug: false,
            tracestate: None,
            shared: false,
        }
    }

    /// The context for a downstream call: same trace, new span id, this span as parent.
    pub fn child(&self) -> Self {
        Self {
            span_id: format!("{:016x}", random::id()),
            parent_id: Some(self.span_id.clone()),
            shared: false,
            ..self.clone()
        }
    }

    /// Whether spans of this context may be reported.
    pub fn reportable(&self) -> bool {
        self.debug || self.sampled != Some(false)
    }

    /// Adds B3 multi, B3 single and W3C `traceparent` (and `tracestate`) headers.
    pub fn inject(&self, headers: &mut Headers) {
        propagation::inject(self, headers);
    }
}
