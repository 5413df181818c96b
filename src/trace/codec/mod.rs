//! Wire formats: Zipkin v2 JSON (read and write), proto3 `ListOfSpans` (read and write) and v1 JSON
//! (read, converted to v2 as the server's `V1SpanConverter` does).
//!
//! Every decoder is total: bad input is an [`DecodeError`] that says what was wrong, never a panic.
//! Decoders return spans exactly as reported; [`crate::trace::Store::ingest`] normalises them.

pub mod json;
pub mod proto;
pub mod v1;

/// Why a request body could not be read as a list of spans.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {format} span list: {reason}")]
pub struct DecodeError {
    /// `json v2`, `proto3` or `json v1`.
    pub format: &'static str,
    /// What was wrong, with a position when the parser knows one.
    pub reason: String,
}

impl DecodeError {
    pub(crate) fn new(format: &'static str, reason: impl ToString) -> Self {
        DecodeError {
            format,
            reason: reason.to_string(),
        }
    }
}
