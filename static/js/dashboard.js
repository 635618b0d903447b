// Clinician dashboard: live list of consultations and knocks, one-click creation.
// The consultation secret S is generated here and kept in this browser's localStorage only.
import { el, pageData, getJSON, postJSON, listen } from "./page.js";

const SECRETS_KEY = "teleconsult.consultationSecrets";
const data = pageData();
const t = data.i18n;
const list = document.getElementById("consultations");
const badge = document.getElementById("knock-badge");
const seenKnocks = new Set();

function b64url(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function secrets() {
  try { return JSON.parse(localStorage.getItem(SECRETS_KEY) || "{}"); } catch (err) { return {}; }
}

function rememberSecret(id, secret) {
  const all = secrets();
  all[id] = secret;
  localStorage.setItem(SECRETS_KEY, JSON.stringify(all));
}

function fullLink(consultation) {
  const secret = secrets()[consultation.id];
  return secret ? `${consultation.patient_url}#${secret}` : null;
}

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
  return el("li", { class: `knock knock-${knock.status}` },
    el("strong", {}, knock.display_name), ` ${label} `, actions);
}

function consultationItem(c) {
  const link = fullLink(c);
  const item = el("li", { class: `consultation status-${c.status}`, "data-id": c.id },
    el("span", { class: "status" }, t[c.status] || c.status),
    el("span", { class: "muted" }, ` ${t.created_at} ${new Date(c.created_at * 1000).toLocaleTimeString(document.documentElement.lang, { hour: "2-digit", minute: "2-digit" })}`));
  if (c.status !== "ended") {
    const actions = el("div", { class: "actions" },
      el("a", { class: "button primary", href: `/consultations/${c.id}` }, t.join),
      link ? el("button", { type: "button", class: "secondary", onclick: () => showLink(link) }, t.copy_link) : null,
      el("button", { type: "button", class: "danger", onclick: () => endConsultation(c.id) }, t.end));
    item.append(actions);
    if (!link) item.append(el("p", { class: "muted" }, t.link_lost));
    // who is in the call, from the Jitsi host's room events ("presence" events refresh this list)
    const present = [c.presence && c.presence.patient ? t.patient_present : null,
      c.presence && c.presence.clinician ? t.clinician_present : null].filter(Boolean);
    if (present.length) {
      item.append(el("p", { class: "presence", "data-presence": present.length === 2 ? "both"
        : (c.presence.patient ? "patient" : "clinician") }, present.join(" · ")));
    }
    if (c.knocks.length) item.append(el("ul", { class: "knocks" }, ...c.knocks.map((k) => knockItem(c, k))));
  }
  return item;
}

function ring(waiting) {
  const fresh = waiting.filter((k) => !seenKnocks.has(k.id));
  fresh.forEach((k) => seenKnocks.add(k.id));
  badge.hidden = waiting.length === 0;
  badge.textContent = waiting.length ? `${waiting.map((k) => k.display_name).join(", ")} ${t.knocking}` : "";
  document.title = waiting.length ? `(${waiting.length}) ${document.title.replace(/^\(\d+\) /, "")}`
    : document.title.replace(/^\(\d+\) /, "");
  if (!fresh.length) return;
  document.getElementById("ring").play().catch(() => {});
  if ("Notification" in window && Notification.permission === "granted") {
    new Notification(t.knock_title, { body: fresh.map((k) => k.display_name).join(", "), tag: "knock" });
  }
}

function render(state) {
  list.replaceChildren(...state.consultations.map(consultationItem));
  document.getElementById("empty").hidden = state.consultations.length > 0;
  const waiting = state.consultations.flatMap((c) => c.knocks.filter((k) => k.status === "waiting"));
  ring(waiting);
}

async function refresh() {
  try { render(await getJSON("/dashboard/state")); } catch (err) { /* next event retries */ }
}

async function decide(consultationId, knockId, action) {
  await postJSON(`/consultations/${consultationId}/knocks/${knockId}/${action}`, data.csrf);
  await refresh();
}

async function endConsultation(id) {
  await postJSON(`/consultations/${id}/end`, data.csrf);
  await refresh();
}

document.getElementById("new-consultation").addEventListener("click", async () => {
  try {
    const consultation = await postJSON("/consultations", data.csrf);
    const secret = b64url(crypto.getRandomValues(new Uint8Array(32)));
    rememberSecret(consultation.id, secret);
    showLink(`${consultation.patient_url}#${secret}`);
    await refresh();
    document.getElementById("new-link-url").focus();
  } catch (err) {
    window.alert(t.error);
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

render(data.state);
listen("/dashboard/events", () => refresh());
