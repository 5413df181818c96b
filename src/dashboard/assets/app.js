// The sandbox dashboard: one page, four views (#resources, #logs, #traces, #graph). Builds the DOM
// with el() only (never innerHTML with data), talks to its own origin only.
"use strict";

const state = { resources: null, canAct: false, page: "resources", params: new URLSearchParams(), pageTimer: null, logSource: null, trace: null, edge: null };

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "className") node.className = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Replaces the children of `node` with `children` (nested lists flattened, null and undefined left
// out, other values as text), as el() takes them.
function fill(node, ...children) {
  node.replaceChildren(...children.flat(Infinity).filter((child) => child !== null && child !== undefined)
    .map((child) => (child instanceof Node ? child : document.createTextNode(String(child)))));
  return node;
}

function svg(tag, attributes, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
  for (const child of children.flat()) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

async function getJson(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) throw new Error(url + ": " + response.status + " " + (await response.text()));
  return response.json();
}

function notice(message, isError) {
  const box = document.getElementById("notice");
  box.textContent = message;
  box.className = isError ? "notice error" : "notice";
  box.hidden = !message;
}

function duration(seconds) {
  if (seconds < 60) return seconds + "s";
  if (seconds < 3600) return Math.floor(seconds / 60) + "m" + (seconds % 60) + "s";
  if (seconds < 86400) return Math.floor(seconds / 3600) + "h" + Math.floor((seconds % 3600) / 60) + "m";
  return Math.floor(seconds / 86400) + "d" + Math.floor((seconds % 86400) / 3600) + "h";
}

function micros(value) {
  if (value === undefined) return "";
  if (value < 1000) return value + "µs";
  if (value < 1000000) return (value / 1000).toFixed(1) + "ms";
  return (value / 1000000).toFixed(2) + "s";
}

// Resources ----------------------------------------------------------------------------------

async function act(service, verb, body) {
  notice(verb + " " + service + "…");
  try {
    const response = await fetch("/dashboard/api/services/" + encodeURIComponent(service) + "/" + verb, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json" },
      body: body ? JSON.stringify(body) : "",
    });
    const text = await response.text();
    if (!response.ok) { notice(text.trim(), true); return; }
    notice(JSON.parse(text).done);
  } catch (error) {
    notice(String(error), true);
  }
}

function faultControl(service) {
  const current = service.faults.abort ? "abort:" + service.faults.abort
    : service.faults.delay_ms ? "delay:" + service.faults.delay_ms : "";
  const options = [["", "none"], ["delay:500", "delay 500ms"], ["delay:2000", "delay 2s"], ["abort:503", "abort 503"], ["abort:500", "abort 500"]];
  if (current && !options.some(([value]) => value === current)) options.push([current, current.replace(":", " ")]);
  const select = el("select", {
    "data-fault": service.name, disabled: !state.canAct,
    onchange: (event) => {
      const [kind, value] = event.target.value.split(":");
      const body = kind === "delay" ? { delay_ms: Number(value) } : kind === "abort" ? { abort: Number(value) } : {};
      act(service.name, "fault", body);
    },
  }, options.map(([value, label]) => el("option", { value, selected: value === current }, label)));
  return select;
}

function actionButtons(service) {
  const disabled = !state.canAct;
  const title = disabled ? "open the dashboard URL `sandbox up` printed to act" : null;
  return [
    el("button", { "data-action": "restart", "data-service": service.name, disabled, title, onclick: () => act(service.name, "restart") }, "Restart"),
    el("button", { "data-action": "stop", "data-service": service.name, disabled, title, onclick: () => act(service.name, "stop") }, "Stop"),
    el("button", { "data-action": "start", "data-service": service.name, disabled, title, onclick: () => act(service.name, "start") }, "Start"),
  ];
}

// The engine's status words ("Exited (1) 3 seconds ago") change every second: they are patched in
// place, and the table is rebuilt only when something else changed (so buttons and selects stay).
function structureOf(resources) {
  return JSON.stringify(resources, (key, value) => (key === "status" ? undefined : value));
}

