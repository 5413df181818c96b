//! Resilience: retries, timeouts, splits, outlier ejection, health-driven rotation.

use super::*;

// ---------------------------------------------------------------------------------------------
// Resilience

#[test]
fn retries_turn_a_failing_replica_into_success_and_are_counted_and_traced() {
    let project = Project::new("proxy-retries");
    let image = demo_context(&project);
    let manifest = format!(
        r#"gateway:
  port: 0
  routes:
    - match: {{exact: /retried}}
      service: item
      rewrite: /health
      retries: {{attempts: 1, on: [5xx], backoff: {{base: 10ms, max: 20ms}}}}
    - match: {{exact: /once}}
      service: item
      rewrite: /health
services:
{}"#,
        demo(
            &image,
            "item",
            "",
            &format!(
                "{ALWAYS_HEALTHY}    replicas: 2\n    outlier_detection: {{consecutive_errors: 1000, base_ejection: 1s}}\n"
            )
        ),
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);
    sandbox.set_health("item", 1, 503);

    // Without retries, round robin sends every other request to the failing replica.
    let once: Vec<u16> = (0..4).map(|_| sandbox.get("/once").status).collect();
    assert!(once.contains(&503) && once.contains(&200), "{once:?}");

    // With one retry, every request succeeds: the retry goes to the other replica.
    let answers: Vec<Answer> = (0..6).map(|_| sandbox.get("/retried")).collect();
    for answer in &answers {
        assert_eq!(
            (answer.status, answer.upstream()),
            (200, "item-2"),
            "{answer:?}"
        );
    }
    let metrics = sandbox.metrics();
    let retries: u64 = metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix(
                r#"sandbox_proxy_retries_total{route="exact:/retried",service="item"} "#,
            )
        })
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("retries of exact:/retried in metrics:\n{metrics}"));
    assert!((1..=6).contains(&retries), "{retries} retries\n{metrics}");

    // The retried request's trace says why it was retried, and where.
    let retried = answers
        .iter()
        .filter_map(|answer| answer.header("x-sandbox-trace-id"))
        .find_map(|trace_id| {
            let spans = sandbox.trace(trace_id, |spans| !spans.is_empty());
            spans
                .into_iter()
                .find(|span| span["tags"]["sandbox.retries"] == "1")
        })
        .unwrap_or_else(|| panic!("no trace of the {retries} retried requests is tagged"));
    let annotations = retried["annotations"].to_string();
    assert!(
        annotations.contains("retry 1: 503 from item-1"),
        "{retried}"
    );
}

