// Logging out makes this browser forget the consultation secrets it remembered and the clinician's keys
// (static/js/consultation_secrets.js), then logs out; the server's answer clears the site's storage too.
import { forgetAll } from "./consultation_secrets.js";

for (const form of document.querySelectorAll("form.logout")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try { await forgetAll(); } finally { form.submit(); }
  });
}