function renderResources() {
  const resources = state.resources;
  if (!resources) return;
  const structure = structureOf(resources);
  if (structure === state.renderedStructure && document.querySelector("#resources tbody").children.length) {
    for (const service of resources.services) {
      for (const replica of service.replicas) {
        const cell = document.querySelector('[data-status-of="' + CSS.escape(replica.name) + '"]');
        if (cell) cell.textContent = replica.status;
      }
    }
    return;
  }
  state.renderedStructure = structure;
  document.getElementById("project").textContent = resources.project || "sandbox";
  const body = document.querySelector("#resources tbody");
  const now = Date.now() / 1000;
  const rows = [];
  for (const service of resources.services) {
    const replicas = service.replicas.length ? service.replicas : [null];
    replicas.forEach((replica, index) => {
      const first = index === 0;
      const span = replicas.length;
      const cells = [];
      if (first) {
        cells.push(el("td", { rowspan: span },
          el("strong", {}, service.name), " ",
          el("a", { href: "#logs?service=" + encodeURIComponent(service.name) }, "logs"), " ",
          el("a", { href: "#traces?service=" + encodeURIComponent(service.name) }, "traces"),
          service.summary ? el("span", { className: "muted detail-summary" }, el("br"), service.summary) : null));
      }
      if (replica) {
        const uptime = replica.state === "running" && replica.started_at > 0 ? duration(Math.max(0, Math.floor(now - replica.started_at))) : "";
        cells.push(
          el("td", {}, replica.name),
          el("td", { className: "state-" + replica.state, "data-state": replica.state }, replica.state, el("span", { className: "muted detail", "data-status-of": replica.name }, replica.status)),
          el("td", { className: "health-" + replica.health, "data-health": replica.health }, replica.health,
            replica.health_detail ? el("span", { className: "detail" }, replica.health_detail) : null),
          el("td", {}, service.image),
          el("td", {}, replica.ports.join(", ")),
          el("td", { "data-started": replica.state === "running" ? replica.started_at : 0 }, uptime),
          el("td", {}, replica.restarts));
      } else {
        cells.push(el("td", { colspan: 7, className: "muted" }, service.summary || "no container"));
      }
      if (first) {
        cells.push(
          el("td", { rowspan: span }, service.routes.join(", ")),
          el("td", { rowspan: span }, service.request_rate.toFixed(2), el("span", { className: "muted detail-total" }, " (" + service.requests + ")")),
          el("td", { rowspan: span, className: service.error_rate > 0 ? "health-unhealthy" : "" }, (service.error_rate * 100).toFixed(0) + "%", el("span", { className: "muted" }, " (" + service.errors + ")")),
          el("td", { rowspan: span }, faultControl(service)),
          el("td", { rowspan: span }, actionButtons(service)));
      }
      rows.push(el("tr", { className: first ? "service-first" : "", "data-service": service.name, "data-replica": replica ? replica.name : "" }, cells));
    });
  }
  body.replaceChildren(...rows);
  highlightResource();
  document.getElementById("empty-resources").hidden = resources.services.length > 0 || !!resources.project;
}

// `#resources?service=item` (the links from Traces and Graph) marks that service's rows.
function highlightResource() {
  const wanted = state.page === "resources" ? state.params.get("service") : null;
  let first = null;
  for (const row of document.querySelectorAll("#resources tbody tr")) {
    const on = !!wanted && row.dataset.service === wanted;
    row.classList.toggle("highlight", on);
    if (on && !first) first = row;
  }
  if (first && state.highlighted !== wanted) first.scrollIntoView({ block: "nearest" });
  state.highlighted = wanted;
}

function tickUptimes() {
  const now = Date.now() / 1000;
  for (const cell of document.querySelectorAll("td[data-started]")) {
    const started = Number(cell.getAttribute("data-started"));
    cell.textContent = started > 0 ? duration(Math.max(0, Math.floor(now - started))) : "";
  }
}

