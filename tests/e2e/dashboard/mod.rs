//! The dashboard in a real browser: Debian's `chromium` driven through `chromedriver` (WebDriver,
//! plain HTTP/1.1, `browser`) against the demo chain brought up for real. Screenshots of each
//! page go to `target/dashboard-screenshots/`. Fails loudly when chromium or its driver is missing
//! (`.ci/setup` installs them). One sandbox for the whole run: Resources here, then the Traces,
//! Graph and Logs pages (`pages`); each page's first paint is printed and its console checked.

mod browser;
mod pages;

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{demo_chain, wait_until, Project};
use browser::{http, Browser};

/// The state of `replica` in `/dashboard/api/resources`.
fn api_state(port: u16, replica: &str) -> Option<String> {
    let (_, body) = http(port, "GET", "/dashboard/api/resources", &[], "");
    let resources: Value = serde_json::from_str(&body).ok()?;
    resources["services"]
        .as_array()?
        .iter()
        .flat_map(|service| service["replicas"].as_array().cloned().unwrap_or_default())
        .find(|entry| entry["name"] == replica)
        .and_then(|entry| entry["state"].as_str().map(str::to_string))
}

#[test]
fn the_dashboard_shows_and_drives_the_running_sandbox() {
    let project = Project::new("dashboard");
    project.manifest(&demo_chain(&project));
    let up = project.run(&["up", "--wait"]);
    up.success();
    let output = format!("{}{}", up.stdout, up.stderr);
    let url = output
        .split_whitespace()
        .find(|word| word.starts_with("http://127.0.0.1:") && word.contains("/?token="))
        .unwrap_or_else(|| panic!("`up` prints the dashboard URL with its token:\n{output}"))
        .to_string();
    let port: u16 = url["http://127.0.0.1:".len()..]
        .split('/')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("a port in the dashboard URL");
    let token = url.split("token=").nth(1).expect("a token").to_string();

    // A web page elsewhere cannot drive it, even with the cookie; nor a request without the token.
    let cookie = format!("sandbox_token={token}");
    let (status, _) = http(
        port,
        "POST",
        "/dashboard/api/services/item/stop",
        &[
            ("Origin", "http://evil.example"),
            ("Cookie", &cookie),
            ("Content-Type", "text/plain"),
        ],
        "",
    );
    assert_eq!(status, 403, "a cross-origin POST is refused");
    let (status, _) = http(
        port,
        "POST",
        "/dashboard/api/services/item/stop",
        &[("Origin", &format!("http://127.0.0.1:{port}"))],
        "",
    );
    assert_eq!(status, 403, "a POST without the token is refused");
    let (status, body) = http(port, "GET", "/dashboard/api/resources", &[], "");
    assert_eq!(status, 200);
    let resources: Value = serde_json::from_str(&body).expect("resources are JSON");
    assert_eq!(resources["project"], project.name.as_str());

    let browser = Browser::start();
    browser.open(&url);
    let paint = browser.paint_timings();
    eprintln!("first paint of the dashboard (the token's redirect included): {paint}");
    let page = browser.script("return location.href;");
    assert_eq!(
        page.as_str(),
        Some(format!("http://127.0.0.1:{port}/").as_str()),
        "the token leaves the address bar"
    );
    // The console check sees what the page logs: an error written on purpose is read back.
    browser.script("console.error('sandbox console probe'); return null;");
    let probe = browser.console_errors();
    assert!(
        probe
            .iter()
            .any(|entry| entry.contains("sandbox console probe")),
        "the browser's log reaches the test: {probe:?}"
    );
    wait_until(
        "the page lists user and item as healthy",
        Duration::from_secs(30),
        || {
            let replicas = browser.replicas();
            let healthy = |name: &str| {
                replicas.iter().any(|(replica, state, health)| {
                    replica == name && state == "running" && health == "healthy"
                })
            };
            (healthy("user-1") && healthy("item-1")).then_some(())
        },
    );
    browser.screenshot("resources");

    // The engine's event shows without a reload.
    let item = project
        .containers()
        .into_iter()
        .find(|(name, _)| name.ends_with("-item-1"))
        .expect("an item container");
    let status = project
        .docker()
        .args(["kill", &item.1])
        .status()
        .expect("docker kill");
    assert!(status.success(), "docker kill item");
    let killed = Instant::now();
    // Timed on both sides, so a failure says whether the server or the page was late.
    let (mut served, mut shown) = (None, None);
    while killed.elapsed() < Duration::from_secs(15) && (served.is_none() || shown.is_none()) {
        if served.is_none() && api_state(port, "item-1").as_deref() == Some("exited") {
            served = Some(killed.elapsed());
        }
        if shown.is_none()
            && browser
                .replica("item-1")
                .is_some_and(|(state, _)| state == "exited")
        {
            shown = Some(killed.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("after docker kill: the API said exited after {served:?}, the page after {shown:?}");
    assert!(
        shown.is_some_and(|shown| shown <= Duration::from_secs(2)),
        "the page shows item exited within 2 s of docker kill (API: {served:?}, page: {shown:?})"
    );
    browser.screenshot("resources-item-exited");

    // Restart from the page brings it back.
    browser.click("button[data-action=restart][data-service=item]");
    wait_until(
        "item is running and healthy again",
        Duration::from_secs(30),
        || (browser.replica("item-1")? == ("running".into(), "healthy".into())).then_some(()),
    );
    let restarts = browser.script(
        "return document.querySelector('tr[data-replica=\"item-1\"] td[data-started]').nextElementSibling.textContent;",
    );
    assert_eq!(restarts.as_str(), Some("1"), "the restart is counted");

    // A fault toggled live on item: the gateway answers its requests with the injected status.
    browser.script(
        "const select = document.querySelector('select[data-fault=item]'); select.value = 'abort:503'; select.dispatchEvent(new Event('change')); return null;",
    );
    let status_json: Value = {
        let run = project.run(&["--json", "ps"]);
        run.success();
        serde_json::from_str(&run.stdout).expect("ps --json")
    };
    let gateway = status_json["gateway"]
        .as_str()
        .map(str::to_string)
        .or_else(|| {
            output
                .split_whitespace()
                .find(|word| {
                    word.starts_with("http://127.0.0.1:") && !word.contains(&format!(":{port}"))
                })
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("the gateway's address: {status_json}\n{output}"));
    let gateway_port: u16 = gateway
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("gateway port");
    wait_until(
        "the gateway answers item with the injected 503",
        Duration::from_secs(5),
        || (http(gateway_port, "GET", "/item/items/1", &[], "").0 == 503).then_some(()),
    );
    browser.script(
        "const select = document.querySelector('select[data-fault=item]'); select.value = ''; select.dispatchEvent(new Event('change')); return null;",
    );
    // Asked of item itself: through user, item's injected 503s become user's own, and the
    // gateway's outlier detection would eject user for a while.
    let cleared = Instant::now();
    let mut last = (0, String::new());
    while cleared.elapsed() < Duration::from_secs(10) {
        last = http(gateway_port, "GET", "/item/items/1", &[], "");
        if last.0 == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        last.0,
        200,
        "the fault is cleared: the gateway answered {last:?}; the page says {}",
        browser.script("return [document.getElementById('notice').textContent, document.querySelector('select[data-fault=item]').value].join(' | ');")
    );

    browser.assert_console_clean("on the Resources page");

    let trace_id = pages::traces_page(&browser, port, gateway_port);
    pages::graph_page(&browser, port, &trace_id);
    pages::big_trace(&browser, port);
    pages::logs_page(&browser, port, gateway_port);
}
