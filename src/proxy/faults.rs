//! Fault injection: the configured faults (route's, else the service's) and the per-request
//! headers `x-sandbox-fault-delay: 300ms` / `x-sandbox-fault-abort: 503` (or a gRPC status name,
//! `UNAVAILABLE`, which gRPC calls get as their status and other requests as 503).

use std::time::Duration;

use http::{HeaderMap, HeaderName};

use crate::manifest::{parse_duration, Faults, GrpcStatus};

pub const DELAY_HEADER: &str = "x-sandbox-fault-delay";
pub const ABORT_HEADER: &str = "x-sandbox-fault-abort";
pub const DELAY: HeaderName = HeaderName::from_static(DELAY_HEADER);
pub const ABORT: HeaderName = HeaderName::from_static(ABORT_HEADER);

/// The faults one request gets.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub delay: Option<Duration>,
    pub abort: Option<u16>,
    /// The status a gRPC call is aborted with, when given (`grpc_status`, or a status name in
    /// the header); else one is mapped from `abort`.
    pub abort_grpc: Option<GrpcStatus>,
}

/// Decides the faults for a request; headers win over configuration when allowed.
pub fn decide(configured: Option<&Faults>, headers: &HeaderMap, allow_headers: bool) -> Decision {
    let look = allow_headers && has_fault_headers(headers);
    let text = |name: HeaderName| look.then(|| headers.get(name)?.to_str().ok()).flatten();
    let delay = text(DELAY)
        .and_then(parse_duration)
        .map(|delay| delay.min(Duration::from_secs(600)))
        .or_else(|| {
            let delay = configured?.delay.as_ref()?;
            roll(delay.percent).then_some(delay.fixed)
        });
    // `503`, or a gRPC status name (`UNAVAILABLE`: 503 for HTTP requests).
    let asked = text(ABORT).and_then(|text| match text.trim().parse::<u16>() {
        Ok(status) => (200..=599).contains(&status).then_some((status, None)),
        Err(_) => GrpcStatus::from_name(text).map(|status| (503, Some(status))),
    });
    let (abort, abort_grpc) = asked
        .or_else(|| {
            let abort = configured?.abort.as_ref()?;
            roll(abort.percent).then_some((abort.status, abort.grpc_status))
        })
        .map_or((None, None), |(status, grpc)| (Some(status), grpc));
    Decision {
        delay,
        abort,
        abort_grpc,
    }
}

/// Whether `headers` hold a fault header (one pass over the names: cheaper than two lookups).
pub fn has_fault_headers(headers: &HeaderMap) -> bool {
    headers.keys().any(|name| is_fault_header(name.as_str()))
}

/// Whether `name` (lower case) asks for a fault.
pub fn is_fault_header(name: &str) -> bool {
    matches!(name, DELAY_HEADER | ABORT_HEADER)
}

fn roll(percent: f64) -> bool {
    percent >= 100.0 || (percent > 0.0 && rand::random::<f64>() * 100.0 < percent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{AbortFault, DelayFault};
    use http::HeaderValue;

    #[test]
    fn headers_and_config() {
        let mut headers = HeaderMap::new();
        headers.insert(DELAY_HEADER, HeaderValue::from_static("300ms"));
        headers.insert(ABORT_HEADER, HeaderValue::from_static("503"));
        let decision = decide(None, &headers, true);
        assert_eq!(decision.delay, Some(Duration::from_millis(300)));
        assert_eq!(decision.abort, Some(503));
        assert_eq!(decide(None, &headers, false), Decision::default());
        let faults = Faults {
            delay: Some(DelayFault {
                fixed: Duration::from_millis(5),
                percent: 100.0,
            }),
            abort: Some(AbortFault {
                status: 500,
                grpc_status: None,
                percent: 0.0,
            }),
        };
        let decision = decide(Some(&faults), &HeaderMap::new(), true);
        assert_eq!(
            decision,
            Decision {
                delay: Some(Duration::from_millis(5)),
                abort: None,
                abort_grpc: None,
            }
        );
        headers.insert(ABORT_HEADER, HeaderValue::from_static("resource_exhausted"));
        let decision = decide(None, &headers, true);
        assert_eq!(
            (decision.abort, decision.abort_grpc),
            (Some(503), Some(GrpcStatus::RESOURCE_EXHAUSTED))
        );
    }
}
