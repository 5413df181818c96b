"use strict";

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
