//! Errors a developer can act on: no replica, refused connections, external services; pages in
//! JSON, HTML and plain text with the service's state, its last logs and the next command.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use sandbox::proxy::{Endpoint, ServiceStatus};

use crate::util::{get, start, start_with, Setup, TestUpstream};

struct Crashed;

impl ServiceStatus for Crashed {
    fn state(&self, service: &str) -> Option<String> {
        Some(format!("{service} exited with code 1 at 10:42:03"))
    }

    fn recent_logs<'a>(&'a self, service: &'a str, lines: usize) -> BoxFuture<'a, Vec<String>> {
        Box::pin(async move {
            vec![format!(
                "{service}: panic: <config> missing ({lines} lines asked)"
            )]
        })
    }
}

async fn crashed_item() -> crate::util::Running {
    let setup = Setup {
        status: Some(Arc::new(Crashed)),
        ..Setup::default()
    };
    start_with("services:\n  item:\n    image: demo:1\n", setup).await
}

both_paths!(no_running_replica_as_json);
async fn no_running_replica_as_json() {
    let running = crashed_item().await;
    let answer = get(&running.url("/item/x"), &[("accept", "application/json")]).await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.header("content-type"), "application/json");
    assert_eq!(answer.header("x-sandbox-upstream"), "none");
    let json = answer.json();
    assert_eq!(json["error"], "`item` has no running replica");
    assert_eq!(json["service"], "item");
    assert_eq!(json["state"], "item exited with code 1 at 10:42:03");
    assert_eq!(
        json["logs"][0],
        "item: panic: <config> missing (20 lines asked)"
    );
    assert_eq!(json["next"], "sandbox logs item");
}

both_paths!(html_for_browsers_and_text_otherwise);
async fn html_for_browsers_and_text_otherwise() {
    let running = crashed_item().await;
    let html = get(
        &running.url("/item/x"),
        &[("accept", "text/html,application/xhtml+xml")],
    )
    .await;
    assert_eq!(html.status, 503);
    assert!(html.header("content-type").starts_with("text/html"));
    assert!(
        html.body.contains("<h1>503 Service Unavailable</h1>"),
        "{}",
        html.body
    );
    assert!(
        html.body.contains("panic: &lt;config&gt; missing"),
        "logs are escaped: {}",
        html.body
    );
    assert!(
        html.body.contains("<code>sandbox logs item</code>"),
        "{}",
        html.body
    );
    let text = get(&running.url("/item/x"), &[]).await;
    assert!(text.header("content-type").starts_with("text/plain"));
    assert!(
        text.body
            .contains("state: item exited with code 1 at 10:42:03"),
        "{}",
        text.body
    );
    assert!(
        text.body.contains("next: sandbox logs item"),
        "{}",
        text.body
    );
}

both_paths!(refused_connection_is_502_and_unhealthy_is_503);
async fn refused_connection_is_502_and_unhealthy_is_503() {
    let running = crashed_item().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address");
    running.proxy.set_endpoints(
        "item",
        vec![Endpoint {
            name: "item-1".into(),
            address: closed,
            healthy: true,
        }],
    );
    let answer = get(&running.url("/item/x"), &[("accept", "application/json")]).await;
    assert_eq!(answer.status, 502);
    assert_eq!(answer.header("x-sandbox-upstream"), "item-1");
    let error = answer.json()["error"].as_str().unwrap_or("").to_string();
    assert!(
        error.starts_with("cannot connect to `item` (item-1):"),
        "{error}"
    );
    assert_eq!(answer.header("x-sandbox-error-source"), "upstream");

    running.proxy.set_endpoints(
        "item",
        vec![Endpoint {
            name: "item-1".into(),
            address: closed,
            healthy: false,
        }],
    );
    let answer = get(&running.url("/item/x"), &[("accept", "application/json")]).await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.json()["error"], "`item` has no healthy replica");
}

both_paths!(external_services_need_no_endpoints);
async fn external_services_need_no_endpoints() {
    let web = TestUpstream::start("web").await;
    let running = start(&format!("services:\n  web:\n    external: {}\n", web.url())).await;
    let answer = get(&running.url("/web/page"), &[]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["path"], "/page");
    assert_eq!(answer.header("x-sandbox-upstream"), "web-external");
}
