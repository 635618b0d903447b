// Shared helpers for page scripts: read the JSON data block, call our own endpoints.
import { HttpError, pause, retryAfterOf } from "./retry.js";

export function pageData() {
  const el = document.getElementById("page-data");
  return el ? JSON.parse(el.textContent) : {};
}

export async function postJSON(url, csrf, body = undefined) {
  const headers = { "X-CSRF-Token": csrf, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method: "POST",
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (!response.ok) throw new HttpError(`HTTP ${response.status}`, response.status, retryAfterOf(response));
  return response.json();
}

export async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (!response.ok) throw new HttpError(`HTTP ${response.status}`, response.status, retryAfterOf(response));
  return response.json();
}

// A live event stream: calls onEvent(event) for each JSON event, onDown() when the connection
// drops, onUp() when it is open again. The browser reconnects an EventSource by itself after a
// blip, but gives up for good (readyState CLOSED) when a reconnection fails outright (offline,
// server restarting, a proxy's error page): then a new one is opened after a pause, as long as
// the page lives. A stream can also die silently, still "open" but carrying nothing (a phone
// whose connection outlived its signal, a NAT that forgot it): a new one is opened at once when
// the browser comes back online, and whenever nothing came for three of the server's heartbeats
// (a `ping` event that says its period, 15 s by default: teleconsult/web/sse.py). A new stream's
// first event is the current state. Returns { close() }.
const MISSED_PINGS = 3;
const DEFAULT_STALE_MS = 45_000; // until the first ping says the period
const WATCHDOG_MS = 5_000; // how often the silence is measured, at most

function staleAfter(ping) {
  let every = 0;
  try { every = Number(JSON.parse(ping.data).every); } catch (err) { /* no period said: the default */ }
  return every > 0 ? MISSED_PINGS * every * 1000 : DEFAULT_STALE_MS;
}

export function listen(url, onEvent, { onDown = () => {}, onUp = () => {} } = {}) {
  let source = null;
  let closed = false;
  let attempt = 0;
  let heard = Date.now();
  let waiting = false; // a reopening is scheduled
  let stale = DEFAULT_STALE_MS;
  let watchdog = null;
  function open() {
    waiting = false;
    heard = Date.now();
    source = new EventSource(url);
    source.onopen = () => { attempt = 0; heard = Date.now(); onUp(); };
    source.onmessage = (message) => { heard = Date.now(); onEvent(JSON.parse(message.data)); };
    source.addEventListener("ping", (ping) => { heard = Date.now(); stale = staleAfter(ping); });
    source.onerror = () => {
      onDown();
      if (closed || source.readyState !== EventSource.CLOSED || waiting) return;
      attempt += 1;
      waiting = true;
      pause(Math.min(10_000, 500 * 2 ** attempt)).then(() => { if (!closed && waiting) open(); });
    };
  }
  function reopen() {
    if (closed) return;
    source.close();
    onDown();
    open();
  }
  function watch() {
    watchdog = setTimeout(() => {
      if (closed) return;
      if (!waiting && Date.now() - heard > stale) reopen();
      watch();
    }, Math.min(WATCHDOG_MS, stale / MISSED_PINGS));
  }
  watch();
  const online = () => reopen();
  window.addEventListener("online", online);
  open();
  return {
    close() {
      closed = true;
      clearTimeout(watchdog);
      window.removeEventListener("online", online);
      source.close();
    },
  };
}

// Build an element: el("li", {class: "x", onclick: fn, "data-id": 1}, child, "text", …).
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}
