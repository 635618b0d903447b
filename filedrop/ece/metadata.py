"""Encrypted metadata (name, type, size, role of a document): compact JSON padded with
zero bytes to a multiple of 1024 bytes, sealed with AES-256-GCM under a random IV."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import BadMetadata, WrongKey
from .keys import METADATA_KEY_SIZE
from .records import TAG_SIZE

METADATA_IV_SIZE = 12
METADATA_BLOCK = 1024  # metadata plaintext is padded to a multiple of this
METADATA_MAX_PLAINTEXT = 4096
METADATA_MAX_SIZE = METADATA_IV_SIZE + METADATA_MAX_PLAINTEXT + TAG_SIZE
METADATA_FIELDS = ("name", "type", "size", "role")


def _metadata_json(metadata: Mapping) -> bytes:
    unknown = set(metadata) - set(METADATA_FIELDS)
    if unknown:
        raise ValueError(f"unknown metadata fields: {sorted(unknown)}")
    for field in ("name", "type", "role"):
        if not isinstance(metadata.get(field), str):
            raise ValueError(f"metadata {field!r} must be a string")
    size = metadata.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError("metadata 'size' must be a non-negative integer")
    # fixed field order and compact separators: byte-identical to JSON.stringify in ece.js
    ordered = {field: metadata[field] for field in METADATA_FIELDS}
    return json.dumps(ordered, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _metadata_padded_length(length: int) -> int:
    return max(1, -(-length // METADATA_BLOCK)) * METADATA_BLOCK


def encrypt_metadata(key: bytes, metadata: Mapping, *, iv: bytes | None = None) -> bytes:
    """Seal ``{"name", "type", "size", "role"}``: IV (12 bytes) || AES-256-GCM of the JSON
    padded with zero bytes to a multiple of METADATA_BLOCK (1024 + 28 bytes in all for
    any ordinary file name)."""
    if len(key) != METADATA_KEY_SIZE:
        raise ValueError(f"metadata key must be {METADATA_KEY_SIZE} bytes")
    iv = os.urandom(METADATA_IV_SIZE) if iv is None else bytes(iv)
    if len(iv) != METADATA_IV_SIZE:
        raise ValueError(f"IV must be {METADATA_IV_SIZE} bytes")
    text = _metadata_json(metadata)
    if len(text) > METADATA_MAX_PLAINTEXT:
        raise ValueError(f"metadata is longer than {METADATA_MAX_PLAINTEXT} bytes")
    plaintext = text + bytes(_metadata_padded_length(len(text)) - len(text))
    return iv + AESGCM(bytes(key)).encrypt(iv, plaintext, None)


def decrypt_metadata(key: bytes, blob: bytes) -> dict:
    """Inverse of :func:`encrypt_metadata`. Raises :class:`WrongKey` or
    :class:`BadMetadata`."""
    if len(key) != METADATA_KEY_SIZE:
        raise ValueError(f"metadata key must be {METADATA_KEY_SIZE} bytes")
    if not METADATA_IV_SIZE + TAG_SIZE + METADATA_BLOCK <= len(blob) <= METADATA_MAX_SIZE:
        raise BadMetadata(f"metadata blob of {len(blob)} bytes has an impossible length")
    blob = bytes(blob)
    try:
        plaintext = AESGCM(bytes(key)).decrypt(
            blob[:METADATA_IV_SIZE], blob[METADATA_IV_SIZE:], None
        )
    except InvalidTag:
        raise WrongKey(
            "the metadata does not authenticate: wrong secret or document id (or altered)"
        ) from None
    try:
        # JSON text never holds a raw NUL byte, so the padding strips cleanly
        metadata = json.loads(plaintext.rstrip(b"\x00").decode("utf-8"))
        if not isinstance(metadata, dict):
            raise ValueError("not an object")
        _metadata_json({field: metadata.get(field) for field in METADATA_FIELDS})
    except ValueError as exc:
        raise BadMetadata(f"the metadata is not valid: {exc}") from None
    return {field: metadata[field] for field in METADATA_FIELDS}
