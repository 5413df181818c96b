// The sandbox dashboard: one page, four views (#resources, #logs, #traces, #graph). Builds the DOM
// with el() only (never innerHTML with data), talks to its own origin only.
"use strict";

const state = { resources: null, canAct: false, page: "resources", logTimer: null };

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "className") node.className = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
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
  document.getElementById("empty-resources").hidden = resources.services.length > 0 || !!resources.project;
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

function fillServiceSelects() {
  const names = state.resources ? state.resources.services.map((service) => service.name) : [];
  for (const id of ["log-service", "trace-service"]) {
    const select = document.getElementById(id);
    const known = new Set(Array.from(select.options).map((option) => option.value));
    for (const name of names) if (!known.has(name)) select.append(el("option", { value: name }, name));
  }
}

// Logs ----------------------------------------------------------------------------------------

function severityName(number) {
  if (number >= 21) return "fatal";
  if (number >= 17) return "error";
  if (number >= 13) return "warn";
  if (number >= 9) return "info";
  if (number >= 5) return "debug";
  return number > 0 ? "trace" : "";
}

function serviceColour(name) {
  let hash = 0;
  for (const character of name || "") hash = (hash * 31 + character.charCodeAt(0)) >>> 0;
  return "hsl(" + (hash % 360) + ", 60%, 35%)";
}

async function loadLogs() {
  const params = new URLSearchParams({ limit: "500" });
  const service = document.getElementById("log-service").value;
  const severity = document.getElementById("log-severity").value;
  const text = document.getElementById("log-text").value;
  if (service) params.set("serviceName", service);
  if (severity) params.set("severity", severity);
  if (text) params.set("q", text);
  let records;
  try { records = await getJson("/api/v2/logs?" + params); } catch (error) { return; }
  records.sort((a, b) => a.timestamp - b.timestamp);
  const box = document.getElementById("logs");
  const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 20;
  box.replaceChildren(...records.map(logLine));
  if (!records.length) box.append(el("div", { className: "muted" }, "no log lines match"));
  if (atBottom) box.scrollTop = box.scrollHeight;
}

function logLine(record) {
  const severity = record.severityText || severityName(record.severityNumber);
  const serviceLabel = el("span", { className: "log-service" }, record.serviceName || "?");
  serviceLabel.style.color = serviceColour(record.serviceName);
  return el("div", { className: "log-line sev-" + severityName(record.severityNumber) },
    el("span", { className: "muted" }, new Date(record.timestamp / 1000).toISOString().slice(11, 23)), " ",
    serviceLabel, " ",
    severity ? el("span", {}, severity.toUpperCase() + " ") : null,
    record.body,
    record.traceId ? [" ", el("a", { className: "trace-link", href: "#traces?trace=" + record.traceId }, "trace " + record.traceId.slice(0, 8))] : null);
}

// Traces --------------------------------------------------------------------------------------

async function loadTraces() {
  const params = new URLSearchParams({ limit: "30", lookback: "3600000", endTs: String(Date.now()) });
  const service = document.getElementById("trace-service").value;
  if (service) params.set("serviceName", service);
  let traces;
  try { traces = await getJson("/api/v2/traces?" + params); } catch (error) { return; }
  const rows = traces.map((spans) => {
    const root = spans.find((span) => !span.parentId) || spans[0];
    const start = Math.min(...spans.map((span) => span.timestamp || Infinity));
    const end = Math.max(...spans.map((span) => (span.timestamp || 0) + (span.duration || 0)));
    const error = spans.some((span) => span.tags && span.tags.error !== undefined);
    return el("tr", { className: error ? "health-unhealthy" : "" },
      el("td", {}, new Date(start / 1000).toLocaleTimeString()),
      el("td", {}, (root.localEndpoint && root.localEndpoint.serviceName || "?") + ": " + (root.name || "")),
      el("td", {}, spans.length),
      el("td", {}, micros(end - start)),
      el("td", {}, el("a", { className: "trace-link", href: "#traces?trace=" + root.traceId }, root.traceId)));
  });
  document.querySelector("#traces tbody").replaceChildren(...rows);
}

