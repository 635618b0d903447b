// Logging out makes this browser forget the consultation secrets it remembered, then logs out.
import { forgetAll } from "./consultation_secrets.js";

for (const form of document.querySelectorAll("form.logout")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try { await forgetAll(); } finally { form.submit(); }
  });
}
