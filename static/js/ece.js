// Drop box end-to-end encryption in the browser (DESIGN section 5, docs/encryption.md).
// Twin of filedrop/ece.py; both pass tests/vectors/ece.json.
//
//   content IKM  = HKDF-SHA256(ikm=S, salt=UTF-8(D), info="teleconsult/v1/content",  16 bytes)
//   metadata key = HKDF-SHA256(ikm=S, salt=UTF-8(D), info="teleconsult/v1/metadata", 32 bytes)
//   content      = RFC 8188 aes128gcm, rs 65536, empty keyid, random 16-byte salt, every
//                  record full and padding-only records appended up to paddedSize()
//   metadata     = IV(12) || AES-256-GCM(JSON {name,type,size,role} + zeros to 1024n)
//
// Plain ES module on WebCrypto and WHATWG streams: no dependency, no eval, no inline script.
// Streams are pull-based: one record is produced per pull, so memory stays at about one
// record whatever the file size, and a slow consumer slows the producer.

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

const NONCE_SIZE = 12;
const DELIMITER = 0x01;
const LAST_DELIMITER = 0x02;
const METADATA_FIELDS = ['name', 'type', 'size', 'role'];
const DOC_ID = /^[A-Za-z0-9._~-]{1,256}$/;
const B64URL = /^[A-Za-z0-9_-]*$/;

const utf8 = new TextEncoder();
const CONTENT_INFO = utf8.encode('teleconsult/v1/content');
const METADATA_INFO = utf8.encode('teleconsult/v1/metadata');
const CEK_INFO = utf8.encode('Content-Encoding: aes128gcm\0');
const NONCE_INFO = utf8.encode('Content-Encoding: nonce\0');

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

// --- keys --------------------------------------------------------------------------------

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

async function recordKeys(ikm, salt) {
  const bytes = toBytes(ikm);
  const cek = await hkdf(bytes, salt, CEK_INFO, 16);
  const nonce = await hkdf(bytes, salt, NONCE_INFO, NONCE_SIZE);
  const key = await crypto.subtle.importKey('raw', cek, { name: 'AES-GCM' }, false, ['encrypt', 'decrypt']);
  return { key, nonce };
}

function recordNonce(base, seq) {
  // the sequence number, as a 96-bit big-endian integer, XORed into the base nonce
  const nonce = base.slice();
  const view = new DataView(nonce.buffer);
  view.setUint32(4, view.getUint32(4) ^ Math.floor(seq / 2 ** 32));
  view.setUint32(8, view.getUint32(8) ^ (seq >>> 0));
  return nonce;
}

function checkRs(rs, max) {
  if (!Number.isInteger(rs) || rs < MIN_RECORD_SIZE || rs > max) {
    throw new RangeError(`record size must be between ${MIN_RECORD_SIZE} and ${max}`);
  }
}

// --- size buckets ------------------------------------------------------------------------

/** Fewest records holding plaintextSize bytes (an empty file still has one). */
export function minRecords(plaintextSize, rs = RECORD_SIZE) {
  if (!Number.isSafeInteger(plaintextSize) || plaintextSize < 0) throw new RangeError('bad size');
  return Math.max(1, Math.ceil(plaintextSize / (rs - TAG_SIZE - 1)));
}

/** Padmé rounding of a record count (see filedrop.ece.bucket_records). */
export function bucketRecords(records) {
  if (!Number.isInteger(records) || records < 1 || records > 0xffffffff) {
    throw new RangeError('record count must be between 1 and 2^32 - 1');
  }
  const bitLength = (n) => 32 - Math.clz32(n);
  const exponent = bitLength(records) - 1;
  const step = 2 ** Math.max(0, exponent - bitLength(exponent));
  return Math.ceil(records / step) * step;
}

export function paddedRecords(plaintextSize, rs = RECORD_SIZE) {
  return bucketRecords(minRecords(plaintextSize, rs));
}

/** Ciphertext length (header included) of a file of plaintextSize bytes: its bucket. */
export function paddedSize(plaintextSize, rs = RECORD_SIZE) {
  return HEADER_SIZE + paddedRecords(plaintextSize, rs) * rs;
}

// --- byte source over a ReadableStream ----------------------------------------------------

class ByteSource {
  constructor(stream) {
    this.reader = toReadable(stream).getReader();
    this.chunk = new Uint8Array(0);
    this.offset = 0;
    this.done = false;
  }

  /** Whether the source is exhausted (reads ahead one chunk if needed). */
  async atEnd() {
    while (this.offset >= this.chunk.length) {
      if (this.done) return true;
      const { value, done } = await this.reader.read();
      if (done) {
        this.done = true;
        return true;
      }
      this.chunk = toBytes(value);
      this.offset = 0;
    }
    return false;
  }

  /** Up to n bytes; fewer only at the end of the source. */
  async read(n) {
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n && !(await this.atEnd())) {
      const take = Math.min(n - filled, this.chunk.length - this.offset);
      out.set(this.chunk.subarray(this.offset, this.offset + take), filled);
      this.offset += take;
      filled += take;
    }
    return filled === n ? out : out.slice(0, filled);
  }

  cancel(reason) {
    return this.reader.cancel(reason).catch(() => {});
  }
}

function toReadable(source) {
  if (source instanceof ReadableStream) return source;
  if (source instanceof Blob) return source.stream();
  return new Blob([toBytes(source)]).stream();
}

// --- content -----------------------------------------------------------------------------

/**
 * Encrypt a ReadableStream (or Blob, or bytes) of plaintext into a ReadableStream of
 * Uint8Array: the header, then one record per chunk.
 * Options: salt (16 bytes, random by default), rs (record size), pad (true: full records
 * and padding-only records up to paddedSize(); false: plain RFC 8188, short last record).
 */
