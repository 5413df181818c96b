//! `POST /api/v2/spans` and `/api/v1/spans`: encodings, gzip, bad input, limits, eviction.

use std::io::Write;

use http::StatusCode;
use sandbox::trace::codec::{json, proto};
use sandbox::trace::TraceConfig;

use crate::util::{now_micros, span, start, start_with, strings};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn example(trace_id: &str) -> String {
    format!(
        r#"[{{"traceId":"{trace_id}","id":"352bff9a74ca9ad2","parentId":"6b221d5bc9e6496c","name":"GET /API",
        "timestamp":{},"duration":1431,"kind":"SERVER","localEndpoint":{{"serviceName":"BackEnd","ipv4":"192.168.99.1","port":3306}},
        "remoteEndpoint":{{"ipv4":"172.19.0.2","port":58648}},"tags":{{"http.method":"GET","http.path":"/api"}}}}]"#,
        now_micros()
    )
}

#[tokio::test]
async fn json_v2_is_accepted_and_queryable_at_once_with_names_lower_cased() {
    let server = start().await;
    let reply = server.post_json(&example("5af7183fb1d4cf5f")).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
    let trace = server.get("/api/v2/trace/5af7183fb1d4cf5f").await.json();
    assert_eq!(trace[0]["name"], "get /api");
    assert_eq!(trace[0]["localEndpoint"]["serviceName"], "backend");
    assert_eq!(trace[0]["remoteEndpoint"]["port"], 58648);
    assert_eq!(trace[0]["parentId"], "6b221d5bc9e6496c");
    assert_eq!(
        strings(&server.get("/api/v2/services").await),
        vec!["backend"]
    );
}

