// The clinician's key pair in this browser (issue 13, docs/encryption.md section 9), owned here
// and nowhere else; the consultation secrets themselves are static/js/consultation_secrets.js's,
// which asks this module to seal and open them.
//
// - at login, before the form is sent, the wrapping key is derived from the password
//   (PBKDF2, static/js/sealing.js) and kept in IndexedDB as a non-extractable CryptoKey;
// - the first page that gets the clinician's wrapped key unwraps it once into a
//   non-extractable private key (kept in IndexedDB for the session) and forgets the wrapping key;
// - a login forgets the keys; a logout too (static/js/logout.js, then the server's
//   Clear-Site-Data). IndexedDB holds keys only, never a consultation secret.

import * as sealing from "./sealing.js";
import { b64urlDecode } from "./ece.js";

const DB_NAME = "teleconsult-keys";
const STORE = "keys";
const WRAPPING = "wrapping-key";
const CLINICIAN = "clinician-key";
// key id -> the promise of that key opened (or null): a page opens it once, even when many
// secrets ask for it at the same time (the first unwrap forgets the wrapping key)
const opening = new Map();

function request(operation) {
  return new Promise((resolve, reject) => {
    operation.onsuccess = () => resolve(operation.result);
    operation.onerror = () => reject(operation.error);
  });
}

async function store(mode) {
  const open = indexedDB.open(DB_NAME, 1);
  open.onupgradeneeded = () => open.result.createObjectStore(STORE);
  const db = await request(open);
  const transaction = db.transaction(STORE, mode);
  db.close(); // once the transaction is done: no connection left open
  return transaction.objectStore(STORE);
}

async function read(name) {
  return request((await store("readonly")).get(name));
}

async function write(name, value) {
  return request((await store("readwrite")).put(value, name));
}

async function remove(name) {
  return request((await store("readwrite")).delete(name));
}

/** Forget the keys (at each login, and at logout). The secrets cached by
 * consultation_secrets.js stay at a login: after a host's password reset, the browser that
 * created a consultation seals its S again to the new key. */
export async function forgetKeys() {
  opening.clear();
  try {
    await request((await store("readwrite")).clear());
  } catch (err) {
    /* no IndexedDB (private mode of some browsers): nothing was kept */
  }
}

/** At login, before the form is sent: derive the wrapping key with the account's parameters,
 * keep it, and add to the form a key pair wrapped under it, which the server keeps only if the
 * account has none yet (after the second factor). */
export async function prepareLogin(form) {
  const email = form.elements.email.value;
  const password = form.elements.password.value;
  const response = await fetch("/login/key", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json",
      "X-CSRF-Token": form.elements.csrf_token.value },
    body: JSON.stringify({ email }),
  });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const { salt, iterations } = await response.json();
  const wrappingKey = await sealing.deriveWrappingKey(password, salt, iterations);
  await write(WRAPPING, { salt, iterations, key: wrappingKey });
  const made = await sealing.createClinicianKey(password, { salt: b64urlDecode(salt), iterations, wrappingKey });
  form.elements.new_public_key.value = made.publicKey;
  form.elements.new_wrapped_key.value = JSON.stringify(made.wrapped);
}

async function unwrap(record) {
  try {
    const kept = await read(CLINICIAN);
    if (kept && kept.keyId === record.key_id) return { privateKey: kept.privateKey, publicKey: kept.publicKey };
    const wrapping = await read(WRAPPING);
    if (!wrapping || wrapping.salt !== record.wrapped.salt || wrapping.iterations !== record.wrapped.iterations) {
      return null;
    }
    const key = await sealing.unwrapPrivateKey(record.wrapped, record.public_key, wrapping.key);
    await write(CLINICIAN, { keyId: record.key_id, privateKey: key.privateKey, publicKey: key.publicKey });
    await remove(WRAPPING);
    return key;
  } catch (err) {
    return null; // WrongPassword, MalformedValue, or no IndexedDB: the page says the key is missing
  }
}

/** The clinician key ({privateKey, publicKey}) from the page's record ({public_key, key_id,
 * wrapped}, or null), or null when this browser cannot open it (not logged in here since). */
export async function clinicianKey(record) {
  if (!record) return null;
  if (!opening.has(record.key_id)) opening.set(record.key_id, unwrap(record));
  return opening.get(record.key_id);
}

/** S of consultation `consultationId` opened from its sealed form, or null when this browser
 * does not hold the key it was sealed to (or it was sealed to a key a password reset forgot). */
export async function openSealed(record, sealed, consultationId) {
  const key = await clinicianKey(record);
  if (!key || !sealed) return null;
  try {
    return await sealing.openSecret(key, sealed, consultationId);
  } catch (err) {
    return null; // SecretRejected, MalformedValue
  }
}

/** S sealed for consultation `consultationId` to the clinician's public key (from the record). */
export async function sealFor(record, secret, consultationId) {
  return sealing.sealSecret(record.public_key, secret, consultationId);
}
