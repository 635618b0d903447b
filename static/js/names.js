// Patients' display names, encrypted to the consultation (docs/encryption.md section 10): the
// patient's page seals the name it typed under a key derived from the consultation secret S; the
// server stores and relays only the sealed blob; the clinician's pages open it. The Python side
// is teleconsult/names.py; both pass tests/vectors/names.json.
//
//   name_key = HKDF-SHA256(ikm = S, salt = "", info = "teleconsult/v1/name", L = 32)
//   sealed   = IV (12 random bytes) || AES-256-GCM(name_key, IV, UTF-8(name) || zero bytes to 256)
import { CONSULTATION_SECRET_SIZE, b64urlDecode, b64urlEncode } from "./ece.js";

export const NAME_INFO = "teleconsult/v1/name";
export const IV_SIZE = 12;
export const PADDED_SIZE = 256;
export const SEALED_SIZE = IV_SIZE + PADDED_SIZE + 16; // 284 bytes, whatever the name
export const MAX_CHARACTERS = 60;

// bidirectional controls, as teleconsult/text.py removes them
const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

export class BadName extends Error {
  constructor(message) { super(message); this.name = "BadName"; }
}

export class BadSealedName extends Error {
  constructor(message) { super(message); this.name = "BadSealedName"; }
}

/** Whitespace collapsed, bidi controls removed; BadName when empty, over 60 characters or holding
 * a control character (teleconsult/names.py `clean`). */
export function cleanName(typed) {
  const name = String(typed || "").replace(BIDI_CONTROLS, "").split(/\s+/).filter(Boolean).join(" ");
  if (!name) throw new BadName("display name is empty");
  if ([...name].length > MAX_CHARACTERS) throw new BadName(`display name is longer than ${MAX_CHARACTERS} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) throw new BadName("display name has control characters");
  return name;
}

async function nameKey(secret) {
  if (!(secret instanceof Uint8Array) || secret.length !== CONSULTATION_SECRET_SIZE) {
    throw new TypeError(`a consultation secret is ${CONSULTATION_SECRET_SIZE} bytes`);
  }
  const ikm = await crypto.subtle.importKey("raw", secret, "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: new TextEncoder().encode(NAME_INFO) },
    ikm, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
}

/** The sealed name (SEALED_SIZE bytes). `iv` only for test vectors: random otherwise. */
export async function sealName(secret, typed, { iv } = {}) {
  const data = new TextEncoder().encode(cleanName(typed));
  const padded = new Uint8Array(PADDED_SIZE);
  padded.set(data);
  const nonce = iv || crypto.getRandomValues(new Uint8Array(IV_SIZE));
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce }, await nameKey(secret), padded));
  const out = new Uint8Array(IV_SIZE + sealed.length);
  out.set(nonce);
  out.set(sealed, IV_SIZE);
  return out;
}

/** The name in a sealed blob; BadSealedName when it is not one or not under `secret`. */
export async function openName(secret, sealed) {
  if (!(sealed instanceof Uint8Array) || sealed.length !== SEALED_SIZE) {
    throw new BadSealedName(`a sealed name is ${SEALED_SIZE} bytes`);
  }
  let padded;
  try {
    padded = new Uint8Array(await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: sealed.subarray(0, IV_SIZE) }, await nameKey(secret), sealed.subarray(IV_SIZE)));
  } catch (err) {
    throw new BadSealedName("the sealed name does not open under this secret");
  }
  let end = padded.length;
  while (end > 0 && padded[end - 1] === 0) end -= 1;
  try {
    return cleanName(new TextDecoder("utf-8", { fatal: true }).decode(padded.subarray(0, end)));
  } catch (err) {
    throw new BadSealedName("the sealed name holds no valid name");
  }
}

/** sealName as the unpadded base64url text the server stores. */
export async function sealNameText(secret, typed) {
  return b64urlEncode(await sealName(secret, typed));
}

/** openName of the base64url text the server relays. */
export async function openNameText(secret, text) {
  let bytes;
  try {
    bytes = b64urlDecode(text);
  } catch (err) {
    throw new BadSealedName("a sealed name is base64url");
  }
  return openName(secret, bytes);
}
