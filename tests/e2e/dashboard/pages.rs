//! The Traces, Graph and Logs pages, checked in the browser against the running demo chain.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::browser::{exchange, http, Browser};
use crate::util::wait_until;

/// The low 64 bits of a trace id as hex (the part every id form shares).
fn low_half(trace_id: &str) -> String {
    let id = trace_id.trim().to_ascii_lowercase();
    id[id.len().saturating_sub(16)..].to_string()
}

/// `GET path` through the gateway; the trace id it names (`x-sandbox-trace-id`).
fn traced_request(gateway_port: u16, path: &str) -> String {
    let (status, head, body) = exchange(gateway_port, "GET", path, &[], "");
    assert_eq!(status, 200, "GET {path} through the gateway: {body}");
    head.lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("x-sandbox-trace-id")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| panic!("the gateway names the trace: {head}"))
}

/// A log line for `span_id` of `trace_id`, as a service's OpenTelemetry SDK would send it.
fn send_log(port: u16, service: &str, trace_id: &str, span_id: &str, body: &str) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let logs = json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeLogs": [{"logRecords": [{
            "timeUnixNano": now.to_string(),
            "severityNumber": 9,
            "severityText": "INFO",
            "body": {"stringValue": body},
            "traceId": format!("{trace_id:0>32}"),
            "spanId": span_id
        }]}]
    }]});
    let (status, answer) = http(
        port,
        "POST",
        "/v1/logs",
        &[("Content-Type", "application/json")],
        &logs.to_string(),
    );
    assert_eq!(status, 200, "OTLP logs: {answer}");
}

