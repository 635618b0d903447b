// The profile page's images: sent as the raw body (PUT /profile/images/{kind}) with the CSRF
// header; the server checks them (PNG or JPEG, limits), re-encodes them and says why it refuses.
import { pageData } from "./page.js";

const data = pageData();
const csrf = document.querySelector("input[name=csrf_token]").value;

function show(kind, present) {
  const preview = document.getElementById(`${kind}-preview`);
  preview.hidden = !present;
  if (present) preview.src = `/profile/images/${kind}?t=${Date.now()}`;
  document.querySelector(`[data-remove="${kind}"]`).hidden = !present;
}

async function send(kind, method, body) {
  const status = document.getElementById(`${kind}-status`);
  status.className = "";
  status.textContent = "";
  try {
    const response = await fetch(`/profile/images/${kind}`, {
      method, body, credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, Accept: "application/json",
                 ...(body ? { "Content-Type": body.type || "application/octet-stream" } : {}) },
    });
    const answer = await response.json();
    if (!response.ok) {
      status.className = "error";
      status.textContent = (answer.problems || []).map((p) => p.message.split(": ").slice(1).join(": ")).join(" ")
        || answer.error;
      return;
    }
    show(kind, answer[kind]);
    status.textContent = method === "PUT" ? data.i18n.saved : data.i18n.removed;
  } catch {
    status.className = "error";
    status.textContent = data.i18n.failed;
  }
}

for (const input of document.querySelectorAll("input[type=file][data-kind]")) {
  input.addEventListener("change", () => {
    if (input.files.length) send(input.dataset.kind, "PUT", input.files[0]);
    input.value = "";
  });
}
for (const button of document.querySelectorAll("[data-remove]")) {
  button.addEventListener("click", () => send(button.dataset.remove, "DELETE", null));
}
