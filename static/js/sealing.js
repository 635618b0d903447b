// The clinician's key pair and the consultation secret S sealed to it, in the browser
// (issue 13, docs/encryption.md section 9). Twin of teleconsult/sealing.py; both pass
// tests/vectors/sealing.json.
//
//   clinician key  ECDH P-256; public key 'pk.v1.' + base64url(65-byte uncompressed point)
//   sealed S       HPKE (RFC 9180) base mode, single-shot, DHKEM(P-256, HKDF-SHA256),
//                  HKDF-SHA256, AES-256-GCM; info = 'teleconsult/v1/sealed-secret' || 0x00 ||
//                  consultation id, empty AAD; 'sealed.v1.' + base64url(enc || ciphertext)
//   wrapped key    AES-256-GCM under PBKDF2-SHA256(password, salt, iterations >= 600000) of
//                  the PKCS#8 private key, AAD = 'teleconsult/v1/wrapped-key' || public key;
//                  'wrapped.v1.' + base64url(iv || ciphertext), salt and iterations beside it
//
// WebCrypto has no HPKE, so its key schedule is written here, each function named after
// RFC 9180's. The private key only exists as a non-extractable CryptoKey: unwrapKey turns
// the wrapped PKCS#8 straight into one, so its bytes never reach JavaScript memory.

import { b64urlDecode, b64urlEncode, concat, toBytes } from './ece.js';

export const VERSION = 'v1';
export const SECRET_SIZE = 32;
export const PUBLIC_KEY_SIZE = 65; // RFC 9180 Npk: 0x04 || x || y
export const ENC_SIZE = 65; // RFC 9180 Nenc
export const TAG_SIZE = 16;
export const SEALED_SIZE = ENC_SIZE + SECRET_SIZE + TAG_SIZE; // 113
export const PKCS8_SIZE = 138;
export const SALT_SIZE = 16;
export const IV_SIZE = 12;
export const WRAPPED_SIZE = IV_SIZE + PKCS8_SIZE + TAG_SIZE; // 166
export const MIN_ITERATIONS = 600000;
export const MAX_ITERATIONS = 10000000;
export const DEFAULT_ITERATIONS = MIN_ITERATIONS;

/** RFC 9180 identifiers of our suite: DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM. */
export const SUITE = Object.freeze({ kemId: 0x0010, kdfId: 0x0001, aeadId: 0x0002, keySize: 32 });

const HASH_SIZE = 32; // Nh of HKDF-SHA256, Nsecret of the KEM
const NONCE_SIZE = 12; // Nn
const ECDH = { name: 'ECDH', namedCurve: 'P-256' };
const CONSULTATION_ID = /^[A-Za-z0-9._~-]{1,256}$/;
const VERSIONED = /^([a-z]+)\.(v[0-9]+)\.(.*)$/s;

const utf8 = new TextEncoder();
const HPKE_VERSION_LABEL = utf8.encode('HPKE-v1');
const SEALED_SECRET_INFO = utf8.encode('teleconsult/v1/sealed-secret');
const WRAPPED_KEY_AAD = utf8.encode('teleconsult/v1/wrapped-key');

// --- errors ------------------------------------------------------------------------------

/** A key or a sealed secret cannot be used. Nothing was opened. */
export class SealingError extends Error {
  name = 'SealingError';
}
/** A serialised value is not of the expected kind, length or encoding. */
export class MalformedValue extends SealingError {
  name = 'MalformedValue';
}
/** A serialised value names a protocol version this code does not know. */
export class UnknownVersion extends MalformedValue {
  name = 'UnknownVersion';
}
/** The wrapped key does not authenticate: a wrong password (or an altered wrapping). */
export class WrongPassword extends SealingError {
  name = 'WrongPassword';
}
/** The sealed secret does not open: another clinician's key, another consultation, or altered. */
export class SecretRejected extends SealingError {
  name = 'SecretRejected';
}

// --- bytes and serialisation -------------------------------------------------------------

