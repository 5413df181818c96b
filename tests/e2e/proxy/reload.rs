//! Hot route swap on a re-up.

use super::*;

// ---------------------------------------------------------------------------------------------
// Reloading

#[test]
fn up_with_changed_routes_swaps_them_without_failing_a_request() {
    let project = Project::new("proxy-hot-swap");
    let image = demo_context(&project);
    // A fixed port: the gateway must stay where clients already connect.
    let gateway = free_port();
    let services = demo(
        &image,
        "item",
        r#"GET /items/{id} => json {"id": "{id}"}"#,
        HEALTH,
    );
    let before = format!(
        "gateway:\n  port: {gateway}\n  routes:\n    - match: {{prefix: /items/}}\n      service: item\nservices:\n{services}"
    );
    let sandbox = Sandbox::up(project, &before, &[]);
    assert_eq!(sandbox.gateway, gateway);
    assert_eq!(sandbox.get("/new/1").status, 404);

    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(25);
            let (mut answered, mut failures) = (0u32, Vec::new());
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && answered < 5000 {
                let raw = "GET /items/1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
                match exchange(gateway, raw.as_bytes()) {
                    Ok(answer) if answer.status == 200 => answered += 1,
                    Ok(answer) => failures.push(format!("{} {}", answer.status, answer.body)),
                    Err(error) => failures.push(error),
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            (answered, failures)
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let after = before.replace(
        "services:\n",
        "    - match: {prefix: /new/}\n      service: item\n      rewrite: /items/\nservices:\n",
    );
    sandbox.project.manifest(&after);
    sandbox.project.run(&["up", "-d"]).success();
    let new = sandbox.get("/new/5");
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let (answered, failures) = client.join().expect("client thread");

    assert_eq!(new.status, 200, "the new route works: {new:?}");
    assert_eq!(new.json()["id"], "5");
    assert!(
        answered > 20,
        "the client kept sending ({answered} answered)"
    );
    assert!(
        failures.is_empty(),
        "{} of {} requests failed during the re-up: {:?}",
        failures.len(),
        answered as usize + failures.len(),
        &failures[..failures.len().min(5)]
    );
}