async function showTrace(traceId) {
  let spans;
  try { spans = await getJson("/api/v2/trace/" + encodeURIComponent(traceId)); } catch (error) { return; }
  const children = new Map();
  const ids = new Set(spans.map((span) => span.id));
  for (const span of spans) {
    const parent = span.parentId && ids.has(span.parentId) ? span.parentId : "";
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(span);
  }
  for (const list of children.values()) list.sort((a, b) => (a.timestamp || 0) - (b.timestamp || 0));
  const start = Math.min(...spans.map((span) => span.timestamp || Infinity));
  const end = Math.max(...spans.map((span) => (span.timestamp || 0) + (span.duration || 0)));
  const total = Math.max(1, end - start);
  const rows = [];
  const visit = (span, depth) => {
    const error = span.tags && span.tags.error !== undefined;
    const bar = el("div", { className: error ? "span-bar error" : "span-bar" });
    bar.style.left = ((span.timestamp - start) / total * 100) + "%";
    bar.style.width = ((span.duration || 0) / total * 100) + "%";
    const label = el("span", { className: "span-label" }, (span.localEndpoint && span.localEndpoint.serviceName || "?") + " " + (span.name || "") + " " + micros(span.duration));
    label.style.paddingLeft = (depth * 14) + "px";
    rows.push(el("div", { className: error ? "span-row error" : "span-row", "data-span": span.id, onclick: () => showSpan(span) },
      label, el("div", { className: "span-track" }, bar)));
    for (const child of children.get(span.id) || []) visit(child, depth + 1);
  };
  for (const root of children.get("") || []) visit(root, 0);
  const box = document.getElementById("waterfall");
  box.replaceChildren(el("h3", {}, "Trace " + traceId), ...rows);
  box.hidden = false;
  document.getElementById("span-detail").hidden = true;
}

async function showSpan(span) {
  const box = document.getElementById("span-detail");
  const tags = Object.entries(span.tags || {}).map(([key, value]) => el("tr", {}, el("td", {}, key), el("td", {}, value)));
  const annotations = (span.annotations || []).map((annotation) => el("tr", {}, el("td", {}, micros(annotation.timestamp - span.timestamp)), el("td", {}, annotation.value)));
  const endpoint = (point) => point ? [point.serviceName, point.ipv4 || point.ipv6, point.port].filter(Boolean).join(" ") : "";
  const service = span.localEndpoint && span.localEndpoint.serviceName;
  box.replaceChildren(
    el("h4", {}, (service || "?") + " " + (span.name || ""), " ",
      service ? el("a", { href: "#resources" }, "resource") : null),
    el("p", {}, "local: " + endpoint(span.localEndpoint) + "  remote: " + endpoint(span.remoteEndpoint) + "  kind: " + (span.kind || "")),
    el("table", {}, el("tbody", {}, tags, annotations)),
    el("h4", {}, "Log lines"),
    el("div", { className: "logs", id: "span-logs" }, el("span", { className: "muted" }, "loading…")));
  box.hidden = false;
  let records = [];
  try { records = await getJson("/api/v2/logs?traceId=" + span.traceId + "&limit=200"); } catch (error) { records = []; }
  const own = records.filter((record) => !record.spanId || record.spanId === span.id);
  const list = document.getElementById("span-logs");
  list.replaceChildren(...own.map(logLine));
  if (!own.length) list.append(el("span", { className: "muted" }, "no log lines for this span"));
}

// Graph ---------------------------------------------------------------------------------------

