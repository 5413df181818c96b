//! `gateway:` and the per-service traffic keys: what a valid manifest resolves to.

use std::time::Duration;

use sandbox::manifest::{
    GrpcStatus, GrpcWeb, HeaderMatch, LoadBalancer, PathMatch, RetryOn, RouteTarget, TrafficPolicy,
    WeightedService,
};

use crate::util::load_valid;

#[test]
fn gateway_defaults_when_left_out() {
    let manifest = load_valid("minimal.yaml");
    assert_eq!(manifest.gateway.port, 8080);
    assert_eq!(manifest.gateway.host, "127.0.0.1");
    assert!(manifest.gateway.routes.is_empty());
    assert!(manifest.gateway.allow_fault_headers);
    assert_eq!(manifest.gateway.max_request_body, 64 * 1024 * 1024);
    assert!(!manifest.gateway.tls);
    assert_eq!(manifest.gateway.scheme(), "http");
    assert_eq!(manifest.gateway.workers, 0, "one worker per core");
    for service in manifest.services.values() {
        assert_eq!(service.traffic, TrafficPolicy::default());
        assert_eq!(service.external, None);
    }
}

#[test]
fn gateway_routes_in_every_form() {
    let manifest = load_valid("gateway.yaml");
    let gateway = &manifest.gateway;
    assert_eq!(gateway.port, 0);
    assert!(!gateway.allow_fault_headers);
    assert!(gateway.tls);
    assert_eq!(gateway.scheme(), "https");
    assert!(!gateway.is_default());
    assert!(!gateway.address_is_default(), "port 0 is chosen");
    assert_eq!(gateway.routes.len(), 5);
    let first = &gateway.routes[0];
    assert_eq!(first.matcher.path, PathMatch::Prefix("/api/items".into()));
    assert_eq!(first.matcher.method.as_deref(), Some("GET"));
    assert_eq!(first.matcher.headers["x-debug"], HeaderMatch::Present);
    assert_eq!(
        first.matcher.headers["x-version"],
        HeaderMatch::Regex("v[0-9]+".into())
    );
    assert_eq!(first.matcher.query["page"], "1");
    assert_eq!(first.matcher.host.as_deref(), Some("shop.local"));
    assert_eq!(first.target, RouteTarget::Service("item".into()));
    assert_eq!(first.rewrite.as_deref(), Some("/items"));
    assert_eq!(first.request_headers.add["x-from"], "gateway");
    assert_eq!(first.request_headers.remove, vec!["cookie".to_string()]);
    assert_eq!(first.timeout, Some(Duration::from_secs(5)));
    assert_eq!(gateway.max_request_body, 100 * 1024 * 1024);
    assert_eq!(gateway.workers, 2);
    assert_eq!(first.max_request_body, Some(1024 * 1024 * 1024));
    assert_eq!(gateway.routes[1].max_request_body, None);
    let retries = first.retries.as_ref().expect("retries");
    assert_eq!(retries.attempts, 3);
    assert_eq!(
        retries.on,
        vec![RetryOn::ServerError, RetryOn::RetriableStatus]
    );
    assert_eq!(retries.retriable_status, vec![409]);
    assert_eq!(retries.per_try_timeout, Some(Duration::from_secs(1)));
    assert_eq!(retries.backoff.base, Duration::from_millis(10));
    assert_eq!(
        gateway.routes[1].target,
        RouteTarget::Split(vec![
            WeightedService {
                service: "item".into(),
                weight: 90
            },
            WeightedService {
                service: "item-v2".into(),
                weight: 10
            },
        ])
    );
    assert_eq!(gateway.routes[2].matcher.path, PathMatch::Exact("/".into()));
}

#[test]
fn grpc_routes_retry_on_grpc_statuses_and_translate_grpc_web() {
    let manifest = load_valid("gateway.yaml");
    let (items, orders) = (&manifest.gateway.routes[3], &manifest.gateway.routes[4]);
    assert_eq!(items.grpc_web, Some(GrpcWeb::default()));
    let abort = items
        .faults
        .as_ref()
        .and_then(|faults| faults.abort.as_ref())
        .expect("abort");
    assert_eq!(
        (abort.status, abort.grpc_status, abort.percent),
        (503, Some(GrpcStatus::UNAVAILABLE), 10.0)
    );
    assert_eq!(
        items.retries.as_ref().expect("retries").on,
        vec![
            RetryOn::Unavailable,
            RetryOn::ResourceExhausted,
            RetryOn::Cancelled,
            RetryOn::DeadlineExceeded
        ]
    );
    assert_eq!(
        orders.grpc_web.as_ref().expect("grpc_web").allow_origins,
        vec!["http://localhost:3000".to_string(), "*".to_string()]
    );
    let retries = orders.retries.as_ref().expect("retries");
    assert_eq!(retries.retriable_status, vec![503]);
    assert_eq!(
        retries.retriable_grpc_status,
        vec![GrpcStatus::UNAVAILABLE, GrpcStatus::RESOURCE_EXHAUSTED]
    );
    assert_eq!(
        retries.on,
        vec![RetryOn::GatewayError, RetryOn::RetriableStatus]
    );
    assert_eq!(manifest.gateway.routes[0].grpc_web, None);
}

#[test]
fn service_traffic_policy_and_external() {
    let manifest = load_valid("gateway.yaml");
    let web = &manifest.services["web"];
    assert_eq!(web.external.as_deref(), Some("http://127.0.0.1:3000"));
    assert_eq!(web.image, "");
    let item = &manifest.services["item"].traffic;
    assert_eq!(item.load_balancer, LoadBalancer::LeastRequest);
    assert!(item.http2);
    let delay = item.faults.delay.as_ref().expect("delay");
    assert_eq!(
        (delay.fixed, delay.percent),
        (Duration::from_millis(200), 10.0)
    );
    let abort = item.faults.abort.as_ref().expect("abort");
    assert_eq!((abort.status, abort.percent), (503, 5.0));
    assert_eq!(item.circuit_breaker.max_pending, 2);
    assert_eq!(item.outlier_detection.consecutive_errors, 3);
    assert_eq!(item.outlier_detection.base_ejection, Duration::from_secs(1));
}

#[test]
fn gateway_round_trips_through_json() {
    let manifest = load_valid("gateway.yaml");
    let json = sandbox::manifest::to_json(&manifest);
    assert!(json.contains("\"match\""), "{json}");
    assert!(json.contains("\"least_request\""), "{json}");
    // `sandbox config` shows the body limits (the gateway's only when not the default).
    assert!(json.contains("\"max_request_body\": 104857600"), "{json}");
    assert!(json.contains("\"max_request_body\": 1073741824"), "{json}");
    assert!(json.contains("\"tls\": true"), "{json}");
    let minimal = sandbox::manifest::to_json(&load_valid("minimal.yaml"));
    assert!(
        !minimal.contains("\"tls\""),
        "shown only when on: {minimal}"
    );
    // and the workers when set (0, one per core, is left out).
    assert!(json.contains("\"workers\": 2"), "{json}");
    let defaults = sandbox::manifest::to_json(&load_valid("minimal.yaml"));
    assert!(!defaults.contains("\"workers\""), "{defaults}");
}
