"""Clinician accounts: argon2 passwords, TOTP second factor, API tokens.

A password change or a TOTP reset ends every login session of the clinician (sessions.py), in the
same transaction as the change."""

from __future__ import annotations

import asyncio
import functools
import re
import secrets
import time
from dataclasses import dataclass

import pyotp
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncEngine

from . import clinician_keys, ids
from .text import without_bidi_controls
from .db_tables import clinicians
from .sessions import end_all_sessions
from .errors import AuthenticationFailed, Conflict, InvalidInput, NotFound
from .sealing import WrappedKey

TOTP_ISSUER = "teleconsult"
TOTP_VALID_WINDOW = 1  # accept the previous and next 30 s step (clock drift)
MIN_PASSWORD_LENGTH = 12
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

_hasher = PasswordHasher()  # stateless parameters object


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so both paths take the same time
    (made on first use: an argon2 hash costs a quarter of a second)."""
    return _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Clinician:
    id: str
    email: str
    name: str
    totp_enabled: bool


def _row_to_clinician(row) -> Clinician:
    return Clinician(id=row.id, email=row.email, name=row.name, totp_enabled=bool(row.totp_enabled))


def generate_password() -> str:
    return secrets.token_urlsafe(15)


async def _password_matches(stored_hash: str, password: str) -> bool:
    """argon2 verification, off the event loop (a quarter of a second)."""
    try:
        return await asyncio.to_thread(_hasher.verify, stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def _hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    return await asyncio.to_thread(_hasher.hash, password)


async def create_clinician(engine: AsyncEngine, email: str, name: str, password: str) -> Clinician:
    email = email.strip().lower()
    if not EMAIL_RE.match(email):
        raise InvalidInput("email address is not valid")
    name = " ".join(without_bidi_controls(name).split())
    if not name:
        raise InvalidInput("name is empty")
    password_hash = await _hash_password(password)
    clinician_id = ids.new_id()
    async with engine.begin() as conn:
        exists = await conn.scalar(sa.select(clinicians.c.id).where(clinicians.c.email == email))
        if exists:
            raise Conflict(f"a clinician with email {email} already exists")
        await conn.execute(clinicians.insert().values(
            id=clinician_id, email=email, name=name, password_hash=password_hash,
            totp_enabled=False, created_at=time.time()))
    return Clinician(id=clinician_id, email=email, name=name, totp_enabled=False)


async def get_clinician(engine: AsyncEngine, clinician_id: str) -> Clinician:
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(clinicians).where(clinicians.c.id == clinician_id))).first()
    if row is None:
        raise NotFound("no such clinician")
    return _row_to_clinician(row)


async def get_clinician_by_email(engine: AsyncEngine, email: str) -> Clinician:
    async with engine.connect() as conn:
        row = (await conn.execute(
            sa.select(clinicians).where(clinicians.c.email == email.strip().lower()))).first()
    if row is None:
        raise NotFound(f"no clinician with email {email}")
    return _row_to_clinician(row)


async def list_clinicians(engine: AsyncEngine) -> list[Clinician]:
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(clinicians).order_by(clinicians.c.email))).all()
    return [_row_to_clinician(row) for row in rows]


async def _update_and_sign_out(engine: AsyncEngine, clinician_id: str, **values) -> Clinician:
    """Apply `values` to the clinician and end every one of its sessions."""
    async with engine.begin() as conn:
        updated = await conn.execute(clinicians.update().where(clinicians.c.id == clinician_id).values(**values))
        if updated.rowcount != 1:
            raise NotFound("no such clinician")
        await end_all_sessions(conn, clinician_id)
        row = (await conn.execute(sa.select(clinicians).where(clinicians.c.id == clinician_id))).one()
    return _row_to_clinician(row)


async def set_password(engine: AsyncEngine, email: str, password: str) -> Clinician:
    """The host sets a new password (CLI): every session of the clinician is signed out, and
    the clinician key is forgotten (only the old password unwrapped it); the next login in a
    browser makes a new one."""
    password_hash = await _hash_password(password)
    clinician = await get_clinician_by_email(engine, email)
    return await _update_and_sign_out(engine, clinician.id, password_hash=password_hash,
                                      **clinician_keys.FORGET_KEY)


async def reset_totp(engine: AsyncEngine, email: str) -> Clinician:
    """Forget the second factor (a lost phone): the next login enrols again with a QR code."""
    clinician = await get_clinician_by_email(engine, email)
    return await _update_and_sign_out(engine, clinician.id,
                                      totp_secret=None, totp_enabled=False, totp_last_counter=None)


async def change_password(engine: AsyncEngine, clinician_id: str, current: str, new: str,
                          rewrapped: WrappedKey | None = None,
                          new_key: tuple[str, WrappedKey] | None = None) -> Clinician:
    """The clinician changes their own password, proving the current one (AuthenticationFailed if
    wrong). Their browser re-wrapped the clinician key under the new password (`rewrapped`,
    required when there is a key), or made one (`new_key`, taken when there is none)."""
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(clinicians.c.password_hash, clinicians.c.public_key).where(
            clinicians.c.id == clinician_id))).first()
    if row is None:
        raise NotFound("no such clinician")
    if not await _password_matches(row.password_hash, current):
        raise AuthenticationFailed("wrong current password")
    password_hash = await _hash_password(new)
    if row.public_key is not None:
        if rewrapped is None:
            raise InvalidInput("the clinician key must be re-wrapped under the new password")
        key_values = clinician_keys.rewrapped_values(rewrapped)
    elif new_key is not None:
        key_values = {"public_key": new_key[0], **clinician_keys.rewrapped_values(new_key[1])}
    else:
        key_values = {}
    return await _update_and_sign_out(engine, clinician_id, password_hash=password_hash, **key_values)


async def verify_password(engine: AsyncEngine, email: str, password: str) -> Clinician:
    """The clinician if the password matches; AuthenticationFailed otherwise (same time either way)."""
    async with engine.connect() as conn:
        row = (await conn.execute(
            sa.select(clinicians).where(clinicians.c.email == email.strip().lower()))).first()
    stored = row.password_hash if row is not None else await asyncio.to_thread(_dummy_hash)
    if not await _password_matches(stored, password) or row is None:
        raise AuthenticationFailed("wrong email or password")
    return _row_to_clinician(row)


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=TOTP_ISSUER)


def _matching_counter(secret: str, code: str, now: float) -> int | None:
    code = code.strip().replace(" ", "")
    if not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    base = int(now // totp.interval)
    for offset in range(-TOTP_VALID_WINDOW, TOTP_VALID_WINDOW + 1):
        if secrets.compare_digest(totp.generate_otp(base + offset), code):
            return base + offset
    return None


async def enable_totp(engine: AsyncEngine, clinician_id: str, secret: str, code: str, now: float | None = None) -> None:
    """Finish enrolment: the code proves the authenticator app holds `secret`."""
    now = time.time() if now is None else now
    counter = _matching_counter(secret, code, now)
    if counter is None:
        raise AuthenticationFailed("wrong code")
    async with engine.begin() as conn:
        await conn.execute(clinicians.update().where(clinicians.c.id == clinician_id).values(
            totp_secret=secret, totp_enabled=True, totp_last_counter=counter))


async def verify_totp(engine: AsyncEngine, clinician_id: str, code: str, now: float | None = None) -> None:
    """Check a code once: a code already used (same 30 s step or older) is refused."""
    now = time.time() if now is None else now
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(clinicians).where(clinicians.c.id == clinician_id))).first()
    if row is None or not row.totp_enabled or not row.totp_secret:
        raise AuthenticationFailed("second factor not enrolled")
    counter = _matching_counter(row.totp_secret, code, now)
    if counter is None:
        raise AuthenticationFailed("wrong code")
    async with engine.begin() as conn:
        # Conditional on the counter still being older: of two requests with the same code at
        # the same time, the database lets exactly one through (a read-then-write would let both).
        used = await conn.execute(clinicians.update().where(
            clinicians.c.id == clinician_id,
            sa.or_(clinicians.c.totp_last_counter.is_(None), clinicians.c.totp_last_counter < counter),
        ).values(totp_last_counter=counter))
        if used.rowcount != 1:
            raise AuthenticationFailed("wrong code")


async def issue_api_token(engine: AsyncEngine, email: str) -> str:
    """A new API token for the clinician, replacing any previous one. Only its hash is stored."""
    clinician = await get_clinician_by_email(engine, email)
    token = ids.new_api_token()
    async with engine.begin() as conn:
        await conn.execute(clinicians.update().where(clinicians.c.id == clinician.id).values(
            api_token_hash=ids.token_hash(token)))
    return token


# Built once: each API request only binds the token's hash (SQLAlchemy builds no statement and no
# cache key per request), and reads the four columns a Clinician has, not the key material.
_BY_API_TOKEN = sa.select(clinicians.c.id, clinicians.c.email, clinicians.c.name, clinicians.c.totp_enabled).where(
    clinicians.c.api_token_hash == sa.bindparam("token_hash"))


async def clinician_for_api_token(engine: AsyncEngine, token: str) -> Clinician:
    async with engine.connect() as conn:
        row = (await conn.execute(_BY_API_TOKEN, {"token_hash": ids.token_hash(token)})).first()
    if row is None:
        raise AuthenticationFailed("unknown API token")
    return _row_to_clinician(row)