#[test]
fn route_timeout_and_per_try_timeout_answer_504_naming_the_service() {
    let project = Project::new("proxy-timeouts");
    let image = demo_context(&project);
    let manifest = format!(
        r#"gateway:
  port: 0
  routes:
    - match: {{prefix: /slow/}}
      service: item
      rewrite: /delay/
      timeout: 300ms
    - match: {{prefix: /tries/}}
      service: item
      rewrite: /delay/
      timeout: 10s
      retries: {{attempts: 1, on: [5xx], per_try_timeout: 200ms, backoff: {{base: 10ms, max: 20ms}}}}
services:
{}"#,
        demo(&image, "item", "", HEALTH),
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);
    let json = [("accept", "application/json")];

    let fast = sandbox.get("/slow/10");
    assert_eq!(fast.status, 200, "{fast:?}");
    let slow = sandbox.send("GET", "/slow/3000", &json);
    assert_eq!(slow.status, 504, "{slow:?}");
    assert!(slow.elapsed < Duration::from_millis(2000), "{slow:?}");
    assert_eq!(slow.json()["error"], "`item` did not answer within 300ms");
    assert_eq!(slow.json()["service"], "item");
    assert_eq!(slow.json()["next"], "sandbox logs item");

    // Two tries of 200 ms each, then the last try's timeout is the answer.
    let tries = sandbox.send("GET", "/tries/3000", &json);
    assert_eq!(tries.status, 504, "{tries:?}");
    assert!(tries.elapsed < Duration::from_millis(2000), "{tries:?}");
    assert_eq!(tries.json()["error"], "`item` did not answer within 200ms");
    let metrics = sandbox.metrics();
    assert!(
        metrics.contains(r#"sandbox_proxy_retries_total{route="prefix:/tries/",service="item"} 1"#),
        "{metrics}"
    );
}

#[test]
fn weighted_split_sends_about_80_percent_to_item_and_20_to_item_v2() {
    let project = Project::new("proxy-split");
    let image = demo_context(&project);
    let manifest = format!(
        r#"gateway:
  port: 0
  routes:
    - match: {{prefix: /}}
      split:
        - {{service: item, weight: 80}}
        - {{service: item-v2, weight: 20}}
services:
{}{}"#,
        demo(&image, "item", "", HEALTH),
        demo(&image, "item-v2", "", HEALTH),
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);
    let (mut item, mut item_v2) = (0, 0);
    for _ in 0..200 {
        let answer = sandbox.get("/echo");
        assert_eq!(answer.status, 200, "{answer:?}");
        match answer.upstream() {
            "item-1" => item += 1,
            "item-v2-1" => item_v2 += 1,
            other => panic!("unexpected upstream {other}: {answer:?}"),
        }
        assert_eq!(
            answer.json()["service"],
            answer.upstream().trim_end_matches("-1")
        );
    }
    // Expected 40 of 200 (σ ≈ 5.7); ±4σ.
    assert!(
        (17..=63).contains(&item_v2),
        "item {item}, item-v2 {item_v2}"
    );
}

#[test]
fn outlier_detection_ejects_a_failing_replica_and_the_other_serves() {
    let project = Project::new("proxy-outlier");
    let image = demo_context(&project);
    let manifest = format!(
        r#"gateway:
  port: 0
  routes:
    - match: {{exact: /probe}}
      service: item
      rewrite: /health
services:
{}"#,
        demo(
            &image,
            "item",
            "",
            &format!(
                "{ALWAYS_HEALTHY}    replicas: 2\n    outlier_detection: {{consecutive_errors: 3, base_ejection: 30s}}\n"
            )
        ),
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);
    sandbox.set_health("item", 1, 500);

    let mut failures = 0;
    wait_until("item-1 is ejected", Duration::from_secs(10), || {
        let answer = sandbox.get("/probe");
        if answer.status == 500 {
            assert_eq!(answer.upstream(), "item-1", "{answer:?}");
            failures += 1;
        }
        (sandbox.replica_view("item", "item-1")["ejected"] == true).then_some(())
    });
    assert_eq!(failures, 3, "ejected after exactly `consecutive_errors`");
    let ejected = sandbox.replica_view("item", "item-1");
    assert_eq!(ejected["ejections"], 1, "{ejected}");
    assert_eq!(
        ejected["healthy"], true,
        "the monitor still sees it healthy"
    );
    for _ in 0..10 {
        let answer = sandbox.get("/probe");
        assert_eq!(
            (answer.status, answer.upstream()),
            (200, "item-2"),
            "{answer:?}"
        );
    }
    let metrics = sandbox.metrics();
    assert!(
        metrics.contains(r#"sandbox_proxy_ejections_total{service="item"} 1"#),
        "{metrics}"
    );
}

#[test]
fn the_monitor_takes_an_unhealthy_replica_out_of_rotation_and_back() {
    let project = Project::new("proxy-monitor");
    let image = demo_context(&project);
    let manifest = format!(
        "gateway: {{port: 0}}\nservices:\n{}",
        demo(&image, "item", "", &format!("{HEALTH}    replicas: 2\n")),
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);
    sandbox.set_health("item", 1, 500);
    wait_until(
        "the monitor sees item-1 unhealthy",
        Duration::from_secs(10),
        || (sandbox.replica_view("item", "item-1")["healthy"] == false).then_some(()),
    );
    for _ in 0..6 {
        let answer = sandbox.get("/item/echo");
        assert_eq!(
            (answer.status, answer.upstream()),
            (200, "item-2"),
            "{answer:?}"
        );
    }

    // Healthy again: back in rotation.
    let port = sandbox.replica_port("item", 1);
    assert_eq!(send(port, "POST", "/admin/health", &[]).status, 200);
    wait_until(
        "the monitor sees item-1 healthy again",
        Duration::from_secs(10),
        || (sandbox.replica_view("item", "item-1")["healthy"] == true).then_some(()),
    );
    let upstreams: Vec<String> = (0..4)
        .map(|_| sandbox.get("/item/echo").upstream().to_string())
        .collect();
    assert!(
        upstreams.iter().any(|name| name == "item-1")
            && upstreams.iter().any(|name| name == "item-2"),
        "{upstreams:?}"
    );
}
