// The consultation secrets S (DESIGN section 5, docs/encryption.md section 9), owned here and
// nowhere else: where a page gets S (a link's fragment; this browser's cache; S sealed to the
// clinician's key, opened here), where S is kept (the cache; sealed to the clinician's key on
// the server, so that every device the clinician logs in on opens it), and forgetting it at logout.
//
// The cache is base64url text in this browser's localStorage, by consultation id; no other
// module touches that storage (tests/test_static_js.py). It is a cache, not the source of truth:
// logging in again on any device opens S from its sealed form. The clinician's keys (IndexedDB,
// static/js/clinician_keys.js) are loaded only when a clinician's page needs them: a patient's
// page never does.
import { CONSULTATION_SECRET_SIZE, b64urlDecode, b64urlEncode } from "./ece.js";

const STORAGE_KEY = "teleconsult.consultationSecrets";
const ID_BYTES = 16; // a consultation id drawn here: 22 base64url characters, like the server's
const keys = () => import("./clinician_keys.js");

function decode(text, minSize) {
  try {
    const secret = b64urlDecode(text);
    return secret.length >= minSize ? secret : null;
  } catch (err) {
    return null;
  }
}

function readAll() {
  try {
    const all = JSON.parse(localStorage.getItem(STORAGE_KEY) || "{}");
    return all && typeof all === "object" && !Array.isArray(all) ? all : {};
  } catch (err) {
    return {};
  }
}

function cached(consultationId) {
  const text = readAll()[consultationId];
  return typeof text === "string" ? decode(text, CONSULTATION_SECRET_SIZE) : null;
}

/** The secret in this page's address fragment (a patient link, a drop link), or null when the
 * fragment is missing, not base64url or shorter than `minSize` bytes. */
export function fromFragment(minSize = CONSULTATION_SECRET_SIZE, hash = window.location.hash) {
  const text = hash.startsWith("#") ? hash.slice(1) : hash;
  return text ? decode(text, minSize) : null;
}

/** The link for the patient: the link the server knows, the secret in its fragment. */
export function linkWithSecret(patientUrl, secret) {
  return `${patientUrl}#${b64urlEncode(secret)}`;
}

/** Remember the secret of one of the clinician's consultations in this browser. */
export async function remember(consultationId, secret) {
  const all = readAll();
  all[consultationId] = b64urlEncode(secret);
  localStorage.setItem(STORAGE_KEY, JSON.stringify(all));
}

/** The secret of one of the clinician's consultations ({id, sealed_secret}): cached here, or
 * opened from its sealed form with the clinician's key (`keyRecord`, the page's {public_key,
 * key_id, wrapped}) and cached; null when neither holds it (created before keys or elsewhere
 * without sealing, sealed to a key a password reset forgot, or this browser cannot open the key). */
export async function recall(consultation, keyRecord = null) {
  const secret = cached(consultation.id);
  if (secret || !consultation.sealed_secret || !keyRecord) return secret;
  const opened = await (await keys()).openSealed(keyRecord, consultation.sealed_secret, consultation.id);
  if (opened) await remember(consultation.id, opened);
  return opened;
}

/** Whether this browser opens secrets sealed to the clinician's key `keyRecord`. */
export async function keyOpensHere(keyRecord) {
  return keyRecord ? Boolean(await (await keys()).clinicianKey(keyRecord)) : false;
}

/** Create a consultation with a fresh secret: `create(body)` posts the body and resolves to the
 * consultation. With the clinician's key, the id is drawn here and S is sealed for it
 * (body {id, sealed_secret}); without one yet (it is made at login), S stays in this browser's
 * cache only (body undefined). Resolves to {consultation, link}. */
export async function createWithSecret(create, keyRecord = null) {
  const secret = crypto.getRandomValues(new Uint8Array(CONSULTATION_SECRET_SIZE));
  let body;
  if (keyRecord) {
    const id = b64urlEncode(crypto.getRandomValues(new Uint8Array(ID_BYTES)));
    body = { id, sealed_secret: await (await keys()).sealFor(keyRecord, secret, id) };
  }
  const consultation = await create(body);
  await remember(consultation.id, secret);
  return { consultation, link: linkWithSecret(consultation.patient_url, secret) };
}

/** A secret in this browser's cache whose sealed copy no device can open (sealed to a key a password
 * reset forgot, `key_lost`, or never sealed): seal it to the current key and `save(sealed)` (the
 * server keeps it; resolves to the consultation's new listing, or null when there was nothing to
 * do). Only when this browser opens that key itself: a key the server swapped is never used. */
export async function sealAgain(consultation, keyRecord, save) {
  if (!keyRecord || !(consultation.key_lost || !consultation.sealed_secret)) return null;
  const secret = cached(consultation.id);
  if (!secret || !await keyOpensHere(keyRecord)) return null;
  return save(await (await keys()).sealFor(keyRecord, secret, consultation.id));
}

/** The patient link of one of the clinician's consultations, or null if its secret is not here. */
export async function patientLink(consultation, keyRecord = null) {
  const secret = await recall(consultation, keyRecord);
  return secret ? linkWithSecret(consultation.patient_url, secret) : null;
}

/** The clinician pastes the patient link (consultation whose secret this browser cannot open):
 * remember its secret. False when the link is not this consultation's or carries no valid secret. */
export async function rememberFromLink(consultationId, patientUrl, link) {
  const at = link.indexOf("#");
  if (at < 0 || link.slice(0, at) !== patientUrl) return false;
  const secret = decode(link.slice(at + 1), CONSULTATION_SECRET_SIZE);
  if (!secret) return false;
  await remember(consultationId, secret);
  return true;
}

/** The secret a documents panel works with: the link's fragment on a patient's page; on the
 * clinician's page, the cached one or the one sealed to their key (cfg.sealed_secret, cfg.key). */
export async function panelSecret(cfg) {
  if (cfg.secret_source === "fragment") return fromFragment();
  return recall({ id: cfg.consultation_id, sealed_secret: cfg.sealed_secret }, cfg.key);
}

/** Logout: this browser forgets every consultation secret it remembered, and the clinician's keys. */
export async function forgetAll() {
  localStorage.removeItem(STORAGE_KEY);
  await (await keys()).forgetKeys();
}
