//! One access-log line per request through `tracing` (target `sandbox::access`).

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::util::{get, manifest, start, TestUpstream};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

both_paths!(one_line_per_request_with_the_essentials);
async fn one_line_per_request_with_the_essentials() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("sandbox::access=info")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let a = TestUpstream::start("a").await;
    let running = start(&manifest(&[&a], "")).await;
    let answer = get(&running.url("/a/x"), &[("x-request-id", "req-1")]).await;
    get(&running.url("/nowhere"), &[]).await;
    let text = String::from_utf8(buffer.0.lock().expect("lock").clone()).expect("utf-8");
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