function connectEvents() {
  const live = document.getElementById("live");
  const source = new EventSource("/dashboard/api/events");
  source.addEventListener("resources", (event) => {
    state.resources = JSON.parse(event.data);
    live.textContent = "live";
    live.className = "badge on";
    if (state.page === "resources") renderResources();
    fillServiceSelects();
  });
  source.addEventListener("error", () => { live.textContent = "reconnecting…"; live.className = "badge"; });
}

function fillServiceSelects(extra) {
  const names = state.resources ? state.resources.services.map((service) => service.name) : [];
  if (extra) names.push(extra);
  for (const id of ["log-service", "trace-service"]) {
    const select = document.getElementById(id);
    const known = new Set(Array.from(select.options).map((option) => option.value));
    for (const name of names) if (!known.has(name)) select.append(el("option", { value: name }, name));
  }
}

// Logs: one event stream per filter (server-sent events; the server sends the newest lines, then
// every new one). The list keeps at most MAX_LOG_LINES lines.

const MAX_LOG_LINES = 2000;
const HEX_ID = /\b(?:[0-9a-f]{32}|[0-9a-f]{16})\b/gi;

function severityName(number) {
  if (number >= 21) return "fatal";
  if (number >= 17) return "error";
  if (number >= 13) return "warn";
  if (number >= 9) return "info";
  if (number >= 5) return "debug";
  return number > 0 ? "trace" : "";
}

// A colour per service name: the sandbox's own services take hues by their place in the manifest
// (spread by the golden angle, so they never collide); other names hash (FNV-1a) onto the circle
// the same way, so names that differ in one letter (`api1`, `api2`) still look apart.
function serviceColour(name) {
  const place = state.resources ? state.resources.services.findIndex((service) => service.name === name) : -1;
  if (place >= 0) return "hsl(" + Math.round(200 + place * 137.508) % 360 + ", 60%, 38%)";
  let hash = 0x811c9dc5;
  for (const character of name || "") hash = Math.imul(hash ^ character.charCodeAt(0), 0x01000193) >>> 0;
  return "hsl(" + Math.round((hash % 1000) * 137.508) % 360 + ", 60%, 38%)";
}

function traceHref(traceId) {
  return "#traces?trace=" + encodeURIComponent(traceId);
}

// The body with the record's trace id (and any other id-shaped word the store knows as a trace:
// the record's own) turned into links; a record whose body does not name its trace gets a link
// after the text.
function linkedBody(record) {
  const traceId = (record.traceId || "").toLowerCase();
  const short = traceId.length === 32 && traceId.startsWith("0000000000000000") ? traceId.slice(16) : traceId;
  const parts = [];
  let last = 0;
  let linked = false;
  const body = String(record.body || "");
  for (const match of body.matchAll(HEX_ID)) {
    const word = match[0].toLowerCase();
    if (!traceId || (word !== traceId && word !== short && !traceId.endsWith(word))) continue;
    parts.push(body.slice(last, match.index), el("a", { className: "trace-link", href: traceHref(traceId) }, match[0]));
    last = match.index + match[0].length;
    linked = true;
  }
  parts.push(body.slice(last));
  if (traceId && !linked) parts.push(" ", el("a", { className: "trace-link", href: traceHref(traceId) }, "trace " + traceId.slice(-16, -8)));
  return parts;
}

function logLine(record) {
  const severity = severityName(record.severityNumber);
  const serviceLabel = el("span", { className: "log-service" }, record.serviceName || "?");
  serviceLabel.style.color = serviceColour(record.serviceName);
  return el("div", { className: "log-line sev-" + severity, "data-service": record.serviceName || "", "data-trace": record.traceId || null },
    el("span", { className: "muted" }, new Date(record.timestamp / 1000).toISOString().slice(11, 23)), " ",
    serviceLabel, " ",
    record.severityText || severity ? el("span", { className: "log-severity" }, (record.severityText || severity).toUpperCase() + " ") : null,
    linkedBody(record));
}

