"""Patients' display names, encrypted to the consultation (docs/encryption.md section 10).

The patient's page seals the name it typed under a key derived from the consultation secret S
(the link's fragment); the server stores and relays only the sealed blob, as base64url text; the
clinician's pages open it (they hold S). The browser side is static/js/names.js; both pass
tests/vectors/names.json.

    name_key = HKDF-SHA256(ikm = S, salt = "", info = "teleconsult/v1/name", L = 32)
    sealed   = IV (12 random bytes) || AES-256-GCM(name_key, IV, UTF-8(name) || zero bytes to 256)

Every sealed name is SEALED_SIZE (284) bytes, whatever the name: the server learns nothing of
its length. The server can check only that shape (`check_sealed`); the name's own rules (at most
60 characters, no control character) are checked by the page that types it and the page that
opens it (`clean`).
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from filedrop.ece import b64url_decode, b64url_encode

from .text import without_bidi_controls

NAME_INFO = b"teleconsult/v1/name"
KEY_SIZE = 32
IV_SIZE = 12
TAG_SIZE = 16
PADDED_SIZE = 256  # UTF-8 bytes of the name and zero bytes after it
SEALED_SIZE = IV_SIZE + PADDED_SIZE + TAG_SIZE  # 284
SEALED_TEXT_SIZE = (SEALED_SIZE * 8 + 5) // 6  # 379 base64url characters, unpadded
SECRET_SIZE = 32  # a consultation secret
MAX_CHARACTERS = 60


class BadName(ValueError):
    """A name that breaks the rules (empty, too long, control characters)."""


class BadSealedName(ValueError):
    """Not a sealed name: wrong length or encoding, or it does not open under this secret."""


def clean(name: str) -> str:
    """Whitespace collapsed, bidi controls removed; BadName when empty, over 60 characters or
    holding a control character (the same rules as static/js/names.js `cleanName`)."""
    if any("\x1c" <= ch <= "\x1f" for ch in name or ""):  # control characters str.split() takes for spaces
        raise BadName("display name has control characters")
    name = " ".join(without_bidi_controls(name or "").split())
    if not name:
        raise BadName("display name is empty")
    if len(name) > MAX_CHARACTERS:
        raise BadName(f"display name is longer than {MAX_CHARACTERS} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise BadName("display name has control characters")
    return name


def derive_key(secret: bytes) -> bytes:
    if len(secret) != SECRET_SIZE:
        raise ValueError(f"a consultation secret is {SECRET_SIZE} bytes")
    return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=b"", info=NAME_INFO).derive(secret)


def seal(secret: bytes, name: str, iv: bytes | None = None) -> bytes:
    """The sealed name (SEALED_SIZE bytes). `iv` only for test vectors: random otherwise."""
    data = clean(name).encode("utf-8")
    if len(data) > PADDED_SIZE:  # 60 characters are at most 240 bytes: cannot happen
        raise BadName("display name is too long")
    iv = os.urandom(IV_SIZE) if iv is None else iv
    if len(iv) != IV_SIZE:
        raise ValueError(f"the IV is {IV_SIZE} bytes")
    return iv + AESGCM(derive_key(secret)).encrypt(iv, data.ljust(PADDED_SIZE, b"\0"), None)


def open_sealed(secret: bytes, sealed: bytes) -> str:
    """The name in a sealed blob; BadSealedName when it is not one or not under `secret`."""
    if len(sealed) != SEALED_SIZE:
        raise BadSealedName(f"a sealed name is {SEALED_SIZE} bytes")
    try:
        padded = AESGCM(derive_key(secret)).decrypt(sealed[:IV_SIZE], sealed[IV_SIZE:], None)
    except InvalidTag:
        raise BadSealedName("the sealed name does not open under this secret") from None
    try:
        return clean(padded.rstrip(b"\0").decode("utf-8"))
    except (UnicodeDecodeError, BadName):
        raise BadSealedName("the sealed name holds no valid name") from None


def seal_text(secret: bytes, name: str) -> str:
    return b64url_encode(seal(secret, name))


def open_text(secret: bytes, text: str) -> str:
    return open_sealed(secret, check_sealed(text))


def check_sealed(text: object) -> bytes:
    """What the server can check of a sealed name it receives: unpadded base64url of exactly
    SEALED_SIZE bytes. Returns the bytes; BadSealedName otherwise (never the text in the message)."""
    if not isinstance(text, str) or len(text) != SEALED_TEXT_SIZE:
        raise BadSealedName(f"a sealed name is {SEALED_TEXT_SIZE} base64url characters")
    try:
        data = b64url_decode(text)
    except ValueError:
        raise BadSealedName("a sealed name is base64url") from None
    if len(data) != SEALED_SIZE:
        raise BadSealedName(f"a sealed name is {SEALED_SIZE} bytes")
    return data
