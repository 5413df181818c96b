//! Issue 11: the request body limit is the manifest's (`gateway: {max_request_body}`, and per
//! route), and its 413 says which limit was hit, its value and how to raise it.

use crate::util::{manifest, raw, send, start, TestUpstream};

const JSON: (&str, &str) = ("accept", "application/json");

both_paths!(the_gateway_limit_comes_from_the_manifest);
async fn the_gateway_limit_comes_from_the_manifest() {
    let a = TestUpstream::start("a").await;
    let running = start(&manifest(&[&a], "gateway: {max_request_body: 1k}\n")).await;

    let refused = send("POST", &running.url("/a/x"), &[JSON], &"z".repeat(1025)).await;
    assert_eq!(refused.status, 413, "{refused:?}");
    let page = refused.json();
    let error = page["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("the gateway's limit: 1 KiB (1024 bytes)"),
        "{page}"
    );
    let next = page["next"].as_str().unwrap_or_default();
    assert!(
        next.contains("`gateway: {max_request_body: SIZE}`"),
        "{page}"
    );
    assert_eq!(a.hits(), 0, "refused before contacting the upstream");

    let accepted = send("POST", &running.url("/a/x"), &[], &"z".repeat(1024)).await;
    assert_eq!(accepted.status, 200, "{accepted:?}");
    assert_eq!(a.hits(), 1);
}

both_paths!(a_route_sets_its_own_limit);
async fn a_route_sets_its_own_limit() {
    let a = TestUpstream::start("a").await;
    let gateway = "gateway:
  max_request_body: 1k
  routes:
    - match: {prefix: /upload}
      service: a
      max_request_body: 4k
    - service: a
";
    let running = start(&manifest(&[&a], gateway)).await;
    let body = "z".repeat(3000);

    let uploaded = send("POST", &running.url("/upload"), &[], &body).await;
    assert_eq!(
        uploaded.status, 200,
        "the route's limit is higher: {uploaded:?}"
    );
    let elsewhere = send("POST", &running.url("/other"), &[JSON], &body).await;
    assert_eq!(elsewhere.status, 413, "{elsewhere:?}");

    let html = ("accept", "text/html");
    let too_big = send("POST", &running.url("/upload"), &[html], &"z".repeat(5000)).await;
    assert_eq!(too_big.status, 413, "{too_big:?}");
    assert!(
        too_big
            .body
            .contains("route `prefix:/upload`: 4 KiB (4096 bytes)"),
        "{}",
        too_big.body
    );
    assert!(
        too_big
            .body
            .contains("<code>raise it in the manifest: `max_request_body: SIZE` on that route"),
        "{}",
        too_big.body
    );
    assert_eq!(a.hits(), 1);
}

// HTTP/1.1 only: a chunked HTTP/1.1 body, raw bytes (HTTP/2 has no chunked framing).
h1_only!(a_streamed_body_past_the_limit_is_413);
async fn a_streamed_body_past_the_limit_is_413() {
    let a = TestUpstream::start("a").await;
    let running = start(&manifest(&[&a], "gateway: {max_request_body: 1k}\n")).await;
    let chunk = format!("{:x}\r\n{}\r\n", 600, "z".repeat(600));
    let request = format!(
        "POST /a/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}{chunk}0\r\n\r\n"
    );
    let answer = raw(running.gateway, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("gateway.max_request_body"), "{answer}");
}
