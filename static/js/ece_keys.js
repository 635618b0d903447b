// Key handling (docs/encryption.md): the secret and a document id give the content key
// material and the metadata key (HKDF-SHA256); RFC 8188 derives each file's content
// encryption key and base nonce from that material and the file's salt.

import {
  CEK_INFO,
  CONTENT_IKM_SIZE,
  CONTENT_INFO,
  DOC_ID,
  METADATA_INFO,
  METADATA_KEY_SIZE,
  MIN_SECRET_SIZE,
  NONCE_INFO,
  NONCE_SIZE,
  toBytes,
  utf8,
} from './ece_format.js';

async function hkdf(ikm, salt, info, length) {
  const key = await crypto.subtle.importKey('raw', ikm, 'HKDF', false, ['deriveBits']);
  const bits = await crypto.subtle.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt, info }, key, length * 8);
  return new Uint8Array(bits);
}

function checkSecret(secret, docId) {
  const bytes = toBytes(secret);
  if (bytes.length < MIN_SECRET_SIZE) throw new RangeError(`secret must be at least ${MIN_SECRET_SIZE} bytes`);
  if (typeof docId !== 'string' || !DOC_ID.test(docId)) {
    throw new TypeError('document id must be 1-256 URL-safe characters');
  }
  return [bytes, utf8.encode(docId)];
}

/** The 16-byte RFC 8188 input keying material of document docId (a Uint8Array). */
export async function deriveContentIkm(secret, docId) {
  const [ikm, salt] = checkSecret(secret, docId);
  return hkdf(ikm, salt, CONTENT_INFO, CONTENT_IKM_SIZE);
}

/** The AES-256-GCM CryptoKey sealing the metadata of document docId (not extractable). */
export async function deriveMetadataKey(secret, docId) {
  const [ikm, salt] = checkSecret(secret, docId);
  const raw = await hkdf(ikm, salt, METADATA_INFO, METADATA_KEY_SIZE);
  return crypto.subtle.importKey('raw', raw, { name: 'AES-GCM' }, false, ['encrypt', 'decrypt']);
}

export async function recordKeys(ikm, salt) {
  const bytes = toBytes(ikm);
  const cek = await hkdf(bytes, salt, CEK_INFO, 16);
  const nonce = await hkdf(bytes, salt, NONCE_INFO, NONCE_SIZE);
  const key = await crypto.subtle.importKey('raw', cek, { name: 'AES-GCM' }, false, ['encrypt', 'decrypt']);
  return { key, nonce };
}

export function recordNonce(base, seq) {
  // the sequence number, as a 96-bit big-endian integer, XORed into the base nonce
  const nonce = base.slice();
  const view = new DataView(nonce.buffer);
  view.setUint32(4, view.getUint32(4) ^ Math.floor(seq / 2 ** 32));
  view.setUint32(8, view.getUint32(8) ^ (seq >>> 0));
  return nonce;
}
