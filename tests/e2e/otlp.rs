//! OpenTelemetry in, under `sandbox up -d`: OTLP spans and logs sent to the ports `ps --json` lists
//! join the gateway's trace of a request through the demo chain; a container reaches the receiver
//! at its `OTEL_EXPORTER_OTLP_ENDPOINT`; a container line that names the trace is joined to it; and
//! `sandbox logs --trace`, `sandbox traces` and `sandbox trace` show all of it.

use std::io::{Read, Write};
use std::time::Duration;

use crate::util::{busybox_context, demo_chain, ps_json, wait_until, Project};

/// One HTTP/1.1 exchange with `base` (`http://127.0.0.1:PORT`); the whole answer, head and body.
fn http(base: &str, method: &str, path: &str, content_type: &str, body: &str) -> String {
    let authority = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(authority)
        .unwrap_or_else(|error| panic!("connect to {authority}: {error}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

fn header<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    answer.split("\r\n\r\n").next()?.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// An OTLP/JSON span of `service` in `trace_id` (32 hex), child of `parent` (16 hex).
fn otlp_span(service: &str, trace_id: &str, span_id: &str, parent: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{service}"}}}}]}},"scopeSpans":[{{"scope":{{"name":"e2e"}},"spans":[{{"traceId":"{trace_id}","spanId":"{span_id}","parentSpanId":"{parent}","name":"charge card","kind":3,"startTimeUnixNano":"{}","endTimeUnixNano":"{}"}}]}}]}}]}}"#,
        now - 2_000_000,
        now
    )
}

/// An OTLP/JSON log record of `service` in `trace_id`.
fn otlp_log(service: &str, trace_id: &str, body: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{service}"}}}}]}},"scopeLogs":[{{"logRecords":[{{"timeUnixNano":"{now}","severityNumber":13,"severityText":"WARN","body":{{"stringValue":"{body}"}},"traceId":"{trace_id}","spanId":"00000000000000c1"}}]}}]}}]}}"#
    )
}

#[test]
fn otlp_spans_logs_and_container_lines_join_the_gateways_trace_and_the_trace_commands_show_them() {
    let project = Project::new("otlp");
    let chain = demo_chain(&project);
    let shell_image = busybox_context(&project.path("bb"));
    project.manifest(&format!(
        r#"gateway:
  port: 0
  routes:
    - match: {{prefix: /users/}}
      service: user
{chain}  shell:
    image: {shell_image}
    build: ./bb
    command: ["sh", "-c", "echo shell ready; exec sleep 100000"]
"#
    ));
    project.run(&["up", "-d"]).success();
    let status = ps_json(&project);
    let gateway = status["gateway"].as_str().expect("ps lists the gateway");
    let zipkin = status["zipkin"]
        .as_str()
        .expect("ps lists the trace server");
    let otlp_http = status["otlp_http"]
        .as_str()
        .expect("ps lists the OTLP/HTTP receiver")
        .to_string();

    // A request through the gateway: gateway → user → item, recorded by the proxy and the demo.
    let answer = http(gateway, "GET", "/users/1", "text/plain", "");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let trace_id = header(&answer, "x-sandbox-trace-id")
        .expect("the gateway names the trace")
        .to_string();
    let long_id = format!("{trace_id:0>32}");

    // A service reporting by OTLP: a span under the gateway's root and a log record.
    let root = wait_until(
        "the gateway's trace is recorded",
        Duration::from_secs(10),
        || {
            let recorded = http(
                zipkin,
                "GET",
                &format!("/api/v2/trace/{trace_id}"),
                "text/plain",
                "",
            );
            let body = recorded.split("\r\n\r\n").nth(1)?;
            let spans: serde_json::Value = serde_json::from_str(body).ok()?;
            spans
                .as_array()?
                .iter()
                .find(|span| span.get("parentId").is_none())
                .and_then(|span| span["id"].as_str())
                .map(String::from)
        },
    );
    let posted = http(
        &otlp_http,
        "POST",
        "/v1/traces",
        "application/json",
        &otlp_span("payments", &long_id, "00000000000000c1", &root),
    );
    assert!(posted.starts_with("HTTP/1.1 200"), "{posted}");
    let posted = http(
        &otlp_http,
        "POST",
        "/v1/logs",
        "application/json",
        &otlp_log("payments", &long_id, "card declined by the bank"),
    );
    assert!(posted.starts_with("HTTP/1.1 200"), "{posted}");

    // A container line that names the trace joins it through the control plane's log follower.
    let shell = format!("{}-shell-1", project.name);
    let echoed = project
        .docker()
        .args([
            "exec",
            &shell,
            "sh",
            "-c",
            &format!("echo \"handled order trace_id={trace_id}\" > /proc/1/fd/1"),
        ])
        .status()
        .unwrap();
    assert!(echoed.success(), "docker exec in {shell}");

    // From inside a container, the receiver at $OTEL_EXPORTER_OTLP_ENDPOINT takes a span.
    let inside_trace = "5b8efff798038103d269b633813fc60c";
    let body = otlp_span(
        "shell",
        inside_trace,
        "00000000000000d1",
        "00000000000000d0",
    )
    .replace('"', "\\\"");
    let posted = project
        .docker()
        .args([
            "exec",
            &shell,
            "sh",
            "-c",
            &format!(
                "wget -q -O- --header 'Content-Type: application/json' --post-data \"{body}\" \"$OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces\""
            ),
        ])
        .output()
        .unwrap();
    assert!(
        posted.status.success(),
        "a container reaches OTEL_EXPORTER_OTLP_ENDPOINT: {}",
        String::from_utf8_lossy(&posted.stderr)
    );
    let found = wait_until(
        "the container's span is stored",
        Duration::from_secs(10),
        || {
            let answer = http(
                zipkin,
                "GET",
                &format!("/api/v2/trace/{inside_trace}"),
                "text/plain",
                "",
            );
            answer.starts_with("HTTP/1.1 200").then_some(answer)
        },
    );
    assert!(found.contains(r#""serviceName":"shell""#), "{found}");

    // `sandbox logs --trace`: the OTLP record and the container line, in time order.
    let logs = wait_until("both log lines are joined", Duration::from_secs(15), || {
        let run = project.run(&["logs", "--trace", &trace_id]);
        (run.code == 0 && run.stdout.contains("handled order")).then_some(run.stdout)
    });
    let otlp_at = logs
        .find("payments WARN | card declined by the bank")
        .unwrap_or_else(|| panic!("the OTLP log is shown: {logs}"));
    let container_at = logs
        .find(&format!("{shell} | handled order trace_id={trace_id}"))
        .unwrap_or_else(|| panic!("the container line is shown: {logs}"));
    assert!(otlp_at < container_at, "in time order: {logs}");

    // `sandbox traces`: one line for the request, naming its services.
    let traces = project.run(&["traces", "--service", "user"]);
    traces.success();
    let line = traces
        .stdout
        .lines()
        .find(|line| line.contains(&trace_id))
        .unwrap_or_else(|| panic!("the request's trace is listed: {}", traces.stdout));
    for service in ["gateway", "item", "payments", "user"] {
        assert!(line.contains(service), "{service} in {line}");
    }
    let errors = project.run(&["traces", "--errors"]);
    errors.success();
    assert!(
        !errors.stdout.contains(&trace_id),
        "no error on it: {}",
        errors.stdout
    );

    // `sandbox trace ID`: the waterfall, plain off a terminal, the lines under their spans.
    let waterfall = project.run(&["trace", &trace_id]);
    waterfall.success();
    let text = &waterfall.stdout;
    assert!(text.starts_with(&format!("trace {trace_id} (")), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "no colours off a terminal: {text}"
    );
    for expected in ["gateway ", "user ", "item ", "payments charge card", "│ "] {
        assert!(text.contains(expected), "`{expected}` in {text}");
    }
    let under_payments = text
        .lines()
        .skip_while(|line| !line.contains("payments charge card"))
        .nth(1)
        .unwrap_or_default();
    assert!(
        under_payments.contains("card declined by the bank"),
        "the OTLP log sits under its span: {text}"
    );
    let json = project.run(&["--json", "trace", &trace_id]);
    json.success();
    let document: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert!(
        document["spans"].as_array().unwrap().len() >= 4,
        "{document}"
    );
    assert_eq!(document["logs"].as_array().unwrap().len(), 2, "{document}");

    let unknown = project.run(&["trace", "00000000000000000000000000abcdef"]);
    unknown.expect_code(2);
    assert!(unknown.stderr.contains("no trace"), "{}", unknown.stderr);

    project.run(&["down"]).success();
}
