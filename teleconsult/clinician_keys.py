"""The clinician's key pair as the server keeps it (issue 13, docs/encryption.md section 9).

The server stores the public key and the private key wrapped under the password; it never
holds anything that unwraps it. Browsers make the key at login (when the account has none)
and re-wrap it at a password change; a host's password reset forgets it (the old password is
gone), and consultations sealed to the forgotten key open only where their secret is still
cached. Plain functions over the store; the crypto is teleconsult/sealing.py.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from filedrop.ece import b64url_encode

from . import sealing
from .db_tables import clinicians
from .errors import InvalidInput
from .sealing import WrappedKey

KEY_SALT_LABEL = b"teleconsult/v1/key-salt\x00"


@dataclass(frozen=True)
class ClinicianKey:
    public_key: str
    key_id: str
    wrapped: WrappedKey

    def public(self) -> dict:
        """What getClinicianKey answers: anyone creating a consultation may seal to it."""
        return {"public_key": self.public_key, "key_id": self.key_id}

    def for_owner(self) -> dict:
        """What the clinician's own pages receive, to unwrap it in the browser."""
        return {**self.public(), "wrapped": self.wrapped.as_dict()}


def _key(row) -> ClinicianKey | None:
    if row is None or row.public_key is None:
        return None
    return ClinicianKey(row.public_key, sealing.key_id(row.public_key),
                        WrappedKey(row.key_iterations, row.key_salt, row.wrapped_key))


async def get_key(engine: AsyncEngine, clinician_id: str) -> ClinicianKey | None:
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(
            clinicians.c.public_key, clinicians.c.wrapped_key, clinicians.c.key_salt, clinicians.c.key_iterations,
        ).where(clinicians.c.id == clinician_id))).first()
    return _key(row)


def placeholder_salt(server_secret: str, email: str) -> str:
    """The salt answered for an email without a key: fixed per email and unpredictable
    without the server's secret, so the answer does not tell which emails have accounts.
    A browser that makes a key at login wraps it under this salt."""
    digest = hmac.new(server_secret.encode("utf-8"), KEY_SALT_LABEL + email.encode("utf-8"), hashlib.sha256)
    return b64url_encode(digest.digest()[:sealing.SALT_SIZE])


async def key_parameters(engine: AsyncEngine, server_secret: str, email: str) -> dict:
    """{salt, iterations} for the login page to derive the wrapping key before the form is
    sent; the same shape whether or not the email has an account or a key."""
    email = email.strip().lower()
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(clinicians.c.key_salt, clinicians.c.key_iterations).where(
            clinicians.c.email == email, clinicians.c.public_key.is_not(None)))).first()
    if row is not None:
        return {"salt": row.key_salt, "iterations": row.key_iterations}
    return {"salt": placeholder_salt(server_secret, email), "iterations": sealing.DEFAULT_ITERATIONS}


def proposed_key(public_key: object, wrapped: object) -> tuple[str, WrappedKey]:
    """A key pair a browser sends (its public key, and the private key wrapped under the
    password), checked for form; InvalidInput otherwise."""
    try:
        key = sealing.encode_public_key(sealing.decode_public_key(public_key))
        if not isinstance(wrapped, dict):
            raise sealing.MalformedValue("the wrapped key is not an object")
        return key, sealing.check_wrapped_key(WrappedKey.from_dict(wrapped))
    except sealing.SealingError as exc:
        raise InvalidInput(f"the clinician key is not valid: {exc}") from None


async def adopt_key(engine: AsyncEngine, clinician_id: str, public_key: str, wrapped: WrappedKey) -> bool:
    """Store the key a browser made at login, only if the clinician has none (a key is
    never replaced this way: that would orphan the consultations sealed to it)."""
    async with engine.begin() as conn:
        result = await conn.execute(clinicians.update().where(
            clinicians.c.id == clinician_id, clinicians.c.public_key.is_(None)).values(
            public_key=public_key, wrapped_key=wrapped.wrapped, key_salt=wrapped.salt,
            key_iterations=wrapped.iterations))
    return result.rowcount == 1


def rewrapped_values(wrapped: WrappedKey) -> dict:
    """Columns of a password change: the same key, wrapped under the new password."""
    return {"wrapped_key": wrapped.wrapped, "key_salt": wrapped.salt, "key_iterations": wrapped.iterations}


FORGET_KEY = {"public_key": None, "wrapped_key": None, "key_salt": None, "key_iterations": None}