/// Traces: a request through the gateway shows in the list within 1 s; its waterfall is
/// gateway → user → item; a span's details and log lines open under it. Returns the trace id.
pub fn traces_page(browser: &Browser, port: u16, gateway_port: u16) -> String {
    browser.visit(port, "traces");
    let sent = Instant::now();
    let trace_id = traced_request(gateway_port, "/user/users/42");
    let low = low_half(&trace_id);
    browser.wait_for(
        "the new trace is listed",
        Duration::from_secs(10),
        &format!("return !!document.querySelector('#traces tr[data-trace$=\"{low}\"]');"),
    );
    // From sending the request to seeing it, one WebDriver round trip included.
    let listed = sent.elapsed();
    eprintln!("a request through the gateway appeared in Traces after {listed:?}");
    assert!(
        listed <= Duration::from_secs(1),
        "the trace shows within 1 s (took {listed:?})"
    );

    // The item's server span, once the proxy's spans are in; an SDK log line for it.
    let item_span = wait_until(
        "item's server span is stored",
        Duration::from_secs(15),
        || {
            let (_, body) = http(port, "GET", &format!("/api/v2/trace/{trace_id}"), &[], "");
            let spans: Vec<Value> = serde_json::from_str(&body).ok()?;
            spans
                .iter()
                .find(|span| {
                    span["kind"] == "SERVER" && span["localEndpoint"]["serviceName"] == "item"
                })
                .and_then(|span| span["id"].as_str().map(str::to_string))
        },
    );
    let line = format!("item 42 looked up (dashboard test {low})");
    send_log(port, "item", &trace_id, &item_span, &line);

    browser.click(&format!("#traces tr[data-trace$=\"{low}\"] a.trace-link"));
    let (rows, shown) = browser.wait_for(
        "the waterfall shows the trace",
        Duration::from_secs(10),
        "return Array.from(document.querySelectorAll('#span-list .span-row')).map(r => [r.dataset.service, Number(r.dataset.depth), r.dataset.kind]);",
    );
    eprintln!("the waterfall showed after {shown:?}");
    let rows: Vec<(String, u64)> = rows
        .as_array()
        .into_iter()
        .flatten()
        .map(|row| {
            (
                row[0].as_str().unwrap_or_default().to_string(),
                row[1].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    let first = |service: &str| {
        rows.iter()
            .position(|(name, _)| name == service)
            .unwrap_or_else(|| panic!("no {service} span in the waterfall: {rows:?}"))
    };
    let (gateway, user, item) = (first("gateway"), first("user"), first("item"));
    assert!(
        gateway < user
            && user < item
            && rows[gateway].1 < rows[user].1
            && rows[user].1 < rows[item].1,
        "the waterfall nests gateway → user → item: {rows:?}"
    );

    // Clicking item's server span shows its details and its log line under it.
    browser.click(&format!(
        ".span-row[data-span=\"{item_span}\"][data-service=item] .span-track"
    ));
    let (logs, _) = browser.wait_for(
        "the span's log lines show",
        Duration::from_secs(5),
        "const box = document.getElementById('span-logs'); return box && !document.getElementById('span-detail').hidden ? box.textContent : null;",
    );
    assert!(
        logs.as_str().is_some_and(|text| text.contains(&line)),
        "the span's log line shows under it: {logs}"
    );
    let detail = browser.script(
        "const d = document.getElementById('span-detail'); return [d.previousElementSibling.dataset.span, d.querySelector('[data-endpoint=local]').textContent, d.textContent];",
    );
    assert_eq!(
        detail[0].as_str(),
        Some(item_span.as_str()),
        "the detail sits under its row"
    );
    assert!(
        detail[1]
            .as_str()
            .is_some_and(|text| text.starts_with("item")),
        "the local endpoint is named: {detail}"
    );
    assert!(
        detail[2]
            .as_str()
            .is_some_and(|text| !text.contains("[object") && !text.contains("null")),
        "the detail holds no stray text: {detail}"
    );
    let (output, _) = browser.wait_for(
        "item's own output shows under its span",
        Duration::from_secs(5),
        "const box = document.getElementById('span-output'); return box && box.querySelector('.log-line, .muted:not(:empty)') && !box.textContent.includes('loading') ? box.textContent : null;",
    );
    assert!(
        output
            .as_str()
            .is_some_and(|text| text.contains("GET /items/42 200")),
        "item's output line for the request shows under its span: {output}"
    );
    browser.screenshot("traces-span-detail");

    // Collapsing gateway's span hides everything under it; expanding shows it again.
    let total = rows.len();
    browser.click(&format!(
        "#span-list .span-row[data-index=\"{gateway}\"] button[data-toggle]"
    ));
    let visible = "return Array.from(document.querySelectorAll('#span-list .span-row')).filter(r => !r.hidden).length;";
    let (after, _) = browser.wait_for("the subtree collapses", Duration::from_secs(2), visible);
    assert!(
        after.as_u64().is_some_and(|count| (count as usize) < total),
        "collapsing hides the subtree ({after} of {total} shown)"
    );
    browser.click("#expand-all");
    assert_eq!(browser.script(visible).as_u64(), Some(total as u64));
    browser.assert_console_clean("on the Traces page");
    browser.screenshot("traces");

    // Each service links to its resource.
    browser.click(&format!(
        ".span-row[data-span=\"{item_span}\"][data-service=item] a.service-link"
    ));
    browser.wait_for(
        "the Resources page marks item",
        Duration::from_secs(5),
        "return !document.getElementById('page-resources').hidden && !!document.querySelector('#resources tr.highlight[data-service=item]') && !document.querySelector('#resources tr.highlight:not([data-service=item])');",
    );
    trace_id
}

/// A 1 000-span trace (ten children per span) opens, and collapses, in the browser.
pub fn big_trace(browser: &Browser, port: u16) {
    let trace_id = "00000000000000000000000000dab1e5";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_micros() as u64;
    let spans: Vec<Value> = (1..=1000u64)
        .map(|id| {
            let mut span = json!({
                "traceId": trace_id,
                "id": format!("{id:016x}"),
                "name": format!("step {id}"),
                "timestamp": now + id * 10,
                "duration": 20_000 - id * 10,
                "localEndpoint": {"serviceName": format!("big{}", id % 7)},
                "tags": {"step": id.to_string()}
            });
            if id > 1 {
                span["parentId"] = json!(format!("{:016x}", (id - 2) / 10 + 1));
            }
            if id % 97 == 0 {
                span["tags"]["error"] = json!("failed");
            }
            span
        })
        .collect();
    let (status, body) = http(
        port,
        "POST",
        "/api/v2/spans",
        &[("Content-Type", "application/json")],
        &Value::Array(spans).to_string(),
    );
    assert_eq!(status, 202, "posting the big trace: {body}");
    browser.visit(port, "traces");
    let started = Instant::now();
    browser.script(&format!(
        "location.hash = '#traces?trace={trace_id}'; return null;"
    ));
    let (count, _) = browser.wait_for(
        "the 1000-span waterfall shows",
        Duration::from_secs(20),
        "const rows = document.querySelectorAll('#span-list .span-row'); return rows.length >= 1000 ? rows.length : null;",
    );
    let rendered = started.elapsed();
    let built = browser.script("return document.getElementById('waterfall').dataset.renderMs;");
    // Two animation frames after jumping to the end: the scroll's layout and paint are done.
    let scrolled = browser.script_async(
        "const list = document.getElementById('span-list'); const start = performance.now(); list.scrollTop = list.scrollHeight; requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - start)));",
    );
    eprintln!(
        "a {count}-span trace: built in {} ms in the page (fetches included), shown after {rendered:?} from the test; a jump to its end painted in {:.1} ms",
        built.as_str().unwrap_or("?"),
        scrolled.as_f64().unwrap_or(f64::NAN)
    );
    let errors =
        browser.script("return document.querySelectorAll('#span-list .span-row.error').length;");
    assert_eq!(errors.as_u64(), Some(10), "every span in error is marked");
    browser.click("#collapse-all");
    let visible = browser.script(
        "return Array.from(document.querySelectorAll('#span-list .span-row')).filter(r => !r.hidden).length;",
    );
    assert_eq!(
        visible.as_u64(),
        Some(11),
        "collapsed to the root and its children"
    );
    browser.click("#expand-all");
    browser.screenshot("traces-1000-spans");
    browser.assert_console_clean("with a 1000-span trace");
}

/// Graph: the two edges with the counts the trace server's dependency links give, and an edge's
/// traces.
pub fn graph_page(browser: &Browser, port: u16, trace_id: &str) {
    browser.visit(port, "graph");
    let (edges, _) = browser.wait_for(
        "the graph shows gateway → user and user → item",
        Duration::from_secs(10),
        "const edges = Array.from(document.querySelectorAll('#graph g[data-edge]')).map(g => [g.dataset.edge, Number(g.dataset.calls), g.querySelector('text').textContent]); return edges.some(e => e[0] === 'gateway->user') && edges.some(e => e[0] === 'user->item') ? edges : null;",
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis();
    let (_, links) = http(
        port,
        "GET",
        &format!(
            "/api/v2/dependencies?endTs={}&lookback=3600000",
            now + 60_000
        ),
        &[],
        "",
    );
    let links: Vec<Value> = serde_json::from_str(&links).expect("dependencies");
    for (parent, child) in [("gateway", "user"), ("user", "item")] {
        let expected = links
            .iter()
            .find(|link| link["parent"] == parent && link["child"] == child)
            .and_then(|link| link["callCount"].as_u64())
            .unwrap_or_else(|| panic!("no {parent} → {child} link: {links:?}"));
        let shown = edges
            .as_array()
            .into_iter()
            .flatten()
            .find(|edge| edge[0] == format!("{parent}->{child}").as_str())
            .unwrap_or_else(|| panic!("no edge {parent} → {child}: {edges}"));
        eprintln!("graph edge {parent} → {child}: {}", shown[2]);
        assert!(expected >= 1);
        assert_eq!(
            shown[1].as_u64(),
            Some(expected),
            "the page counts {parent} → {child} as the dependency links do"
        );
        assert!(
            shown[2].as_str().is_some_and(
                |label| label.starts_with(&format!("{expected} call")) && label.contains("p95")
            ),
            "the edge is labelled with its count and p95: {shown}"
        );
    }
    browser.click("#graph g[data-edge=\"user->item\"] text");
    let low = low_half(trace_id);
    browser.wait_for(
        "the edge lists its traces",
        Duration::from_secs(5),
        &format!("return !!document.querySelector('#edge-traces a[data-trace$=\"{low}\"]');"),
    );
    browser.screenshot("graph");
    browser.assert_console_clean("on the Graph page");
}

/// Logs: live over server-sent events, coloured per service, filtered, trace ids as links.
pub fn logs_page(browser: &Browser, port: u16, gateway_port: u16) {
    browser.visit(port, "logs");
    browser.wait_for(
        "the log stream is live",
        Duration::from_secs(10),
        "return document.getElementById('log-status').textContent === 'live' && document.querySelectorAll('#logs .log-line').length > 0;",
    );
    let sent = Instant::now();
    let trace_id = traced_request(gateway_port, "/user/users/77");
    browser.wait_for(
        "item's log line for the new request shows without a reload",
        Duration::from_secs(10),
        "return Array.from(document.querySelectorAll('#logs .log-line[data-service=item]')).some(l => l.textContent.includes('GET /items/77'));",
    );
    let arrived = sent.elapsed();
    eprintln!("a container's log line reached the Logs page {arrived:?} after the request");
    let colours = browser.script(
        "const colour = s => { const l = document.querySelector('#logs .log-line[data-service=' + s + '] .log-service'); return l && getComputedStyle(l).color; }; return [colour('user'), colour('item')];",
    );
    assert!(
        colours[0].is_string() && colours[0] != colours[1],
        "each service has its colour: {colours}"
    );
    let low = low_half(&trace_id);
    send_log(
        port,
        "item",
        &trace_id,
        "0000000000000001",
        &format!("stock checked for trace {trace_id}"),
    );
    browser.wait_for(
        "the SDK line shows with its trace id as a link",
        Duration::from_secs(5),
        &format!(
            "return !!document.querySelector('#logs .log-line a.trace-link[href$=\"{low}\"]');"
        ),
    );
    browser.screenshot("logs");

    // Filters: service, then severity (container lines carry none), then text.
    browser.script("const s = document.getElementById('log-service'); s.value = 'item'; s.dispatchEvent(new Event('input', {bubbles: true})); return null;");
    browser.wait_for(
        "only item's lines show",
        Duration::from_secs(5),
        "const lines = Array.from(document.querySelectorAll('#logs .log-line')); return lines.length > 0 && lines.every(l => l.dataset.service === 'item');",
    );
    browser.script("const s = document.getElementById('log-severity'); s.value = 'info'; s.dispatchEvent(new Event('input', {bubbles: true})); return null;");
    let (lines, _) = browser.wait_for(
        "only item's lines of INFO and above show",
        Duration::from_secs(5),
        "const lines = Array.from(document.querySelectorAll('#logs .log-line')); return lines.length > 0 && lines.every(l => l.dataset.service === 'item' && l.textContent.includes('INFO')) ? lines.length : null;",
    );
    eprintln!("{lines} of item's lines are INFO or above");
    browser.script("const s = document.getElementById('log-text'); s.value = 'stock checked'; s.dispatchEvent(new Event('input', {bubbles: true})); return null;");
    browser.wait_for(
        "only the line with the text shows",
        Duration::from_secs(5),
        "const lines = Array.from(document.querySelectorAll('#logs .log-line')); return lines.length === 1 && lines[0].textContent.includes('stock checked');",
    );
    browser.screenshot("logs-filtered");
    browser.click(&format!("#logs a.trace-link[href$=\"{low}\"]"));
    browser.wait_for(
        "the link opens the trace",
        Duration::from_secs(10),
        "return location.hash.startsWith('#traces?trace=') && document.querySelectorAll('#span-list .span-row').length > 0;",
    );
    browser.assert_console_clean("on the Logs page");
}
