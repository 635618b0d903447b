// Keeps the link's fragment (the consultation secret) across the knock: the form posts to a URL
// carrying the same fragment, which browsers never send to the server but keep on the redirect.
// The typed name is never posted: it is sealed to the consultation secret (static/js/names.js)
// and only the sealed name goes in the form.
import { fromFragment } from "./consultation_secrets.js";
import { sealNameText } from "./names.js";

const form = document.getElementById("knock-form");
if (form && window.location.hash) form.action = form.getAttribute("action") + window.location.hash;
if (form) {
  const typed = document.getElementById("display_name");
  const sealed = document.getElementById("sealed_name");
  const nameError = document.getElementById("name-error");
  const linkError = document.getElementById("link-error");
  typed.addEventListener("input", () => { sealed.value = ""; });
  form.addEventListener("submit", async (event) => {
    if (sealed.value) return; // sealed just below: this is the real submission
    event.preventDefault();
    nameError.hidden = true;
    linkError.hidden = true;
    const secret = fromFragment();
    if (!secret) {
      linkError.hidden = false;
      return;
    }
    try {
      sealed.value = await sealNameText(secret, typed.value);
    } catch (err) {
      nameError.hidden = false;
      typed.focus();
      return;
    }
    form.submit(); // validated already: this submission fires no second submit event
  });
}
// The equipment test comes back to this page: it carries the fragment in its own fragment.
const precall = document.getElementById("precall-link");
if (precall && window.location.hash) precall.href = precall.getAttribute("href") + window.location.hash;
