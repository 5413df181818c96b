//! The query API: every endpoint and parameter, defaults, limits and errors.

use http::StatusCode;
use sandbox::trace::{Annotation, Endpoint, Kind, TraceConfig};

use crate::util::{now_micros, span, start, start_with, strings, trace_ids, TestServer};

/// Three traces: 1 (front → back, GET, error tag), 2 (front, POST, slow, annotated), 3 (back, old).
async fn seeded() -> TestServer {
    let server = start_with(TraceConfig {
        autocomplete_keys: vec!["env".into()],
        ..TraceConfig::default()
    })
    .await;
    let mut root = span(1, 1, None, "front", "GET /", 3000);
    root.tags.insert("http.method".into(), "GET".into());
    root.tags.insert("env".into(), "prod".into());
    let mut client = span(1, 2, Some(1), "front", "call back", 3000);
    client.kind = Some(Kind::Client);
    client.remote_endpoint = Some(Endpoint::service("back"));
    let mut callee = span(1, 2, Some(1), "back", "handle", 3000);
    callee.tags.insert("error".into(), "boom".into());
    let mut slow = span(2, 9, None, "front", "POST /", 1000);
    slow.annotations.push(Annotation {
        timestamp: now_micros(),
        value: "retried".into(),
    });
    slow.tags.insert("env".into(), "dev".into());
    let old = span(3, 1, None, "back", "cron", 2 * 86_400_000);
    server.store.ingest(vec![root, client, callee, slow, old]);
    server
}

#[tokio::test]
async fn names_endpoints() {
    let server = seeded().await;
    assert_eq!(
        strings(&server.get("/api/v2/services").await),
        vec!["back", "front"]
    );
    assert_eq!(
        strings(&server.get("/api/v2/spans?serviceName=front").await),
        vec!["call back", "get /", "post /"]
    );
    assert_eq!(
        strings(
            &server
                .get("/api/v2/spans?serviceName=FRONT&spanKind=client")
                .await
        ),
        vec!["call back"]
    );
    assert_eq!(
        strings(&server.get("/api/v2/spans?serviceName=nobody").await),
        Vec::<String>::new()
    );
    assert_eq!(
        strings(&server.get("/api/v2/spans?serviceName=").await),
        Vec::<String>::new()
    );
    assert_eq!(
        strings(&server.get("/api/v2/remoteServices?serviceName=front").await),
        vec!["back"]
    );
    assert_eq!(
        strings(&server.get("/api/v2/remoteServices?serviceName=back").await),
        Vec::<String>::new()
    );
    for path in [
        "/api/v2/spans",
        "/api/v2/remoteServices",
        "/api/v2/spans?serviceName=a&spanKind=LOCAL",
    ] {
        let reply = server.get(path).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
    }
    assert!(server
        .get("/api/v2/spans")
        .await
        .text()
        .contains("serviceName"));
}

#[tokio::test]
async fn traces_every_parameter() {
    let server = seeded().await;
    let one = "0000000000000001".to_string();
    let two = "0000000000000002".to_string();
    let three = "0000000000000003".to_string();
    let none: Vec<String> = Vec::new();
    let end_ts = now_micros() / 1000;
    let cases: Vec<(String, Vec<String>)> = vec![
        ("".into(), vec![two.clone(), one.clone()]),
        ("limit=1".into(), vec![two.clone()]),
        ("serviceName=back".into(), vec![one.clone()]),
        (
            "serviceName=Front&spanName=GET%20/".into(),
            vec![one.clone()],
        ),
        ("serviceName=front&spanName=handle".into(), none.clone()),
        ("spanName=handle".into(), vec![one.clone()]),
        ("spanName=all".into(), vec![two.clone(), one.clone()]),
        ("remoteServiceName=back".into(), vec![one.clone()]),
        (
            "serviceName=back&remoteServiceName=back".into(),
            none.clone(),
        ),
        ("annotationQuery=error".into(), vec![one.clone()]),
        (
            "annotationQuery=error%20and%20http.method%3DGET".into(),
            vec![one.clone()],
        ),
        ("annotationQuery=http.method%3DPOST".into(), none.clone()),
        ("annotationQuery=retried".into(), vec![two.clone()]),
        (
            "serviceName=front&annotationQuery=error".into(),
            none.clone(),
        ),
        ("minDuration=9000".into(), vec![two.clone()]),
        (
            "minDuration=1000&maxDuration=1000".into(),
            vec![one.clone()],
        ),
        ("minDuration=3000&maxDuration=8000".into(), none.clone()),
        (format!("endTs={}&lookback=2000", end_ts), vec![two.clone()]),
        (format!("endTs={}", end_ts - 2000), vec![one.clone()]),
        (
            "lookback=172900000".into(),
            vec![two.clone(), one.clone(), three.clone()],
        ),
        ("serviceName=unknown".into(), none.clone()),
    ];
    for (query, expected) in cases {
        let reply = server.get(&format!("/api/v2/traces?{query}")).await;
        assert_eq!(trace_ids(&reply), expected, "traces?{query}");
    }
}

