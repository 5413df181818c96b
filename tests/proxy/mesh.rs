//! The mesh: routes by the `Host` header's service name, knows the caller by source address, and
//! refuses unknown sources.

use std::collections::HashMap;

use sandbox::proxy::{Caller, SpanKind};

use crate::util::{get, manifest, start, start_recorded, TestUpstream};

both_paths!(unknown_sources_are_refused);
async fn unknown_sources_are_refused() {
    let item = TestUpstream::start("item").await;
    let running = start(&manifest(&[&item], "")).await;
    let url = format!("http://{}/items/1", running.mesh);
    let answer = get(&url, &[("host", "item.sandbox:15001")]).await;
    assert_eq!(answer.status, 403);
    assert!(answer.body.contains("127.0.0.1"), "{}", answer.body);
    assert_eq!(item.hits(), 0);
}

both_paths!(callers_are_known_by_address_and_routed_by_host);
async fn callers_are_known_by_address_and_routed_by_host() {
    let item = TestUpstream::start("item").await;
    let (running, spans) = start_recorded(&manifest(&[&item], "")).await;
    running.proxy.set_callers(HashMap::from([(
        "127.0.0.1".parse().expect("ip"),
        Caller {
            service: "user".into(),
            replica: "user-1".into(),
        },
    )]));
    let url = format!("http://{}/items/1", running.mesh);
    let answer = get(&url, &[("host", "item.sandbox:15001")]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.json()["path"],
        "/items/1",
        "the mesh does not rewrite paths"
    );
    assert_eq!(answer.header("x-sandbox-upstream"), "item-external");
    let recorded = spans.take();
    let client = recorded
        .iter()
        .find(|span| span.kind == SpanKind::Client)
        .expect("client span");
    assert_eq!(
        (
            client.local_service.as_str(),
            client.remote_service.as_str()
        ),
        ("user", "item")
    );
    let server = recorded
        .iter()
        .find(|span| span.kind == SpanKind::Server)
        .expect("server span");
    assert_eq!(server.remote_replica.as_deref(), Some("user-1"));

    let answer = get(&url, &[("host", "nothing.sandbox:15001")]).await;
    assert_eq!(answer.status, 404);
}
