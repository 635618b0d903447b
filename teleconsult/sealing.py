"""The clinician's key pair, and the consultation secret S sealed to it (issue 13).

The protocol is written out step by step in docs/encryption.md (section 9); the browser
twin is static/js/sealing.js and both pass tests/vectors/sealing.json.

- Each clinician has an ECDH P-256 key pair. The public key is stored in clear; the
  private key (PKCS#8 DER, the 138 bytes that both WebCrypto's ``wrapKey("pkcs8")`` and
  `cryptography` write) only wrapped with AES-256-GCM under
  ``PBKDF2-SHA256(password, salt, iterations)``, derived in the browser. PKCS#8 rather
  than the bare scalar lets the browser unwrap with ``unwrapKey`` straight into a
  non-extractable key: the private key never sits in JavaScript memory.
- Whoever creates a consultation seals S to the public key with HPKE (RFC 9180) in base
  mode, suite DHKEM(P-256, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM, single-shot. The
  consultation id is bound through HPKE's ``info`` (RFC 9180 section 8.1 asks single-shot
  users to put their context there; `cryptography`'s HPKE has no ``aad`` for that reason),
  so a sealed S moved to another consultation does not open.

HPKE itself is `cryptography`'s (``hazmat.primitives.hpke``, since 47.0), not written
here. It draws its ephemeral key inside, so a sealing made here cannot be fixed for a test
vector: the vectors are made by an independent implementation (pyhpke) with a fixed
ephemeral key, opened here, and reproduced byte for byte by sealing.js.

Serialised values are JSON-friendly strings, ``<kind>.v1.<unpadded base64url>``, so a
value of one kind is never taken for another and a later version can be told apart.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import asdict, dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_der_private_key,
)

from filedrop.ece import b64url_decode, b64url_encode

__all__ = [
    "VERSION", "SECRET_SIZE", "PUBLIC_KEY_SIZE", "PRIVATE_KEY_SIZE", "PKCS8_SIZE", "ENC_SIZE", "TAG_SIZE",
    "SEALED_SIZE", "SALT_SIZE", "IV_SIZE", "WRAPPED_SIZE", "MIN_ITERATIONS", "MAX_ITERATIONS",
    "DEFAULT_ITERATIONS", "SEALED_SECRET_INFO", "WRAPPED_KEY_AAD",
    "SealingError", "MalformedValue", "UnknownVersion", "WrongPassword", "SecretRejected", "WrappedKey",
    "generate_private_key", "private_key_from_bytes", "private_key_bytes", "public_key_bytes",
    "encode_public_key", "decode_public_key", "key_id", "sealing_info", "seal_secret", "open_secret",
    "check_sealed_secret", "derive_wrapping_key", "wrap_private_key", "unwrap_private_key",
    "rewrap_private_key", "check_wrapped_key",
]

# --- constants ------------------------------------------------------------------------

VERSION = "v1"
SECRET_SIZE = 32  # the consultation secret S (filedrop.ece.CONSULTATION_SECRET_SIZE)
PUBLIC_KEY_SIZE = 65  # SEC1 uncompressed point: 0x04 || x || y (RFC 9180 Npk)
PRIVATE_KEY_SIZE = 32  # big-endian scalar (RFC 9180 Nsk)
ENC_SIZE = 65  # the encapsulated ephemeral public key (RFC 9180 Nenc)
TAG_SIZE = 16
SEALED_SIZE = ENC_SIZE + SECRET_SIZE + TAG_SIZE  # 113
PKCS8_SIZE = 138  # PKCS#8 of a P-256 key: ECPrivateKey with the public key, no parameters
SALT_SIZE = 16  # PBKDF2 salt, drawn per clinician at every (re-)wrap
IV_SIZE = 12  # AES-GCM nonce of the wrapped key
WRAPPED_SIZE = IV_SIZE + PKCS8_SIZE + TAG_SIZE  # 166
MIN_ITERATIONS = 600_000  # PBKDF2-SHA256 floor (OWASP 2023); raise it, never lower it
MAX_ITERATIONS = 10_000_000  # refuse more: a stored count is read before any check
DEFAULT_ITERATIONS = MIN_ITERATIONS
WRAPPING_KEY_SIZE = 32  # AES-256-GCM

SEALED_SECRET_INFO = b"teleconsult/v1/sealed-secret"  # || 0x00 || UTF-8(consultation id)
WRAPPED_KEY_AAD = b"teleconsult/v1/wrapped-key"  # || public key (65 bytes)

PUBLIC_KEY_PREFIX = f"pk.{VERSION}."
SEALED_PREFIX = f"sealed.{VERSION}."
WRAPPED_PREFIX = f"wrapped.{VERSION}."

SUITE = Suite(KEM.P256, KDF.HKDF_SHA256, AEAD.AES_256_GCM)
CURVE = ec.SECP256R1()
_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # n of P-256

_CONSULTATION_ID = re.compile(r"[A-Za-z0-9._~-]{1,256}")
_VERSIONED = re.compile(r"([a-z]+)\.(v[0-9]+)\.(.*)", re.S)

# --- errors ---------------------------------------------------------------------------


class SealingError(ValueError):
    """A key or a sealed secret cannot be used. Nothing was opened."""


class MalformedValue(SealingError):
    """A serialised value is not of the expected kind, length or encoding (or a public
    key is not a point of P-256, or an iteration count is out of bounds)."""


class UnknownVersion(MalformedValue):
    """A serialised value names a protocol version this code does not know."""


class WrongPassword(SealingError):
    """The wrapped private key does not authenticate under the key derived from the
    password: a wrong password (or an altered wrapped key, salt, iteration count or
    public key; AES-GCM cannot tell them apart)."""


class SecretRejected(SealingError):
    """The sealed secret does not authenticate: sealed to another clinician's key, for
    another consultation, or altered."""


# --- serialisation --------------------------------------------------------------------


def _encode(prefix: str, data: bytes) -> str:
    return prefix + b64url_encode(data)


def _decode(kind: str, text: object, size: int) -> bytes:
    if not isinstance(text, str):
        raise MalformedValue(f"a {kind} must be a string")
    match = _VERSIONED.fullmatch(text)
    if match is None or match.group(1) != kind:
        raise MalformedValue(f"not a {kind} (expected '{kind}.{VERSION}.' and base64url)")
    if match.group(2) != VERSION:
        raise UnknownVersion(f"{kind} of unknown version {match.group(2)!r} (this code knows {VERSION})")
    try:
        data = b64url_decode(match.group(3))
    except ValueError:
        raise MalformedValue(f"the {kind} is not unpadded base64url") from None
    if len(data) != size:
        raise MalformedValue(f"a {kind} has {size} bytes, not {len(data)}")
    return data


# --- keys -----------------------------------------------------------------------------


def generate_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(CURVE)


def private_key_from_bytes(scalar: bytes) -> ec.EllipticCurvePrivateKey:
    """RFC 9180 ``DeserializePrivateKey`` for P-256: a 32-byte big-endian scalar in
    [1, n-1]."""
    if len(scalar) != PRIVATE_KEY_SIZE:
        raise MalformedValue(f"a private key has {PRIVATE_KEY_SIZE} bytes")
    value = int.from_bytes(scalar, "big")
    if not 0 < value < _ORDER:
        raise MalformedValue("the private key is not a scalar of P-256")
    return ec.derive_private_key(value, CURVE)


def private_key_bytes(private_key: ec.EllipticCurvePrivateKey) -> bytes:
    """RFC 9180 ``SerializePrivateKey``: the scalar, 32 bytes big-endian."""
    return private_key.private_numbers().private_value.to_bytes(PRIVATE_KEY_SIZE, "big")


def public_key_bytes(key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) -> bytes:
    """RFC 9180 ``SerializePublicKey``: the uncompressed point, 65 bytes."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        key = key.public_key()
    return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def encode_public_key(key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) -> str:
    """``pk.v1.`` + base64url of the uncompressed point: what getClinicianKey hands out."""
    return _encode(PUBLIC_KEY_PREFIX, public_key_bytes(key))


