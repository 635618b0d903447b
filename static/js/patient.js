// Patient waiting room: follows our knock's status live; on admission, joins the call, and rejoins
// with a fresh token (no new knock) if Jitsi refuses a reconnect. Admitted while offline (or while
// the server restarts), it keeps asking for the call and enters it when the network returns.
import { pageData, getJSON, listen } from "./page.js";
import { joinCall } from "./jitsi.js";
import { joinDirectCall } from "./direct_call.js";
import { mountDocuments } from "./documents.js";
import { mountIdentity } from "./identity.js";
import { fromFragment } from "./consultation_secrets.js";
import { openNameText } from "./names.js";

const data = pageData();
const statusEl = document.getElementById("patient-status");
let source = null;
let call = null;
let documents = null;
// the name this browser typed, opened from the sealed name with the link's secret: the page hands
// it to the call itself (the server never had it in clear; the Jitsi token carries none)
const secret = fromFragment();
const ownName = secret && data.sealed_name
  ? openNameText(secret, data.sealed_name).catch(() => "") : Promise.resolve("");

function show(status) {
  statusEl.textContent = data.i18n[status] || data.i18n.waiting;
  document.body.dataset.status = status;
}

function leaveCall() {
  if (call) call.stop();
  call = null;
}

async function openCall() {
  if (call) return;
  const displayName = await ownName;
  if (call || document.body.dataset.status !== "admitted") return; // ended or declined meanwhile
  const join = data.direct ? (options) => joinDirectCall(data.direct, options) : joinCall; // no Jitsi: direct
  call = join({
    accessUrl: data.call_url,
    parentNode: document.getElementById("jitsi"),
    displayName,
    onOpen: () => {
      document.getElementById("call").hidden = false;
      document.getElementById("waiting").hidden = true;
      if (!documents) {
        const identity = mountIdentity(data.identity, (file) => documents.send(file));
        documents = mountDocuments(data.documents, { onMessage: identity.onMessage });
      }
    },
    // no access any more: declined, or the consultation is over (ended, or past its maximum duration
    // and about to be ended): never "admitted" again from here, so no loop
    onEnded: async () => {
      call = null;
      let status = "ended";
      try { status = (await getJSON(data.status_url)).status; } catch (err) { /* ended it is */ }
      onStatus(status === "declined" ? "declined" : "ended");
    },
    onWaiting: () => { statusEl.textContent = data.i18n.error; }, // asked again by itself
    onFailed: () => {
      leaveCall();
      statusEl.textContent = data.i18n.failed;
    },
  });
}

function onStatus(status) {
  show(status);
  if (status === "admitted") openCall();
  if (status === "ended" && documents) {
    // the call is over; the documents stay available until they are deleted: reload shows them
    leaveCall();
    window.location.reload();
    return;
  }
  if (status === "ended" || status === "declined") {
    if (source) source.close();
    leaveCall();
    document.getElementById("call").hidden = true;
    document.getElementById("waiting").hidden = false;
  }
}

source = listen(data.events_url, (event) => {
  if (event.type === "status") onStatus(event.status);
}, {
  // The stream dropped (network change, server restart): ask once; the stream comes back by
  // itself (static/js/page.js), and its first event is the knock's status.
  onDown: async () => {
    try { onStatus((await getJSON(data.status_url)).status); } catch (err) { statusEl.textContent = data.i18n.error; }
  },
});
show(data.status);
