//! Gateway routing: path (prefix, exact, regex), method, headers, query, host; first match wins;
//! rewrites, header edits, forwarding headers and the default per-service routes.

use crate::util::{get, manifest, send, start, TestUpstream};

both_paths!(matches_in_order_on_every_condition);
async fn matches_in_order_on_every_condition() {
    let (a, b, c) = (
        TestUpstream::start("a").await,
        TestUpstream::start("b").await,
        TestUpstream::start("c").await,
    );
    let routes = r#"
gateway:
  routes:
    - match: {exact: /exact}
      service: a
    - match: {regex: "/items/[0-9]+"}
      service: b
    - match: {prefix: /api, method: POST}
      service: c
    - match: {prefix: /api, headers: {x-version: {regex: "v2.*"}}}
      service: b
    - match: {prefix: /api, headers: {x-debug: {present: true}}}
      service: c
    - match: {prefix: /api, query: {beta: "1"}}
      service: c
    - match: {prefix: /api, host: shop.local}
      service: b
    - match: {prefix: /}
      service: a
"#;
    let running = start(&manifest(&[&a, &b, &c], routes)).await;
    let upstream =
        |answer: crate::util::Answer| answer.json()["upstream"].as_str().unwrap_or("").to_string();
    assert_eq!(upstream(get(&running.url("/exact"), &[]).await), "a");
    assert_eq!(upstream(get(&running.url("/exact/no"), &[]).await), "a");
    assert_eq!(upstream(get(&running.url("/items/42"), &[]).await), "b");
    assert_eq!(upstream(get(&running.url("/items/x"), &[]).await), "a");
    assert_eq!(
        upstream(send("POST", &running.url("/api/x"), &[], "{}").await),
        "c"
    );
    assert_eq!(
        upstream(get(&running.url("/api/x"), &[("x-version", "v2.1")]).await),
        "b"
    );
    assert_eq!(
        upstream(get(&running.url("/api/x"), &[("x-version", "v1")]).await),
        "a"
    );
    assert_eq!(
        upstream(get(&running.url("/api/x"), &[("x-debug", "")]).await),
        "c"
    );
    assert_eq!(upstream(get(&running.url("/api/x?beta=1"), &[]).await), "c");
    assert_eq!(upstream(get(&running.url("/api/x?beta=2"), &[]).await), "a");
    assert_eq!(
        upstream(get(&running.url("/api/x"), &[("host", "shop.local:8080")]).await),
        "b"
    );
}

both_paths!(no_route_is_404_with_a_hint);
async fn no_route_is_404_with_a_hint() {
    let a = TestUpstream::start("a").await;
    let running = start(&manifest(
        &[&a],
        "gateway:\n  routes:\n    - match: {prefix: /a}\n      service: a\n",
    ))
    .await;
    let answer = get(&running.url("/b"), &[("accept", "application/json")]).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.json()["error"], "no route matches `/b`");
    assert_eq!(answer.header("x-sandbox-error-source"), "downstream");
}

both_paths!(rewrite_and_header_edits);
async fn rewrite_and_header_edits() {
    let a = TestUpstream::start("a").await;
    let routes = r#"
gateway:
  routes:
    - match: {prefix: /api/items}
      service: a
      rewrite: /items
      request_headers: {add: {x-from: gateway}, remove: [cookie]}
      response_headers: {add: {x-served-by: sandbox}, remove: [server]}
"#;
    let running = start(&manifest(&[&a], routes)).await;
    let answer = get(
        &running.url("/api/items/7?full=1"),
        &[("cookie", "secret"), ("x-kept", "yes")],
    )
    .await;
    assert_eq!(answer.status, 200);
    let json = answer.json();
    assert_eq!(json["path"], "/items/7");
    assert_eq!(json["query"], "full=1");
    assert_eq!(answer.sent("x-from").as_deref(), Some("gateway"));
    assert_eq!(answer.sent("cookie"), None);
    assert_eq!(answer.sent("x-kept").as_deref(), Some("yes"));
    assert_eq!(answer.header("x-served-by"), "sandbox");
    assert_eq!(answer.header("server"), "");
    assert_eq!(answer.header("x-sandbox-upstream"), "a-external");
}

both_paths!(default_routes_strip_the_service_prefix);
async fn default_routes_strip_the_service_prefix() {
    let (item, user) = (
        TestUpstream::start("item").await,
        TestUpstream::start("user").await,
    );
    let running = start(&manifest(&[&item, &user], "")).await;
    let answer = get(&running.url("/item/items/1"), &[]).await;
    assert_eq!(
        (
            answer.json()["upstream"].as_str(),
            answer.json()["path"].as_str()
        ),
        (Some("item"), Some("/items/1"))
    );
    let answer = get(&running.url("/user"), &[]).await;
    assert_eq!(
        (
            answer.json()["upstream"].as_str(),
            answer.json()["path"].as_str()
        ),
        (Some("user"), Some("/"))
    );
}

both_paths!(forwarding_headers_and_request_ids);
async fn forwarding_headers_and_request_ids() {
    let a = TestUpstream::start("a").await;
    let running = start(&manifest(&[&a], "")).await;
    let answer = get(
        &running.url("/a/x"),
        &[
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "1"),
            ("x-forwarded-for", "10.1.2.3"),
        ],
    )
    .await;
    assert_eq!(
        answer.sent("x-forwarded-for").as_deref(),
        Some("10.1.2.3, 127.0.0.1")
    );
    assert_eq!(answer.sent("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(
        answer.sent("x-forwarded-host"),
        Some(running.gateway.to_string())
    );
    // Over HTTP/2 `connection` is illegal: the client drops it and the headers it names.
    assert_eq!(answer.sent("x-hop"), None);
    // An HTTP/2 client's `:authority` arrives as the `Host` an HTTP/1.1 client sends.
    assert_eq!(answer.sent("host"), Some(running.gateway.to_string()));
    let generated = answer.sent("x-request-id").expect("generated request id");
    assert_eq!(generated.len(), 36);
    assert_eq!(answer.header("x-request-id"), generated);
    let answer = get(&running.url("/a/x"), &[("x-request-id", "abc-123")]).await;
    assert_eq!(answer.sent("x-request-id").as_deref(), Some("abc-123"));
}

both_paths!(admin_pages);
async fn admin_pages() {
    let a = TestUpstream::start("a").await;
    let running = start(&manifest(&[&a], "")).await;
    get(&running.url("/a/x"), &[]).await;
    let routes = get(&running.url("/__sandbox/routes"), &[]).await.json();
    assert_eq!(routes[0]["name"], "prefix:/a/");
    assert_eq!(routes[0]["target"]["service"], "a");
    let upstreams = get(&running.url("/__sandbox/upstreams"), &[]).await.json();
    assert_eq!(upstreams[0]["service"], "a");
    assert_eq!(upstreams[0]["replicas"][0]["healthy"], true);
    let metrics = get(&running.url("/__sandbox/metrics"), &[]).await.body;
    assert!(
        metrics.contains(
            "sandbox_proxy_requests_total{route=\"prefix:/a/\",service=\"a\",status=\"200\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("sandbox_proxy_request_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sandbox_proxy_open_connections{listener=\"gateway\"}"),
        "{metrics}"
    );
}
