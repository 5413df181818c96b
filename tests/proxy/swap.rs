//! `swap_config` under load: the routing table changes, no request fails, no listener restarts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::util::{config_from, get, manifest, start, TestUpstream};

both_paths!(
    hot_swap_under_load_fails_nothing,
    flavor = "multi_thread",
    worker_threads = 2
);
async fn hot_swap_under_load_fails_nothing() {
    let (a, b) = (
        TestUpstream::start("a").await,
        TestUpstream::start("b").await,
    );
    let to = |service: &str| {
        format!("gateway:\n  routes:\n    - match: {{prefix: /}}\n      service: {service}\n")
    };
    let running = start(&manifest(&[&a, &b], &to("a"))).await;
    let failures = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (url, failures, done) = (running.url("/delay/2"), failures.clone(), done.clone());
        workers.push(crate::util::spawn(async move {
            for _ in 0..60 {
                if get(&url, &[]).await.status != 200 {
                    failures.fetch_add(1, Ordering::SeqCst);
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    let mut configs = Vec::new();
    for round in 0..10 {
        tokio::time::sleep(Duration::from_millis(15)).await;
        let (config, directory) = config_from(&manifest(
            &[&a, &b],
            &to(if round % 2 == 0 { "b" } else { "a" }),
        ));
        running.proxy.swap_config(config);
        configs.push(directory);
    }
    for worker in workers {
        worker.await.expect("worker");
    }
    assert_eq!(done.load(Ordering::SeqCst), 480);
    assert_eq!(failures.load(Ordering::SeqCst), 0);
    assert!(
        a.hits() > 0 && b.hits() > 0,
        "both tables served: a {} b {}",
        a.hits(),
        b.hits()
    );
}