#[tokio::test]
async fn traces_parameter_errors_are_400_with_the_server_wording() {
    let server = seeded().await;
    for (query, message) in [
        ("limit=0", "limit <= 0"),
        ("limit=-3", "limit <= 0"),
        ("limit=x", "invalid limit"),
        ("endTs=0", "endTs <= 0"),
        ("lookback=0", "lookback <= 0"),
        ("minDuration=0", "minDuration <= 0"),
        (
            "maxDuration=10",
            "maxDuration is only valid with minDuration",
        ),
        ("minDuration=10&maxDuration=5", "maxDuration < minDuration"),
        ("endTs=soon", "invalid endTs"),
        ("lookback=", "invalid lookback"),
    ] {
        let reply = server.get(&format!("/api/v2/traces?{query}")).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(reply.text().contains(message), "{query}: {}", reply.text());
    }
}

#[tokio::test]
async fn trace_by_id_merges_and_404s() {
    let server = seeded().await;
    let reply = server.get("/api/v2/trace/0000000000000001").await;
    let spans = reply.json();
    let spans = spans.as_array().unwrap();
    assert_eq!(spans.len(), 3);
    let handle = spans.iter().find(|s| s["name"] == "handle").unwrap();
    assert_eq!(
        handle["shared"], true,
        "server half sharing the client's id is marked shared"
    );
    assert_eq!(
        reply.headers["content-type"],
        "application/json; charset=utf-8"
    );
    let missing = server.get("/api/v2/trace/00000000000000ff").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.text().contains("00000000000000ff not found"));
    assert_eq!(
        server.get("/api/v2/trace/XYZ").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        server
            .get(&format!("/api/v2/trace/{}", "1".repeat(33)))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn fragments_of_one_span_are_merged_on_read() {
    let server = start().await;
    server.post_json(r#"[{"traceId":"a","id":"b","name":"get","timestamp":1,"localEndpoint":{"serviceName":"x"}}]"#).await;
    server.post_json(r#"[{"traceId":"a","id":"b","duration":5,"tags":{"late":"yes"},"localEndpoint":{"serviceName":"x"}}]"#).await;
    let trace = server.get("/api/v2/trace/a").await.json();
    assert_eq!(trace.as_array().unwrap().len(), 1);
    assert_eq!(trace[0]["duration"], 5);
    assert_eq!(trace[0]["tags"]["late"], "yes");
}

#[tokio::test]
async fn trace_many() {
    let server = seeded().await;
    let reply = server
        .get("/api/v2/traceMany?traceIds=0000000000000001,2,00000000000000ff")
        .await;
    assert_eq!(
        trace_ids(&reply),
        vec!["0000000000000001", "0000000000000002"]
    );
    for (query, message) in [
        ("traceIds=1", "/api/v2/trace/{traceId}"),
        ("traceIds=1,0000000000000001", "redundant traceId"),
        ("traceIds=1,XY", "lower-hex"),
        ("", "traceIds"),
    ] {
        let reply = server.get(&format!("/api/v2/traceMany?{query}")).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(reply.text().contains(message), "{query}: {}", reply.text());
    }
}

#[tokio::test]
async fn dependencies() {
    let server = seeded().await;
    let end_ts = now_micros() / 1000;
    let links = server
        .get(&format!("/api/v2/dependencies?endTs={end_ts}"))
        .await
        .json();
    assert_eq!(
        links,
        serde_json::json!([{"parent":"front","child":"back","callCount":1,"errorCount":1}])
    );
    let links = server
        .get(&format!("/api/v2/dependencies?endTs={end_ts}&lookback=10"))
        .await
        .json();
    assert_eq!(links, serde_json::json!([]));
    for (query, message) in [
        ("", "endTs"),
        ("endTs=0", "endTs <= 0"),
        ("endTs=5&lookback=-1", "lookback <= 0"),
        ("endTs=x", "invalid endTs"),
    ] {
        let reply = server.get(&format!("/api/v2/dependencies?{query}")).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(reply.text().contains(message), "{query}: {}", reply.text());
    }
}

#[tokio::test]
async fn messaging_dependencies_link_through_the_broker() {
    let server = start().await;
    let mut producer = span(7, 1, None, "orders", "send", 5);
    producer.kind = Some(Kind::Producer);
    producer.remote_endpoint = Some(Endpoint::service("kafka"));
    let mut consumer = span(7, 2, Some(1), "billing", "receive", 5);
    consumer.kind = Some(Kind::Consumer);
    consumer.remote_endpoint = Some(Endpoint::service("kafka"));
    server.store.ingest(vec![producer, consumer]);
    let links = server
        .get(&format!(
            "/api/v2/dependencies?endTs={}",
            now_micros() / 1000
        ))
        .await
        .json();
    assert_eq!(
        links,
        serde_json::json!([{"parent":"orders","child":"kafka","callCount":1},{"parent":"kafka","child":"billing","callCount":1}])
    );
}

#[tokio::test]
async fn autocomplete() {
    let server = seeded().await;
    assert_eq!(
        strings(&server.get("/api/v2/autocompleteKeys").await),
        vec!["env"]
    );
    assert_eq!(
        strings(&server.get("/api/v2/autocompleteValues?key=env").await),
        vec!["dev", "prod"]
    );
    assert_eq!(
        strings(
            &server
                .get("/api/v2/autocompleteValues?key=http.method")
                .await
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        server.get("/api/v2/autocompleteValues").await.status,
        StatusCode::BAD_REQUEST
    );
    // Default: no keys, as the server.
    let plain = start().await;
    assert_eq!(
        strings(&plain.get("/api/v2/autocompleteKeys").await),
        Vec::<String>::new()
    );
}