/** RFC 9180 I2OSP: n as a big-endian integer of w bytes (w <= 4 here). */
function i2osp(n, w) {
  const out = new Uint8Array(w);
  for (let i = w - 1; i >= 0; i--, n >>>= 8) out[i] = n & 0xff;
  return out;
}

function randomBytes(n) {
  return crypto.getRandomValues(new Uint8Array(n));
}

function encode(kind, data) {
  return `${kind}.${VERSION}.${b64urlEncode(data)}`;
}

function decode(kind, text, size) {
  if (typeof text !== 'string') throw new MalformedValue(`a ${kind} must be a string`);
  const match = VERSIONED.exec(text);
  if (!match || match[1] !== kind) {
    throw new MalformedValue(`not a ${kind} (expected '${kind}.${VERSION}.' and base64url)`);
  }
  if (match[2] !== VERSION) {
    throw new UnknownVersion(`${kind} of unknown version '${match[2]}' (this code knows ${VERSION})`);
  }
  let data;
  try {
    data = b64urlDecode(match[3]);
  } catch {
    throw new MalformedValue(`the ${kind} is not unpadded base64url`);
  }
  if (data.length !== size) throw new MalformedValue(`a ${kind} has ${size} bytes, not ${data.length}`);
  return data;
}

// --- keys --------------------------------------------------------------------------------

async function importPublicKey(raw) {
  return crypto.subtle.importKey('raw', raw, ECDH, true, []);
}

/** The clinician's public key from its 'pk.v1.' form: 65 bytes, a point of P-256. */
export async function decodePublicKey(text) {
  const raw = decode('pk', text, PUBLIC_KEY_SIZE);
  if (raw[0] !== 0x04) throw new MalformedValue('the public key is not an uncompressed point');
  try {
    await importPublicKey(raw);
  } catch {
    throw new MalformedValue('the public key is not a point of P-256');
  }
  return raw;
}

export function encodePublicKey(raw) {
  return encode('pk', toBytes(raw));
}

/** A key pair given as a 32-byte scalar and its 65-byte public key (for test vectors). */
async function importKeyPair({ privateKey, publicKey }) {
  const d = toBytes(privateKey);
  const point = toBytes(publicKey);
  const jwk = {
    kty: 'EC', crv: 'P-256', ext: false,
    d: b64urlEncode(d), x: b64urlEncode(point.subarray(1, 33)), y: b64urlEncode(point.subarray(33, 65)),
  };
  return { privateKey: await crypto.subtle.importKey('jwk', jwk, ECDH, false, ['deriveBits']), publicKey: point };
}

// --- RFC 9180 (HPKE) ---------------------------------------------------------------------

