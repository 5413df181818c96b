//! JUnit XML, the report CI systems render for test results.

use std::fmt::Write as _;

use super::run::CheckOutcome;

/// The report for one run of checks.
pub fn render(suite: &str, outcomes: &[CheckOutcome]) -> String {
    let failures = outcomes.iter().filter(|outcome| !outcome.passed).count();
    let total_seconds: f64 = outcomes
        .iter()
        .map(|outcome| outcome.duration_ms as f64 / 1000.0)
        .sum();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{failures}\" time=\"{total_seconds:.3}\">",
        escape(suite),
        outcomes.len()
    );
    let _ = writeln!(
        xml,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{total_seconds:.3}\">",
        escape(suite),
        outcomes.len()
    );
    for outcome in outcomes {
        let seconds = outcome.duration_ms as f64 / 1000.0;
        let _ = write!(
            xml,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{seconds:.3}\"",
            escape(suite),
            escape(&outcome.name)
        );
        if outcome.passed {
            xml.push_str("/>\n");
            continue;
        }
        xml.push_str(">\n");
        let message = outcome.failures.first().cloned().unwrap_or_default();
        let mut detail = format!("{} {}\n", outcome.method, outcome.url);
        if let Some(response) = &outcome.response {
            let _ = writeln!(detail, "status {}", response.status);
        }
        if let Some(trace_id) = &outcome.trace_id {
            let _ = writeln!(detail, "trace {trace_id}");
        }
        for failure in &outcome.failures {
            let _ = writeln!(detail, "- {failure}");
        }
        let _ = writeln!(
            xml,
            "      <failure message=\"{}\" type=\"smoke\">{}</failure>",
            escape(&message),
            escape(detail.trim_end())
        );
        xml.push_str("    </testcase>\n");
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

/// XML text and attribute escaping; control characters XML cannot carry become spaces.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            '\n' | '\t' => escaped.push(character),
            control if control.is_control() => escaped.push(' '),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(name: &str, failures: &[&str]) -> CheckOutcome {
        CheckOutcome {
            name: name.to_string(),
            passed: failures.is_empty(),
            failures: failures.iter().map(|failure| failure.to_string()).collect(),
            attempts: 1,
            duration_ms: 12,
            method: "GET".into(),
            url: "http://127.0.0.1:8080/users/1".into(),
            response: None,
            trace_id: Some("463ac35c9f6413ad48485a3953bb6124".into()),
            trace: Vec::new(),
        }
    }

    #[test]
    fn passing_and_failing_checks_render_as_junit() {
        let xml = render(
            "smoke",
            &[
                outcome("user sees <items>", &[]),
                outcome("item & co", &["status: expected 200, got 503"]),
            ],
        );
        insta::assert_snapshot!(xml);
    }
}
