"""The SQLite engine: its connections' pragmas, one writer at a time, and the pool's events.

SQLite runs in WAL mode with a busy timeout so the CLI can write while `serve` runs, and
synchronous=NORMAL: a commit appends to the WAL without an fsync (the WAL is synced at each
checkpoint). A process killed at any point loses nothing committed; a power cut may roll back
the last transactions, never to a corrupt or inconsistent database. What must survive a power
cut says so: filedrop's publishing commit asks for a synced WAL (filedrop.uploads.durable_commit;
honoured here by `_retire_synced`), after
filedrop/storage.py fsynced the file and its directory.

Write transactions (`engine.begin()`) run one at a time per process, in arrival order
(`SerializedWrites`): SQLite allows one writer anyway, and its busy handler sleeps and polls
without any order, so under a burst some writer waited past the busy timeout and its request
answered an error. Only another process (the CLI, a backup) can still make a write wait, up to
BUSY_TIMEOUT_SECONDS, and then the request answers 503 (web/security.py), never a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from filedrop.uploads import SYNCED_KEY

from .db_busy import BUSY_TIMEOUT_SECONDS


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # see the module's docstring
    cursor.execute("PRAGMA foreign_keys=ON")
    # deleted and overwritten content is zeroed, not left in free space (purged names, forgotten records)
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
    cursor.close()


def _retire_synced(_dbapi_connection, record, _proxy) -> None:
    """A connection whose transaction asked for a synced commit (PRAGMA synchronous=FULL, see
    filedrop.uploads.durable_commit) is not reused: the pool opens a fresh one at NORMAL.

    Setting it back to NORMAL instead (one statement, where a fresh connection costs the next
    request 17 round trips, ~3 ms) was tried, on the way back to the pool and at the next
    checkout: both await inside the pool's events, and a task cancelled there (a client gone
    while its request ended) left a connection outside the pool, for the garbage collector to
    find (3 to 5 runs in 10 of test_interrupted_upload_resumes_from_the_offset_the_server_reports;
    0 in 10 with this). Raising DisconnectionError awaits nothing here: the pool invalidates the
    connection and opens another itself."""
    if record.info.get(SYNCED_KEY):
        raise sa.exc.DisconnectionError("connection left at synchronous=FULL")


# set while this task runs a write transaction: a nested begin() must not wait for itself
_writing: contextvars.ContextVar[bool] = contextvars.ContextVar("teleconsult_db_writing", default=False)


class SerializedWrites(AsyncEngine):
    """An AsyncEngine whose `begin()` transactions run one at a time in this process, in the
    order they asked (an asyncio.Lock is fair). Reads (`connect()`) are not held back: WAL lets
    them run beside the writer."""

    __slots__ = ("_lock", "_lock_loop")

    def __init__(self, sync_engine):
        super().__init__(sync_engine)
        self._lock: asyncio.Lock | None = None
        self._lock_loop = None

    def _writer_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:  # an engine may outlive one asyncio.run
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        if _writing.get():
            async with super().begin() as conn:
                yield conn
            return
        async with self._writer_lock():
            token = _writing.set(True)
            try:
                async with super().begin() as conn:
                    yield conn
            finally:
                _writing.reset(token)


def _skip_idle_rollbacks(dialect) -> None:
    """SQLAlchemy rolls back a connection returned to the pool after a commit, and closes a
    read-only one with a rollback; through aiosqlite each is a round trip to the connection's
    thread (a queue put, a wake-up of the event loop) although SQLite then has no transaction
    open and sqlite3's rollback() does nothing. Ask SQLite first (in the caller's thread: the
    connection is checked out, nothing else runs on it): same outcome, one round trip fewer per
    request that reads and per write transaction."""
    rollback = dialect.do_rollback

    def do_rollback(dbapi_connection) -> None:
        try:
            idle = dbapi_connection.driver_connection.in_transaction is False
        except Exception:  # noqa: BLE001 - a closed or unusual connection: roll back as SQLAlchemy would
            idle = False
        if not idle:
            rollback(dbapi_connection)

    dialect.do_rollback = do_rollback


def sqlite_engine(url: str) -> AsyncEngine:
    """The engine for an aiosqlite URL (sqlite+aiosqlite:///path), its directory made if missing."""
    path = url.split("///", 1)[-1]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = SerializedWrites(create_async_engine(url).sync_engine)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    event.listen(engine.sync_engine.pool, "checkout", _retire_synced)
    _skip_idle_rollbacks(engine.sync_engine.dialect)
    return engine
