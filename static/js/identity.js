// The patient's side of "pre-fill the patient's identity": when the clinician asks (a message in
// the consultation's box, static/js/box_messages.js), a short form appears in the documents
// panel; what the patient types goes back encrypted in this browser, as a message the
// clinician's document writer reads (static/js/writer.js). The server sees only ciphertext.
import { IDENTITY, IDENTITY_REQUEST, cleanIdentity, localDay, messageFile } from "./box_messages.js";

const $ = (id) => document.getElementById(id);

/**
 * cfg: the page data's `identity` (teleconsult/web/views/writer_panel.py).
 * sendFile(file) -> Promise<boolean>: the documents panel's send.
 * Returns the hook the documents panel calls with each message from the box.
 */
export function mountIdentity(cfg, sendFile) {
  const form = $("identity");
  if (!cfg || !form) return { onMessage: () => {} };
  const t = cfg.i18n;
  const error = $("identity-error");
  const status = $("identity-status");
  let askedAt = -Infinity; // the clinician's latest request
  let answeredAt = -Infinity; // this patient's latest answer
  let dismissedAt = -Infinity;

  function update() {
    const show = askedAt > answeredAt && askedAt > dismissedAt;
    if (show && form.hidden) {
      form.hidden = false;
      $("identity-asked").textContent = t.asked;
      const banner = $("documents-new");
      const rect = form.getBoundingClientRect();
      if (banner && !(rect.top < window.innerHeight - 40 && rect.bottom > 0)) {
        banner.textContent = t.asked;
        banner.hidden = false;
      }
    } else if (!show) {
      form.hidden = true;
    }
  }

  function onMessage(message) {
    if (message.type === IDENTITY_REQUEST && message.from === "clinician") askedAt = Math.max(askedAt, message.created_at);
    else if (message.type === IDENTITY && message.from === "patient") answeredAt = Math.max(answeredAt, message.created_at);
    else return;
    update();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const typed = {
      last_name: $("identity-last-name").value, first_names: $("identity-first-names").value,
      sex: $("identity-sex").value, birth_date: $("identity-birth-date").value,
    };
    const identity = cleanIdentity(typed);
    error.textContent = "";
    for (const id of ["identity-last-name", "identity-first-names", "identity-birth-date"]) {
      $(id).removeAttribute("aria-invalid");
    }
    if (!identity.last_name || !identity.first_names) {
      if (!identity.last_name) $("identity-last-name").setAttribute("aria-invalid", "true");
      if (!identity.first_names) $("identity-first-names").setAttribute("aria-invalid", "true");
      error.textContent = t.required;
      return;
    }
    if (typed.birth_date && !identity.birth_date) {
      $("identity-birth-date").setAttribute("aria-invalid", "true");
      error.textContent = t.future;
      return;
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    const sent = await sendFile(messageFile(IDENTITY, t.identity_name, identity));
    button.disabled = false;
    if (!sent) { error.textContent = t.failed; return; }
    answeredAt = Math.max(answeredAt, askedAt);
    update();
    status.textContent = t.sent;
  });
  $("identity-later").addEventListener("click", () => {
    dismissedAt = askedAt;
    update();
  });
  $("identity-birth-date").max = localDay(new Date());
  return { onMessage };
}
