//! Smoke checks: requests through the gateway (or straight to a service) with expectations on the
//! answer and on the trace the proxy recorded for it, so a check proves the call path, not only the
//! response. [`run`] executes checks against a running sandbox; [`junit`] writes the report CI
//! systems render. Nothing here prints.

pub mod check;
pub mod http;
pub mod json_path;
pub mod junit;
pub mod run;

pub use check::{Check, Expect, Request, Target, TraceExpect};
pub use run::{run_checks, trace_logs, CheckOutcome, Endpoints};
