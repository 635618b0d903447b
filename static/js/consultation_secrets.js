// The consultation secrets S (DESIGN section 5), owned here and nowhere else: read from a link's
// fragment, remembered for the clinician's own consultations, forgotten at logout.
//
// Today a remembered secret is base64url text in this browser's localStorage, by consultation
// id; no other module touches that storage (tests/test_live_pages_browser.py checks it). The
// functions that read or write it are async, so that keeping S sealed to the clinician's key
// instead changes this module only, not the pages.
import { CONSULTATION_SECRET_SIZE, b64urlDecode, b64urlEncode } from "./ece.js";

const STORAGE_KEY = "teleconsult.consultationSecrets";

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

/** The remembered secret of a consultation, or null (created on another device, or forgotten). */
export async function recall(consultationId) {
  const text = readAll()[consultationId];
  return typeof text === "string" ? decode(text, CONSULTATION_SECRET_SIZE) : null;
}

/** A fresh secret for a consultation just created, remembered; resolves to the patient link. */
export async function newPatientLink(consultation) {
  const secret = crypto.getRandomValues(new Uint8Array(CONSULTATION_SECRET_SIZE));
  await remember(consultation.id, secret);
  return linkWithSecret(consultation.patient_url, secret);
}

/** The patient link of one of the clinician's consultations, or null if its secret is not here. */
export async function patientLink(consultation) {
  const secret = await recall(consultation.id);
  return secret ? linkWithSecret(consultation.patient_url, secret) : null;
}

/** The clinician pastes the patient link (consultation created on another device): remember its
 * secret. False when the link is not this consultation's or carries no valid secret. */
export async function rememberFromLink(consultationId, patientUrl, link) {
  const at = link.indexOf("#");
  if (at < 0 || link.slice(0, at) !== patientUrl) return false;
  const secret = decode(link.slice(at + 1), CONSULTATION_SECRET_SIZE);
  if (!secret) return false;
  await remember(consultationId, secret);
  return true;
}

/** The secret a documents panel works with: the link's fragment on a patient's page, the
 * remembered one on the clinician's page. */
export async function panelSecret({ secret_source: source, consultation_id: consultationId }) {
  return source === "fragment" ? fromFragment() : recall(consultationId);
}

/** Logout: this browser forgets every consultation secret it remembered. */
export async function forgetAll() {
  localStorage.removeItem(STORAGE_KEY);
}
