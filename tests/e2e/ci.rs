//! CI mode: `sandbox test`, `sandbox run`, JUnit reports, exit codes and cleanup after cancellation.

use std::time::{Duration, Instant};

use crate::util::{cgi_service, demo_chain, Project};

const PASSING: &str = r#"smoke:
  - name: user answers with its item
    service: user
    path: /users/1
    expect: {status: 200, json: {"$.item.id": "1"}, body_contains: item}
"#;

const FAILING: &str = r#"smoke:
  - name: user answers with its item
    service: user
    path: /users/1
    expect: {status: 200}
  - name: item has a missing page
    service: item
    path: /nothing
    expect: {status: 200, body_contains: found}
"#;

/// Replaces `time="…"` attributes (the only varying part) so reports compare exactly.
fn without_times(xml: &str) -> String {
    let pattern = regex::Regex::new(r#"time="[0-9.]+""#).unwrap();
    pattern.replace_all(xml, r#"time="T""#).into_owned()
}

#[test]
fn run_passes_the_command_its_addresses_and_exits_with_its_code() {
    let project = Project::new("run-code");
    project.manifest(&format!("{}{PASSING}", demo_chain(&project)));
    let seen = project.path("seen.env");
    let script = format!(
        "env | grep -E '^(USER_URL|ITEM_URL|SANDBOX_ZIPKIN_URL)=' | sort > {}; exit 3",
        seen.display()
    );
    let run = project.run(&["run", "--junit", "report.xml", "--", "sh", "-c", &script]);
    run.expect_code(3);
    let environment = std::fs::read_to_string(&seen).unwrap();
    assert!(
        environment.contains("USER_URL=http://127.0.0.1:"),
        "{environment}"
    );
    assert!(
        environment.contains("ITEM_URL=http://127.0.0.1:"),
        "{environment}"
    );
    assert!(
        environment.contains("SANDBOX_ZIPKIN_URL=http://127.0.0.1:"),
        "{environment}"
    );
    let report = std::fs::read_to_string(project.path("report.xml")).unwrap();
    assert_eq!(
        without_times(&report),
        r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="sandbox smoke" tests="1" failures="0" time="T">
  <testsuite name="sandbox smoke" tests="1" failures="0" errors="0" skipped="0" time="T">
    <testcase classname="sandbox smoke" name="user answers with its item" time="T"/>
  </testsuite>
</testsuites>
"#
    );
    assert!(
        project.leftovers().is_empty(),
        "run tears down: {:?}",
        project.leftovers()
    );
}

#[test]
fn failing_checks_stop_run_with_exit_7_a_junit_report_and_the_failure_explained() {
    let project = Project::new("run-fail");
    project.manifest(&format!("{}{FAILING}", demo_chain(&project)));
    let run = project.run(&[
        "run",
        "--junit",
        "report.xml",
        "--",
        "sh",
        "-c",
        "touch ran",
    ]);
    run.expect_code(7);
    assert!(
        !project.path("ran").exists(),
        "the command does not run after a failed check"
    );
    let report = std::fs::read_to_string(project.path("report.xml")).unwrap();
    let url_pattern = regex::Regex::new(r"http://127\.0\.0\.1:\d+").unwrap();
    assert_eq!(
        url_pattern.replace_all(&without_times(&report), "http://127.0.0.1:PORT"),
        r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="sandbox smoke" tests="2" failures="1" time="T">
  <testsuite name="sandbox smoke" tests="2" failures="1" errors="0" skipped="0" time="T">
    <testcase classname="sandbox smoke" name="user answers with its item" time="T"/>
    <testcase classname="sandbox smoke" name="item has a missing page" time="T">
      <failure message="status: expected 200, got 404" type="smoke">GET http://127.0.0.1:PORT/nothing
status 404
- status: expected 200, got 404
- body: does not contain `found`</failure>
    </testcase>
  </testsuite>
</testsuites>
"#
    );
    assert!(
        run.stdout.contains("✘ FAIL  item has a missing page"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("last log lines of"),
        "the failing service's logs are shown: {}",
        run.stdout
    );
    assert!(run.stdout.contains("GET /nothing 404"), "{}", run.stdout);
    assert!(project.leftovers().is_empty(), "{:?}", project.leftovers());
}

#[test]
fn keep_on_failure_leaves_the_sandbox_for_a_look_and_test_runs_against_it() {
    let project = Project::new("run-keep");
    project.manifest(&format!("{}{FAILING}", demo_chain(&project)));
    project
        .run(&["run", "--keep-on-failure", "--", "true"])
        .expect_code(7);
    assert_eq!(project.containers().len(), 2, "kept after the failure");
    let status = crate::util::ps_json(&project);
    assert!(
        status["pid"].as_u64().is_some(),
        "a background control plane took over: {status}"
    );

    let test = project.run(&["test", "--junit", "again.xml", "user answers with its item"]);
    test.success();
    assert!(
        test.stdout.contains("✔ pass  user answers with its item"),
        "{}",
        test.stdout
    );
    let all = project.run(&["test"]);
    all.expect_code(7);
    let unknown = project.run(&["test", "nope"]);
    unknown.expect_code(2);
    assert!(
        unknown.stderr.contains("no smoke check named `nope`"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn test_without_a_running_sandbox_says_how_to_start_one() {
    let project = Project::new("test-down");
    project.manifest(
        &format!("services:\n  web:\n    image: x\n    port: 80\n{PASSING}")
            .replace("service: user", "service: web"),
    );
    let run = project.run(&["test"]);
    run.expect_code(2);
    assert!(run.stderr.contains("is not up"), "{}", run.stderr);
}

fn wait_for_containers(project: &Project, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while project.containers().len() < count {
        assert!(
            Instant::now() < deadline,
            "containers of {} did not appear",
            project.name
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn assert_clean_within(project: &Project, limit: Duration) {
    let started = Instant::now();
    while !project.leftovers().is_empty() && started.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        project.leftovers().is_empty(),
        "left after {limit:?}: {:?}",
        project.leftovers()
    );
}

#[test]
fn sigterm_to_run_stops_the_command_and_leaves_nothing() {
    let project = Project::new("run-term");
    project.manifest(&demo_chain(&project));
    let mut child = project.spawn_quiet(&[
        "run",
        "--",
        "sh",
        "-c",
        "touch command-started && exec sleep 300",
    ]);
    wait_for_containers(&project, 2);
    // The command runs once the services are healthy: signal it then, not `up`.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !project.path("command-started").exists() {
        assert!(Instant::now() < deadline, "the command never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(143),
        "sleep was terminated by SIGTERM: {status}"
    );
    assert_clean_within(&project, Duration::from_secs(15));
}

#[test]
fn sigkill_to_run_is_cleaned_up_by_the_reaper() {
    let project = Project::new("run-kill");
    project.manifest(&demo_chain(&project));
    let mut child = project.spawn_quiet(&["run", "--", "sleep", "300"]);
    wait_for_containers(&project, 2);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_clean_within(&project, Duration::from_secs(15));
}

#[test]
fn sigkill_to_a_detached_up_leaves_nothing_after_down() {
    let project = Project::new("up-kill");
    project.manifest(&demo_chain(&project));
    project.run(&["up", "-d"]).success();
    let pid = crate::util::ps_json(&project)["pid"].as_u64().unwrap() as i32;
    // SAFETY: the control plane this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let started = Instant::now();
    project.run(&["down"]).success();
    assert!(project.leftovers().is_empty());
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[test]
fn a_trace_expectation_fails_when_a_hop_is_missing() {
    let project = Project::new("trace-hop");
    let chain = demo_chain(&project);
    project.manifest(&format!(
        r#"gateway:
  port: 0
  routes:
    - match: {{prefix: /users/}}
      service: user
{chain}smoke:
  - name: the full path
    request: {{method: GET, path: /users/1}}
    expect: {{status: 200, trace: {{services: [gateway, user, item], no_errors: true}}}}
  - name: a hop that is not there
    request: {{method: GET, path: /users/2}}
    expect: {{status: 200, trace: {{services: [gateway, user, item, payments]}}}}
"#
    ));
    project.run(&["up", "--wait"]).success();
    let test = project.run(&["test", "--junit", "report.xml"]);
    test.expect_code(7);
    assert!(
        test.stdout.contains("✔ pass  the full path"),
        "{}",
        test.stdout
    );
    assert!(
        test.stdout.contains("✘ FAIL  a hop that is not there"),
        "{}",
        test.stdout
    );
    assert!(
        test.stdout.contains(
            "trace: never reached `payments` (the trace passed through: gateway → item → user)"
        ),
        "{}",
        test.stdout
    );
    // The failure shows the recorded trace as a waterfall with its UI link.
    assert!(test.stdout.contains("/zipkin/#/trace/"), "{}", test.stdout);
    assert!(
        test.stdout.contains("gateway get [client]"),
        "{}",
        test.stdout
    );
    let report = std::fs::read_to_string(project.path("report.xml")).unwrap();
    assert!(
        report.contains(r#"<failure message="trace: never reached `payments`"#),
        "{report}"
    );
}

/// A service whose CGI writes the request's `traceparent` to its output, then fails the request.
fn declining_billing(project: &Project) -> String {
    let billing = cgi_service(
        project,
        "billing",
        "charge",
        r#"#!/bin/sh\necho "declining the card, traceparent $$HTTP_TRACEPARENT" >&2\necho "Status: 502 Bad Gateway"\necho Content-Type: text/plain\necho\necho declined\n"#,
        "    healthcheck: {http: /health}\n",
    );
    format!(
        r#"services:
{billing}smoke:
  - name: the card is charged
    request: {{method: GET, path: /billing/cgi-bin/charge}}
    expect: {{status: 200}}
"#
    )
}

#[test]
fn a_failing_checks_report_shows_the_lines_its_trace_left_under_its_spans() {
    let project = Project::new("run-trace-logs");
    project.manifest(&declining_billing(&project));
    let run = project.run(&["run", "--", "true"]);
    run.expect_code(7);
    // Under the trace's waterfall, as `sandbox trace` draws it: `│ time container stream | line`; the
    // same line in the service's last log lines has no `│`.
    let joined = regex::Regex::new(
        r"│ \d\d:\d\d:\d\d\.\d{3} \S+ (stdout |stderr )?\| declining the card, traceparent 00-[0-9a-f]{32}-",
    )
    .unwrap();
    assert!(
        joined.is_match(&run.stdout),
        "the line is joined to the failing request's trace: {}",
        run.stdout
    );
    assert!(project.leftovers().is_empty(), "{:?}", project.leftovers());
}
