// Clinician dashboard: live list of consultations and knocks, one-click creation.
// The consultation secret S is drawn here and sealed to the clinician's key, so that every
// device the clinician logs in on opens it (static/js/clinician_keys.js).
import { el, pageData, getJSON, postJSON, listen } from "./page.js";
import { b64urlDecode, b64urlEncode } from "./ece.js";
import { sealSecret } from "./sealing.js";
import { cacheSecret, clinicianKey, consultationSecret, newSealedSecret } from "./clinician_keys.js";

const data = pageData();
const t = data.i18n;
const list = document.getElementById("consultations");
const badge = document.getElementById("knock-badge");
const seenKnocks = new Set();
const secrets = new Map(); // consultation id -> base64url(S), opened in this page
let keyRecord = data.state.key;
let key = await clinicianKey(keyRecord);

function fullLink(consultation) {
  const secret = secrets.get(consultation.id);
  return secret ? `${consultation.patient_url}#${secret}` : null;
}

async function openSecrets(state) {
  if (state.key?.key_id !== keyRecord?.key_id) {
    keyRecord = state.key;
    key = await clinicianKey(keyRecord);
  }
  for (const c of state.consultations) {
    if (c.status === "ended") continue;
    if (!secrets.has(c.id)) {
      const secret = await consultationSecret(c, key);
      if (secret) secrets.set(c.id, b64urlEncode(secret));
    }
    // a secret this browser still caches, sealed to a key a password reset forgot (or to none):
    // seal it to the current key, so that every device opens it again
    if (secrets.has(c.id) && key && keyRecord && (c.key_lost || !c.sealed_secret)) {
      try {
        const sealed = await sealSecret(keyRecord.public_key, b64urlDecode(secrets.get(c.id)), c.id);
        Object.assign(c, await postJSON(`/consultations/${c.id}/sealed-secret`, data.csrf, { sealed_secret: sealed }),
          { key_lost: false });
      } catch (err) { /* the next refresh tries again */ }
    }
  }
}

function missingLinkNote(c) {
  if (c.key_lost) return t.key_lost;
  if (c.sealed_secret && !key) return t.key_unavailable;
  return t.link_lost;
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
    if (!link) item.append(el("p", { class: "muted key-note" }, missingLinkNote(c)));
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
  // after a host reset of the password: say which open consultations lost their key on new devices
  const lost = state.consultations.filter((c) => c.status !== "ended" && c.key_lost && !secrets.has(c.id));
  const notice = document.getElementById("key-notice");
  notice.hidden = lost.length === 0;
  document.getElementById("key-notice-count").textContent = `${t.key_notice} ${lost.length}`;
  document.getElementById("key-unavailable").hidden = !keyRecord || Boolean(key);
  const waiting = state.consultations.flatMap((c) => c.knocks.filter((k) => k.status === "waiting"));
  ring(waiting);
}

async function refresh() {
  try {
    const state = await getJSON("/dashboard/state");
    await openSecrets(state);
    render(state);
  } catch (err) { /* next event retries */ }
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
    let consultation, secret;
    if (keyRecord) {
      const made = await newSealedSecret(keyRecord.public_key);
      consultation = await postJSON("/consultations", data.csrf, { id: made.id, sealed_secret: made.sealed });
      secret = made.secret;
    } else {
      // no key yet (it is made at login): S stays in this browser's cache only, as before
      consultation = await postJSON("/consultations", data.csrf);
      secret = crypto.getRandomValues(new Uint8Array(32));
    }
    cacheSecret(consultation.id, secret);
    secrets.set(consultation.id, b64urlEncode(secret));
    showLink(`${consultation.patient_url}#${b64urlEncode(secret)}`);
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

await openSecrets(data.state);
render(data.state);
listen("/dashboard/events", () => refresh());
