// Size buckets: every file is padded to a Padmé-rounded number of full records, so the
// server learns a bucket, not a size (filedrop/ece/padding.py is the twin).

import { HEADER_SIZE, RECORD_SIZE, TAG_SIZE } from './ece_format.js';

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
