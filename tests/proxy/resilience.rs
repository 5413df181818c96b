//! Retries, per-try and route timeouts, weighted splits, outlier ejection and re-admission, the
//! circuit breaker.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sandbox::proxy::Endpoint;

use crate::util::{get, manifest, start, TestUpstream};

both_paths!(retries_until_the_upstream_recovers_and_counts_them);
async fn retries_until_the_upstream_recovers_and_counts_them() {
    let a = TestUpstream::start("a").await;
    let routes = r#"
gateway:
  routes:
    - match: {prefix: /}
      service: a
      retries: {attempts: 3, on: [5xx], backoff: {base: 5ms, max: 20ms}}
"#;
    let running = start(&manifest(&[&a], routes)).await;
    let answer = get(&running.url("/flaky/2"), &[]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(a.hits(), 3);
    assert_eq!(running.proxy.metrics().retries("prefix:/"), 2);
    let metrics = get(&running.url("/__sandbox/metrics"), &[]).await.body;
    assert!(
        metrics.contains("sandbox_proxy_retries_total{route=\"prefix:/\",service=\"a\"} 2"),
        "{metrics}"
    );
}

both_paths!(retries_give_up_after_attempts);
async fn retries_give_up_after_attempts() {
    let a = TestUpstream::start("a").await;
    let routes = r#"
gateway:
  routes:
    - match: {prefix: /}
      service: a
      retries: {attempts: 2, on: [retriable-status], retriable_status: [409], backoff: {base: 1ms, max: 2ms}}
"#;
    let running = start(&manifest(&[&a], routes)).await;
    assert_eq!(get(&running.url("/status/409"), &[]).await.status, 409);
    assert_eq!(a.hits(), 3);
    assert_eq!(get(&running.url("/status/500"), &[]).await.status, 500);
    assert_eq!(a.hits(), 4, "500 is not in retriable_status");
}

both_paths!(per_try_timeout_retries_then_504);
async fn per_try_timeout_retries_then_504() {
    let a = TestUpstream::start("a").await;
    let routes = r#"
gateway:
  routes:
    - match: {prefix: /}
      service: a
      retries: {attempts: 1, on: [5xx], per_try_timeout: 100ms, backoff: {base: 1ms, max: 2ms}}
"#;
    let running = start(&manifest(&[&a], routes)).await;
    let started = Instant::now();
    let answer = get(
        &running.url("/delay/400"),
        &[("accept", "application/json")],
    )
    .await;
    assert_eq!(answer.status, 504);
    assert!(
        started.elapsed() < Duration::from_millis(380),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(a.hits(), 2);
    assert_eq!(answer.json()["error"], "`a` did not answer within 100ms");
}

both_paths!(route_timeout_is_504);
async fn route_timeout_is_504() {
    let a = TestUpstream::start("a").await;
    let routes =
        "gateway:\n  routes:\n    - match: {prefix: /}\n      service: a\n      timeout: 200ms\n";
    let running = start(&manifest(&[&a], routes)).await;
    let started = Instant::now();
    let answer = get(&running.url("/delay/2000"), &[]).await;
    assert_eq!(answer.status, 504);
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert!(
        answer.body.contains("did not answer within 200ms"),
        "{}",
        answer.body
    );
    assert!(
        answer.body.contains("next: sandbox logs a"),
        "{}",
        answer.body
    );
}

both_paths!(weighted_split_follows_weights);
async fn weighted_split_follows_weights() {
    let (a, b) = (
        TestUpstream::start("a").await,
        TestUpstream::start("b").await,
    );
    let routes = r#"
gateway:
  routes:
    - match: {prefix: /}
      split:
        - {service: a, weight: 80}
        - {service: b, weight: 20}
"#;
    let running = start(&manifest(&[&a, &b], routes)).await;
    for _ in 0..1000 {
        assert_eq!(get(&running.url("/"), &[]).await.status, 200);
    }
    assert_eq!(a.hits() + b.hits(), 1000);
    assert!((720..=880).contains(&a.hits()), "a got {}", a.hits());
}

fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address")
}

both_paths!(outlier_ejection_and_readmission);
async fn outlier_ejection_and_readmission() {
    let good = TestUpstream::start("good").await;
    let yaml = r#"
services:
  item:
    image: demo:1
    outlier_detection: {consecutive_errors: 2, base_ejection: 300ms}
"#;
    let running = start(yaml).await;
    running.proxy.set_endpoints(
        "item",
        vec![
            Endpoint {
                name: "item-1".into(),
                address: good.address,
                healthy: true,
            },
            Endpoint {
                name: "item-2".into(),
                address: closed_port(),
                healthy: true,
            },
        ],
    );
    let mut failures = 0;
    for _ in 0..12 {
        if get(&running.url("/item/x"), &[]).await.status != 200 {
            failures += 1;
        }
    }
    assert_eq!(
        failures, 2,
        "ejected after two consecutive connect failures"
    );
    let upstreams = get(&running.url("/__sandbox/upstreams"), &[]).await.json();
    let bad = &upstreams[0]["replicas"][1];
    assert_eq!(
        (bad["ejected"].as_bool(), bad["ejections"].as_u64()),
        (Some(true), Some(1))
    );
    let metrics = get(&running.url("/__sandbox/metrics"), &[]).await.body;
    assert!(
        metrics.contains("sandbox_proxy_ejections_total{service=\"item\"} 1"),
        "{metrics}"
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    let mut after = 0;
    for _ in 0..4 {
        if get(&running.url("/item/x"), &[]).await.status != 200 {
            after += 1;
        }
    }
    assert!(after >= 1, "re-admitted after the back-off");
}

both_paths!(health_changes_take_replicas_out);
async fn health_changes_take_replicas_out() {
    let (one, two) = (
        TestUpstream::start("one").await,
        TestUpstream::start("two").await,
    );
    let running = start("services:\n  item:\n    image: demo:1\n").await;
    let endpoints = |healthy: bool| {
        vec![
            Endpoint {
                name: "item-1".into(),
                address: one.address,
                healthy: true,
            },
            Endpoint {
                name: "item-2".into(),
                address: two.address,
                healthy,
            },
        ]
    };
    running.proxy.set_endpoints("item", endpoints(false));
    for _ in 0..6 {
        assert_eq!(
            get(&running.url("/item/"), &[])
                .await
                .header("x-sandbox-upstream"),
            "item-1"
        );
    }
    running.proxy.set_endpoints("item", endpoints(true));
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..6 {
        seen.insert(
            get(&running.url("/item/"), &[])
                .await
                .header("x-sandbox-upstream")
                .to_string(),
        );
    }
    assert_eq!(seen.len(), 2);
}

both_paths!(circuit_breaker_answers_503_with_overflow_header);
async fn circuit_breaker_answers_503_with_overflow_header() {
    let a = TestUpstream::start("a").await;
    let yaml = format!(
        "services:\n  a:\n    external: {}\n    circuit_breaker: {{max_requests: 1, max_pending: 0}}\n",
        a.url()
    );
    let running = start(&yaml).await;
    let slow = crate::util::spawn({
        let url = running.url("/a/delay/500");
        async move { get(&url, &[]).await.status }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let answer = get(&running.url("/a/x"), &[]).await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.header("x-sandbox-overflow"), "true");
    assert!(answer.body.contains("circuit breaker"), "{}", answer.body);
    assert_eq!(slow.await.expect("slow request"), 200);
    assert_eq!(get(&running.url("/a/x"), &[]).await.status, 200);
}

both_paths!(large_bodies_stream_once_and_are_not_retried);
async fn large_bodies_stream_once_and_are_not_retried() {
    let a = TestUpstream::start("a").await;
    let routes = r#"
gateway:
  routes:
    - match: {prefix: /}
      service: a
      retries: {attempts: 3, on: [5xx], backoff: {base: 1ms, max: 2ms}}
"#;
    let running = start(&manifest(&[&a], routes)).await;
    let large = "b".repeat(100 * 1024);
    let answer = crate::util::send("POST", &running.url("/flaky/1"), &[], &large).await;
    assert_eq!(
        answer.status, 503,
        "over 64 KiB: sent once, not kept for a retry"
    );
    assert_eq!(a.hits(), 1);
    let answer = crate::util::send("POST", &running.url("/flaky/2"), &[], "small").await;
    assert_eq!(answer.status, 200, "small bodies are kept and retried");
    assert_eq!(answer.json()["body"], "small");
}
