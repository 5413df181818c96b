//! The `smoke:` list: checks that `sandbox test` and `sandbox run` execute against a running sandbox.

use std::collections::BTreeMap;

use super::super::node::{Node, Value};
use super::check::{join, Checker, Kind, Place};
use super::traffic;
use crate::smoke::{Check, Expect, Request, Target, TraceExpect};

const CHECK_KEYS: &[&str] = &[
    "name", "request", "service", "path", "method", "expect", "retry",
];
const REQUEST_KEYS: &[&str] = &["method", "path", "headers", "body"];
const EXPECT_KEYS: &[&str] = &[
    "status",
    "headers",
    "body_contains",
    "json",
    "max_duration",
    "trace",
];
const TRACE_KEYS: &[&str] = &["services", "max_spans", "no_errors"];
const RETRY_KEYS: &[&str] = &["until"];
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// A check and, when it targets a service, where that service is named (validated later).
pub struct CheckDraft {
    pub check: Check,
    pub service_place: Option<Place>,
}

/// Reads the list; names must be unique.
pub fn read(checker: &mut Checker<'_>, node: &Node) -> Vec<CheckDraft> {
    let Value::Sequence(items) = &node.value else {
        checker.error_with_hint(
            node,
            "smoke",
            "expected a list of checks",
            "write `smoke:` followed by `- name: ...` items",
        );
        return Vec::new();
    };
    let mut drafts: Vec<CheckDraft> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let field = format!("smoke[{index}]");
        if let Some(draft) = read_check(checker, item, &field) {
            if drafts
                .iter()
                .any(|other| other.check.name == draft.check.name)
            {
                checker.error_with_hint(
                    item,
                    &join(&field, "name"),
                    format!("a check named `{}` exists already", draft.check.name),
                    "give every check its own name",
                );
                continue;
            }
            drafts.push(draft);
        }
    }
    drafts
}