#[tokio::test]
async fn short_trace_ids_are_left_padded_and_found_by_either_form() {
    let server = start().await;
    assert_eq!(
        server.post_json(&example("abc")).await.status,
        StatusCode::ACCEPTED
    );
    let trace = server.get("/api/v2/trace/abc").await.json();
    assert_eq!(trace[0]["traceId"], "0000000000000abc");
    assert_eq!(
        server.get("/api/v2/trace/0000000000000abc").await.status,
        StatusCode::OK
    );
    // 128-bit with zero high bits is the 64-bit id
    assert_eq!(
        server
            .get("/api/v2/trace/00000000000000000000000000000abc")
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn proto3_and_gzip_are_accepted() {
    let server = start().await;
    let spans = vec![
        span(0x11, 1, None, "proto", "root", 1),
        span(0x11, 2, Some(1), "proto", "child", 1),
    ];
    let body = proto::encode(&spans);
    let reply = server
        .post("/api/v2/spans", "application/x-protobuf", body.clone())
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
    assert_eq!(
        server
            .get("/api/v2/trace/0000000000000011")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let gzipped_proto = vec![span(0x12, 1, None, "proto", "root", 1)];
    let reply = server
        .send(
            http::Method::POST,
            "/api/v2/spans",
            &[
                ("content-type", "application/x-protobuf"),
                ("content-encoding", "gzip"),
            ],
            gzip(&proto::encode(&gzipped_proto)),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
    let gzipped_json = json::encode(&[span(0x13, 1, None, "json", "root", 1)]);
    let reply = server
        .send(
            http::Method::POST,
            "/api/v2/spans",
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            gzip(&gzipped_json),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
    for id in ["0000000000000012", "0000000000000013"] {
        assert_eq!(
            server.get(&format!("/api/v2/trace/{id}")).await.status,
            StatusCode::OK,
            "{id}"
        );
    }
}

#[tokio::test]
async fn v1_json_is_converted_to_v2() {
    let server = start().await;
    let ts = now_micros();
    let body = format!(
        r#"[{{"traceId":"00000000000000000000000000000001","id":"0000000000000002","parentId":"0000000000000001","name":"GET","timestamp":{ts},"duration":100,
        "annotations":[
          {{"timestamp":{ts},"value":"cs","endpoint":{{"serviceName":"frontend","ipv4":"127.0.0.1"}}}},
          {{"timestamp":{},"value":"sr","endpoint":{{"serviceName":"backend","ipv4":"127.0.0.2"}}}},
          {{"timestamp":{},"value":"ss","endpoint":{{"serviceName":"backend","ipv4":"127.0.0.2"}}}},
          {{"timestamp":{},"value":"cr","endpoint":{{"serviceName":"frontend","ipv4":"127.0.0.1"}}}}],
        "binaryAnnotations":[{{"key":"http.path","value":"/api","endpoint":{{"serviceName":"backend"}}}},
          {{"key":"sa","value":true,"endpoint":{{"serviceName":"backend","ipv4":"127.0.0.2","port":8080}}}}]}}]"#,
        ts + 10,
        ts + 90,
        ts + 100
    );
    let reply = server.post("/api/v1/spans", "application/json", body).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
    let trace = server.get("/api/v2/trace/0000000000000001").await.json();
    let spans = trace.as_array().unwrap();
    assert_eq!(spans.len(), 2);
    let client = spans.iter().find(|s| s["kind"] == "CLIENT").unwrap();
    let server_span = spans.iter().find(|s| s["kind"] == "SERVER").unwrap();
    assert_eq!(client["duration"], 100);
    assert_eq!(client["remoteEndpoint"]["port"], 8080);
    assert_eq!(server_span["shared"], true);
    assert_eq!(server_span["duration"], 80);
    assert_eq!(server_span["tags"]["http.path"], "/api");
}

#[tokio::test]
async fn bad_input_is_a_400_that_says_why_and_loses_nothing() {
    let server = start().await;
    assert_eq!(
        server.post_json(&example("5af7183fb1d4cf5f")).await.status,
        StatusCode::ACCEPTED
    );
    let bad_proto = {
        let bytes = proto::encode(&[span(1, 1, None, "a", "b", 1)]);
        bytes[..bytes.len() - 4].to_vec()
    };
    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        ("application/json", "", b"{not json".to_vec(), "json v2"),
        (
            "application/json",
            "",
            br#"{"traceId":"a"}"#.to_vec(),
            "expected a sequence",
        ),
        (
            "application/json",
            "",
            br#"[{"traceId":"a"}]"#.to_vec(),
            "missing id",
        ),
        (
            "application/json",
            "",
            br#"[{"traceId":"a","id":"12345678901234567"}]"#.to_vec(),
            "id.length > 16",
        ),
        (
            "application/json",
            "",
            br#"[{"traceId":"xyz","id":"1"}]"#.to_vec(),
            "lower-hex",
        ),
        (
            "application/json",
            "",
            br#"[{"traceId":"ABC","id":"1"}]"#.to_vec(),
            "lower-hex",
        ),
        (
            "application/json",
            "",
            format!(r#"[{{"traceId":"{}","id":"1"}}]"#, "a".repeat(33)).into_bytes(),
            "traceId.length > 32",
        ),
        (
            "application/json",
            "",
            br#"[{"traceId":"a","id":"1","localEndpoint":{"port":70000}}]"#.to_vec(),
            "invalid port 70000",
        ),
        ("application/x-protobuf", "", bad_proto, "proto3"),
        (
            "application/json",
            "gzip",
            b"not gzip at all".to_vec(),
            "invalid gzip",
        ),
        (
            "application/json",
            "br",
            b"[]".to_vec(),
            "unsupported Content-Encoding",
        ),
        ("application/json", "", Vec::new(), "empty POST body"),
    ];
    for (content_type, encoding, body, reason) in cases {
        let mut headers = vec![("content-type", content_type)];
        if !encoding.is_empty() {
            headers.push(("content-encoding", encoding));
        }
        let reply = server
            .send(http::Method::POST, "/api/v2/spans", &headers, body)
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{reason}: {}",
            reply.text()
        );
        assert!(
            reply.text().contains(reason),
            "expected {reason:?} in {:?}",
            reply.text()
        );
    }
    let reply = server
        .post("/api/v1/spans", "application/json", "[{\"id\":\"1\"}]")
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.text().contains("json v1"), "{}", reply.text());
    assert_eq!(server.store.span_count(), 1);
    assert_eq!(
        server.get("/api/v2/trace/5af7183fb1d4cf5f").await.status,
        StatusCode::OK
    );
    // Negative timestamps and ports are read as absent, as the server's span builder does.
    let reply = server.post_json(r#"[{"traceId":"c","id":"1","timestamp":-5,"duration":-1,"localEndpoint":{"serviceName":"n","port":-3}}]"#).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
    let trace = server.get("/api/v2/trace/c").await.json();
    assert!(
        trace[0].get("timestamp").is_none() && trace[0]["localEndpoint"].get("port").is_none(),
        "{trace}"
    );
    // An empty list is fine.
    assert_eq!(server.post_json("[]").await.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_declared_or_streamed_or_gunzipped() {
    let server = start_with(TraceConfig {
        max_body_bytes: 1024,
        ..TraceConfig::default()
    })
    .await;
    let big = format!("[{}]", vec![r#"{"traceId":"a","id":"b"}"#; 100].join(","));
    let reply = server.post_json(&big).await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.text()
    );
    assert!(reply.text().contains("1024 bytes"));
    // Streamed without a Content-Length.
    let stream = futures_util::stream::iter(
        big.as_bytes()
            .chunks(100)
            .map(|c| {
                Ok::<_, std::io::Error>(hyper::body::Frame::data(bytes::Bytes::copy_from_slice(c)))
            })
            .collect::<Vec<_>>(),
    );
    let body = http_body_util::StreamBody::new(stream);
    let client: hyper_util::client::legacy::Client<_, _> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let request = http::Request::post(server.url("/api/v2/spans"))
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    assert_eq!(
        client.request(request).await.unwrap().status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // A small gzip that inflates past the limit.
    let reply = server
        .send(
            http::Method::POST,
            "/api/v2/spans",
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            gzip(big.as_bytes()),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.text()
    );
    assert_eq!(server.store.span_count(), 0);
}

#[tokio::test]
async fn the_store_evicts_whole_oldest_traces_at_the_bound() {
    let server = start_with(TraceConfig {
        max_spans: 10,
        ..TraceConfig::default()
    })
    .await;
    for trace in 1..=6u128 {
        let spans = vec![
            span(trace, 1, None, "svc", "root", 10),
            span(trace, 2, Some(1), "svc", "child", 10),
        ];
        assert_eq!(
            server
                .post_json(&String::from_utf8(json::encode(&spans)).unwrap())
                .await
                .status,
            StatusCode::ACCEPTED
        );
    }
    assert_eq!(server.store.span_count(), 10);
    assert_eq!(
        server.get("/api/v2/trace/0000000000000001").await.status,
        StatusCode::NOT_FOUND
    );
    for trace in 2..=6 {
        let reply = server.get(&format!("/api/v2/trace/{trace:016x}")).await;
        assert_eq!(
            reply.json().as_array().unwrap().len(),
            2,
            "trace {trace} is kept whole"
        );
    }
    let metrics = server.get("/prometheus").await.text();
    assert!(
        metrics.contains("zipkin_storage_spans_evicted_total 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn collector_counters_are_exported_with_the_server_names() {
    let server = start().await;
    server.post_json(&example("1")).await;
    server.post_json("nope").await;
    let text = server.get("/prometheus").await.text();
    for line in [
        "zipkin_collector_messages_total{transport=\"http\"} 2",
        "zipkin_collector_messages_dropped_total{transport=\"http\"} 1",
        "zipkin_collector_spans_total{transport=\"http\"} 1",
        "zipkin_collector_spans_dropped_total{transport=\"http\"} 0",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    assert!(text.contains("zipkin_collector_bytes_total{transport=\"http\"} "));
}
