// Browser client of the drop box's HTTP protocol (filedrop/http.py): encrypt while uploading
// in parts (a lost part is retried from the offset the server reports), download while
// decrypting. Keys come from the secret and the document id (static/js/ece.js).
//
// Every request of an upload (create, each part, complete) is tried again while no answer
// comes (offline, server restarting) or the server is busy (503), for as long as the server
// keeps an upload that receives nothing (`idleMs`: documents_upload_idle_minutes): an upload
// cut for minutes resumes from the server's offset when the network or the server returns.
import {
  DecryptionError, b64urlDecode, decryptMetadata, decryptStream, deriveContentIkm, deriveMetadataKey,
  encryptMetadata, encryptStream, paddedSize,
} from "./ece.js";
import { HttpError, retrying, retryAfterOf } from "./retry.js";

const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

export const PART_SIZE = 4 * 1024 * 1024; // bytes in memory per upload, whatever the file size
const DEFAULT_IDLE_MS = 5 * 60_000; // the server's window when the page does not say (standalone drops)

export class TransferError extends HttpError {
  constructor(message, status, retryAfter = null) {
    super(message, status, retryAfter);
    this.name = "TransferError";
  }
}

// No answer, or a server error that may pass (restarting, busy; a full disk does not pass soon)
function transient(err) {
  if (err instanceof TransferError) return err.status >= 500 && err.status !== 507;
  return err instanceof TypeError;
}

async function request(url, options, headers) {
  const response = await fetch(url, {
    credentials: "same-origin",
    ...options,
    headers: { Accept: "application/json", ...headers, ...(options.headers || {}) },
  });
  if (!response.ok) {
    let message = `HTTP ${response.status}`;
    try { message = (await response.json()).error || message; } catch (err) { /* not JSON */ }
    throw new TransferError(message, response.status, retryAfterOf(response));
  }
  return response;
}

// A place the drop box is mounted: `base` is e.g. "/j/TOKEN/documents"; `headers` carry the
// CSRF token (cookie-authenticated pages) or the owner token (standalone parts).
export class DropEndpoint {
  constructor(base, headers = {}) {
    this.base = base;
    this.headers = headers;
  }

  async list() {
    return (await (await request(this.base, {}, this.headers)).json()).documents;
  }