def decode_public_key(text: str) -> ec.EllipticCurvePublicKey:
    raw = _decode("pk", text, PUBLIC_KEY_SIZE)
    if raw[0] != 0x04:
        raise MalformedValue("the public key is not an uncompressed point")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(CURVE, raw)
    except ValueError:
        raise MalformedValue("the public key is not a point of P-256") from None


def key_id(public_key: str) -> str:
    """A short name of a public key (22 characters: base64url of the first 16 bytes of the
    SHA-256 of the point): which key a consultation's secret was sealed to."""
    return b64url_encode(hashlib.sha256(public_key_bytes(decode_public_key(public_key))).digest()[:16])


def _public_key(key: str | ec.EllipticCurvePublicKey) -> ec.EllipticCurvePublicKey:
    return decode_public_key(key) if isinstance(key, str) else key


# --- sealing S ------------------------------------------------------------------------


def sealing_info(consultation_id: str) -> bytes:
    """HPKE ``info``: ``teleconsult/v1/sealed-secret`` || 0x00 || UTF-8(consultation id)."""
    if not isinstance(consultation_id, str) or not _CONSULTATION_ID.fullmatch(consultation_id):
        raise ValueError("consultation id must be 1-256 URL-safe characters")
    return SEALED_SECRET_INFO + b"\x00" + consultation_id.encode("ascii")


