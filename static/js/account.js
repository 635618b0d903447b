// Account page: a password change re-wraps the documents key in this browser, with the current
// and the new password, before the form is sent (static/js/sealing.js); an account without a
// key gets one wrapped under the new password. The server refuses a change without it.
import { createClinicianKey, rewrapPrivateKey } from "./sealing.js";
import { pageData } from "./page.js";

const form = document.getElementById("password-form");
const { key } = pageData();
let prepared = false;

form.addEventListener("submit", async (event) => {
  if (prepared) return;
  event.preventDefault();
  const current = form.elements.current_password.value;
  const fresh = form.elements.new_password.value;
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    if (fresh === form.elements.confirm_password.value) {
      if (key) {
        const wrapped = await rewrapPrivateKey(key.wrapped, key.public_key, current, fresh);
        form.elements.new_wrapped_key.value = JSON.stringify(wrapped);
      } else {
        const made = await createClinicianKey(fresh);
        form.elements.new_public_key.value = made.publicKey;
        form.elements.new_wrapped_key.value = JSON.stringify(made.wrapped);
      }
    }
  } catch (err) {
    /* a wrong current password (WrongPassword): the server says so, and changes nothing */
  }
  prepared = true;
  form.submit();
});
