//! Fault injection from configuration (service and route) and from request headers.

use std::time::{Duration, Instant};

use crate::util::{get, manifest, start, TestUpstream};

both_paths!(service_faults_abort_and_delay);
async fn service_faults_abort_and_delay() {
    let a = TestUpstream::start("a").await;
    let yaml = format!(
        "services:\n  a:\n    external: {}\n    faults:\n      abort: {{status: 418, percent: 100}}\n",
        a.url()
    );
    let running = start(&yaml).await;
    let answer = get(&running.url("/a/x"), &[]).await;
    assert_eq!(answer.status, 418);
    assert_eq!(answer.header("x-sandbox-fault"), "abort");
    assert_eq!(a.hits(), 0);

    let yaml = format!(
        "services:\n  a:\n    external: {}\n    faults:\n      delay: {{fixed: 200ms}}\n",
        a.url()
    );
    let running = start(&yaml).await;
    let started = Instant::now();
    assert_eq!(get(&running.url("/a/x"), &[]).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

both_paths!(route_faults_replace_service_faults);
async fn route_faults_replace_service_faults() {
    let a = TestUpstream::start("a").await;
    let yaml = format!(
        "services:\n  a:\n    external: {}\n    faults: {{abort: {{status: 500}}}}\ngateway:\n  routes:\n    - match: {{prefix: /}}\n      service: a\n      faults: {{abort: {{status: 503, percent: 100}}}}\n",
        a.url()
    );
    let running = start(&yaml).await;
    assert_eq!(get(&running.url("/x"), &[]).await.status, 503);
}

both_paths!(fault_headers_unless_disabled);
async fn fault_headers_unless_disabled() {
    let a = TestUpstream::start("a").await;
    let running = start(&manifest(&[&a], "")).await;
    let answer = get(&running.url("/a/x"), &[("x-sandbox-fault-abort", "503")]).await;
    assert_eq!(answer.status, 503);
    let started = Instant::now();
    let answer = get(&running.url("/a/x"), &[("x-sandbox-fault-delay", "300ms")]).await;
    assert_eq!(answer.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        answer.sent("x-sandbox-fault-delay"),
        None,
        "fault headers are not forwarded"
    );

    let running = start(&manifest(&[&a], "gateway:\n  allow_fault_headers: false\n")).await;
    let answer = get(&running.url("/a/x"), &[("x-sandbox-fault-abort", "503")]).await;
    assert_eq!(answer.status, 200);
}