function logFilterParams() {
  const params = new URLSearchParams();
  const service = document.getElementById("log-service").value;
  const severity = document.getElementById("log-severity").value;
  const text = document.getElementById("log-text").value;
  if (service) params.set("serviceName", service);
  if (severity) params.set("severity", severity);
  if (text) params.set("q", text);
  return params;
}

function stopLogs() {
  if (state.logSource) state.logSource.close();
  state.logSource = null;
}

function followLogs() {
  stopLogs();
  if (state.page !== "logs" || !document.getElementById("log-live").checked) {
    document.getElementById("log-status").textContent = "paused";
    return;
  }
  const box = document.getElementById("logs");
  const status = document.getElementById("log-status");
  status.textContent = "connecting…";
  const source = new EventSource("/dashboard/api/logs/events?" + logFilterParams());
  let first = true;
  source.addEventListener("logs", (event) => {
    const records = JSON.parse(event.data);
    const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 20;
    const lines = document.createDocumentFragment();
    for (const record of records) lines.append(logLine(record));
    if (first) {
      box.replaceChildren(lines);
      first = false;
    } else {
      const empty = box.querySelector(".empty");
      if (empty && records.length) empty.remove();
      box.append(lines);
    }
    while (box.children.length > MAX_LOG_LINES) box.firstElementChild.remove();
    if (!box.children.length) box.append(el("div", { className: "muted empty" }, "no log lines match (new ones appear here)"));
    status.textContent = "live";
    if (atBottom) box.scrollTop = box.scrollHeight;
  });
  source.addEventListener("error", () => { status.textContent = "reconnecting…"; first = true; });
  state.logSource = source;
}

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

// Graph: services as nodes, calls as edges, over a chosen window; an edge lists its traces.

const GRAPH_REFRESH_MS = 5000;
// Pixels between the left sides of two columns of services (room for an edge's label).
const COLUMN = 400;

function layoutGraph(graph) {
  const names = graph.services.slice();
  const depth = new Map(names.map((name) => [name, 0]));
  for (let round = 0; round < names.length; round++) {
    for (const edge of graph.edges) {
      if (edge.parent !== edge.child && depth.get(edge.child) <= depth.get(edge.parent) && depth.get(edge.parent) < names.length) depth.set(edge.child, depth.get(edge.parent) + 1);
    }
  }
  const columns = new Map();
  for (const name of names) {
    const level = depth.get(name);
    if (!columns.has(level)) columns.set(level, []);
    columns.get(level).push(name);
  }
  const position = new Map();
  const levels = [...columns.keys()].sort((a, b) => a - b);
  let height = 160;
  levels.forEach((level, column) => {
    const list = columns.get(level).sort();
    list.forEach((name, row) => position.set(name, { x: 40 + column * COLUMN, y: 90 + row * 110, column }));
    height = Math.max(height, 150 + list.length * 110);
  });
  return { position, width: Math.max(500, levels.length * COLUMN + 60), height };
}

function edgeLabel(edge) {
  const rate = edge.calls ? Math.round(edge.errors / edge.calls * 100) : 0;
  return edge.calls + (edge.calls === 1 ? " call · " : " calls · ") + rate + "% errors" + (edge.p95_micros !== null && edge.p95_micros !== undefined ? " · p95 " + micros(edge.p95_micros) : "");
}

