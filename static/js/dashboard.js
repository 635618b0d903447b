// Clinician dashboard: live list of consultations and knocks, one-click creation.
// The consultation secret S is drawn, sealed to the clinician's key, opened and kept by
// static/js/consultation_secrets.js, so that every device the clinician logs in on shows the link.
//
// Live: the whole state (/dashboard/state) is fetched only when the event stream (re)connects
// ("hello"), after the hub dropped events for us ("resync"), or when an event names a
// consultation this page does not hold. Every other event carries what changed (a consultation
// created or ended, a knock, a decision, who is in the call) and updates that consultation.
import { el, pageData, getJSON, postJSON, listen } from "./page.js";
import { createWithSecret, keyOpensHere, patientLink, recall, sealAgain } from "./consultation_secrets.js";
import { openNameText } from "./names.js";
import { isPassing, retrying } from "./retry.js";

const ACTION_PATIENCE_MS = 60_000; // an admit or an end is tried again this long, then the page says so
const LIMIT = 50; // the state lists the 50 most recent consultations
const NOBODY = { patient: false, clinician: false };
const OPEN_KNOCKS = ["waiting", "admitted"];
const data = pageData();
const t = data.i18n;
const list = document.getElementById("consultations");
const badge = document.getElementById("knock-badge");
const seenKnocks = new Set();
const links = new Map(); // consultation id -> its patient link shown here, or null
const resealing = new Set(); // consultations sealed again since the state was fetched (once each)
let keyRecord = data.state.key; // the clinician's key: {public_key, key_id, wrapped}, or null
let keyHere = false; // whether this browser opens it
const openedNames = new Map(); // knock id -> the patient's name, opened once with the consultation's secret
let consultations = []; // newest first, as the state lists them; each one is shown in the list
// events, answers and fetches change the list one after the other, in arrival order
let chain = Promise.resolve();
const later = (task) => { chain = chain.then(task).catch(() => {}); return chain; };

function showLink(link) {
  const section = document.getElementById("new-link");
  section.hidden = false;
  document.getElementById("new-link-url").value = link;
  const body = `${t.mail_body}\n${link}`;
  document.getElementById("mail-link").href =
    `mailto:?subject=${encodeURIComponent(t.mail_subject)}&body=${encodeURIComponent(body)}`;
  document.getElementById("sms-link").href = `sms:?&body=${encodeURIComponent(body)}`;
}

function knockItem(consultation, knock) {
  const actions = el("span", { class: "actions" });
  if (knock.status === "waiting") {
    actions.append(
      el("button", { type: "button", class: "primary", "data-action": "admit",
        onclick: () => decide(consultation.id, knock.id, "admit") }, t.admit),
      el("button", { type: "button", class: "secondary", "data-action": "decline",
        onclick: () => decide(consultation.id, knock.id, "decline") }, t.decline));
  }
  const label = knock.status === "waiting" ? t.knocking : t.admitted;
  // one link opened on several devices: each knock after the first says so (the same name twice
  // would otherwise look like one patient knocking twice)
  const device = consultation.knocks.indexOf(knock) + 1;
  const note = device > 1 ? el("span", { class: "same-link muted" }, t.same_link.replace("{n}", String(device))) : null;
  return el("li", { class: `knock knock-${knock.status}` },
    el("strong", {}, nameOf(knock)), note ? " " : null, note, ` ${label} `, actions);
}

function nameOf(knock) {
  return openedNames.get(knock.id) || t.unnamed_patient;
}

// The knocks' names arrive sealed to the consultation secret (static/js/names.js): open each once.
// Without the secret on this device, or a sealed name that does not open, a neutral label.
async function openNames(c) {
  const sealed = c.knocks.filter((k) => k.sealed_name && !openedNames.has(k.id));
  if (!sealed.length) return;
  const secret = await recall(c, keyRecord);
  if (!secret) return;
  for (const k of sealed) {
    try { openedNames.set(k.id, await openNameText(secret, k.sealed_name)); } catch (err) { /* neutral label */ }
  }
}

