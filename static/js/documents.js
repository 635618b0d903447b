// The documents panel of a consultation (clinician call page, patient page): lists the box,
// sends a file encrypted in this browser, saves a file decrypted in this browser.
// The key is the consultation secret S (static/js/consultation_secrets.js: the patient's link
// fragment; for the clinician, S cached in this browser or sealed to their key and opened here).
//
// Live: the box's list is fetched whole only when the event stream (re)connects ("hello") or
// after the hub dropped events for us ("resync"). Every other event says what changed (a
// document added, with its listing; downloaded, with its count; deleted) and updates that item.
// Offline (or the server restarting), the panel says so; when the stream is back, its hello
// fetches the list again, and a list that cannot be fetched yet is asked again until it is.
import { DropEndpoint, isDecryptionError, saveBlob } from "./dropbox.js";
import { panelSecret, rememberFromLink } from "./consultation_secrets.js";
import { el, listen } from "./page.js";
import { retrying } from "./retry.js";
import { isMessage } from "./box_messages.js";

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
  const known = new Map(); // id -> {doc, meta, deleted, node}; every entry is shown in the list
  let secret = null;
  let loaded = false;
  let sending = 0; // uploads under way: leaving the page would lose them
  // events, answers and the first load change the list one after the other, in arrival order
  let chain = Promise.resolve();
  const later = (task) => { chain = chain.then(task).catch(() => {}); return chain; };

  function say(text, isError = false) {
    status.textContent = text;
    status.classList.toggle("error", isError);
  }

  function stateLabel(entry) {
    if (entry.deleted) return t.deleted;
    if (entry.doc.completed_downloads > 0) return t.downloaded; // the last byte was sent
    return entry.doc.uploaded_by === cfg.sender ? t.sent : t.received;
  }

  // Who sent it: this device, the other party, or another device that opened the same patient
  // link ("patient-2"…: teleconsult/web/views/documents.py), named by its number.
  function fromLabel(sender) {
    if (sender === cfg.sender) return t.from_me;
    const device = /^patient(?:-(\d+))?$/.exec(sender);
    if (!device) return t.from_other; // the clinician
    if (cfg.role === "patient") return t.from_device; // another phone with the same link
    return device[1] ? t.from_device.replace("{n}", device[1]) : t.from_other;
  }

  function itemOf(entry) {
    const name = entry.meta ? entry.meta.name : t.unreadable;
    const from = fromLabel(entry.doc.uploaded_by);
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
  }

  // Draw one document: replace its item, or insert it in upload order.
  function show(entry) {
    if (entry.meta && isMessage(entry.meta.type)) { // drawn while unreadable? it goes
      entry.node?.remove();
      entry.node = null;
      deliver(entry);
      return;
    }
    const item = itemOf(entry);
    if (entry.node) {
      entry.node.replaceWith(item);
    } else {
      const order = [...known.values()].sort((a, b) => a.doc.created_at - b.doc.created_at);
      const next = order.slice(order.indexOf(entry) + 1).find((other) => other.node);
      list.insertBefore(item, next ? next.node : null);
    }
    entry.node = item;
    document.getElementById("documents-empty").hidden = [...known.values()].every((other) => other.message);
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

  async function open(entry) {
    if (entry.meta || !secret) return;
    try { entry.meta = await endpoint.openMetadata(entry.doc, secret); } catch (err) { entry.meta = null; }
  }

  // One document as the box lists it (the list, the answer to our upload, an "added" event).
  async function upsert(doc) {
    let entry = known.get(doc.id);
    const fresh = !entry;
    if (fresh) {
      entry = { doc, meta: null, deleted: false, node: null };
      known.set(doc.id, entry);
    } else {
      // downloads only grow: an event may overtake the list that already counted it
      entry.doc = { ...entry.doc, ...doc, downloads: Math.max(entry.doc.downloads || 0, doc.downloads || 0),
        completed_downloads: Math.max(entry.doc.completed_downloads || 0, doc.completed_downloads || 0) };
    }
    await open(entry);
    show(entry);
    if (fresh && loaded && doc.uploaded_by !== cfg.sender && !entry.message) announce(entry);
  }

  const offline = document.getElementById("documents-offline");
  const connection = (up) => { offline.hidden = up; };

  async function refresh() {
    let docs;
    try {
      docs = await retrying(() => endpoint.list(), { onWait: () => connection(false) });
    } catch (err) {
      return; // refused for good (the box is gone): nothing to show
    }
    connection(true);
    const present = new Set(docs.map((d) => d.id));
    for (const [id, entry] of known) {
      if (!present.has(id) && !entry.deleted) {
        entry.deleted = true;
        show(entry);
      }
    }
    for (const doc of docs) await upsert(doc);
    loaded = true;
  }

  async function apply(event) {
    if (event.type === "hello" || event.type === "resync") return refresh();
    if (event.type !== "document") return undefined; // nothing this panel shows
    const entry = known.get(event.id);
    if (event.action === "added") return event.document ? upsert(event.document) : refresh();
    if (!entry) return event.action === "deleted" ? undefined : refresh();
    if (event.action === "downloaded") {
      // sent once the transfer's last byte went (a transfer cut midway is not announced)
      entry.doc.completed_downloads = typeof event.completed_downloads === "number"
        ? Math.max(entry.doc.completed_downloads || 0, event.completed_downloads) : (entry.doc.completed_downloads || 0) + 1;
    } else if (event.action === "deleted") {
      entry.deleted = true;
    }
    show(entry);
    return undefined;
  }

  function deliver(entry) {
    if (entry.message) return;
    entry.message = true;
    // the writer and the identity form know two parties: every device of the link is the patient
    const from = /^patient-\d+$/.test(entry.doc.uploaded_by) ? "patient" : entry.doc.uploaded_by;
    hooks.onMessage?.({ id: entry.doc.id, type: entry.meta.type, from,
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
      progress.hidden = true; // the "downloaded" event updates the item
    }
  }

  // Uploads under way are noted in this tab's history entry (not in storage: it goes with the
  // tab), so that the page that comes after a reload can say which of them were not sent.
  function unsent(change) {
    const state = history.state && typeof history.state === "object" ? history.state : {};
    const names = change(Array.isArray(state.unsentUploads) ? state.unsentUploads : []);
    history.replaceState({ ...state, unsentUploads: names }, "");
  }
  function sayUnsentAfterReload() {
    const names = history.state && Array.isArray(history.state.unsentUploads) ? history.state.unsentUploads : [];
    if (!names.length) return;
    say(names.map((name) => t.not_sent_reload.replace("{name}", name)).join(" "), true);
    unsent(() => []);
  }

  // Resolves to true once `file` is in the box (a dropped file, a written document, a message).
  async function send(file) {
    if (!secret) { say(t.no_key, true); return false; }
    if (file.size > cfg.max_bytes) { say(t.too_large, true); return false; }
    progress.hidden = false;
    progress.value = 0;
    say(`${t.sending} ${file.name}`);
    sending += 1;
    unsent((names) => [...names, file.name]);
    try {
      const done = await endpoint.upload(file, secret, cfg.role, {
        onProgress: (f) => { progress.value = f; say(`${t.sending} ${file.name}`); },
        onWaiting: () => say(t.waiting_network, true),
        idleMs: cfg.upload_idle_ms,
      });
      say(`${t.sent_ok} ${file.name}`);
      later(() => upsert(done)); // the answer is the listing; the "added" event may come first
      return true;
    } catch (err) {
      const reasons = { 413: t.too_large, 409: t.over_quota, 507: t.server_full };
      say(reasons[err.status] || t.transfer_failed, true);
      return false;
    } finally {
      sending -= 1;
      unsent((names) => { const left = [...names]; left.splice(left.indexOf(file.name), 1); return left; });
      progress.hidden = true;
      if (input) input.value = "";
    }
  }

  window.addEventListener("beforeunload", (event) => {
    if (!sending) return;
    event.preventDefault(); // the browser asks "leave this page?"
    event.returnValue = "";
  });
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
  recover?.addEventListener("submit", (event) => {
    event.preventDefault();
    const link = document.getElementById("documents-recover-link").value.trim();
    later(async () => {
      if (!await rememberFromLink(cfg.consultation_id, cfg.patient_url, link)) {
        say(t.wrong_link, true);
        return;
      }
      secret = await panelSecret(cfg);
      recover.hidden = true;
      say("");
      for (const entry of known.values()) { // the listings carry the metadata: no request
        await open(entry);
        show(entry);
      }
    });
  });

  sayUnsentAfterReload();
  later(async () => {
    secret = await panelSecret(cfg);
    if (!secret && recover) recover.hidden = false;
    if (!secret && cfg.secret_source === "fragment") say(t.no_key, true);
  });
  listen(cfg.events, (event) => later(() => apply(event)), { onDown: () => connection(false) });
  window.addEventListener("offline", () => connection(false));
  window.addEventListener("online", () => later(refresh)); // what the open stream may have missed
  return { refresh: () => later(refresh), send };
}
