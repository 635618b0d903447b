// RFC 8188 record streams: encryption and decryption as pull-based WHATWG streams, one
// record per pull, so memory stays at about one record whatever the file size.

import {
  BadHeader,
  BadPadding,
  DELIMITER,
  HEADER_SIZE,
  LAST_DELIMITER,
  MAX_RECORD_SIZE,
  MIN_RECORD_SIZE,
  RECORD_SIZE,
  SALT_SIZE,
  TAG_SIZE,
  TamperedRecord,
  TrailingData,
  TruncatedStream,
  WrongKey,
  checkRs,
  toBytes,
} from './ece_format.js';
import { recordKeys, recordNonce } from './ece_keys.js';
import { paddedRecords } from './ece_padding.js';

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