fn read_check(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<CheckDraft> {
    let fields = checker.fields(node, field, "a smoke check", CHECK_KEYS)?;
    let name = match fields.get("name") {
        Some(node) => checker.string(node, &join(field, "name"))?,
        None => {
            checker.error_with_hint(
                node,
                &join(field, "name"),
                "missing field `name` in a smoke check",
                "name each check; reports and `sandbox test NAME` use it",
            );
            return None;
        }
    };
    let (target, service_place) = match fields.get("service") {
        Some(service) => {
            let service_field = join(field, "service");
            let name = checker.string(service, &service_field)?;
            (
                Target::Service(name),
                Some(Place {
                    span: service.span,
                    field: service_field,
                }),
            )
        }
        None => (Target::Gateway, None),
    };
    let mut request = Request {
        method: "GET".to_string(),
        path: "/".to_string(),
        headers: BTreeMap::new(),
        body: None,
    };
    if let Some(node) = fields.get("request") {
        read_request(checker, node, &join(field, "request"), &mut request);
    }
    if let Some(node) = fields.get("path") {
        request.path = path(checker, node, &join(field, "path"))?;
    }
    if let Some(node) = fields.get("method") {
        request.method = method(checker, node, &join(field, "method"))?;
    }
    let expect = match fields.get("expect") {
        Some(node) => read_expect(checker, node, &join(field, "expect")),
        None => Expect::default(),
    };
    let retry_until = fields.get("retry").and_then(|node| {
        let retry_field = join(field, "retry");
        let retry = checker.fields(node, &retry_field, "`retry`", RETRY_KEYS)?;
        traffic::read_duration(checker, retry.get("until")?, &join(&retry_field, "until"))
    });
    Some(CheckDraft {
        check: Check {
            name,
            target,
            request,
            expect,
            retry_until,
        },
        service_place,
    })
}

fn read_request(checker: &mut Checker<'_>, node: &Node, field: &str, request: &mut Request) {
    let Some(fields) = checker.fields(node, field, "`request`", REQUEST_KEYS) else {
        return;
    };
    if let Some(node) = fields.get("method") {
        if let Some(method) = method(checker, node, &join(field, "method")) {
            request.method = method;
        }
    }
    if let Some(node) = fields.get("path") {
        if let Some(path) = path(checker, node, &join(field, "path")) {
            request.path = path;
        }
    }
    if let Some(node) = fields.get("headers") {
        request.headers = string_map(checker, node, &join(field, "headers"));
    }
    if let Some(node) = fields.get("body") {
        request.body = match &node.value {
            // A map or list body is sent as JSON.
            Value::Mapping(_) | Value::Sequence(_) => {
                Some(to_json(checker, node, &join(field, "body")).to_string())
            }
            Value::Scalar { .. } => checker.string(node, &join(field, "body")),
        };
    }
}

fn read_expect(checker: &mut Checker<'_>, node: &Node, field: &str) -> Expect {
    let mut expect = Expect::default();
    let Some(fields) = checker.fields(node, field, "`expect`", EXPECT_KEYS) else {
        return expect;
    };
    if let Some(node) = fields.get("status") {
        expect.status = checker
            .integer_in(node, &join(field, "status"), 100..=599)
            .map(|status| status as u16);
    }
    if let Some(node) = fields.get("headers") {
        expect.headers = string_map(checker, node, &join(field, "headers"));
    }
    if let Some(node) = fields.get("body_contains") {
        expect.body_contains = checker
            .strings(node, &join(field, "body_contains"), true)
            .unwrap_or_default();
    }
    if let Some(node) = fields.get("json") {
        let json_field = join(field, "json");
        if let Some(entries) = checker.entries(node, &json_field, "a map of `$.path: value`") {
            for entry in entries {
                let entry_field = join(&json_field, entry.key);
                if !entry.key.starts_with('$') {
                    checker.error_with_hint(
                        entry.key_node,
                        &entry_field,
                        format!("`{}` is not a JSON path", entry.key),
                        "start paths with `$`, e.g. `$.items[0].id`",
                    );
                    continue;
                }
                let value = to_json(checker, entry.value, &entry_field);
                expect.json.push((entry.key.to_string(), value));
            }
        }
    }
    if let Some(node) = fields.get("max_duration") {
        expect.max_duration = traffic::read_duration(checker, node, &join(field, "max_duration"));
    }
    if let Some(node) = fields.get("trace") {
        let trace_field = join(field, "trace");
        if let Some(trace) = checker.fields(node, &trace_field, "`trace`", TRACE_KEYS) {
            let mut expectation = TraceExpect::default();
            if let Some(node) = trace.get("services") {
                expectation.services = checker
                    .strings(node, &join(&trace_field, "services"), false)
                    .unwrap_or_default();
            }
            if let Some(node) = trace.get("max_spans") {
                expectation.max_spans = checker
                    .integer_in(node, &join(&trace_field, "max_spans"), 1..=100_000)
                    .map(|count| count as usize);
            }
            if let Some(node) = trace.get("no_errors") {
                expectation.no_errors = checker
                    .boolean(node, &join(&trace_field, "no_errors"))
                    .unwrap_or(false);
            }
            expect.trace = Some(expectation);
        }
    }
    expect
}

fn method(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<String> {
    let method = checker.string(node, field)?.to_ascii_uppercase();
    if METHODS.contains(&method.as_str()) {
        Some(method)
    } else {
        checker.error_with_hint(
            node,
            field,
            format!("unknown HTTP method `{method}`"),
            format!("use one of {}", METHODS.join(", ")),
        );
        None
    }
}

fn path(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<String> {
    let path = checker.string(node, field)?;
    if path.starts_with('/') {
        Some(path)
    } else {
        checker.error_with_hint(
            node,
            field,
            format!("path `{path}` does not start with `/`"),
            format!("write `/{path}`"),
        );
        None
    }
}

fn string_map(checker: &mut Checker<'_>, node: &Node, field: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    if let Some(entries) = checker.entries(node, field, "a map of names to values") {
        for entry in entries {
            if let Some(value) = checker.string(entry.value, &join(field, entry.key)) {
                map.insert(entry.key.to_string(), value);
            }
        }
    }
    map
}

/// A YAML value as JSON, scalars typed as YAML types them (`1` a number, `"1"` text).
fn to_json(checker: &mut Checker<'_>, node: &Node, field: &str) -> serde_json::Value {
    match &node.value {
        Value::Sequence(items) => serde_json::Value::Array(
            items
                .iter()
                .map(|item| to_json(checker, item, field))
                .collect(),
        ),
        Value::Mapping(pairs) => serde_json::Value::Object(
            pairs
                .iter()
                .map(|(key, value)| {
                    (
                        key.scalar_text().unwrap_or_default().to_string(),
                        to_json(checker, value, field),
                    )
                })
                .collect(),
        ),
        Value::Scalar { .. } => match checker.scalar(node, field, "a value") {
            None => serde_json::Value::Null,
            Some(scalar) => match scalar.kind {
                Kind::Null => serde_json::Value::Null,
                Kind::Bool(value) => serde_json::Value::Bool(value),
                Kind::Integer(value) => serde_json::Value::from(value),
                Kind::Float => scalar
                    .text
                    .parse::<f64>()
                    .map(serde_json::Value::from)
                    .unwrap_or(serde_json::Value::String(scalar.text)),
                Kind::Text => serde_json::Value::String(scalar.text),
            },
        },
    }
}
