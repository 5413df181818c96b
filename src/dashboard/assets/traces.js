"use strict";

// Traces: the list (refreshed while the page is shown), and one trace's waterfall, built once;
// collapsing a span hides its rows without rebuilding anything.

const TRACE_LIST_REFRESH_MS = 500;

function serviceOf(span) {
  return (span.localEndpoint && span.localEndpoint.serviceName) || "?";
}

function isError(span) {
  return !!(span.tags && span.tags.error !== undefined);
}

async function loadTraces() {
  const params = new URLSearchParams({ limit: "30", lookback: "3600000", endTs: String(Date.now() + 60000) });
  const service = document.getElementById("trace-service").value;
  if (service) params.set("serviceName", service);
  let traces;
  try { traces = await getJson("/api/v2/traces?" + params); } catch (error) { return; }
  if (state.page !== "traces") return;
  const key = JSON.stringify(traces.map((spans) => [spans[0] && spans[0].traceId, spans.length]));
  if (key === state.traceListKey) return;
  state.traceListKey = key;
  const rows = traces.map((spans) => {
    const root = spans.find((span) => !span.parentId) || spans[0];
    const start = Math.min(...spans.map((span) => span.timestamp || Infinity));
    const end = Math.max(...spans.map((span) => (span.timestamp || 0) + (span.duration || 0)));
    const errors = spans.filter(isError).length;
    const services = [...new Set(spans.map(serviceOf))];
    return el("tr", { className: errors ? "trace-error" : "", "data-trace": root.traceId },
      el("td", {}, new Date(start / 1000).toLocaleTimeString()),
      el("td", {}, serviceOf(root) + ": " + (root.name || "")),
      el("td", {}, services.join(", ")),
      el("td", {}, spans.length, errors ? el("span", { className: "error-mark", title: errors + " spans in error" }, " ✖ " + errors) : null),
      el("td", {}, micros(end - start)),
      el("td", {}, el("a", { className: "trace-link", href: traceHref(root.traceId) }, root.traceId)));
  });
  document.querySelector("#traces tbody").replaceChildren(...rows);
  document.getElementById("traces-empty").hidden = rows.length > 0;
}

// The parent of each span (an index, -1 at the top), as Zipkin's UI nests them: the server half of
// a shared id sits under its client half; a child of a shared id goes under the half of its own
// service, else the server half.
function parentIndexes(spans) {
  const byId = new Map();
  spans.forEach((span, index) => {
    if (!byId.has(span.id)) byId.set(span.id, []);
    byId.get(span.id).push(index);
  });
  return spans.map((span, index) => {
    if (span.shared) {
      const client = (byId.get(span.id) || []).find((other) => other !== index && !spans[other].shared);
      if (client !== undefined) return client;
    }
    const candidates = (byId.get(span.parentId) || []).filter((other) => other !== index);
    if (!span.parentId || !candidates.length) return -1;
    const service = serviceOf(span);
    const own = candidates.filter((other) => serviceOf(spans[other]) === service);
    const pick = own.find((other) => spans[other].shared) ?? own[0] ?? candidates.find((other) => spans[other].shared) ?? candidates[0];
    return pick;
  });
}

// The rows of a trace in depth-first order: [{span, depth, end}] where `end` is the index after
// the span's last descendant (so a subtree is rows[i + 1 .. end]). Spans caught in a parent cycle
// come last, at the top level.
function treeRows(spans) {
  const parents = parentIndexes(spans);
  const children = spans.map(() => []);
  const tops = [];
  parents.forEach((parent, index) => (parent < 0 ? tops : children[parent]).push(index));
  const byStart = (a, b) => (spans[a].timestamp || 0) - (spans[b].timestamp || 0);
  tops.sort(byStart);
  for (const list of children) list.sort(byStart);
  const rows = [];
  const seen = new Array(spans.length).fill(false);
  const visit = (top) => {
    // An explicit stack: a 1000-span chain must not overflow the call stack.
    const stack = [{ index: top, depth: 0 }];
    while (stack.length) {
      const item = stack.pop();
      if (item.close !== undefined) { rows[item.close].end = rows.length; continue; }
      if (seen[item.index]) continue;
      seen[item.index] = true;
      const at = rows.length;
      rows.push({ span: spans[item.index], depth: item.depth, end: at + 1 });
      stack.push({ close: at });
      const kids = children[item.index];
      for (let k = kids.length - 1; k >= 0; k--) stack.push({ index: kids[k], depth: item.depth + 1 });
    }
  };
  for (const top of tops) visit(top);
  spans.forEach((_, index) => { if (!seen[index]) visit(index); });
  return rows;
}

