//! Errors a developer can act on, and bad input.

use super::*;

// ---------------------------------------------------------------------------------------------
// Errors a developer can act on

#[test]
fn a_crashed_service_gets_an_error_page_with_its_state_and_last_logs() {
    let project = Project::new("proxy-crashed");
    let image = demo_context(&project);
    let manifest = format!(
        "gateway: {{port: 0}}\nservices:\n{}",
        demo(
            &image,
            "item",
            "",
            &format!("{HEALTH}    restart: \"no\"\n")
        ),
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);
    let port = sandbox.replica_port("item", 1);
    let exit = send(port, "GET", "/exit/3", &[]);
    assert_eq!(exit.status, 200, "{exit:?}");

    let json = [("accept", "application/json")];
    // Right after the exit a request may still find the replica (502, cannot connect); once the
    // monitor has looked, the service has no running replica (503) and its state says why.
    let page = wait_until(
        "the gateway reports the exit",
        Duration::from_secs(15),
        || {
            let answer = sandbox.send("GET", "/item/echo", &json);
            let state = answer.json()["state"].as_str().unwrap_or("").to_string();
            (answer.status == 503 && state.starts_with("exited with code 3")).then_some(answer)
        },
    );
    assert_eq!(page.header("content-type"), Some("application/json"));
    let body = page.json();
    assert_eq!(body["error"], "`item` has no running replica", "{body}");
    assert_eq!(body["service"], "item", "{body}");
    assert_eq!(body["status"], 503, "{body}");
    assert_eq!(body["next"], "sandbox logs item", "{body}");
    let logs = body["logs"].to_string();
    assert!(
        logs.contains("item exiting with code 3"),
        "the last log lines: {body}"
    );

    let html = sandbox.send("GET", "/item/echo", &[("accept", "text/html")]);
    assert_eq!(html.status, 503, "{html:?}");
    assert_eq!(
        html.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    for expected in [
        "<!doctype html>",
        "<h1>503 Service Unavailable</h1>",
        "`item` has no running replica",
        "<b>State:</b> exited with code 3",
        "item exiting with code 3",
        "<code>sandbox logs item</code>",
    ] {
        assert!(html.body.contains(expected), "{expected}: {}", html.body);
    }
}

/// A busybox service whose every connection runs `script` (`nc -ll -e`: stdin and stdout are the
/// connection), built from the project's `bb/` context; never ejected, so every request reaches it.
fn nc_service(project: &Project, name: &str, script: &str) -> String {
    let image = busybox_context(&project.path("bb"));
    format!(
        "  {name}:\n    image: {image}\n    build: ./bb\n    command: [\"nc\", \"-ll\", \"-p\", \"8080\", \"-e\", \"sh\", \"-c\", \"{script}\"]\n    port: 8080\n    healthcheck: {{tcp: true}}\n    outlier_detection: {{consecutive_errors: 1000, base_ejection: 1s}}\n"
    )
}

#[test]
fn the_gateway_rejects_bad_requests_and_names_an_upstream_that_sends_garbage() {
    let project = Project::new("proxy-bad-input");
    let manifest = format!(
        "gateway: {{port: 0}}\nservices:\n{}",
        nc_service(&project, "junk", "read line; echo garbage")
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);

    let malformed = exchange(sandbox.gateway, b"THIS IS NOT HTTP\r\n\r\n").expect("an answer");
    assert_eq!(malformed.status, 400, "{malformed:?}");

    let big = "x".repeat(70 * 1024);
    let raw = format!("GET /junk/ HTTP/1.1\r\nHost: localhost\r\nX-Big: {big}\r\n\r\n");
    let too_large = exchange(sandbox.gateway, raw.as_bytes()).expect("an answer");
    assert_eq!(too_large.status, 431, "{too_large:?}");
    assert_eq!(
        too_large.header("x-sandbox-error-source"),
        Some("downstream")
    );

    for _ in 0..3 {
        let garbage = sandbox.send("GET", "/junk/", &[("accept", "application/json")]);
        assert_eq!(garbage.status, 502, "{garbage:?}");
        assert_eq!(garbage.header("x-sandbox-error-source"), Some("upstream"));
        let body = garbage.json();
        let error = body["error"].as_str().unwrap_or("");
        assert!(
            error.starts_with("`junk` (junk-1) sent an invalid response"),
            "{body}"
        );
        assert_eq!(body["next"], "sandbox logs junk", "{body}");
    }
}

#[test]
fn an_upstream_that_sends_garbage_at_once_is_an_invalid_response() {
    let project = Project::new("proxy-early-garbage");
    let manifest = format!(
        "gateway: {{port: 0}}\nservices:\n{}",
        nc_service(&project, "junk", "echo garbage; sleep 1")
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);
    // Whether the garbage arrives before or after the proxy has written the request is a race;
    // either way the upstream did not answer with HTTP.
    for _ in 0..20 {
        let garbage = sandbox.send("GET", "/junk/", &[("accept", "application/json")]);
        assert_eq!(garbage.status, 502, "{garbage:?}");
        let body = garbage.json();
        let error = body["error"].as_str().unwrap_or("");
        assert!(
            error.starts_with("`junk` (junk-1) sent an invalid response"),
            "{body}"
        );
    }
}
