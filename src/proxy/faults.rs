//! Fault injection: the configured faults (route's, else the service's) and the per-request
//! headers `x-sandbox-fault-delay: 300ms` / `x-sandbox-fault-abort: 503`.

use std::time::Duration;

use http::{HeaderMap, HeaderName};

use crate::manifest::{parse_duration, Faults};

pub const DELAY_HEADER: &str = "x-sandbox-fault-delay";
pub const ABORT_HEADER: &str = "x-sandbox-fault-abort";
pub const DELAY: HeaderName = HeaderName::from_static(DELAY_HEADER);
pub const ABORT: HeaderName = HeaderName::from_static(ABORT_HEADER);

/// The faults one request gets.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub delay: Option<Duration>,
    pub abort: Option<u16>,
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
    let abort = text(ABORT)
        .and_then(|status| status.trim().parse::<u16>().ok())
        .filter(|status| (200..=599).contains(status))
        .or_else(|| {
            let abort = configured?.abort.as_ref()?;
            roll(abort.percent).then_some(abort.status)
        });
    Decision { delay, abort }
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
                percent: 0.0,
            }),
        };
        let decision = decide(Some(&faults), &HeaderMap::new(), true);
        assert_eq!(
            decision,
            Decision {
                delay: Some(Duration::from_millis(5)),
                abort: None
            }
        );
    }
}
