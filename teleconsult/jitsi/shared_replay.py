"""The Prosody events endpoint's memory (signatures seen, event ids handled) as every instance
sees it: in the database on PostgreSQL (table seen_events), so that a signed request replayed to
another instance, or after a restart, is still refused, and a retried event is applied once.
`LocalGuard` keeps events.ReplayGuard's in-process memory behind the same awaitable methods
(SQLite: one instance)."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from .. import db_tables
from .events import Replayed, ReplayGuard

# one statement: record the key, or renew it if its time had passed; no row back: seen already
_SEE = sa.text("""
INSERT INTO seen_events (key, expires_at) VALUES (:key, :expires)
ON CONFLICT (key) DO UPDATE SET expires_at = :expires WHERE seen_events.expires_at <= :now
RETURNING key""")


class LocalGuard:
    def __init__(self, guard: ReplayGuard) -> None:
        self.guard = guard

    async def seen(self, key: str, now: float) -> bool:
        return self.guard.seen(key, now)

    async def check(self, key: str, now: float) -> None:
        self.guard.check(key, now)

    async def forget(self, key: str) -> None:
        self.guard.forget(key)


class SharedGuard:
    def __init__(self, engine: AsyncEngine, kind: str, window_seconds: float) -> None:
        self.engine, self.kind, self.window_seconds = engine, kind, window_seconds

    def _key(self, key: str) -> str:
        return hashlib.sha256(f"{self.kind}:{key}".encode()).hexdigest()

    async def seen(self, key: str, now: float) -> bool:
        """True if `key` was recorded within the window (by any instance); record it otherwise."""
        async with self.engine.begin() as conn:
            recorded = await conn.scalar(_SEE, {"key": self._key(key), "expires": now + self.window_seconds, "now": now})
        return recorded is None

    async def check(self, key: str, now: float) -> None:
        if await self.seen(key, now):
            raise Replayed("request already seen")

    async def forget(self, key: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(db_tables.seen_events.delete().where(db_tables.seen_events.c.key == self._key(key)))


async def forget_expired(engine: AsyncEngine, now: float) -> int:
    async with engine.begin() as conn:
        result = await conn.execute(db_tables.seen_events.delete().where(db_tables.seen_events.c.expires_at <= now))
    return result.rowcount