function consultationItem(c, link) {
  const item = el("li", { class: `consultation status-${c.status}`, "data-id": c.id },
    el("span", { class: "status" }, t[c.status] || c.status),
    el("span", { class: "muted" }, ` ${t.created_at} ${new Date(c.created_at * 1000).toLocaleTimeString(document.documentElement.lang, { hour: "2-digit", minute: "2-digit" })}`));
  if (c.status !== "ended") {
    const actions = el("div", { class: "actions" },
      el("a", { class: "button primary", href: `/consultations/${c.id}` }, t.join),
      link ? el("button", { type: "button", class: "secondary", onclick: () => showLink(link) }, t.copy_link) : null,
      el("button", { type: "button", class: "danger", onclick: () => endConsultation(c.id) }, t.end));
    item.append(actions);
    if (!link) item.append(el("p", { class: "muted key-note" }, missingLinkNote(c)));
    // who is in the call, from the Jitsi host's room events ("presence" events update it)
    const present = [c.presence.patient ? t.patient_present : null,
      c.presence.clinician ? t.clinician_present : null].filter(Boolean);
    if (present.length) {
      item.append(el("p", { class: "presence", "data-presence": present.length === 2 ? "both"
        : (c.presence.patient ? "patient" : "clinician") }, present.join(" · ")));
    }
    if (c.knocks.length) item.append(el("ul", { class: "knocks" }, ...c.knocks.map((k) => knockItem(c, k))));
  }
  return item;
}

function missingLinkNote(c) {
  if (c.key_lost) return t.key_lost;
  if (c.sealed_secret && !keyHere) return t.key_unavailable;
  return t.link_lost;
}

// A secret still in this browser's cache, sealed to a key a password reset forgot (or to none):
// sealed again to the current key, so that every device opens it (once per state fetched).
async function sealAgainIfLost(c) {
  if (c.status === "ended" || resealing.has(c.id)) return;
  resealing.add(c.id);
  try {
    const resealed = await sealAgain(c, keyRecord,
      (sealed) => postJSON(`/consultations/${c.id}/sealed-secret`, data.csrf, { sealed_secret: sealed }));
    if (resealed) Object.assign(c, resealed, { key_lost: false });
  } catch (err) { /* the next state fetched tries again */ }
}

async function itemOf(c) {
  await openNames(c);
  const link = c.status === "ended" ? null : await patientLink(c, keyRecord);
  if (link) await sealAgainIfLost(c);
  links.set(c.id, link);
  return consultationItem(c, link);
}

// After a host reset of the password: say which open consultations lost their key on new
// devices; and whether this browser cannot open the clinician's key at all.
function notices() {
  const lost = consultations.filter((c) => c.status !== "ended" && c.key_lost && !links.get(c.id));
  document.getElementById("key-notice").hidden = lost.length === 0;
  document.getElementById("key-notice-count").textContent = `${t.key_notice} ${lost.length}`;
  document.getElementById("key-unavailable").hidden = !keyRecord || keyHere;
}

function ring() {
  const waiting = consultations.flatMap((c) => c.knocks.filter((k) => k.status === "waiting"));
  const fresh = waiting.filter((k) => !seenKnocks.has(k.id));
  fresh.forEach((k) => seenKnocks.add(k.id));
  badge.hidden = waiting.length === 0;
  badge.textContent = waiting.length ? `${waiting.map(nameOf).join(", ")} ${t.knocking}` : "";
  document.title = waiting.length ? `(${waiting.length}) ${document.title.replace(/^\(\d+\) /, "")}`
    : document.title.replace(/^\(\d+\) /, "");
  if (!fresh.length) return;
  document.getElementById("ring").play().catch(() => {});
  if ("Notification" in window && Notification.permission === "granted") {
    new Notification(t.knock_title, { body: fresh.map(nameOf).join(", "), tag: "knock" });
  }
}

function normal(c) {
  const ended = c.status === "ended"; // an ended consultation has no open knock, nobody in its call
  return { ...c, knocks: ended ? [] : (c.knocks || []), presence: ended ? NOBODY : (c.presence || NOBODY) };
}

async function render(state) {
  keyRecord = state.key;
  keyHere = await keyOpensHere(keyRecord);
  resealing.clear();
  links.clear();
  consultations = state.consultations.map(normal);
  list.replaceChildren(...await Promise.all(consultations.map(itemOf)));
  document.getElementById("empty").hidden = consultations.length > 0;
  ring();
  notices();
}

// Draw one consultation again (or for the first time, at its place in the list).
async function show(c) {
  const item = await itemOf(c);
  const old = [...list.children].find((node) => node.dataset.id === c.id);
  if (old) old.replaceWith(item);
  else list.insertBefore(item, list.children[consultations.indexOf(c)] || null);
  document.getElementById("empty").hidden = consultations.length > 0;
  ring();
  notices();
}

function find(id) {
  return consultations.find((c) => c.id === id);
}

async function refresh() {
  try { await render(await getJSON("/dashboard/state")); } catch (err) { /* the next hello retries */ }
}

