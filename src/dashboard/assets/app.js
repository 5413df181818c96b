"use strict";

// Navigation: one page shown at a time, by the address's fragment (`#traces?trace=…`).

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
