// Standalone drop, recipient side: the secret is the link's fragment; nothing is saved
// unless every record authenticated.
import { MIN_SECRET_SIZE } from "./ece.js";
import { fromFragment } from "./consultation_secrets.js";
import { DropEndpoint, isDecryptionError, saveBlob } from "./dropbox.js";
import { pageData } from "./page.js";

const data = pageData();
const t = data.i18n;
const status = document.getElementById("receive-status");
const button = document.getElementById("receive-save");
const progress = document.getElementById("receive-progress");
const endpoint = new DropEndpoint("/d/files");

function fail(text) {
  status.textContent = text;
  status.classList.add("error");
}

async function main() {
  const secret = fromFragment(MIN_SECRET_SIZE);
  if (!secret) { fail(t.no_key); return; }
  let meta;
  try {
    meta = await endpoint.metadata(data.id, secret);
  } catch (err) {
    fail(err.status === 404 ? t.gone : isDecryptionError(err) ? t.decryption_failed : t.failed);
    return;
  }
  document.getElementById("receive-name").textContent = meta.name;
  status.textContent = t.ready;
  button.hidden = false;
  button.addEventListener("click", async () => {
    button.disabled = true;
    progress.hidden = false;
    try {
      const blob = await endpoint.download(data.id, secret, meta.type, { onProgress: (f) => { progress.value = f; } });
      saveBlob(blob, meta.name);
      status.textContent = t.saved;
    } catch (err) {
      fail(err.status === 404 ? t.gone : isDecryptionError(err) ? t.decryption_failed : t.failed);
    } finally {
      progress.hidden = true;
    }
  });
}

main();
