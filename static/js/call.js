// The clinician's call page: embeds Jitsi as moderator, ends the consultation.
import { pageData, getJSON, postJSON } from "./page.js";
import { embedCall } from "./jitsi.js";
import { mountDocuments } from "./documents.js";

const data = pageData();
const statusEl = document.getElementById("call-status");

async function start() {
  if (data.consultation.status === "ended") {
    statusEl.textContent = data.i18n.ended;
    return;
  }
  try {
    const access = await getJSON(data.call_url);
    window.teleconsultCall = await embedCall(access, document.getElementById("jitsi"), "");
    statusEl.textContent = data.i18n.in_call;
  } catch (err) {
    statusEl.textContent = data.i18n.error;
  }
}

document.getElementById("end-call").addEventListener("click", async () => {
  if (!window.confirm(data.i18n.confirm_end)) return;
  await postJSON(data.end_url, data.csrf);
  if (window.teleconsultCall) window.teleconsultCall.dispose();
  statusEl.textContent = data.i18n.ended;
  document.getElementById("end-call").disabled = true;
});

mountDocuments(data.documents);
start();
