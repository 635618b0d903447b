// The documents panel of a consultation (clinician call page, patient page): lists the box,
// sends a file encrypted in this browser, saves a file decrypted in this browser.
// Keys come from the consultation secret S: the patient's link fragment, or the clinician's
// own list in localStorage (kept when the consultation was created in this browser).
import { b64urlDecode } from "./ece.js";
import { DropEndpoint, isDecryptionError, saveBlob } from "./dropbox.js";
import { el } from "./page.js";
import { isMessage } from "./box_messages.js";

const SECRETS_KEY = "teleconsult.consultationSecrets";

function readSecret(cfg) {
  try {
    if (cfg.secret_source === "fragment") {
      const text = window.location.hash.slice(1);
      return text ? b64urlDecode(text) : null;
    }
    const stored = JSON.parse(localStorage.getItem(SECRETS_KEY) || "{}")[cfg.consultation_id];
    return stored ? b64urlDecode(stored) : null;
  } catch (err) {
    return null;
  }
}

// hooks.onMessage(message): a message between the pages (static/js/box_messages.js), not a file:
// not listed, handed over once with {id, type, from, created_at, read() -> Blob}.
export function mountDocuments(cfg, hooks = {}) {
  const t = cfg.i18n;
  const root = document.getElementById("documents");
  const list = document.getElementById("documents-list");
  const status = document.getElementById("documents-status");
  const progress = document.getElementById("documents-progress");
  const input = document.getElementById("document-file");
  const endpoint = new DropEndpoint(cfg.base, cfg.csrf ? { "X-CSRF-Token": cfg.csrf } : {});
  const known = new Map(); // id -> {doc, meta, deleted}
  let secret = readSecret(cfg);

  function say(text, isError = false) {
    status.textContent = text;
    status.classList.toggle("error", isError);
  }

  function stateLabel(entry) {
    if (entry.deleted) return t.deleted;
    if (entry.doc.downloads > 0) return t.downloaded;
    return entry.doc.uploaded_by === cfg.role ? t.sent : t.received;
  }

  function render() {
    const items = [...known.values()].filter((entry) => !entry.message).sort((a, b) => a.doc.created_at - b.doc.created_at);
    list.replaceChildren(...items.map((entry) => {
      const name = entry.meta ? entry.meta.name : t.unreadable;
      const from = entry.doc.uploaded_by === cfg.role ? t.from_me : t.from_other;
      const item = el("li", { class: `document${entry.deleted ? " deleted" : ""}`, "data-id": entry.doc.id },
        el("span", { class: "document-name" }, name),
        el("span", { class: "muted" }, ` ${from} · `),
        el("span", { class: "document-state" }, stateLabel(entry)));
      if (!entry.deleted && entry.meta) {
        item.append(el("button", {
          type: "button", class: "secondary save", "aria-label": `${t.save} ${name}`,
          onclick: () => save(entry),
        }, t.save));
      }
      return item;
    }));
    document.getElementById("documents-empty").hidden = items.length > 0;
  }

  // On a phone the panel sits below the call: a new document from the other side is announced
  // (screen readers too) with a link that scrolls to it.
  function announce(entry) {
    const banner = document.getElementById("documents-new");
    const name = entry.meta ? entry.meta.name : t.unreadable;
    say(`${t.new_document} ${name}`);
    const rect = list.getBoundingClientRect();
    if (rect.top < window.innerHeight - 40 && rect.bottom > 0) return; // the list is in view
    banner.textContent = `${t.new_document} ${name}`;
    banner.hidden = false;
  }

  let loaded = false;
  async function refresh() {
    let docs;
    try { docs = await endpoint.list(); } catch (err) { return; }
    const present = new Set(docs.map((d) => d.id));
    for (const [id, entry] of known) if (!present.has(id)) entry.deleted = true;
    for (const doc of docs) {
      const fresh = !known.has(doc.id);
      const entry = known.get(doc.id) || { doc, meta: null, deleted: false };
      entry.doc = doc;
      if (!entry.meta && secret) {
        try { entry.meta = await endpoint.metadata(doc.id, secret); } catch (err) { entry.meta = null; }
      }
      known.set(doc.id, entry);
      if (entry.meta && isMessage(entry.meta.type)) { deliver(entry); continue; }
      if (fresh && loaded && doc.uploaded_by !== cfg.role) announce(entry);
    }
    loaded = true;
    render();
  }

  function deliver(entry) {
    if (entry.message) return;
    entry.message = true;
    hooks.onMessage?.({ id: entry.doc.id, type: entry.meta.type, from: entry.doc.uploaded_by,
      created_at: entry.doc.created_at, read: () => endpoint.download(entry.doc.id, secret, entry.meta.type) });
  }

  async function save(entry) {
    say(t.decrypting);
    progress.hidden = false;
    try {
      const blob = await endpoint.download(entry.doc.id, secret, entry.meta.type,
        { onProgress: (f) => { progress.value = f; } });
      saveBlob(blob, entry.meta.name);
      say(`${t.saved} ${entry.meta.name}`);
    } catch (err) {
      say(isDecryptionError(err) ? t.decryption_failed : t.transfer_failed, true);
    } finally {
      progress.hidden = true;
      refresh();
    }
  }

  // Resolves to true once `file` is in the box (a dropped file, a written document, a message).
  async function send(file) {
    if (!secret) { say(t.no_key, true); return false; }
    if (file.size > cfg.max_bytes) { say(t.too_large, true); return false; }
    progress.hidden = false;
    progress.value = 0;
    say(`${t.sending} ${file.name}`);
    try {
      await endpoint.upload(file, secret, cfg.role, { onProgress: (f) => { progress.value = f; } });
      say(`${t.sent_ok} ${file.name}`);
      return true;
    } catch (err) {
      say(err.status === 413 ? t.too_large : t.transfer_failed, true);
      return false;
    } finally {
      progress.hidden = true;
      if (input) input.value = "";
      refresh();
    }
  }

  const banner = document.getElementById("documents-new");
  banner.addEventListener("click", () => { banner.hidden = true; });
  // the banner goes away as soon as the list is in view (it must never cover a Save button)
  new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) banner.hidden = true;
  }).observe(list);
  input?.addEventListener("change", () => { if (input.files[0]) send(input.files[0]); });
  root.addEventListener("dragover", (event) => { event.preventDefault(); root.classList.add("dragging"); });
  root.addEventListener("dragleave", () => root.classList.remove("dragging"));
  root.addEventListener("drop", (event) => {
    event.preventDefault();
    root.classList.remove("dragging");
    if (input && event.dataTransfer.files[0]) send(event.dataTransfer.files[0]);
  });

  const recover = document.getElementById("documents-recover");
  if (!secret && recover) {
    recover.hidden = false;
    recover.addEventListener("submit", (event) => {
      event.preventDefault();
      const link = document.getElementById("documents-recover-link").value.trim();
      const [url, fragment] = link.split("#");
      if (url !== cfg.patient_url || !fragment) { say(t.wrong_link, true); return; }
      const all = JSON.parse(localStorage.getItem(SECRETS_KEY) || "{}");
      all[cfg.consultation_id] = fragment;
      localStorage.setItem(SECRETS_KEY, JSON.stringify(all));
      secret = readSecret(cfg);
      recover.hidden = true;
      refresh();
    });
  }
  if (!secret && cfg.secret_source === "fragment") say(t.no_key, true);

  const source = new EventSource(cfg.events);
  source.onmessage = () => refresh();
  refresh();
  return { refresh, send };
}
