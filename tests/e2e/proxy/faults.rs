//! Fault injection from the manifest and from request headers.

use super::*;

// ---------------------------------------------------------------------------------------------
// Faults

#[test]
fn manifest_faults_and_fault_headers_abort_and_delay_requests() {
    let project = Project::new("proxy-faults");
    let image = demo_context(&project);
    let manifest = format!(
        "gateway: {{port: 0}}\nservices:\n{}{}",
        demo(&image, "item", "", HEALTH),
        demo(
            &image,
            "broken",
            "",
            &format!("{HEALTH}    faults: {{abort: {{status: 503, percent: 100}}}}\n")
        ),
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);

    for _ in 0..3 {
        let aborted = sandbox.get("/broken/echo");
        assert_eq!(aborted.status, 503, "{aborted:?}");
        assert_eq!(aborted.header("x-sandbox-fault"), Some("abort"));
        assert_eq!(aborted.upstream(), "none", "never reaches a replica");
        assert_eq!(
            aborted.body,
            "fault injected by sandbox: abort with 503 for `broken`\n"
        );
    }

    let by_header = sandbox.send("GET", "/item/echo", &[("x-sandbox-fault-abort", "418")]);
    assert_eq!(by_header.status, 418, "{by_header:?}");
    assert_eq!(by_header.header("x-sandbox-fault"), Some("abort"));

    let delayed = sandbox.send("GET", "/item/echo", &[("x-sandbox-fault-delay", "300ms")]);
    assert_eq!(delayed.status, 200, "{delayed:?}");
    assert!(delayed.elapsed >= Duration::from_millis(300), "{delayed:?}");
    assert!(
        delayed.json()["headers"]
            .get("x-sandbox-fault-delay")
            .is_none(),
        "fault headers are not passed on: {}",
        delayed.body
    );
    let metrics = sandbox.metrics();
    assert!(
        metrics.contains("sandbox_proxy_faults_total 5"),
        "{metrics}"
    );
}

#[test]
fn fault_headers_do_nothing_when_the_gateway_disallows_them() {
    let project = Project::new("proxy-no-fault-headers");
    let image = demo_context(&project);
    let manifest = format!(
        "gateway: {{port: 0, allow_fault_headers: false}}\nservices:\n{}",
        demo(&image, "item", "", HEALTH),
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);
    let answer = sandbox.send(
        "GET",
        "/item/echo",
        &[
            ("x-sandbox-fault-abort", "503"),
            ("x-sandbox-fault-delay", "3s"),
        ],
    );
    assert_eq!(
        (answer.status, answer.upstream()),
        (200, "item-1"),
        "{answer:?}"
    );
    assert!(answer.elapsed < Duration::from_secs(2), "{answer:?}");
    assert_eq!(answer.header("x-sandbox-fault"), None);
    assert!(
        sandbox.metrics().contains("sandbox_proxy_faults_total 0"),
        "no fault counted"
    );
}
