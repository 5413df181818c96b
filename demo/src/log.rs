//! Log lines: requests and lifecycle to stdout, warnings to stderr; each line written whole and flushed,
//! because container logs are read while the service runs.

use std::io::Write;
use std::time::Duration;

/// A lifecycle line on stdout.
pub fn info(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// A warning line on stderr.
pub fn warn(line: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "warning: {line}");
    let _ = stderr.flush();
}

/// `METHOD PATH STATUS DURATION`, one per request.
pub fn request(method: &str, path: &str, status: u16, duration: Duration) {
    info(&format!(
        "{method} {path} {status} {}",
        format_duration(duration)
    ));
}

/// `0.4ms`, `12.3ms`, `1.25s`.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_secs_f64() * 1000.0;
    if millis < 1000.0 {
        format!("{millis:.1}ms")
    } else {
        format!("{:.2}s", millis / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(Duration::from_micros(400)), "0.4ms");
        assert_eq!(format_duration(Duration::from_micros(12_340)), "12.3ms");
        assert_eq!(format_duration(Duration::from_millis(1250)), "1.25s");
    }
}
