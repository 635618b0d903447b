// The drop box format's constants, errors and byte helpers (docs/encryption.md), shared by
// the other ece_*.js modules; pages import them through ece.js.

export const RECORD_SIZE = 65536;
export const MAX_RECORD_SIZE = 65536;
export const MIN_RECORD_SIZE = 18;
export const SALT_SIZE = 16;
export const TAG_SIZE = 16;
export const HEADER_SIZE = SALT_SIZE + 4 + 1;
export const RECORD_DATA_SIZE = RECORD_SIZE - TAG_SIZE - 1;
export const CONTENT_IKM_SIZE = 16;
export const METADATA_KEY_SIZE = 32;
export const METADATA_IV_SIZE = 12;
export const METADATA_BLOCK = 1024;
export const METADATA_MAX_PLAINTEXT = 4096;
export const METADATA_MAX_SIZE = METADATA_IV_SIZE + METADATA_MAX_PLAINTEXT + TAG_SIZE;
export const MIN_SECRET_SIZE = 16;
export const CONSULTATION_SECRET_SIZE = 32;

export const NONCE_SIZE = 12;
export const DELIMITER = 0x01;
export const LAST_DELIMITER = 0x02;
export const METADATA_FIELDS = ['name', 'type', 'size', 'role'];
export const DOC_ID = /^[A-Za-z0-9._~-]{1,256}$/;
export const B64URL = /^[A-Za-z0-9_-]*$/;

export const utf8 = new TextEncoder();
export const CONTENT_INFO = utf8.encode('teleconsult/v1/content');
export const METADATA_INFO = utf8.encode('teleconsult/v1/metadata');
export const CEK_INFO = utf8.encode('Content-Encoding: aes128gcm\0');
export const NONCE_INFO = utf8.encode('Content-Encoding: nonce\0');

// --- errors ------------------------------------------------------------------------------

/** The ciphertext cannot be turned back into the plaintext. Discard any output. */
export class DecryptionError extends Error {
  name = 'DecryptionError';
}
/** The RFC 8188 header is malformed (record size out of range). */
export class BadHeader extends DecryptionError {
  name = 'BadHeader';
}
/** The stream ended inside the header or a record, or without a record marked last. */
export class TruncatedStream extends DecryptionError {
  name = 'TruncatedStream';
}
/** The first record (or the metadata) does not authenticate: wrong secret or document id. */
export class WrongKey extends DecryptionError {
  name = 'WrongKey';
}
/** A later record does not authenticate: altered, reordered, duplicated or cut. */
export class TamperedRecord extends DecryptionError {
  name = 'TamperedRecord';
}
/** Bytes follow the record marked last. */
export class TrailingData extends TamperedRecord {
  name = 'TrailingData';
}
/** An authenticated record has no valid delimiter. */
export class BadPadding extends DecryptionError {
  name = 'BadPadding';
}
/** The metadata blob has a bad length or is not the expected JSON object. */
export class BadMetadata extends DecryptionError {
  name = 'BadMetadata';
}

// --- bytes and base64url -----------------------------------------------------------------

export function toBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError('expected bytes (Uint8Array, ArrayBuffer or a view)');
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Unpadded base64url, the form secrets take in link fragments. */
export function b64urlEncode(data) {
  const bytes = toBytes(data);
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Inverse of b64urlEncode; rejects padding and characters outside the URL-safe alphabet. */
export function b64urlDecode(text) {
  if (typeof text !== 'string' || !B64URL.test(text) || text.length % 4 === 1) {
    throw new TypeError('not unpadded base64url');
  }
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4));
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

export function checkRs(rs, max) {
  if (!Number.isInteger(rs) || rs < MIN_RECORD_SIZE || rs > max) {
    throw new RangeError(`record size must be between ${MIN_RECORD_SIZE} and ${max}`);
  }
}
