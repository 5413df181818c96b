//! `ROUTES`: fixed JSON answers and `call` chains between two processes.

use crate::util::{get, Service};

const ITEM_ROUTES: &str = r#"GET /items/{id} => json {"id": "{id}", "name": "item {id}"}"#;

fn item() -> Service {
    Service::start(&[("SERVICE_NAME", "item"), ("ROUTES", ITEM_ROUTES)])
}

fn user(item: &Service, routes: &str) -> Service {
    Service::start(&[
        ("SERVICE_NAME", "user"),
        ("ITEM_URL", &item.url("")),
        ("ROUTES", routes),
    ])
}

#[test]
fn user_embeds_the_item_it_calls() {
    let item = item();
    let user = user(
        &item,
        "GET /users/{id} => call ${ITEM_URL}/items/{id} as item",
    );
    let reply = get(user.port, "/users/7");
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        reply.text(),
        r#"{"service":"user","id":"7","item":{"id": "7", "name": "item 7"}}"#
    );
}

#[test]
fn several_calls_are_embedded_under_their_names() {
    let item = item();
    let user = user(&item, "GET /both/{id} => call ${ITEM_URL}/items/{id} as first, call ${ITEM_URL}/status/201 as second");
    let reply = get(user.port, "/both/3");
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.text(),
        r#"{"service":"user","id":"3","first":{"id": "3", "name": "item 3"},"second":{"service":"item","status":201}}"#
    );
}

#[test]
fn downstream_status_is_passed_on() {
    let item = item();
    let user = user(
        &item,
        "GET /proxy/{code} => call ${ITEM_URL}/status/{code} as item",
    );
    let reply = get(user.port, "/proxy/404");
    assert_eq!(reply.status, 404);
    assert_eq!(
        reply.text(),
        r#"{"service":"user","code":"404","item":{"service":"item","status":404}}"#
    );
}

#[test]
fn unreachable_downstream_is_502_naming_the_url() {
    let closed = crate::util::free_port();
    let user = Service::start(&[
        ("SERVICE_NAME", "user"),
        (
            "ROUTES",
            &format!("GET /users/{{id}} => call http://127.0.0.1:{closed}/items/{{id}} as item"),
        ),
    ]);
    let reply = get(user.port, "/users/1");
    assert_eq!(reply.status, 502);
    let text = reply.text();
    assert!(
        text.contains(&format!("\"url\":\"http://127.0.0.1:{closed}/items/1\"")),
        "{text}"
    );
    assert!(text.contains("\"error\":\"call `item` failed\""), "{text}");
    assert!(text.contains("connecting to 127.0.0.1"), "{text}");
}

#[test]
fn invalid_routes_stop_startup_with_a_message() {
    let service = Service::spawn(&[("ROUTES", "GET /a/{id} => call http://x/{idd}")], &[]);
    let (output, _) = service.wait_exit(std::time::Duration::from_secs(5));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`{idd}` is not a parameter of `/a/{id}`"),
        "{stderr}"
    );
}