def seal_secret(public_key: str | ec.EllipticCurvePublicKey, secret: bytes, consultation_id: str) -> str:
    """Seal the 32-byte consultation secret to the clinician's public key, for one
    consultation: ``sealed.v1.`` + base64url(enc (65) || ciphertext (48))."""
    if not isinstance(secret, (bytes, bytearray)) or len(secret) != SECRET_SIZE:
        raise ValueError(f"the consultation secret has {SECRET_SIZE} bytes")
    sealed = SUITE.encrypt(bytes(secret), _public_key(public_key), info=sealing_info(consultation_id))
    return _encode(SEALED_PREFIX, sealed)


def open_secret(private_key: ec.EllipticCurvePrivateKey, sealed: str, consultation_id: str) -> bytes:
    """Inverse of :func:`seal_secret`. Raises :class:`MalformedValue` or
    :class:`SecretRejected`."""
    data = _decode("sealed", sealed, SEALED_SIZE)
    info = sealing_info(consultation_id)
    if data[0] != 0x04:
        raise MalformedValue("the sealed secret's ephemeral key is not an uncompressed point")
    try:
        # an altered ephemeral key that is no point of P-256 lands here too
        return SUITE.decrypt(data, private_key, info=info)
    except InvalidTag:
        raise SecretRejected(
            "the sealed secret does not open: sealed to another key, for another "
            "consultation, or altered"
        ) from None


def check_sealed_secret(sealed: str) -> str:
    """The form of a sealed secret received from a creator (the server cannot open it)."""
    data = _decode("sealed", sealed, SEALED_SIZE)
    if data[0] != 0x04:
        raise MalformedValue("the sealed secret's ephemeral key is not an uncompressed point")
    return sealed


# --- wrapping the private key ---------------------------------------------------------


@dataclass(frozen=True)
class WrappedKey:
    """The private key as the server stores it: three columns, so the iteration count
    can be raised (and the salt renewed) at the next password change."""

    iterations: int
    salt: str  # unpadded base64url of SALT_SIZE bytes
    wrapped: str  # wrapped.v1.<base64url(iv || AES-256-GCM(PKCS#8))>

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> WrappedKey:
        if not isinstance(data, dict) or set(data) != {"iterations", "salt", "wrapped"}:
            raise MalformedValue("a wrapped key has exactly: iterations, salt, wrapped")
        return cls(data["iterations"], data["salt"], data["wrapped"])


def _check_iterations(iterations: object) -> int:
    if not isinstance(iterations, int) or isinstance(iterations, bool) or not (
        MIN_ITERATIONS <= iterations <= MAX_ITERATIONS
    ):
        raise MalformedValue(f"PBKDF2 iterations must be between {MIN_ITERATIONS} and {MAX_ITERATIONS}")
    return iterations


def _salt_bytes(salt: str) -> bytes:
    try:
        raw = b64url_decode(salt)
    except ValueError:
        raise MalformedValue("the salt is not unpadded base64url") from None
    if len(raw) != SALT_SIZE:
        raise MalformedValue(f"the salt has {SALT_SIZE} bytes")
    return raw