async function loadGraph() {
  let links;
  try { links = await getJson("/api/v2/dependencies?endTs=" + Date.now() + "&lookback=3600000"); } catch (error) { return; }
  const names = new Set();
  for (const link of links) { names.add(link.parent); names.add(link.child); }
  const depth = new Map();
  for (const name of names) depth.set(name, 0);
  for (let round = 0; round < names.size; round++) {
    for (const link of links) {
      if (link.parent !== link.child && depth.get(link.child) <= depth.get(link.parent)) depth.set(link.child, depth.get(link.parent) + 1);
    }
  }
  const columns = new Map();
  for (const [name, level] of depth) {
    if (!columns.has(level)) columns.set(level, []);
    columns.get(level).push(name);
  }
  const position = new Map();
  const width = Math.max(400, (columns.size) * 220 + 40);
  let height = 120;
  for (const [level, list] of columns) {
    list.sort();
    list.forEach((name, index) => position.set(name, { x: 40 + level * 220, y: 50 + index * 90 }));
    height = Math.max(height, 100 + list.length * 90);
  }
  const drawing = svg("svg", { width, height, viewBox: "0 0 " + width + " " + height, id: "graph-svg" },
    svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "8", markerHeight: "8", orient: "auto" }, svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#57606a" }))));
  for (const link of links) {
    const from = position.get(link.parent);
    const to = position.get(link.child);
    const errors = link.errorCount || 0;
    const colour = errors > 0 ? "#cf222e" : "#57606a";
    drawing.append(svg("g", { class: "edge", "data-edge": link.parent + "->" + link.child },
      svg("line", { x1: from.x + 140, y1: from.y + 18, x2: to.x, y2: to.y + 18, stroke: colour, "stroke-width": "2", "marker-end": "url(#arrow)" }),
      svg("text", { x: (from.x + 140 + to.x) / 2, y: (from.y + to.y) / 2 + 10, "text-anchor": "middle", fill: colour },
        link.callCount + " calls" + (errors ? ", " + errors + " errors" : ""))));
  }
  for (const [name, point] of position) {
    drawing.append(svg("g", { class: "node", "data-node": name },
      svg("rect", { x: point.x, y: point.y, width: "140", height: "36", rx: "6", fill: "#ddf4ff", stroke: "#0969da" }),
      svg("text", { x: point.x + 70, y: point.y + 23, "text-anchor": "middle" }, name)));
  }
  const box = document.getElementById("graph");
  box.replaceChildren(links.length ? drawing : el("p", { className: "muted" }, "no calls recorded in the last hour"));
}

// Navigation ----------------------------------------------------------------------------------

function route() {
  const [page, query] = (location.hash.slice(1) || "resources").split("?");
  const params = new URLSearchParams(query || "");
  state.page = ["resources", "logs", "traces", "graph"].includes(page) ? page : "resources";
  state.renderedStructure = null;
  for (const name of ["resources", "logs", "traces", "graph"]) {
    document.getElementById("page-" + name).hidden = name !== state.page;
    document.getElementById("nav-" + name).className = name === state.page ? "current" : "";
  }
  clearInterval(state.logTimer);
  if (state.page === "resources") renderResources();
  if (state.page === "logs") {
    if (params.get("service")) { fillServiceSelects(); document.getElementById("log-service").value = params.get("service"); }
    loadLogs();
    state.logTimer = setInterval(() => { if (document.getElementById("log-live").checked) loadLogs(); }, 1000);
  }
  if (state.page === "traces") {
    if (params.get("service")) { fillServiceSelects(); document.getElementById("trace-service").value = params.get("service"); }
    loadTraces();
    if (params.get("trace")) showTrace(params.get("trace"));
  }
  if (state.page === "graph") loadGraph();
}

async function start() {
  try {
    state.canAct = (await getJson("/dashboard/api/session")).can_act;
  } catch (error) {
    state.canAct = false;
  }
  const access = document.getElementById("access");
  access.textContent = state.canAct ? "actions enabled" : "read-only";
  document.getElementById("log-filter").addEventListener("input", loadLogs);
  document.getElementById("log-filter").addEventListener("submit", (event) => { event.preventDefault(); loadLogs(); });
  document.getElementById("trace-filter").addEventListener("submit", (event) => { event.preventDefault(); loadTraces(); });
  window.addEventListener("hashchange", route);
  setInterval(tickUptimes, 1000);
  connectEvents();
  route();
}

document.addEventListener("DOMContentLoaded", start);
