"""When the database cannot take a request now, and how the few transactions that must go
through wait their turn.

A write waits for a lock at most BUSY_TIMEOUT_SECONDS (SQLite's busy_timeout, PostgreSQL's
lock_timeout: teleconsult/db.py and db_sqlite.py set them). An error meaning the database is
unavailable for a while (`unavailable`: busy or full; on PostgreSQL also a deadlock, a
serialization failure, a full connection table or an unreachable server) answers 503, nothing
written; a value the database refuses (`refused_value`) answers 400 (web/security.py), never a
500. The few transactions that count and decide at once (rate limits, presence) go through
`retrying`, which runs them again after a deadlock or a serialization failure.
Instances sharing a PostgreSQL database take turns with advisory locks: `lock_keys` inside a
transaction, `exclusive` around a longer task (the sweeper's).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

BUSY_TIMEOUT_SECONDS = 5  # PRAGMA busy_timeout and lock_timeout: how long a write waits for a lock
BUSY = "busy"  # another writer holds the database longer than the busy timeout
FULL = "full"  # the disk under the database is full


# PostgreSQL's SQLSTATEs for "try again": serialization failure, deadlock, lock not available
# (lock_timeout), query cancelled (statement_timeout), too many connections, cannot connect now
RETRYABLE_STATES = {"40001", "40P01"}
BUSY_STATES = RETRYABLE_STATES | {"55P03", "57014", "53300", "57P03", "08000", "08001", "08006"}
FULL_STATES = {"53100"}  # disk full


def _sqlstate(exc: BaseException) -> str | None:
    return getattr(getattr(exc, "orig", None), "sqlstate", None)


def unavailable(exc: BaseException) -> str | None:
    """BUSY or FULL when a database error is the database being unavailable for a while (the
    request may be retried later, nothing was written), None for any other error."""
    if isinstance(exc, sa.exc.TimeoutError):  # no pooled connection came free in time
        return BUSY
    if not isinstance(exc, sa.exc.DBAPIError):
        return None
    state = _sqlstate(exc)
    if state in BUSY_STATES:
        return BUSY
    if state in FULL_STATES:
        return FULL
    if not isinstance(exc, sa.exc.OperationalError):
        return None
    if state is None and exc.orig is not None and type(exc.orig).__module__.startswith("psycopg"):
        return BUSY  # the server closed the connection or cannot be reached: nothing was written
    message = str(exc.orig if exc.orig is not None else exc).lower()
    if "database is locked" in message or "database is busy" in message or "could not obtain lock" in message:
        return BUSY
    if "database or disk is full" in message or "no space left on device" in message:
        return FULL
    return None


def refused_value(exc: BaseException) -> bool:
    """True when the database refused a value the request brought, which no database write can
    hold: PostgreSQL's text cannot contain a NUL character (psycopg refuses it before sending,
    the server answers SQLSTATE 22021), where SQLite stores it. The input was malformed: the
    request answers 400, nothing was written."""
    if isinstance(exc, sa.exc.StatementError):
        exc = exc.orig if exc.orig is not None else exc
    if _sqlstate_of(exc) == "22021":
        return True
    return type(exc).__name__ == "DataError" and type(exc).__module__.startswith("psycopg") \
        and "NUL (0x00)" in str(exc)


def _sqlstate_of(exc: BaseException) -> str | None:
    return getattr(exc, "sqlstate", None)


RETRY_ATTEMPTS = 5


async def retrying(engine: AsyncEngine, work: Callable[[AsyncConnection], Awaitable]):
    """Run `work(conn)` in a write transaction; on PostgreSQL, run it again (after a short
    random pause) when it lost a deadlock or a serialization failure, up to RETRY_ATTEMPTS
    times, then let the error out (answered 503). `work` must do nothing but database work."""
    for attempt in range(RETRY_ATTEMPTS):
        try:
            async with engine.begin() as conn:
                return await work(conn)
        except sa.exc.DBAPIError as exc:
            if _sqlstate(exc) not in RETRYABLE_STATES or attempt == RETRY_ATTEMPTS - 1:
                raise
            await asyncio.sleep(random.uniform(0.005, 0.05) * (attempt + 1))


async def lock_keys(conn: AsyncConnection, *keys: str) -> None:
    """Hold a lock on each key until this transaction ends (PostgreSQL advisory transaction
    locks, taken in a fixed order so that two transactions cannot deadlock on them). SQLite runs
    one writer at a time: nothing to do there."""
    if conn.dialect.name != "postgresql":
        return
    for key in sorted(set(keys)):
        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key})


LOCK_POLL_SECONDS = 0.1


@contextlib.asynccontextmanager
async def exclusive(engine: AsyncEngine, name: str) -> AsyncIterator[None]:
    """Run the body while no other instance runs a body of the same `name` (PostgreSQL: a
    session advisory lock on a connection of its own, waited for, never lock_timeout'd). A
    process killed inside loses its connection, and PostgreSQL releases the lock with it. SQLite
    has one instance: nothing to do."""
    if engine.dialect.name == "sqlite":
        yield
        return
    key = {"key": name}
    async with engine.connect() as conn:
        while not await conn.scalar(sa.text("SELECT pg_try_advisory_lock(hashtextextended(:key, 0))"), key):
            await conn.rollback()  # no snapshot held while waiting
            await asyncio.sleep(LOCK_POLL_SECONDS)
        await conn.commit()
        try:
            yield
        finally:
            try:
                await asyncio.shield(conn.execute(
                    sa.text("SELECT pg_advisory_unlock(hashtextextended(:key, 0))"), key))
                await conn.commit()
            except BaseException:
                await conn.invalidate()  # a lock we could not release goes with its connection
                raise
