//! One access-log line per request through `tracing` (target `sandbox::access`).

use crate::util::{get, manifest, start, AccessLog, TestUpstream};

both_paths!(one_line_per_request_with_the_essentials);
async fn one_line_per_request_with_the_essentials() {
    let log = AccessLog::capture();
    let a = TestUpstream::start("a").await;
    let running = start(&manifest(&[&a], "")).await;
    let answer = get(&running.url("/a/x"), &[("x-request-id", "req-1")]).await;
    get(&running.url("/nowhere"), &[]).await;
    let text = log.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    for expected in [
        "sandbox::access",
        "caller=gateway",
        "route=prefix:/a/",
        "service=\"a\"",
        "upstream=\"a-external\"",
        "status=200",
        "retries=0",
        "request_id=req-1",
        &format!("bytes={}", answer.body.len()),
        "completed=true",
        "duration_ms=",
    ] {
        assert!(
            lines[0].contains(expected),
            "missing {expected}: {}",
            lines[0]
        );
    }
    assert!(lines[1].contains("status=404"), "{}", lines[1]);
}
