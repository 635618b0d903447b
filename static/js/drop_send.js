// Standalone drop, sender side: a random secret per file, the link /d/{id}#{secret}.
import { b64urlEncode } from "./ece.js";
import { DropEndpoint } from "./dropbox.js";
import { pageData } from "./page.js";

const data = pageData();
const t = data.i18n;
const status = document.getElementById("drop-status");
const progress = document.getElementById("drop-progress");
let sent = null;

document.getElementById("drop-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = document.getElementById("drop-file").files[0];
  if (!file) return;
  const secret = crypto.getRandomValues(new Uint8Array(32));
  const endpoint = new DropEndpoint("/d/files", { "X-CSRF-Token": data.csrf });
  progress.hidden = false;
  status.textContent = t.sending;
  status.classList.remove("error");
  try {
    sent = await endpoint.upload(file, secret, "standalone", {
      onProgress: (f) => { progress.value = f; },
      extra: {
        expires_in: Number(document.getElementById("drop-expiry").value),
        max_downloads: Number(document.getElementById("drop-downloads").value),
      },
    });
    document.getElementById("drop-link").value = `${window.location.origin}/d/${sent.id}#${b64urlEncode(secret)}`;
    document.getElementById("drop-result").hidden = false;
    status.textContent = t.ready;
  } catch (err) {
    status.textContent = err.status === 413 ? t.too_large : t.failed;
    status.classList.add("error");
  } finally {
    progress.hidden = true;
  }
});

document.getElementById("drop-copy").addEventListener("click", async () => {
  const input = document.getElementById("drop-link");
  try { await navigator.clipboard.writeText(input.value); } catch (err) { input.select(); document.execCommand("copy"); }
  status.textContent = t.copied;
});

document.getElementById("drop-delete").addEventListener("click", async () => {
  if (!sent) return;
  const response = await fetch(`/api/drop/files/${sent.id}`, {
    method: "DELETE", headers: { "X-Owner-Token": sent.owner_token }, credentials: "omit",
  });
  if (response.ok) {
    status.textContent = t.deleted;
    document.getElementById("drop-result").hidden = true;
  }
});
