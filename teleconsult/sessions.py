"""Clinicians' login sessions, kept in the database so that they can end on the server.

The browser's (encrypted) cookie holds a random token; the `sessions` table holds its hash, the
clinician, whether the second factor was given, and two moments. A session is valid while its
row exists, it is younger than MAX_AGE_SECONDS and it was seen within the idle timeout. Logout
deletes its row; a password change or a TOTP reset deletes every row of the clinician (accounts.py,
in the same transaction as the change), so a copied cookie stops working everywhere at once.

`last_seen_at` is written at most once every TOUCH_SECONDS per session (not on every request).
Plain SQLAlchemy Core: the table may be shared by several app instances on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .db_tables import sessions

MAX_AGE_SECONDS = 12 * 3600  # absolute lifetime, whatever the activity
TOUCH_SECONDS = 60  # last_seen_at is written at most this often per session (a quarter of the idle
# timeout when that is shorter)


@dataclass(frozen=True)
class Session:
    clinician_id: str
    verified: bool  # False: the password was given, the second factor not yet


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _expired(idle_seconds: float, now: float):
    return sa.or_(sessions.c.created_at <= now - MAX_AGE_SECONDS, sessions.c.last_seen_at <= now - idle_seconds)


async def open_session(engine: AsyncEngine, clinician_id: str, *, verified: bool, idle_seconds: float,
                       now: float) -> str:
    """A new session; returns its token (for the cookie). Expired rows are cleared on the way."""
    token = secrets.token_urlsafe(32)
    async with engine.begin() as conn:
        await conn.execute(sessions.delete().where(_expired(idle_seconds, now)))
        await conn.execute(sessions.insert().values(
            token_hash=_hash(token), clinician_id=clinician_id, verified=verified,
            created_at=now, last_seen_at=now))
    return token


async def check_session(engine: AsyncEngine, token: str, *, idle_seconds: float, now: float) -> Session | None:
    """The session of `token` if it is still valid (and note it was seen); None otherwise."""
    token_hash = _hash(token)
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(sessions).where(sessions.c.token_hash == token_hash))).first()
    if row is None:
        return None
    if row.created_at <= now - MAX_AGE_SECONDS or row.last_seen_at <= now - idle_seconds:
        await end_session(engine, token)
        return None
    if now - row.last_seen_at >= min(TOUCH_SECONDS, idle_seconds / 4):  # short timeouts stay exact
        async with engine.begin() as conn:  # conditional: concurrent requests write once
            await conn.execute(sessions.update().where(
                sessions.c.token_hash == token_hash, sessions.c.last_seen_at == row.last_seen_at
            ).values(last_seen_at=now))
    return Session(clinician_id=row.clinician_id, verified=bool(row.verified))


async def end_session(engine: AsyncEngine, token: str) -> None:
    """Logout: this session ends (any copy of its cookie with it)."""
    async with engine.begin() as conn:
        await conn.execute(sessions.delete().where(sessions.c.token_hash == _hash(token)))


async def end_all_sessions(conn: AsyncConnection, clinician_id: str) -> int:
    """Every session of the clinician ends (within the caller's transaction); returns how many."""
    result = await conn.execute(sessions.delete().where(sessions.c.clinician_id == clinician_id))
    return result.rowcount