// Which row each log line belongs to: the span it names (preferring its own service's half of a
// shared id), else the innermost span of its service open at its time; -1 when none fits.
function placeLogs(rows, records) {
  const byId = new Map();
  const byService = new Map();
  rows.forEach((row, index) => {
    if (!byId.has(row.span.id)) byId.set(row.span.id, []);
    byId.get(row.span.id).push(index);
    const service = serviceOf(row.span);
    if (!byService.has(service)) byService.set(service, []);
    byService.get(service).push(index);
  });
  const placed = new Map();
  for (const record of records) {
    const service = record.serviceName;
    let found = -1;
    for (const index of byId.get(record.spanId) || []) {
      if (found < 0 || serviceOf(rows[index].span) === service) found = index;
    }
    if (found < 0) {
      const time = record.timestamp;
      let depth = -1;
      for (const index of byService.get(service) || []) {
        const span = rows[index].span;
        if (span.timestamp && span.timestamp <= time && time <= span.timestamp + (span.duration || 0) && rows[index].depth > depth) { found = index; depth = rows[index].depth; }
      }
    }
    if (!placed.has(found)) placed.set(found, []);
    placed.get(found).push(record);
  }
  return placed;
}

async function showTrace(traceId) {
  const box = document.getElementById("waterfall");
  const started = performance.now();
  // The detail panel moves under the selected row; it goes home before the rows are replaced.
  const detail = document.getElementById("span-detail");
  detail.hidden = true;
  document.getElementById("page-traces").append(detail);
  let spans;
  try {
    spans = await getJson("/api/v2/trace/" + encodeURIComponent(traceId));
  } catch (error) {
    box.replaceChildren(el("p", { className: "muted" }, "trace " + traceId + " is not held (evicted, or not arrived yet)"));
    box.hidden = false;
    return;
  }
  let records = [];
  try { records = await getJson("/api/v2/logs?limit=10000&traceId=" + encodeURIComponent(traceId)); } catch (error) { records = []; }
  const rows = treeRows(spans);
  const placed = placeLogs(rows, records);
  const start = Math.min(...spans.map((span) => span.timestamp || Infinity));
  const end = Math.max(...spans.map((span) => (span.timestamp || 0) + (span.duration || 0)));
  const total = Math.max(1, end - start);
  const fragment = document.createDocumentFragment();
  const elements = rows.map((row, index) => {
    const span = row.span;
    const error = isError(span);
    const service = serviceOf(span);
    const bar = el("div", { className: error ? "span-bar error" : "span-bar" });
    bar.style.left = (((span.timestamp || start) - start) / total * 100) + "%";
    bar.style.width = ((span.duration || 0) / total * 100) + "%";
    bar.style.background = error ? "" : serviceColour(service);
    const hasChildren = row.end > index + 1;
    const logs = placed.get(index) || [];
    const label = el("span", { className: "span-label" },
      hasChildren ? el("button", { className: "toggle", "data-toggle": index, title: "collapse or expand", "aria-expanded": "true" }, "▾") : el("span", { className: "toggle-space" }),
      el("a", { className: "service-link", href: "#resources?service=" + encodeURIComponent(service), title: "the resource " + service }, service), " ",
      error ? el("span", { className: "error-mark", title: "error: " + span.tags.error }, "✖ ") : null,
      (span.kind ? span.kind.toLowerCase() + " " : "") + (span.name || ""),
      logs.length ? el("span", { className: "log-count", title: logs.length + " log lines" }, " ≡" + logs.length) : null);
    label.style.paddingLeft = (row.depth * 14) + "px";
    const element = el("div", {
      className: error ? "span-row error" : "span-row", "data-span": span.id, "data-index": index,
      "data-service": service, "data-depth": row.depth, "data-kind": span.kind || "",
    }, label, el("div", { className: "span-track" }, bar), el("span", { className: "span-duration" }, micros(span.duration)));
    fragment.append(element);
    return element;
  });
  const others = placed.get(-1) || [];
  const header = el("div", { className: "waterfall-head" },
    el("h3", {}, "Trace " + traceId),
    el("span", { className: "muted" }, spans.length + " spans · " + micros(end - start) + " · " + records.length + " log lines"),
    el("button", { id: "expand-all" }, "Expand all"), el("button", { id: "collapse-all" }, "Collapse all"));
  const list = el("div", { className: "span-list", id: "span-list" });
  list.append(fragment);
  const tail = others.length ? [el("h4", {}, "Log lines of this trace outside its spans"), el("div", { className: "logs" }, others.map(logLine))] : [];
  box.replaceChildren(header, list, ...tail);
  box.hidden = false;
  // How long building the waterfall took, fetches included (the browser test reports it).
  box.dataset.renderMs = (performance.now() - started).toFixed(1);
  const trace = { rows, elements, placed, collapsed: new Set(), selected: -1 };
  state.trace = trace;
  list.addEventListener("click", (event) => {
    if (event.target.closest("a")) return;
    const toggle = event.target.closest("button[data-toggle]");
    const row = event.target.closest(".span-row");
    if (toggle) {
      const index = Number(toggle.dataset.toggle);
      if (trace.collapsed.has(index)) trace.collapsed.delete(index); else trace.collapsed.add(index);
      applyCollapse(trace);
    } else if (row) {
      selectSpan(trace, Number(row.dataset.index));
    }
  });
  document.getElementById("expand-all").addEventListener("click", () => { trace.collapsed.clear(); applyCollapse(trace); });
  document.getElementById("collapse-all").addEventListener("click", () => {
    rows.forEach((row, index) => { if (row.end > index + 1 && row.depth > 0) trace.collapsed.add(index); });
    applyCollapse(trace);
  });
}

