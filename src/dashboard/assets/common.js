// The sandbox dashboard: one page, four views (#resources, #logs, #traces, #graph), one script
// per view sharing these helpers (classic scripts, loaded in order). Builds the DOM with el()
// only (never innerHTML with data), talks to its own origin only.
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
