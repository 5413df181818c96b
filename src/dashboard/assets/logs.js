"use strict";

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