// The consultation as it is now: `consultation` is its listing (created, or the answer to our
// action); without it, only `status` is known.
async function onConsultation({ consultation_id: id, status, consultation }) {
  let c = find(id);
  if (!c && !consultation) return refresh();
  if (!c) {
    c = normal(consultation);
    consultations.unshift(c);
    consultations.sort((a, b) => b.created_at - a.created_at);
    for (const gone of consultations.splice(LIMIT)) {
      [...list.children].find((node) => node.dataset.id === gone.id)?.remove();
      links.delete(gone.id);
    }
  } else {
    Object.assign(c, consultation || {}, { status });
    Object.assign(c, normal(c));
  }
  if (consultations.includes(c)) await show(c);
  return undefined;
}

function putKnock(c, knock) {
  c.knocks = c.knocks.filter((k) => k.id !== knock.id);
  if (OPEN_KNOCKS.includes(knock.status)) {
    c.knocks.push(knock);
    c.knocks.sort((a, b) => a.created_at - b.created_at);
  }
}

async function onKnock({ consultation_id: id, status, knock }) {
  const c = find(id);
  if (!c || !knock) return refresh();
  if (status) c.status = status;
  putKnock(c, knock);
  return show(c);
}

async function onPresence({ consultation_id: id, status, presence }) {
  const c = find(id);
  if (!c) return undefined; // a consultation past the listed ones: nothing shown changes
  c.status = status || c.status;
  c.presence = c.status === "ended" || !presence ? NOBODY : presence;
  return show(c);
}

async function apply(event) {
  switch (event.type) {
    case "hello": case "resync": return refresh();
    case "consultation": return onConsultation(event);
    case "knock": return onKnock(event);
    case "presence": return onPresence(event);
    default: return undefined; // nothing this page shows
  }
}

function tell(text, isError = false) {
  const status = document.getElementById("dashboard-status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

// A POST that a busy database (503 + Retry-After) or a lost connection does not lose: tried
// again, saying so, and a clear message if it never went through. `safe`: which failures may be
// sent again (an admit or an end changes nothing the second time; a creation only when refused
// unwritten, 503). `body`: the JSON body, if any.
async function act(url, safe = isPassing, body = undefined) {
  try {
    const answer = await retrying(() => postJSON(url, data.csrf, body),
      { isTransient: safe, until: Date.now() + ACTION_PATIENCE_MS, onWait: () => tell(t.busy, true) });
    tell("");
    return answer;
  } catch (err) {
    tell(safe(err) || isPassing(err) ? t.not_done : "", true);
    throw err;
  }
}

async function decide(consultationId, knockId, action) {
  try {
    const knock = await act(`/consultations/${consultationId}/knocks/${knockId}/${action}`);
    later(async () => { // the consultation's status comes with the "knock" event
      const c = find(consultationId);
      if (c) { putKnock(c, knock); await show(c); }
    });
  } catch (err) {
    if (err.status === 404 || err.status === 409) tell(t.changed_elsewhere, true); // another tab or device
    later(refresh); // decided elsewhere meanwhile, or ended: show what is true now
  }
}

async function endConsultation(id) {
  try {
    const ended = await act(`/consultations/${id}/end`);
    later(() => onConsultation({ consultation_id: id, status: ended.status, consultation: ended }));
  } catch (err) {
    later(refresh);
  }
}

document.getElementById("new-consultation").addEventListener("click", async () => {
  try {
    // sent again only when refused unwritten (503): the same id and sealed secret
    const { consultation, link } = await createWithSecret(
      (body) => act("/consultations", (err) => err.status === 503, body), keyRecord);
    showLink(link);
    later(() => onConsultation({ consultation_id: consultation.id, status: consultation.status, consultation }));
    document.getElementById("new-link-url").focus();
  } catch (err) {
    if (!isPassing(err)) window.alert(t.error);
  }
});

document.getElementById("copy-link").addEventListener("click", async () => {
  const input = document.getElementById("new-link-url");
  try { await navigator.clipboard.writeText(input.value); } catch (err) { input.select(); document.execCommand("copy"); }
  document.getElementById("copy-status").textContent = t.copied;
});

const notifyButton = document.getElementById("enable-notifications");
if (!("Notification" in window) || Notification.permission !== "default") notifyButton.hidden = true;
notifyButton.addEventListener("click", async () => {
  await Notification.requestPermission();
  notifyButton.hidden = true;
});

later(() => render(data.state));
listen("/dashboard/events", (event) => later(() => apply(event)));
