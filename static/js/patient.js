// Patient waiting room: follows our knock's status live; on admission, fetches the call access.
import { pageData, getJSON, listen } from "./page.js";
import { embedCall } from "./jitsi.js";
import { mountDocuments } from "./documents.js";

const data = pageData();
const statusEl = document.getElementById("patient-status");
let source = null;
let inCall = false;
let documents = null;

function show(status) {
  statusEl.textContent = data.i18n[status] || data.i18n.waiting;
  document.body.dataset.status = status;
}

async function openCall() {
  if (inCall) return;
  inCall = true;
  try {
    const access = await getJSON(data.call_url);
    document.getElementById("call").hidden = false;
    document.getElementById("waiting").hidden = true;
    if (!documents) documents = mountDocuments(data.documents);
    window.teleconsultCall = await embedCall(access, document.getElementById("jitsi"), data.display_name);
  } catch (err) {
    inCall = false;
    statusEl.textContent = data.i18n.error;
  }
}

function onStatus(status) {
  show(status);
  if (status === "admitted") openCall();
  if (status === "ended" && documents) {
    // the call is over; the documents stay available until they are deleted: reload shows them
    if (window.teleconsultCall) window.teleconsultCall.dispose();
    window.location.reload();
    return;
  }
  if (status === "ended" || status === "declined") {
    if (source) source.close();
    if (window.teleconsultCall) window.teleconsultCall.dispose();
    document.getElementById("call").hidden = true;
    document.getElementById("waiting").hidden = false;
  }
}

source = listen(data.events_url, (event) => {
  if (event.type === "status") onStatus(event.status);
});
source.onerror = async () => {
  // The stream dropped (network change, server restart): ask once, EventSource reconnects by itself.
  try { onStatus((await getJSON(data.status_url)).status); } catch (err) { statusEl.textContent = data.i18n.error; }
};
show(data.status);