async function loadGraph() {
  const window = document.getElementById("graph-window").value;
  let graph;
  try { graph = await getJson("/dashboard/api/graph?window=" + encodeURIComponent(window)); } catch (error) { return; }
  if (state.page !== "graph") return;
  const key = JSON.stringify(graph);
  if (key === state.graphKey) return;
  state.graphKey = key;
  const { position, width, height } = layoutGraph(graph);
  const nodeWidth = 150;
  const drawing = svg("svg", { width, height, viewBox: "0 0 " + width + " " + height, id: "graph-svg", role: "img" },
    svg("defs", {},
      svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "10", markerHeight: "10", markerUnits: "userSpaceOnUse", orient: "auto" }, svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#57606a" })),
      svg("marker", { id: "arrow-error", viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "10", markerHeight: "10", markerUnits: "userSpaceOnUse", orient: "auto" }, svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#cf222e" }))));
  const pairs = new Set(graph.edges.map((edge) => edge.parent + "\n" + edge.child));
  for (const edge of graph.edges) {
    const from = position.get(edge.parent);
    const to = position.get(edge.child);
    if (!from || !to) continue;
    const colour = edge.errors > 0 ? "#cf222e" : "#57606a";
    const forward = to.x > from.x;
    const x1 = forward ? from.x + nodeWidth : from.x + nodeWidth / 2;
    const y1 = forward ? from.y + 18 : from.y + 36;
    const x2 = forward ? to.x : to.x + nodeWidth / 2;
    const y2 = forward ? to.y + 18 : to.y;
    // Two services calling each other get two bends, one each way; an edge past a column arcs
    // over the services between.
    const span = Math.abs(to.column - from.column);
    const bend = span > 1 ? 70 * span : pairs.has(edge.child + "\n" + edge.parent) || edge.parent === edge.child ? 40 : 0;
    const mx = (x1 + x2) / 2 + (edge.parent === edge.child ? 90 : 0);
    const my = (y1 + y2) / 2 - bend;
    const d = "M" + x1 + "," + y1 + " Q" + mx + "," + my + " " + x2 + "," + y2;
    // The label sits on the curve's middle point.
    const labelX = (x1 + 2 * mx + x2) / 4;
    const labelY = (y1 + 2 * my + y2) / 4 - 8;
    drawing.append(svg("g", { class: "edge" + (edge.errors ? " edge-error" : ""), "data-edge": edge.parent + "->" + edge.child, "data-calls": edge.calls, "data-errors": edge.errors, tabindex: "0" },
      svg("title", {}, edge.parent + " → " + edge.child + ": " + edgeLabel(edge)),
      svg("path", { d, stroke: "transparent", "stroke-width": "14", fill: "none", class: "edge-hit" }),
      svg("path", { d, stroke: colour, "stroke-width": String(Math.min(6, 1.5 + Math.log10(1 + edge.calls))), fill: "none", "marker-end": edge.errors ? "url(#arrow-error)" : "url(#arrow)" }),
      svg("text", { x: labelX, y: labelY, "text-anchor": "middle", fill: colour, class: "edge-label" }, edgeLabel(edge))));
  }
  for (const [name, point] of position) {
    const link = svg("a", { href: "#resources?service=" + encodeURIComponent(name), class: "node", "data-node": name },
      svg("title", {}, "the resource " + name),
      svg("rect", { x: point.x, y: point.y, width: String(nodeWidth), height: "36", rx: "6", fill: "#ddf4ff", stroke: "#0969da" }),
      svg("text", { x: point.x + nodeWidth / 2, y: point.y + 23, "text-anchor": "middle" }, name));
    drawing.append(link);
  }
  drawing.addEventListener("click", (event) => {
    const group = event.target.closest("g[data-edge]");
    if (group) showEdge(graph.edges.find((edge) => edge.parent + "->" + edge.child === group.dataset.edge));
  });
  drawing.addEventListener("keydown", (event) => {
    const group = event.target.closest("g[data-edge]");
    if (group && event.key === "Enter") showEdge(graph.edges.find((edge) => edge.parent + "->" + edge.child === group.dataset.edge));
  });
  const box = document.getElementById("graph");
  const summary = el("p", { className: "muted" }, graph.traces + " traces read" + (graph.truncated ? " (the newest; the window holds more)" : "") + ". Click an edge for its traces.");
  fill(box, graph.edges.length ? [summary, drawing] : el("p", { className: "muted" }, "no calls recorded in this window"));
  if (state.edge) {
    const again = graph.edges.find((edge) => edge.parent === state.edge.parent && edge.child === state.edge.child);
    if (again) showEdge(again);
  }
}

function showEdge(edge) {
  if (!edge) return;
  state.edge = edge;
  for (const group of document.querySelectorAll("#graph g.edge")) group.classList.toggle("selected", group.dataset.edge === edge.parent + "->" + edge.child);
  const box = document.getElementById("graph-traces");
  fill(box,
    el("h4", {}, edge.parent + " → " + edge.child + ": " + edgeLabel(edge)),
    el("ul", { id: "edge-traces" }, edge.trace_ids.map((traceId) => el("li", {}, el("a", { className: "trace-link", href: traceHref(traceId), "data-trace": traceId }, traceId)))),
    edge.calls > edge.trace_ids.length ? el("p", { className: "muted" }, "the newest " + edge.trace_ids.length + " traces") : null);
  box.hidden = false;
}

// Navigation ----------------------------------------------------------------------------------

function route() {
  const [page, query] = (location.hash.slice(1) || "resources").split("?");
  const params = new URLSearchParams(query || "");
  state.page = ["resources", "logs", "traces", "graph"].includes(page) ? page : "resources";
  state.params = params;
  state.renderedStructure = null;
  for (const name of ["resources", "logs", "traces", "graph"]) {
    document.getElementById("page-" + name).hidden = name !== state.page;
    document.getElementById("nav-" + name).className = name === state.page ? "current" : "";
  }
  clearInterval(state.pageTimer);
  if (state.page !== "logs") stopLogs();
  if (state.page === "resources") { state.highlighted = null; renderResources(); highlightResource(); }
  if (state.page === "logs") {
    if (params.has("service")) { fillServiceSelects(params.get("service")); document.getElementById("log-service").value = params.get("service"); }
    followLogs();
  }
  if (state.page === "traces") {
    if (params.has("service")) { fillServiceSelects(params.get("service")); document.getElementById("trace-service").value = params.get("service"); }
    state.traceListKey = null;
    loadTraces();
    state.pageTimer = setInterval(() => { if (!document.hidden) loadTraces(); }, TRACE_LIST_REFRESH_MS);
    if (params.get("trace")) showTrace(params.get("trace"));
  }
  if (state.page === "graph") {
    state.graphKey = null;
    loadGraph();
    state.pageTimer = setInterval(() => { if (!document.hidden) loadGraph(); }, GRAPH_REFRESH_MS);
  }
}

async function start() {
  const access = document.getElementById("access");
  getJson("/dashboard/api/session").then((session) => {
    state.canAct = session.can_act;
  }, () => { state.canAct = false; }).then(() => {
    access.textContent = state.canAct ? "actions enabled" : "read-only";
    state.renderedStructure = null;
    if (state.page === "resources") renderResources();
  });
  let typing = null;
  document.getElementById("log-filter").addEventListener("input", (event) => {
    clearTimeout(typing);
    typing = setTimeout(followLogs, event.target.id === "log-text" ? 250 : 0);
  });
  document.getElementById("log-filter").addEventListener("submit", (event) => { event.preventDefault(); followLogs(); });
  document.getElementById("trace-filter").addEventListener("submit", (event) => { event.preventDefault(); state.traceListKey = null; loadTraces(); });
  document.getElementById("trace-service").addEventListener("change", () => { state.traceListKey = null; loadTraces(); });
  document.getElementById("graph-window").addEventListener("change", () => { state.edge = null; document.getElementById("graph-traces").hidden = true; loadGraph(); });
  window.addEventListener("hashchange", route);
  setInterval(tickUptimes, 1000);
  connectEvents();
  route();
}

document.addEventListener("DOMContentLoaded", start);