async function hmacSha256(key, data) {
  const k = await crypto.subtle.importKey('raw', key.length ? key : new Uint8Array(HASH_SIZE),
    { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await crypto.subtle.sign('HMAC', k, data));
}

/** RFC 5869 HKDF-Extract (an empty salt is HashLen zero bytes, as the RFC says). */
async function extract(salt, ikm) {
  return hmacSha256(salt, ikm);
}

/** RFC 5869 HKDF-Expand. */
async function expand(prk, info, length) {
  const out = new Uint8Array(length);
  let block = new Uint8Array(0);
  for (let i = 1, offset = 0; offset < length; i++, offset += HASH_SIZE) {
    block = await hmacSha256(prk, concat(block, info, [i]));
    out.set(block.subarray(0, Math.min(HASH_SIZE, length - offset)), offset);
  }
  return out;
}

function kemSuiteId(suite) {
  return concat(utf8.encode('KEM'), i2osp(suite.kemId, 2));
}

function hpkeSuiteId(suite) {
  return concat(utf8.encode('HPKE'), i2osp(suite.kemId, 2), i2osp(suite.kdfId, 2), i2osp(suite.aeadId, 2));
}

/** RFC 9180 section 4: LabeledExtract. */
export async function labeledExtract(suiteId, salt, label, ikm) {
  return extract(toBytes(salt), concat(HPKE_VERSION_LABEL, suiteId, utf8.encode(label), toBytes(ikm)));
}

/** RFC 9180 section 4: LabeledExpand. */
export async function labeledExpand(suiteId, prk, label, info, length) {
  return expand(prk, concat(i2osp(length, 2), HPKE_VERSION_LABEL, suiteId, utf8.encode(label), toBytes(info)), length);
}

/** RFC 9180 section 4.1: ExtractAndExpand of DHKEM. */
async function extractAndExpand(suite, dh, kemContext) {
  const suiteId = kemSuiteId(suite);
  const eaePrk = await labeledExtract(suiteId, new Uint8Array(0), 'eae_prk', dh);
  return labeledExpand(suiteId, eaePrk, 'shared_secret', kemContext, HASH_SIZE);
}

async function dhP256(privateKey, publicKey) {
  return new Uint8Array(await crypto.subtle.deriveBits({ name: 'ECDH', public: publicKey }, privateKey, 256));
}

/** RFC 9180 section 4.1: Encap(pkR). `ephemeral` ({privateKey: scalar, publicKey: point})
 * fixes the ephemeral key for test vectors; otherwise a fresh one is drawn. */
export async function encap(pkR, { suite = SUITE, ephemeral = null } = {}) {
  const keyPair = ephemeral
    ? await importKeyPair(ephemeral)
    : await crypto.subtle.generateKey(ECDH, false, ['deriveBits']);
  const enc = ephemeral ? keyPair.publicKey : new Uint8Array(await crypto.subtle.exportKey('raw', keyPair.publicKey));
  const dh = await dhP256(keyPair.privateKey, await importPublicKey(pkR));
  return { sharedSecret: await extractAndExpand(suite, dh, concat(enc, pkR)), enc };
}

/** RFC 9180 section 4.1: Decap(enc, skR); pkR is passed since a non-extractable private
 * key cannot give its public key. An enc that is no point of P-256 is SecretRejected. */
export async function decap(enc, skR, pkR, { suite = SUITE } = {}) {
  let pkE;
  try {
    pkE = await importPublicKey(enc);
  } catch {
    throw new SecretRejected('the sealed secret does not open: its ephemeral key is not a point of P-256 (altered)');
  }
  return extractAndExpand(suite, await dhP256(skR, pkE), concat(enc, pkR));
}

/** RFC 9180 section 5.1: KeySchedule in mode_base (no PSK). Returns the key and base nonce
 * as bytes, with the intermediate values the RFC's vectors list. */
export async function keyScheduleBase(sharedSecret, info, { suite = SUITE } = {}) {
  const suiteId = hpkeSuiteId(suite);
  const empty = new Uint8Array(0);
  const pskIdHash = await labeledExtract(suiteId, empty, 'psk_id_hash', empty);
  const infoHash = await labeledExtract(suiteId, empty, 'info_hash', info);
  const keyScheduleContext = concat([0x00], pskIdHash, infoHash);
  const secret = await labeledExtract(suiteId, sharedSecret, 'secret', empty);
  const key = await labeledExpand(suiteId, secret, 'key', keyScheduleContext, suite.keySize);
  const baseNonce = await labeledExpand(suiteId, secret, 'base_nonce', keyScheduleContext, NONCE_SIZE);
  return { keyScheduleContext, secret, key, baseNonce };
}

async function aeadKey(raw) {
  return crypto.subtle.importKey('raw', raw, { name: 'AES-GCM' }, false, ['encrypt', 'decrypt']);
}

/** RFC 9180 section 6.1: single-shot Seal in mode_base (sequence number 0). */
export async function sealBase(pkR, info, aad, plaintext, { suite = SUITE, ephemeral = null } = {}) {
  const { sharedSecret, enc } = await encap(toBytes(pkR), { suite, ephemeral });
  const { key, baseNonce } = await keyScheduleBase(sharedSecret, toBytes(info), { suite });
  const ciphertext = await crypto.subtle.encrypt(
    { name: 'AES-GCM', iv: baseNonce, additionalData: toBytes(aad) }, await aeadKey(key), toBytes(plaintext));
  return { enc, ciphertext: new Uint8Array(ciphertext) };
}

/** RFC 9180 section 6.1: single-shot Open in mode_base. Raises SecretRejected. */
export async function openBase(enc, skR, pkR, info, aad, ciphertext, { suite = SUITE } = {}) {
  const sharedSecret = await decap(toBytes(enc), skR, toBytes(pkR), { suite });
  const { key, baseNonce } = await keyScheduleBase(sharedSecret, toBytes(info), { suite });
  try {
    return new Uint8Array(await crypto.subtle.decrypt(
      { name: 'AES-GCM', iv: baseNonce, additionalData: toBytes(aad) }, await aeadKey(key), toBytes(ciphertext)));
  } catch {
    throw new SecretRejected('the sealed secret does not open: sealed to another key, for another consultation, or altered');
  }
}

// --- the consultation secret -------------------------------------------------------------

/** HPKE info: 'teleconsult/v1/sealed-secret' || 0x00 || consultation id. */
export function sealingInfo(consultationId) {
  if (typeof consultationId !== 'string' || !CONSULTATION_ID.test(consultationId)) {
    throw new TypeError('consultation id must be 1-256 URL-safe characters');
  }
  return concat(SEALED_SECRET_INFO, [0x00], utf8.encode(consultationId));
}

/** Seal the 32-byte consultation secret to the clinician's public key ('pk.v1.…'). */
export async function sealSecret(publicKey, secret, consultationId, { ephemeral = null } = {}) {
  const bytes = toBytes(secret);
  if (bytes.length !== SECRET_SIZE) throw new RangeError(`the consultation secret has ${SECRET_SIZE} bytes`);
  const info = sealingInfo(consultationId);
  const pkR = await decodePublicKey(publicKey);
  const { enc, ciphertext } = await sealBase(pkR, info, new Uint8Array(0), bytes, { ephemeral });
  return encode('sealed', concat(enc, ciphertext));
}

/** Open a sealed secret with the clinician key ({privateKey, publicKey}). */
export async function openSecret(clinicianKey, sealed, consultationId) {
  const data = decode('sealed', sealed, SEALED_SIZE);
  const info = sealingInfo(consultationId);
  if (data[0] !== 0x04) throw new MalformedValue("the sealed secret's ephemeral key is not an uncompressed point");
  return openBase(data.subarray(0, ENC_SIZE), clinicianKey.privateKey, clinicianKey.publicKey, info,
    new Uint8Array(0), data.subarray(ENC_SIZE));
}

// --- the wrapped private key -------------------------------------------------------------

function checkIterations(iterations) {
  if (!Number.isInteger(iterations) || iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS) {
    throw new MalformedValue(`PBKDF2 iterations must be between ${MIN_ITERATIONS} and ${MAX_ITERATIONS}`);
  }
  return iterations;
}

function saltBytes(salt) {
  let raw;
  try {
    raw = typeof salt === 'string' ? b64urlDecode(salt) : toBytes(salt);
  } catch {
    throw new MalformedValue('the salt is not unpadded base64url');
  }
  if (raw.length !== SALT_SIZE) throw new MalformedValue(`the salt has ${SALT_SIZE} bytes`);
  return raw;
}

/** PBKDF2-SHA256(UTF-8(password) as typed, salt, iterations) as a non-extractable AES-256-GCM
 * key that can only wrap and unwrap: what the login page derives before the form is sent. */
export async function deriveWrappingKey(password, salt, iterations) {
  if (typeof password !== 'string' || !password) throw new TypeError('the password is empty');
  const base = await crypto.subtle.importKey('raw', utf8.encode(password), 'PBKDF2', false, ['deriveKey']);
  return crypto.subtle.deriveKey(
    { name: 'PBKDF2', hash: 'SHA-256', salt: saltBytes(salt), iterations: checkIterations(iterations) },
    base, { name: 'AES-GCM', length: 256 }, false, ['wrapKey', 'unwrapKey']);
}

function wrapParams(iv, publicKey) {
  return { name: 'AES-GCM', iv, additionalData: concat(WRAPPED_KEY_AAD, publicKey) };
}

async function wrap(privateKey, publicKey, wrappingKey, iterations, salt, iv) {
  const sealed = await crypto.subtle.wrapKey('pkcs8', privateKey, wrappingKey, wrapParams(iv, publicKey));
  return { iterations, salt: b64urlEncode(salt), wrapped: encode('wrapped', concat(iv, new Uint8Array(sealed))) };
}

async function unwrap(wrapped, publicKey, wrappingKey, extractable) {
  const blob = decode('wrapped', wrapped.wrapped, WRAPPED_SIZE);
  try {
    return await crypto.subtle.unwrapKey('pkcs8', blob.subarray(IV_SIZE), wrappingKey,
      wrapParams(blob.subarray(0, IV_SIZE), publicKey), ECDH, extractable, ['deriveBits']);
  } catch (error) {
    if (error.name === 'OperationError') {
      throw new WrongPassword('the private key does not unwrap: wrong password (or an altered wrapped key, salt, iteration count or public key)');
    }
    throw new MalformedValue('the unwrapped private key is not a P-256 PKCS#8 key');
  }
}

/** The clinician key from its wrapping ({iterations, salt, wrapped}), the public key
 * ('pk.v1.…') and the wrapping key of deriveWrappingKey: {privateKey (non-extractable
 * CryptoKey), publicKey (65 bytes)}. Raises WrongPassword or MalformedValue. */
export async function unwrapPrivateKey(wrapped, publicKey, wrappingKey) {
  checkIterations(wrapped.iterations);
  saltBytes(wrapped.salt);
  const point = await decodePublicKey(publicKey);
  return { privateKey: await unwrap(wrapped, point, wrappingKey, false), publicKey: point };
}

/** A new clinician key: generated, wrapped under the password, and usable at once.
 * Returns {publicKey: 'pk.v1.…', wrapped: {iterations, salt, wrapped}, key}. `wrappingKey`
 * (from deriveWrappingKey with this salt and iteration count) saves deriving it again;
 * `keyPair` (an ECDH P-256 CryptoKeyPair, extractable), `salt` and `iv` fix the random draws
 * for test vectors. */
export async function createClinicianKey(password, {
  iterations = DEFAULT_ITERATIONS, salt = randomBytes(SALT_SIZE), iv = randomBytes(IV_SIZE), keyPair = null,
  wrappingKey = null,
} = {}) {
  const pair = keyPair ?? await crypto.subtle.generateKey(ECDH, true, ['deriveBits']);
  const point = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
  wrappingKey ??= await deriveWrappingKey(password, saltBytes(salt), iterations);
  const wrapped = await wrap(pair.privateKey, point, wrappingKey, iterations, saltBytes(salt), toBytes(iv));
  // keep a non-extractable copy only: unwrap what was just wrapped
  const key = { privateKey: await unwrap(wrapped, point, wrappingKey, false), publicKey: point };
  return { publicKey: encodePublicKey(point), wrapped, key };
}

/** A password change: unwrap with the old password, wrap with the new one under a fresh
 * salt (iterations: the larger of the stored count and DEFAULT_ITERATIONS unless given).
 * The key stays inside WebCrypto throughout. Raises WrongPassword for the old password. */
export async function rewrapPrivateKey(wrapped, publicKey, oldPassword, newPassword, {
  iterations = null, salt = randomBytes(SALT_SIZE), iv = randomBytes(IV_SIZE),
} = {}) {
  const point = await decodePublicKey(publicKey);
  const oldKey = await deriveWrappingKey(oldPassword, wrapped.salt, wrapped.iterations);
  const privateKey = await unwrap(wrapped, point, oldKey, true);
  const count = iterations ?? Math.max(checkIterations(wrapped.iterations), DEFAULT_ITERATIONS);
  const newKey = await deriveWrappingKey(newPassword, saltBytes(salt), count);
  return wrap(privateKey, point, newKey, count, saltBytes(salt), toBytes(iv));
}