  // `patience`: { until() -> the Date.now() after which the server has dropped the upload,
  // onWait(err) } (see upload()).
  async create(size, extra = {}, patience = {}) {
    // a retry after an answer that got lost reserves a second id; the first one is never
    // written to and goes after the idle window
    return this.#retry(async () => (await request(this.base, {
      method: "POST",
      body: JSON.stringify({ size, ...extra }),
      headers: { "Content-Type": "application/json" },
    }, this.headers)).json(), patience);
  }

  #retry(task, { until = () => Infinity, onWait } = {}) {
    return retrying(task, { isTransient: transient, until: until(), onWait });
  }

  async offset(id, headers) {
    return (await (await request(`${this.base}/${id}/upload`, {}, { ...this.headers, ...headers })).json()).offset;
  }

  async sendPart(id, offset, bytes, headers, patience = {}) {
    const end = offset + bytes.length;
    await this.#retry(async (attempt) => {
      let from = offset;
      if (attempt > 0) { // the connection dropped: ask where the server stands; the part replaces itself
        from = await this.offset(id, headers);
        if (from === end) return;
        if (from > end || from < offset) throw new TransferError("the server does not hold this upload's start", 409);
      }
      await request(`${this.base}/${id}/upload`, {
        method: "PATCH",
        body: bytes.subarray(from - offset),
        headers: { "Content-Type": "application/octet-stream", "Upload-Offset": String(from) },
      }, { ...this.headers, ...headers });
    }, patience);
  }

  // Publishing again with the same metadata (our answer was lost) answers the same document.
  async complete(id, meta, headers, patience = {}) {
    return this.#retry(async () => (await request(`${this.base}/${id}/complete`, {
      method: "POST", body: meta, headers: { "Content-Type": "application/octet-stream" },
    }, { ...this.headers, ...headers })).json(), patience);
  }

  // Encrypt `file` under `secret` and upload it; onProgress(fraction). Returns the document.
  // onWaiting(err): a request got no answer and is being tried again; idleMs: how long the
  // server keeps an upload that receives nothing.
  async upload(file, secret, role, { onProgress = () => {}, extra = {}, onWaiting = () => {},
    idleMs = DEFAULT_IDLE_MS } = {}) {
    let moved = Date.now(); // the server's idle window runs from the last request that went through
    const patience = { until: () => moved + idleMs, onWait: onWaiting };
    const size = paddedSize(file.size);
    const created = await this.create(size, extra, patience);
    moved = Date.now();
    const own = created.owner_token ? { "X-Owner-Token": created.owner_token } : {};
    const ikm = await deriveContentIkm(secret, created.id);
    const reader = encryptStream(file, ikm).getReader();
    let offset = 0;
    let part = new Uint8Array(PART_SIZE);
    let filled = 0;
    const flush = async () => {
      if (!filled) return;
      await this.sendPart(created.id, offset, part.subarray(0, filled), own, patience);
      moved = Date.now();
      offset += filled;
      filled = 0;
      onProgress(offset / size);
    };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      let chunk = value;
      while (chunk.length) {
        const take = Math.min(chunk.length, PART_SIZE - filled);
        part.set(chunk.subarray(0, take), filled);
        filled += take;
        chunk = chunk.subarray(take);
        if (filled === PART_SIZE) {
          await flush();
          part = new Uint8Array(PART_SIZE);
        }
      }
    }
    await flush();
    const key = await deriveMetadataKey(secret, created.id);
    const meta = await encryptMetadata(key, {
      name: file.name || "document", type: file.type || "application/octet-stream", size: file.size, role,
    });
    const done = await this.complete(created.id, meta, own, patience);
    return { ...done, owner_token: created.owner_token };
  }

  async metadata(id, secret) {
    const blob = new Uint8Array(await (await request(`${this.base}/${id}/metadata`, {}, this.headers)).arrayBuffer());
    return openMetadataBlob(id, secret, blob);
  }

  // The metadata of a document as listed (the list, an "added" event): decrypted from the
  // listing when it carries it (no request), fetched otherwise.
  async openMetadata(doc, secret) {
    if (!doc.metadata) return this.metadata(doc.id, secret);
    return openMetadataBlob(doc.id, secret, b64urlDecode(doc.metadata));
  }

  // Download and decrypt; resolves to a Blob only when every record authenticated.
  async download(id, secret, type, { onProgress = () => {} } = {}) {
    const response = await request(`${this.base}/${id}`, {}, this.headers);
    const total = Number(response.headers.get("Content-Length")) || 0;
    let received = 0;
    const counted = response.body.pipeThrough(new TransformStream({
      transform(chunk, controller) {
        received += chunk.length;
        if (total) onProgress(received / total);
        controller.enqueue(chunk);
      },
    }));
    const plaintext = decryptStream(counted, await deriveContentIkm(secret, id));
    const parts = [];
    const reader = plaintext.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parts.push(value);
    }
    return new Blob(parts, { type: type || "application/octet-stream" });
  }
}

// The decrypted metadata; the file name loses bidirectional controls (U+202E would show
// "fdp.exe" reversed as "exe.pdf"), as names typed in the waiting room do on the server.
async function openMetadataBlob(id, secret, blob) {
  const meta = await decryptMetadata(await deriveMetadataKey(secret, id), blob);
  return typeof meta.name === "string" ? { ...meta, name: meta.name.replace(BIDI_CONTROLS, "") } : meta;
}

export function isDecryptionError(err) {
  return err instanceof DecryptionError;
}

// Offer a Blob to the user under its real name (one tap on a phone).
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name || "document";
  link.rel = "noopener";
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
