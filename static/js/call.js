// The clinician's call page: embeds Jitsi as moderator (or, without Jitsi, the direct call), ends the
// consultation, and leaves the call when it is ended elsewhere (another tab or device of the
// clinician, the patient's room, the maximum duration): the clinician's live events say so.
import { getJSON, listen, pageData, postJSON } from "./page.js";
import { isPassing, retrying } from "./retry.js";
import { joinCall } from "./jitsi.js";
import { joinDirectCall } from "./direct_call.js";
import { mountDocuments } from "./documents.js";
import { mountWriter } from "./writer.js";

const data = pageData();
const statusEl = document.getElementById("call-status");
let call = null;

function showEnded() {
  statusEl.textContent = data.i18n.ended;
  document.getElementById("end-call").disabled = true;
}

function start() {
  if (data.consultation.status === "ended") {
    showEnded();
    return;
  }
  const join = data.direct ? (options) => joinDirectCall(data.direct, options) : joinCall; // no Jitsi: direct
  call = join({
    accessUrl: data.call_url,
    parentNode: document.getElementById("jitsi"),
    onOpen: () => { statusEl.textContent = data.i18n.in_call; },
    onEnded: showEnded, // ended elsewhere (the patient's room, the maximum duration): no token any more
    onFailed: () => { statusEl.textContent = data.i18n.error; },
  });
}

document.getElementById("end-call").addEventListener("click", async () => {
  if (!window.confirm(data.i18n.confirm_end)) return;
  try { // a busy database or a blip does not lose the end: tried again for a minute, saying so
    await retrying(() => postJSON(data.end_url, data.csrf),
      { until: Date.now() + 60_000, onWait: () => { statusEl.textContent = data.i18n.busy; } });
  } catch (err) {
    if (isPassing(err)) {
      statusEl.textContent = data.i18n.not_done;
      return;
    }
  }
  if (call) call.stop();
  showEnded();
});

function endedElsewhere() {
  if (call) call.stop();
  call = null;
  showEnded();
}

// the clinician's live events (the dashboard's): an end is one; at each (re)connection, the
// state says whether it ended while this page was not listening
listen(data.events_url, async (event) => {
  if (event.type === "hello" || event.type === "resync") {
    try {
      const state = await getJSON(data.state_url);
      const here = state.consultations.find((c) => c.id === data.consultation.id);
      if (here && here.status === "ended") endedElsewhere();
    } catch (err) { /* the next hello asks again */ }
  } else if (event.consultation_id === data.consultation.id && event.status === "ended") {
    endedElsewhere();
  }
});

let documents = null;
const writer = mountWriter(data.writer, (file) => documents.send(file));
documents = mountDocuments(data.documents, { onMessage: writer.onMessage });
start();
