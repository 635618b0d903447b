"""Key handling: the consultation (or drop) secret and a document id give the content
key material and the metadata key (HKDF-SHA256); RFC 8188 derives each file's content
encryption key and base nonce from that material and the file's salt. Secrets travel in
link fragments as unpadded base64url."""

from __future__ import annotations

import base64
import re

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SALT_SIZE = 16  # RFC 8188: one random salt per file
NONCE_SIZE = 12
CEK_SIZE = 16

CONTENT_INFO = b"teleconsult/v1/content"
METADATA_INFO = b"teleconsult/v1/metadata"
CEK_INFO = b"Content-Encoding: aes128gcm\x00"
NONCE_INFO = b"Content-Encoding: nonce\x00"

CONTENT_IKM_SIZE = 16
METADATA_KEY_SIZE = 32

MIN_SECRET_SIZE = 16  # standalone drop
CONSULTATION_SECRET_SIZE = 32

DOCUMENT_ID = re.compile(r"[A-Za-z0-9._~-]{1,256}")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url, the form secrets take in link fragments."""
    return base64.urlsafe_b64encode(bytes(data)).decode("ascii").rstrip("=")


def b64url_decode(text: str) -> bytes:
    """Inverse of :func:`b64url_encode`. Rejects padding and any character outside the
    URL-safe alphabet (the standard decoder silently skips them)."""
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not unpadded base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _hkdf(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def _check_secret(secret: bytes, doc_id: str) -> tuple[bytes, bytes]:
    if not isinstance(secret, (bytes, bytearray)) or len(secret) < MIN_SECRET_SIZE:
        raise ValueError(f"secret must be at least {MIN_SECRET_SIZE} bytes")
    if not isinstance(doc_id, str) or not DOCUMENT_ID.fullmatch(doc_id):
        raise ValueError("document id must be 1-256 URL-safe characters")
    return bytes(secret), doc_id.encode("utf-8")


def derive_content_ikm(secret: bytes, doc_id: str) -> bytes:
    """The 16-byte RFC 8188 input keying material of document ``doc_id``."""
    ikm, salt = _check_secret(secret, doc_id)
    return _hkdf(ikm, salt, CONTENT_INFO, CONTENT_IKM_SIZE)


def derive_metadata_key(secret: bytes, doc_id: str) -> bytes:
    """The 32-byte AES-256-GCM key sealing the metadata of document ``doc_id``."""
    ikm, salt = _check_secret(secret, doc_id)
    return _hkdf(ikm, salt, METADATA_INFO, METADATA_KEY_SIZE)


def derive_record_keys(ikm: bytes, salt: bytes) -> tuple[bytes, bytes]:
    """RFC 8188 section 2.2/2.3: (content encryption key, base nonce) for one file."""
    if len(salt) != SALT_SIZE:
        raise ValueError(f"salt must be {SALT_SIZE} bytes")
    return (
        _hkdf(bytes(ikm), bytes(salt), CEK_INFO, CEK_SIZE),
        _hkdf(bytes(ikm), bytes(salt), NONCE_INFO, NONCE_SIZE),
    )
