// Drop box end-to-end encryption in the browser (DESIGN section 5, docs/encryption.md).
// Twin of filedrop/ece/; both pass tests/vectors/ece.json.
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
//
// This module is the public face; key handling (ece_keys.js) stays apart from the record
// streams (ece_streams.js), the size buckets (ece_padding.js), the metadata (ece_metadata.js)
// and the shared constants, errors and byte helpers (ece_format.js).

export {
  CONSULTATION_SECRET_SIZE,
  CONTENT_IKM_SIZE,
  HEADER_SIZE,
  MAX_RECORD_SIZE,
  METADATA_BLOCK,
  METADATA_IV_SIZE,
  METADATA_KEY_SIZE,
  METADATA_MAX_PLAINTEXT,
  METADATA_MAX_SIZE,
  MIN_RECORD_SIZE,
  MIN_SECRET_SIZE,
  RECORD_DATA_SIZE,
  RECORD_SIZE,
  SALT_SIZE,
  TAG_SIZE,
  BadHeader,
  BadMetadata,
  BadPadding,
  DecryptionError,
  TamperedRecord,
  TrailingData,
  TruncatedStream,
  WrongKey,
  b64urlDecode,
  b64urlEncode,
  concat,
  toBytes,
} from './ece_format.js';
export { deriveContentIkm, deriveMetadataKey } from './ece_keys.js';
export { bucketRecords, minRecords, paddedRecords, paddedSize } from './ece_padding.js';
export { decryptStream, encryptStream } from './ece_streams.js';
export { decryptMetadata, encryptMetadata } from './ece_metadata.js';
