// Encrypted metadata (name, type, size, role): compact JSON padded with zero bytes to a
// multiple of 1024, sealed with AES-256-GCM under a random IV that is prepended.

import {
  BadMetadata,
  METADATA_BLOCK,
  METADATA_FIELDS,
  METADATA_IV_SIZE,
  METADATA_MAX_PLAINTEXT,
  METADATA_MAX_SIZE,
  TAG_SIZE,
  WrongKey,
  concat,
  toBytes,
  utf8,
} from './ece_format.js';

function metadataJson(metadata) {
  if (metadata === null || typeof metadata !== 'object') throw new TypeError('metadata must be an object');
  const unknown = Object.keys(metadata).filter((k) => !METADATA_FIELDS.includes(k));
  if (unknown.length) throw new TypeError(`unknown metadata fields: ${unknown.join(', ')}`);
  for (const field of ['name', 'type', 'role']) {
    if (typeof metadata[field] !== 'string') throw new TypeError(`metadata "${field}" must be a string`);
  }
  if (!Number.isSafeInteger(metadata.size) || metadata.size < 0) {
    throw new TypeError('metadata "size" must be a non-negative integer');
  }
  // fixed field order, compact: byte-identical to filedrop.ece
  const { name, type, size, role } = metadata;
  return utf8.encode(JSON.stringify({ name, type, size, role }));
}

/** Seal {name, type, size, role}: IV(12) || AES-256-GCM(JSON + zeros to a multiple of 1024). */
export async function encryptMetadata(key, metadata, { iv } = {}) {
  const text = metadataJson(metadata);
  if (text.length > METADATA_MAX_PLAINTEXT) throw new RangeError(`metadata is longer than ${METADATA_MAX_PLAINTEXT} bytes`);
  const ivBytes = iv === undefined ? crypto.getRandomValues(new Uint8Array(METADATA_IV_SIZE)) : toBytes(iv).slice();
  if (ivBytes.length !== METADATA_IV_SIZE) throw new RangeError(`IV must be ${METADATA_IV_SIZE} bytes`);
  const plaintext = new Uint8Array(Math.max(1, Math.ceil(text.length / METADATA_BLOCK)) * METADATA_BLOCK);
  plaintext.set(text);
  const sealed = await crypto.subtle.encrypt({ name: 'AES-GCM', iv: ivBytes }, key, plaintext);
  return concat(ivBytes, new Uint8Array(sealed));
}

/** Inverse of encryptMetadata; rejects with WrongKey or BadMetadata. */
export async function decryptMetadata(key, blob) {
  const bytes = toBytes(blob);
  if (bytes.length < METADATA_IV_SIZE + TAG_SIZE + METADATA_BLOCK || bytes.length > METADATA_MAX_SIZE) {
    throw new BadMetadata(`metadata blob of ${bytes.length} bytes has an impossible length`);
  }
  let plaintext;
  try {
    plaintext = new Uint8Array(
      await crypto.subtle.decrypt(
        { name: 'AES-GCM', iv: bytes.subarray(0, METADATA_IV_SIZE) },
        key,
        bytes.subarray(METADATA_IV_SIZE),
      ),
    );
  } catch (error) {
    if (error instanceof DOMException && error.name === 'OperationError') {
      throw new WrongKey('the metadata does not authenticate: wrong secret or document id (or altered)');
    }
    throw error;
  }
  let end = plaintext.length;
  while (end > 0 && plaintext[end - 1] === 0) end--;
  let metadata;
  try {
    metadata = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(plaintext.subarray(0, end)));
    if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) throw new TypeError('not an object');
    const { name, type, size, role } = metadata;
    metadataJson({ name, type, size, role });
    return { name, type, size, role };
  } catch (error) {
    throw new BadMetadata(`the metadata is not valid: ${error.message}`);
  }
}
