//! The `smoke:` section: checks as written, and every way they can be wrong in one report.

use std::time::Duration;

use sandbox::manifest::load;
use sandbox::smoke::{Target, TraceExpect};

use crate::util::{fixtures, options};

#[test]
fn checks_resolve_with_defaults_and_typed_json() {
    let manifest = load(&options(&fixtures("smoke"), "checks.yaml"))
        .unwrap_or_else(|errors| panic!("{errors}"));
    let [through_gateway, direct] = &manifest.smoke[..] else {
        panic!("two checks: {:#?}", manifest.smoke)
    };
    assert_eq!(through_gateway.target, Target::Gateway);
    assert_eq!(through_gateway.request.method, "POST");
    assert_eq!(
        through_gateway.request.body.as_deref(),
        Some(r#"{"filter":"all"}"#)
    );
    assert_eq!(through_gateway.expect.status, Some(200));
    assert_eq!(through_gateway.expect.body_contains, ["item"]);
    assert_eq!(
        through_gateway.expect.json,
        [
            ("$.items[0].id".to_string(), serde_json::json!(1)),
            ("$.name".to_string(), serde_json::json!("one"))
        ]
    );
    assert_eq!(
        through_gateway.expect.max_duration,
        Some(Duration::from_millis(500))
    );
    assert_eq!(
        through_gateway.expect.trace,
        Some(TraceExpect {
            services: vec!["gateway".into(), "user".into(), "item".into()],
            max_spans: Some(20),
            no_errors: true
        })
    );
    assert_eq!(through_gateway.retry_until, Some(Duration::from_secs(30)));
    assert_eq!(direct.target, Target::Service("user".into()));
    assert_eq!(
        (direct.request.method.as_str(), direct.request.path.as_str()),
        ("GET", "/health")
    );
}

#[test]
fn every_mistake_in_the_checks_is_reported_at_once() {
    let errors = load(&options(&fixtures("smoke"), "bad_checks.yaml")).expect_err("invalid");
    insta::assert_snapshot!(errors.to_string());
}
