// The clinician's keys and consultation secrets in this browser (issue 13, docs/encryption.md
// section 9). The one module that owns them:
//
// - at login, before the form is sent, the wrapping key is derived from the password
//   (PBKDF2, static/js/sealing.js) and kept in IndexedDB as a non-extractable CryptoKey;
// - the first page that gets the clinician's wrapped key unwraps it once into a
//   non-extractable private key (kept in IndexedDB for the session) and forgets the wrapping key;
// - a consultation's secret S is opened from its sealed form with that key; localStorage only
//   caches S (so that the browser that created a consultation still holds it after a password
//   reset forgot the key, and seals it again to the new one), and everything is forgotten at
//   logout (the server's Clear-Site-Data).

import * as sealing from "./sealing.js";
import { b64urlDecode, b64urlEncode } from "./ece.js";

const DB_NAME = "teleconsult-keys";
const STORE = "keys";
const WRAPPING = "wrapping-key";
const CLINICIAN = "clinician-key";
const SECRETS_CACHE = "teleconsult.consultationSecrets"; // localStorage: {consultation id: base64url(S)}
const ID_BYTES = 16; // a consultation id drawn here: 22 base64url characters, like the server's

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
  return db.transaction(STORE, mode).objectStore(STORE);
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

/** Forget the keys (at each login). The cache of secrets stays: after a host's password
 * reset, the browser that created a consultation seals its S again to the new key. A logout
 * clears both (Clear-Site-Data). */
export async function forgetKeys() {
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

/** The clinician key ({privateKey, publicKey}) from the page's record ({public_key, key_id,
 * wrapped}, or null), or null when this browser cannot open it (not logged in here since). */
export async function clinicianKey(record) {
  if (!record) return null;
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

function cached() {
  try {
    return JSON.parse(localStorage.getItem(SECRETS_CACHE) || "{}");
  } catch (err) {
    return {};
  }
}

/** Keep S in this browser's cache (forgotten at logout). */
export function cacheSecret(consultationId, secret) {
  const all = cached();
  all[consultationId] = b64urlEncode(secret);
  localStorage.setItem(SECRETS_CACHE, JSON.stringify(all));
}

/** S of a consultation ({id, sealed_secret}): from the cache, or opened with the key; null
 * when neither holds it. */
export async function consultationSecret(consultation, key) {
  const text = cached()[consultation.id];
  if (text) {
    try { return b64urlDecode(text); } catch (err) { /* a damaged cache entry: open it again */ }
  }
  if (!consultation.sealed_secret || !key) return null;
  try {
    const secret = await sealing.openSecret(key, consultation.sealed_secret, consultation.id);
    cacheSecret(consultation.id, secret);
    return secret;
  } catch (err) {
    return null; // SecretRejected: sealed to a key a password reset forgot
  }
}

/** A new consultation's id and secret, S sealed for it to the clinician's public key. */
export async function newSealedSecret(publicKey) {
  const id = b64urlEncode(crypto.getRandomValues(new Uint8Array(ID_BYTES)));
  const secret = crypto.getRandomValues(new Uint8Array(sealing.SECRET_SIZE));
  return { id, secret, sealed: await sealing.sealSecret(publicKey, secret, id) };
}
