"""Fixed-window attempt counters kept in memory, one list of timestamps per key.

`attempt(*keys)` checks every key and counts the attempt on each in one step, with no await in
between: requests sent at once cannot all pass the check before any of them is counted (the
event loop runs one at a time). A success may then be forgiven (`Attempt.forgive`), so only
failures use up the allowance.

In-process for one instance (the embedded default, SQLite). Several instances on PostgreSQL
count in the database instead (`SharedRateLimiter`): one UPSERT per key both checks and counts,
so hits spread over instances, or sent at once, add up and none passes the limit.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from . import db_busy, db_tables
from .errors import RateLimited

MAX_KEYS = 100_000  # bound on memory under a flood of distinct keys


@dataclass
class Attempt:
    """One counted attempt; `forgive()` takes it back (the credential was right)."""
    limiter: RateLimiter
    keys: tuple[str, ...]
    stamp: float

    async def forgive(self) -> None:
        for key in self.keys:
            hits = self.limiter._hits.get(key)
            if hits and self.stamp in hits:
                hits.remove(self.stamp)
                if not hits:
                    del self.limiter._hits[key]


@dataclass
class RateLimiter:
    limit: int
    window: float
    clock: Callable[[], float] = time.monotonic
    _hits: dict[str, list[float]] = field(default_factory=dict)

    def _recent(self, key: str, now: float) -> list[float]:
        hits = [t for t in self._hits.get(key, ()) if now - t < self.window]
        if hits:
            self._hits[key] = hits
        else:
            self._hits.pop(key, None)
        return hits

    async def attempt(self, *keys: str) -> Attempt:
        """Count one attempt on every key, or raise RateLimited (counting nothing) when any key
        has used up its allowance. Check and count are one step."""
        now = self.clock()
        for key in keys:
            hits = self._recent(key, now)
            if len(hits) >= self.limit:
                raise RateLimited(retry_after=self.window - (now - hits[0]))
        for key in keys:
            if key not in self._hits and len(self._hits) >= MAX_KEYS:
                self._hits.pop(next(iter(self._hits)))
            self._hits.setdefault(key, []).append(now)
        return Attempt(self, keys, now)

    def reset(self, key: str) -> None:
        self._hits.pop(key, None)

    async def hits(self, key: str) -> int:
        """Attempts counted on `key` in the current window."""
        return len(self._recent(key, self.clock()))


# One statement per key: insert the counter, or count one more hit in its window, or start a new
# window once it expired; a counter at its limit is left as is and returns no row (refused).
_HIT = sa.text("""
INSERT INTO rate_limits (key, window_start, expires_at, hits) VALUES (:key, :now, :now + :window, 1)
ON CONFLICT (key) DO UPDATE SET
  hits = CASE WHEN rate_limits.expires_at <= :now THEN 1 ELSE rate_limits.hits + 1 END,
  window_start = CASE WHEN rate_limits.expires_at <= :now THEN :now ELSE rate_limits.window_start END,
  expires_at = CASE WHEN rate_limits.expires_at <= :now THEN :now + :window ELSE rate_limits.expires_at END
WHERE rate_limits.expires_at <= :now OR rate_limits.hits < :limit
RETURNING window_start""")


@dataclass
class SharedAttempt:
    limiter: SharedRateLimiter
    windows: dict[str, float]  # hashed key -> the window the hit was counted in

    async def forgive(self) -> None:
        async def work(conn):
            for key, start in self.windows.items():
                await conn.execute(db_tables.rate_limits.update().where(
                    db_tables.rate_limits.c.key == key, db_tables.rate_limits.c.window_start == start,
                    db_tables.rate_limits.c.hits > 0).values(hits=db_tables.rate_limits.c.hits - 1))
        await db_busy.retrying(self.limiter.engine, work)


def key_secret(session_secret: str) -> bytes:
    """The HMAC key of the shared limiters' stored keys: every instance derives the same one from
    the session secret they already share, and no other use of that secret shares this key."""
    return hashlib.sha256(b"teleconsult/v1/rate-limit-keys" + session_secret.encode()).digest()


@dataclass
class SharedRateLimiter:
    """The same allowance as RateLimiter, counted in the database (table rate_limits) so that
    every instance shares it: `limit` attempts per key in a fixed window of `window` seconds
    opened by the key's first attempt. All keys of one attempt are counted in one transaction:
    a refusal on any key counts nothing on the others.

    A key names a client address, an account, a browser: the table stores it as an HMAC under
    `secret` (derived from the instances' shared session secret, key_secret()), never a plain
    hash, which anyone reading the database or a backup could reverse by hashing every IPv4
    address (2^32 guesses) or a list of e-mail addresses."""
    name: str  # the limiter's name: keys of different limiters never meet
    limit: int
    window: float
    engine: AsyncEngine
    secret: bytes = field(repr=False)  # HMAC key of the stored keys: key_secret(settings.session_secret)
    clock: Callable[[], float] = time.time  # wall clock: instances share it, not their monotonic ones

    def _key(self, key: str) -> str:
        return hmac.new(self.secret, f"{self.name}:{key}".encode(), hashlib.sha256).hexdigest()

    async def attempt(self, *keys: str) -> SharedAttempt:
        hashed = sorted({self._key(key) for key in keys})  # one order: no deadlock between attempts
        now = self.clock()

        async def work(conn):
            windows = {}
            for key in hashed:
                start = await conn.scalar(_HIT, {"key": key, "now": now, "window": self.window, "limit": self.limit})
                if start is None:  # refused: the transaction rolls back the other keys' hits
                    table = db_tables.rate_limits
                    expires = await conn.scalar(sa.select(table.c.expires_at).where(table.c.key == key))
                    raise RateLimited(retry_after=max(0.0, (expires or now) - now))
                windows[key] = start
            return windows

        return SharedAttempt(self, await db_busy.retrying(self.engine, work))

    async def hits(self, key: str) -> int:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(db_tables.rate_limits.c.hits, db_tables.rate_limits.c.expires_at)
                                      .where(db_tables.rate_limits.c.key == self._key(key)))).first()
        return row.hits if row is not None and row.expires_at > self.clock() else 0


async def forget_expired(engine: AsyncEngine, now: float) -> int:
    """Delete the counters whose window has passed (the sweeper's step)."""
    async with engine.begin() as conn:
        result = await conn.execute(db_tables.rate_limits.delete().where(db_tables.rate_limits.c.expires_at <= now))
    return result.rowcount
