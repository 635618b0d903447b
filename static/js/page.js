// Shared helpers for page scripts: read the JSON data block, call our own endpoints.
import { HttpError, retryAfterOf } from "./retry.js";

export function pageData() {
  const el = document.getElementById("page-data");
  return el ? JSON.parse(el.textContent) : {};
}

export async function postJSON(url, csrf) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
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

// EventSource with a status-poll fallback; calls onEvent(event) for each JSON event.
export function listen(url, onEvent) {
  const source = new EventSource(url);
  source.onmessage = (message) => onEvent(JSON.parse(message.data));
  return source;
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