def derive_wrapping_key(password: str, salt: bytes, iterations: int) -> bytes:
    """``PBKDF2-SHA256(UTF-8(password) as typed, salt, iterations, 32 bytes)``: the
    AES-256-GCM key wrapping the private key (the browser derives it at login)."""
    if not isinstance(password, str) or not password:
        raise ValueError("the password is empty")
    if len(salt) != SALT_SIZE:
        raise MalformedValue(f"the salt has {SALT_SIZE} bytes")
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=WRAPPING_KEY_SIZE, salt=bytes(salt),
                     iterations=_check_iterations(iterations))
    return kdf.derive(password.encode("utf-8"))


def _pkcs8(private_key: ec.EllipticCurvePrivateKey) -> bytes:
    return private_key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())


def _wrap_aad(public_key: bytes) -> bytes:
    return WRAPPED_KEY_AAD + public_key


def wrap_private_key(
    private_key: ec.EllipticCurvePrivateKey,
    password: str,
    *,
    iterations: int = DEFAULT_ITERATIONS,
    salt: bytes | None = None,
    iv: bytes | None = None,
) -> WrappedKey:
    """Wrap the private key under the password (a fresh random salt and IV unless given,
    for test vectors). The AAD binds the wrapped key to its public key."""
    salt = os.urandom(SALT_SIZE) if salt is None else bytes(salt)
    iv = os.urandom(IV_SIZE) if iv is None else bytes(iv)
    if len(iv) != IV_SIZE:
        raise ValueError(f"the IV has {IV_SIZE} bytes")
    key = derive_wrapping_key(password, salt, iterations)
    sealed = AESGCM(key).encrypt(iv, _pkcs8(private_key), _wrap_aad(public_key_bytes(private_key)))
    return WrappedKey(iterations, b64url_encode(salt), _encode(WRAPPED_PREFIX, iv + sealed))


def unwrap_private_key(wrapped: WrappedKey, public_key: str, password: str) -> ec.EllipticCurvePrivateKey:
    """Inverse of :func:`wrap_private_key`. Raises :class:`WrongPassword` or
    :class:`MalformedValue`."""
    iterations = _check_iterations(wrapped.iterations)
    salt = _salt_bytes(wrapped.salt)
    blob = _decode("wrapped", wrapped.wrapped, WRAPPED_SIZE)
    public = public_key_bytes(decode_public_key(public_key))
    key = derive_wrapping_key(password, salt, iterations)
    try:
        der = AESGCM(key).decrypt(blob[:IV_SIZE], blob[IV_SIZE:], _wrap_aad(public))
    except InvalidTag:
        raise WrongPassword(
            "the private key does not unwrap: wrong password (or an altered wrapped key, "
            "salt, iteration count or public key)"
        ) from None
    # only a faulty wrapper gets past here with a bad key: the AAD binds the public key
    try:
        private_key = load_der_private_key(der, password=None)
    except ValueError:
        raise MalformedValue("the unwrapped private key is not PKCS#8") from None
    if (
        not isinstance(private_key, ec.EllipticCurvePrivateKey)
        or private_key.curve.name != CURVE.name
        or _pkcs8(private_key) != der
        or public_key_bytes(private_key) != public
    ):
        raise MalformedValue("the unwrapped private key is not the P-256 key of this public key")
    return private_key


def rewrap_private_key(
    wrapped: WrappedKey,
    public_key: str,
    old_password: str,
    new_password: str,
    *,
    iterations: int | None = None,
    salt: bytes | None = None,
    iv: bytes | None = None,
) -> WrappedKey:
    """A password change: unwrap with the old password, wrap with the new one under a
    fresh salt (and the given iteration count, by default the larger of the stored one
    and DEFAULT_ITERATIONS)."""
    private_key = unwrap_private_key(wrapped, public_key, old_password)
    if iterations is None:
        iterations = max(_check_iterations(wrapped.iterations), DEFAULT_ITERATIONS)
    return wrap_private_key(private_key, new_password, iterations=iterations, salt=salt, iv=iv)


def check_wrapped_key(wrapped: WrappedKey) -> WrappedKey:
    """The form of a wrapped key received from a browser (the server cannot unwrap it)."""
    _check_iterations(wrapped.iterations)
    _salt_bytes(wrapped.salt)
    _decode("wrapped", wrapped.wrapped, WRAPPED_SIZE)
    return wrapped