export function encryptStream(source, ikm, { salt, rs = RECORD_SIZE, pad = true } = {}) {
  checkRs(rs, MAX_RECORD_SIZE);
  const saltBytes = salt === undefined ? crypto.getRandomValues(new Uint8Array(SALT_SIZE)) : toBytes(salt).slice();
  if (saltBytes.length !== SALT_SIZE) throw new RangeError(`salt must be ${SALT_SIZE} bytes`);
  const capacity = rs - TAG_SIZE - 1;
  const input = new ByteSource(source);
  let keys;
  let headerSent = false;
  let seq = 0;
  let size = 0;
  let remaining = null; // records still to emit once the plaintext is exhausted

  async function seal(data, last, padding) {
    const plaintext = new Uint8Array(data.length + 1 + padding);
    plaintext.set(data);
    plaintext[data.length] = last ? LAST_DELIMITER : DELIMITER;
    const iv = recordNonce(keys.nonce, seq++);
    return new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, keys.key, plaintext));
  }

  return new ReadableStream({
    async start() {
      keys = await recordKeys(ikm, saltBytes);
    },
    async pull(controller) {
      try {
        if (!headerSent) {
          const header = new Uint8Array(HEADER_SIZE);
          header.set(saltBytes);
          new DataView(header.buffer).setUint32(SALT_SIZE, rs);
          headerSent = true;
          controller.enqueue(header);
          return;
        }
        if (remaining === null) {
          const data = await input.read(capacity);
          size += data.length;
          if (data.length === capacity && !(await input.atEnd())) {
            controller.enqueue(await seal(data, false, 0));
            return;
          }
          // the plaintext ends in this record
          remaining = (pad ? paddedRecords(size, rs) : seq + 1) - seq;
          controller.enqueue(await seal(data, remaining === 1, pad ? capacity - data.length : 0));
        } else {
          controller.enqueue(await seal(new Uint8Array(0), remaining === 1, capacity));
        }
        remaining -= 1;
        if (remaining === 0) controller.close();
      } catch (error) {
        await input.cancel(error);
        throw error;
      }
    },
    cancel(reason) {
      return input.cancel(reason);
    },
  });
}

/**
 * Decrypt a ReadableStream (or Blob, or bytes) of ciphertext into a ReadableStream of
 * plaintext Uint8Array, one record at a time. The stream errors with a DecryptionError
 * subclass; whatever was read before must then be discarded (truncation is only known
 * at the end). Option: maxRecordSize (a larger rs in the header is a BadHeader).
 */
export function decryptStream(source, ikm, { maxRecordSize = MAX_RECORD_SIZE } = {}) {
  const input = new ByteSource(source);
  let keys;
  let rs;
  let seq = 0;

  async function open(record) {
    if (record.length < TAG_SIZE + 1) throw new TruncatedStream(`record ${seq} is cut short`);
    let plaintext;
    try {
      const iv = recordNonce(keys.nonce, seq);
      plaintext = new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv }, keys.key, record));
    } catch (error) {
      if (error instanceof DOMException && error.name === 'OperationError') {
        if (seq === 0) {
          throw new WrongKey(
            'the first record does not authenticate: wrong secret or document id (or an altered header or first record)',
          );
        }
        throw new TamperedRecord(`record ${seq} does not authenticate: altered, reordered, duplicated or cut`);
      }
      throw error;
    }
    let end = plaintext.length - 1;
    while (end >= 0 && plaintext[end] === 0) end--;
    if (end < 0 || (plaintext[end] !== DELIMITER && plaintext[end] !== LAST_DELIMITER)) {
      throw new BadPadding(`record ${seq} has no valid padding delimiter`);
    }
    seq += 1;
    return { data: plaintext.subarray(0, end), last: plaintext[end] === LAST_DELIMITER };
  }

  return new ReadableStream({
    async start() {
      try {
        const fixed = await input.read(HEADER_SIZE);
        const keyid = fixed.length === HEADER_SIZE ? await input.read(fixed[HEADER_SIZE - 1]) : null;
        if (keyid === null || keyid.length < fixed[HEADER_SIZE - 1]) {
          throw new TruncatedStream('the stream ends inside the header');
        }
        rs = new DataView(fixed.buffer).getUint32(SALT_SIZE);
        if (rs < MIN_RECORD_SIZE || rs > maxRecordSize) {
          throw new BadHeader(`record size ${rs} is outside ${MIN_RECORD_SIZE}..${maxRecordSize}`);
        }
        keys = await recordKeys(ikm, fixed.subarray(0, SALT_SIZE));
      } catch (error) {
        await input.cancel(error);
        throw error;
      }
    },
    async pull(controller) {
      try {
        for (;;) {
          const record = await input.read(rs);
          const final = record.length < rs || (await input.atEnd());
          if (record.length === 0) {
            throw new TruncatedStream('the stream ends without its last record (delimiter 0x02)');
          }
          const { data, last } = await open(record);
          if (last && !final) throw new TrailingData('data follows the last record');
          if (!last && final) {
            throw new TruncatedStream('the stream ends without its last record (delimiter 0x02)');
          }
          if (data.length) controller.enqueue(data);
          if (last) {
            controller.close();
            return;
          }
          if (data.length) return;
          // a padding-only record: keep going until there is something to hand out
        }
      } catch (error) {
        await input.cancel(error);
        throw error;
      }
    },
    cancel(reason) {
      return input.cancel(reason);
    },
  });
}

// --- metadata ----------------------------------------------------------------------------

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
