// "Write a document", in the clinician's documents panel during the call: fill a template
// (prescription, report, certificate, fee receipt), preview the PDF the server renders in memory
// (POST /consultations/{id}/render, session + CSRF; shown from a blob: URL, which the call page's
// CSP lets a frame show), then send it: the documents panel encrypts it in this browser and drops
// it into the consultation's box like any file. The patient's identity can be asked for: the
// patient's page answers through the box (static/js/box_messages.js), and the fields fill in.
import { IDENTITY, IDENTITY_REQUEST, cleanIdentity, localDay, messageFile, readMessage } from "./box_messages.js";
import { WriterForm } from "./writer_form.js";

const $ = (id) => document.getElementById(id);

function fileName(response) {
  const match = /filename="([\w.-]+)"/.exec(response.headers.get("Content-Disposition") || "");
  return match ? match[1] : "document.pdf";
}

function localMoment(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${localDay(date)}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/**
 * cfg: the page data's `writer` (teleconsult/web/views/writer_panel.py), null when the
 * consultation has ended. sendFile(file) -> Promise<boolean>: the documents panel's send.
 * Returns the hook the documents panel calls with each message from the box.
 */
export function mountWriter(cfg, sendFile) {
  if (!cfg || !$("writer")) return { onMessage: () => {} };
  const t = cfg.i18n;
  const form = $("writer");
  const toggle = $("writer-toggle");
  const fields = new WriterForm(form, cfg);
  const status = $("writer-status");
  const previewBox = $("writer-preview");
  const frame = $("writer-frame");
  const sendButton = $("writer-send");
  const submit = form.querySelector("button[type=submit]");
  const seen = new Set();
  let pdf = null; // {blob, name, url} of the preview on screen, which is what Send sends
  let busy = false;
  let identityAt = -Infinity;

  function say(text, isError = false) {
    status.textContent = text;
    status.classList.toggle("error", isError);
  }

  function dropPreview() {
    if (!pdf) return false;
    URL.revokeObjectURL(pdf.url);
    pdf = null;
    previewBox.hidden = true;
    frame.removeAttribute("src");
    return true;
  }

  async function preview() {
    if (busy) return;
    busy = true;
    submit.disabled = true;
    dropPreview();
    fields.clearProblems();
    say(t.rendering);
    try {
      const response = await fetch(cfg.render_url, {
        method: "POST", credentials: "same-origin", body: JSON.stringify(fields.collect()),
        headers: { "Content-Type": "application/json", "X-CSRF-Token": cfg.csrf, Accept: "application/pdf, application/json" },
      });
      if (response.status === 400) {
        say("");
        fields.showProblems(await response.json().catch(() => ({})));
        return;
      }
      if (!response.ok) {
        say(response.status === 409 ? t.ended : [401, 403].includes(response.status) ? t.signed_out : t.failed, true);
        return;
      }
      const bytes = new Uint8Array(await response.arrayBuffer());
      const magic = new TextDecoder().decode(bytes.subarray(0, 5));
      if (!(response.headers.get("Content-Type") || "").startsWith("application/pdf") || magic !== "%PDF-") {
        say(t.failed, true);
        return;
      }
      const blob = new Blob([bytes], { type: "application/pdf" });
      pdf = { blob, name: fileName(response), url: URL.createObjectURL(blob) };
      frame.src = pdf.url;
      $("writer-open-pdf").href = pdf.url;
      previewBox.hidden = false;
      say(t.previewed);
    } catch (err) {
      say(t.failed, true);
    } finally {
      busy = false;
      submit.disabled = false;
    }
  }

  async function send() {
    if (!pdf || busy) return;
    busy = true;
    sendButton.disabled = true;
    const { blob, name } = pdf;
    try {
      if (await sendFile(new File([blob], name, { type: "application/pdf" }))) {
        dropPreview();
        say(`${t.sent} ${name}`);
      } else {
        say(t.not_sent, true);
      }
    } finally {
      busy = false;
      sendButton.disabled = false;
    }
  }

  async function askIdentity() {
    const button = $("writer-ask-identity");
    button.disabled = true;
    const sent = await sendFile(messageFile(IDENTITY_REQUEST, t.identity_request_name, {}));
    $("writer-identity-status").textContent = sent ? t.asked : t.ask_failed;
    button.disabled = false;
  }

  // The patient's answer: the latest one fills the patient's fields (the clinician checks them).
  async function onMessage(message) {
    if (message.type !== IDENTITY || message.from !== "patient" || seen.has(message.id)) return;
    seen.add(message.id);
    if (message.created_at < identityAt) return;
    identityAt = message.created_at;
    let identity;
    try { identity = cleanIdentity(await readMessage(message)); } catch (err) { return; }
    if (message.created_at < identityAt) return; // a later answer arrived meanwhile
    fields.fillIdentity(identity);
    $("writer-identity-status").textContent = t.identity_filled;
    if (dropPreview()) say(t.changed);
  }

  toggle.addEventListener("click", () => {
    const open = form.hidden;
    form.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    if (open) $("writer-template").focus();
  });
  $("writer-template").addEventListener("change", () => fields.showTemplate());
  $("writer-add-drug").addEventListener("click", () => fields.addLine("drug").querySelector("input").focus());
  $("writer-add-text").addEventListener("click", () => fields.addLine("text").querySelector("textarea").focus());
  $("writer-ask-identity").addEventListener("click", askIdentity);
  // what is sent is what was previewed: any change asks for a new preview
  for (const type of ["input", "change"]) {
    form.addEventListener(type, (event) => {
      if (event.target === frame) return;
      if (dropPreview()) say(t.changed);
    });
  }
  form.addEventListener("submit", (event) => { event.preventDefault(); preview(); });
  sendButton.addEventListener("click", send);

  $("writer-lang").value = cfg.lang;
  $("writer-held-at").value = localMoment(new Date());
  $("writer-birth-date").max = localDay(new Date());
  fields.addLine("drug");
  fields.showTemplate();
  return { onMessage };
}
