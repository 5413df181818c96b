"use strict";

// Resources: the table of services and replicas, kept current by the `resources` event stream;
// restart, stop/start and faults as actions.

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
