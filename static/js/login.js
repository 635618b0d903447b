// Login page: a new login starts with no key in this browser (logout lands here too; the
// cache of consultation secrets stays until a logout, see clinician_keys.js); before
// the form is sent, the documents key's wrapping key is derived from the password
// (static/js/clinician_keys.js). If that fails, the login goes on without it.
import { forgetKeys, prepareLogin } from "./clinician_keys.js";

const form = document.getElementById("login-form");
const forgotten = forgetKeys();
let prepared = false;

form.addEventListener("submit", async (event) => {
  if (prepared) return;
  event.preventDefault();
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    await forgotten;
    await prepareLogin(form);
  } catch (err) {
    /* the login goes on; the dashboard says the documents key is not available here */
  }
  prepared = true;
  form.submit();
});