// One pass: a row is shown unless an ancestor is collapsed; only rows whose state changes are
// touched.
function applyCollapse(trace) {
  let hiddenUntil = -1;
  trace.rows.forEach((row, index) => {
    const hidden = index < hiddenUntil;
    const element = trace.elements[index];
    if (element.hidden !== hidden) element.hidden = hidden;
    const collapsed = trace.collapsed.has(index);
    if (!hidden && collapsed) hiddenUntil = row.end;
    const toggle = element.querySelector("button[data-toggle]");
    if (toggle && toggle.textContent !== (collapsed ? "▸" : "▾")) {
      toggle.textContent = collapsed ? "▸" : "▾";
      toggle.setAttribute("aria-expanded", String(!collapsed));
    }
  });
  const detail = document.getElementById("span-detail");
  if (trace.selected >= 0 && trace.elements[trace.selected].hidden) detail.hidden = true;
}

function endpointText(point) {
  if (!point) return "—";
  const address = point.ipv4 || (point.ipv6 ? "[" + point.ipv6 + "]" : "");
  return [point.serviceName, address && point.port ? address + ":" + point.port : address || (point.port ? ":" + point.port : "")].filter(Boolean).join(" ") || "—";
}

// The detail of one span, right under its row: endpoints, tags, annotations and its log lines.
function selectSpan(trace, index) {
  const span = trace.rows[index].span;
  const row = trace.elements[index];
  const detail = document.getElementById("span-detail");
  if (trace.selected === index && !detail.hidden) { detail.hidden = true; row.classList.remove("selected"); trace.selected = -1; return; }
  if (trace.selected >= 0) trace.elements[trace.selected].classList.remove("selected");
  trace.selected = index;
  row.classList.add("selected");
  const service = serviceOf(span);
  const tags = Object.entries(span.tags || {}).sort(([a], [b]) => a.localeCompare(b)).map(([key, value]) =>
    el("tr", { className: key === "error" ? "tag-error" : "" }, el("th", {}, key), el("td", {}, value)));
  const annotations = (span.annotations || []).map((annotation) =>
    el("tr", {}, el("th", {}, "+" + micros(Math.max(0, annotation.timestamp - (span.timestamp || annotation.timestamp)))), el("td", {}, annotation.value)));
  const logs = trace.placed.get(index) || [];
  fill(detail,
    el("div", { className: "detail-head" },
      el("strong", {}, service + " " + (span.name || "")), " ",
      isError(span) ? el("span", { className: "error-mark" }, "✖ error: " + span.tags.error + " ") : null,
      el("a", { href: "#resources?service=" + encodeURIComponent(service) }, "resource " + service), " · ",
      el("a", { href: "#logs?service=" + encodeURIComponent(service) }, "logs of " + service)),
    el("table", { className: "detail-table" }, el("tbody", {},
      el("tr", {}, el("th", {}, "kind"), el("td", {}, span.kind || "local")),
      el("tr", {}, el("th", {}, "duration"), el("td", {}, micros(span.duration) + (span.timestamp ? "  (starts +" + micros(span.timestamp - trace.rows[0].span.timestamp) + ")" : ""))),
      el("tr", {}, el("th", {}, "span id"), el("td", {}, span.id + (span.parentId ? "  parent " + span.parentId : ""))),
      el("tr", {}, el("th", {}, "local endpoint"), el("td", { "data-endpoint": "local" }, endpointText(span.localEndpoint))),
      el("tr", {}, el("th", {}, "remote endpoint"), el("td", { "data-endpoint": "remote" }, endpointText(span.remoteEndpoint))))),
    tags.length ? [el("h4", {}, "Tags"), el("table", { className: "detail-table", id: "span-tags" }, el("tbody", {}, tags))] : null,
    annotations.length ? [el("h4", {}, "Annotations"), el("table", { className: "detail-table" }, el("tbody", {}, annotations))] : null,
    el("h4", {}, "Log lines (" + logs.length + ")"),
    el("div", { className: "logs", id: "span-logs" }, logs.length ? logs.map(logLine) : el("span", { className: "muted" }, "no log lines for this span")),
    el("h4", {}, "Output of " + service + " while it ran ", el("span", { className: "muted" }, "(lines naming no trace, up to " + OUTPUT_SLACK_MS + " ms after its end)")),
    el("div", { className: "logs", id: "span-output" }, el("span", { className: "muted" }, "loading…")));
  row.after(detail);
  detail.hidden = false;
  detail.scrollIntoView({ block: "nearest" });
  showOutput(span, service);
}

// Lines after a span's end still count for this long: the engine stamps a line when it reads it.
const OUTPUT_SLACK_MS = 250;

// The service's lines that name no trace, written while `span` ran: what an uninstrumented
// service printed for the request.
async function showOutput(span, service) {
  const box = document.getElementById("span-output");
  if (!span.timestamp) { fill(box, el("span", { className: "muted" }, "the span has no start time")); return; }
  const params = new URLSearchParams({
    serviceName: service,
    since: String(Math.floor(span.timestamp / 1000)),
    until: String(Math.ceil((span.timestamp + (span.duration || 0)) / 1000) + OUTPUT_SLACK_MS),
    limit: "200",
  });
  let records = [];
  try { records = await getJson("/api/v2/logs?" + params); } catch (error) { records = []; }
  if (box !== document.getElementById("span-output") || !box.isConnected) return;
  const own = records.filter((record) => !record.traceId);
  fill(box, own.length ? own.map(logLine) : el("span", { className: "muted" }, "no output"));
}
