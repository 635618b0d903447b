"""Drop box end-to-end encryption: RFC 8188 ``aes128gcm`` content, AES-256-GCM metadata.

The protocol is written out step by step in docs/encryption.md; the browser twin is
static/js/ece.js and both pass tests/vectors/ece.json.

Keys (secret ``S`` of 16 bytes or more, document id ``D``)::

    content IKM  = HKDF-SHA256(ikm=S, salt=UTF-8(D), info="teleconsult/v1/content",  L=16)
    metadata key = HKDF-SHA256(ikm=S, salt=UTF-8(D), info="teleconsult/v1/metadata", L=32)

Content is RFC 8188 with rs = 65536, an empty keyid and a random 16-byte salt per file.
Every record is padded to the full record size and padding-only records are appended so
that the ciphertext length is ``padded_size(plaintext length)``: the server learns a
bucket, not a size. Metadata is compact JSON padded with zero bytes to a multiple of
1024 bytes, sealed with AES-256-GCM under a random 12-byte IV that is prepended.

Streaming keeps one record in memory at a time, whatever the file size. Plaintext of a
record is released as soon as that record authenticates; a stream is only known to be
complete (not truncated) when the iteration ends without an exception, so a consumer
must discard what it received if a :class:`DecryptionError` is raised.

The package keeps key handling (:mod:`.keys`) apart from the record format
(:mod:`.records`), the size buckets (:mod:`.padding`), the stream transforms
(:mod:`.streams`) and the metadata (:mod:`.metadata`); this module is the public face.
"""

from .errors import (
    BadHeader,
    BadMetadata,
    BadPadding,
    DecryptionError,
    TamperedRecord,
    TrailingData,
    TruncatedStream,
    WrongKey,
)
from .keys import (
    CONSULTATION_SECRET_SIZE,
    CONTENT_IKM_SIZE,
    DOCUMENT_ID,
    METADATA_KEY_SIZE,
    MIN_SECRET_SIZE,
    SALT_SIZE,
    b64url_decode,
    b64url_encode,
    derive_content_ikm,
    derive_metadata_key,
    derive_record_keys,
)
from .metadata import (
    METADATA_BLOCK,
    METADATA_IV_SIZE,
    METADATA_MAX_PLAINTEXT,
    METADATA_MAX_SIZE,
    decrypt_metadata,
    encrypt_metadata,
)
from .padding import (
    bucket_records,
    is_padded_size,
    min_records,
    padded_records,
    padded_size,
)
from .records import (
    HEADER_SIZE,
    LAST_DELIMITER,
    MAX_RECORD_SIZE,
    MIN_RECORD_SIZE,
    RECORD_DATA_SIZE,
    RECORD_SIZE,
    TAG_SIZE,
    Header,
    build_header,
    open_record,
    parse_header,
    seal_record,
)
from .streams import (
    Decryptor,
    Encryptor,
    adecrypt_stream,
    aencrypt_stream,
    decrypt,
    decrypt_stream,
    encrypt,
    encrypt_stream,
)

__all__ = [
    "CONSULTATION_SECRET_SIZE",
    "CONTENT_IKM_SIZE",
    "DOCUMENT_ID",
    "HEADER_SIZE",
    "LAST_DELIMITER",
    "MAX_RECORD_SIZE",
    "METADATA_BLOCK",
    "METADATA_IV_SIZE",
    "METADATA_KEY_SIZE",
    "METADATA_MAX_PLAINTEXT",
    "METADATA_MAX_SIZE",
    "MIN_RECORD_SIZE",
    "MIN_SECRET_SIZE",
    "RECORD_DATA_SIZE",
    "RECORD_SIZE",
    "SALT_SIZE",
    "TAG_SIZE",
    "BadHeader",
    "BadMetadata",
    "BadPadding",
    "DecryptionError",
    "Decryptor",
    "Encryptor",
    "Header",
    "TamperedRecord",
    "TrailingData",
    "TruncatedStream",
    "WrongKey",
    "adecrypt_stream",
    "aencrypt_stream",
    "b64url_decode",
    "b64url_encode",
    "bucket_records",
    "build_header",
    "decrypt",
    "decrypt_metadata",
    "decrypt_stream",
    "derive_content_ikm",
    "derive_metadata_key",
    "derive_record_keys",
    "encrypt",
    "encrypt_metadata",
    "encrypt_stream",
    "is_padded_size",
    "min_records",
    "open_record",
    "padded_records",
    "padded_size",
    "parse_header",
    "seal_record",
]
