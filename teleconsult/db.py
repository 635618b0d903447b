"""The database: SQLAlchemy Core tables, the async engine, and migrations by Alembic.

SQLite runs in WAL mode with a busy timeout so the CLI can write while `serve` runs, and
synchronous=NORMAL: a commit appends to the WAL without an fsync (the WAL is synced at each
checkpoint). A process killed at any point loses nothing committed; a power cut may roll back
the last transactions, never to a corrupt or inconsistent database. What must survive a power
cut says so: filedrop's publishing commit asks for a synced WAL (filedrop.store.durable_commit;
the connection goes back to NORMAL when it returns to the pool, `_back_to_normal`), after
filedrop/storage.py fsynced the file and its directory.

Write transactions (`engine.begin()`) run one at a time per process, in arrival order
(`SerializedWrites`): SQLite allows one writer anyway, and its busy handler sleeps and polls
without any order, so under a burst some writer waited past the busy timeout and its request
answered an error. Only another process (the CLI, a backup) can still make a write wait, up to
BUSY_TIMEOUT_SECONDS, and then the request answers 503 (web/security.py), never a 500.

PostgreSQL (a `postgresql://` database_url, for several instances on one database; driver:
psycopg 3) needs none of that: it has row locks and many writers, so `begin()` is SQLAlchemy's
own and the pragmas do not apply. A statement waiting for a lock longer than
BUSY_TIMEOUT_SECONDS (lock_timeout), a deadlock, a serialization failure, a full connection
table or an unreachable server is "busy" (503, nothing written); the few transactions that
count and decide at once (rate limits, quotas) go through `retrying`, which runs them again
after a deadlock or a serialization failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

import filedrop.migrations
from filedrop.store import SYNCED_KEY

metadata = sa.MetaData()

clinicians = sa.Table(
    "clinicians", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("totp_secret", sa.String(64), nullable=True),
    sa.Column("totp_enabled", sa.Boolean, nullable=False, default=False),
    sa.Column("totp_last_counter", sa.Integer, nullable=True),
    sa.Column("api_token_hash", sa.String(64), nullable=True, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    # read by nothing since server-side sessions (0005); kept because dropping it would rebuild the table
    sa.Column("session_epoch", sa.Integer, nullable=False, default=0, server_default="0"),
    # the clinician's key pair (docs/encryption.md section 9): the public key in clear, the private
    # key only wrapped under the password, with its PBKDF2 salt and iteration count beside it
    sa.Column("public_key", sa.String(100), nullable=True),
    sa.Column("wrapped_key", sa.String(240), nullable=True),
    sa.Column("key_salt", sa.String(32), nullable=True),
    sa.Column("key_iterations", sa.Integer, nullable=True),
)

# Clinicians' login sessions, checked on every authenticated request (sessions.py): logout deletes
# one, a password change or a TOTP reset deletes all of a clinician's. The cookie holds the token;
# only its hash is stored.
sessions = sa.Table(
    "sessions", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("clinician_id", sa.String(32), sa.ForeignKey("clinicians.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("verified", sa.Boolean, nullable=False),  # False: password given, second factor due
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_seen_at", sa.Float, nullable=False, index=True),
)

consultations = sa.Table(
    "consultations", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("clinician_id", sa.String(32), sa.ForeignKey("clinicians.id"), nullable=False, index=True),
    sa.Column("room_name", sa.String(64), nullable=False, unique=True),
    sa.Column("join_token", sa.String(64), nullable=False, unique=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("allow_rejoin", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("deadline_at", sa.Float, nullable=False),
    sa.Column("ended_at", sa.Float, nullable=True),
    sa.Column("end_reason", sa.String(32), nullable=True),
    # S sealed to the clinician's public key (sealed.v1.…) and the id of that key
    sa.Column("sealed_secret", sa.String(200), nullable=True),
    sa.Column("sealed_to", sa.String(32), nullable=True),
)

knocks = sa.Table(
    "knocks", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("consultation_id", sa.String(32), sa.ForeignKey("consultations.id"), nullable=False, index=True),
    # the display name sealed to the consultation secret (teleconsult/names.py); NULL once purged
    sa.Column("sealed_name", sa.String(400), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("decided_at", sa.Float, nullable=True),
)

# Room names of forgotten consultations (retention.py moves them here; a kept consultation holds its
# own) and every name issued before that rule: no name is ever issued twice (consultations.py).
used_rooms = sa.Table(
    "used_rooms", metadata,
    sa.Column("room_name", sa.String(64), primary_key=True),
)

# A clinician's letterhead: what documents print about the prescriber (teleconsult/documents/profile.py).
# Images are stored re-encoded (PNG or JPEG, no metadata), never as uploaded.
clinician_profiles = sa.Table(
    "clinician_profiles", metadata,
    sa.Column("clinician_id", sa.String(32), sa.ForeignKey("clinicians.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, default="", server_default=""),
    sa.Column("qualification", sa.String(200), nullable=False, default="", server_default=""),
    sa.Column("rpps", sa.String(40), nullable=False, default="", server_default=""),
    sa.Column("address", sa.String(400), nullable=False, default="", server_default=""),
    sa.Column("phone", sa.String(40), nullable=False, default="", server_default=""),
    sa.Column("email", sa.String(320), nullable=False, default="", server_default=""),
    sa.Column("logo", sa.LargeBinary, nullable=True),
    sa.Column("logo_type", sa.String(16), nullable=True),
    sa.Column("signature", sa.LargeBinary, nullable=True),
    sa.Column("signature_type", sa.String(16), nullable=True),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# Rate-limit counters shared by every instance (ratelimit.SharedRateLimiter, PostgreSQL): one
# fixed window per key, counted and checked by one UPSERT. The key is a hash (no address in clear).
rate_limits = sa.Table(
    "rate_limits", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("window_start", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
    sa.Column("hits", sa.Integer, nullable=False),
)

# What the Prosody events endpoint has handled, shared by every instance and kept over a restart
# (jitsi/events.SharedReplayGuard): hashes of signatures and event ids, until they expire.
seen_events = sa.Table(
    "seen_events", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
)

# Who is in each consultation's call, shared by every instance (jitsi/shared_presence.py, PostgreSQL):
# one row per occupant session (the JID hashed), live (ended_at NULL) or a tombstone (ended_at set).
presence_sessions = sa.Table(
    "presence_sessions", metadata,
    sa.Column("consultation_id", sa.String(32), sa.ForeignKey("consultations.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("jid_hash", sa.String(64), primary_key=True),
    sa.Column("joined_at", sa.BigInteger, primary_key=True, autoincrement=False),  # -1: not given
    sa.Column("role", sa.String(16), nullable=True),
    sa.Column("ended_at", sa.Float, nullable=True, index=True),
    sa.Column("noted_at", sa.Float, nullable=False),
)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # see the module's docstring
    cursor.execute("PRAGMA foreign_keys=ON")
    # deleted and overwritten content is zeroed, not left in free space (purged names, forgotten records)
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
    cursor.close()


BUSY_TIMEOUT_SECONDS = 5  # PRAGMA busy_timeout below: how long a write waits for a lock
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


def _back_to_normal(dbapi_connection, record, reset_state) -> None:
    """A connection whose transaction asked for a synced commit (PRAGMA synchronous=FULL, see
    filedrop.store.durable_commit) goes back to NORMAL when it returns to the pool, once SQLite
    says its transaction is over: one statement, where retiring it cost the next request a new
    connection (a thread, the connection and its five pragmas: 17 round trips, docs/benchmarks.md).
    When that cannot be done here (a transaction still open, outside the event loop, an error),
    the mark stays and `_retire_synced` retires the connection at its next checkout."""
    if not record.info.get(SYNCED_KEY) or not reset_state.asyncio_safe or reset_state.terminate_only:
        return
    try:
        if dbapi_connection.driver_connection.in_transaction:
            return  # rolled back just after this event: retired at the next checkout
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
    except Exception:  # noqa: BLE001 - the connection is retired at its next checkout instead
        return
    del record.info[SYNCED_KEY]


def _retire_synced(_dbapi_connection, record, _proxy) -> None:
    """A connection still marked as left at synchronous=FULL (`_back_to_normal` could not reset
    it) is not reused: the pool opens a fresh one at NORMAL."""
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


LOCK_POLL_SECONDS = 0.1


@contextlib.asynccontextmanager
async def exclusive(engine: AsyncEngine, name: str) -> AsyncIterator[None]:
    """Run the body while no other instance runs a body of the same `name` (PostgreSQL: a
    session advisory lock on a connection of its own, waited for, never lock_timeout'd). A
    process killed inside loses its connection, and PostgreSQL releases the lock with it. SQLite
    has one instance: nothing to do."""
    if is_sqlite(engine):
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


def normalized_url(url: str) -> str:
    """A database_url as SQLAlchemy's async engine takes it: postgresql:// (and postgres://)
    mean psycopg 3, sqlite:// means aiosqlite."""
    for plain, driver in (("postgresql://", "postgresql+psycopg://"), ("postgres://", "postgresql+psycopg://"),
                          ("sqlite://", "sqlite+aiosqlite://")):
        if url.startswith(plain):
            return driver + url[len(plain):]
    return url


def is_sqlite(url_or_engine) -> bool:
    if isinstance(url_or_engine, AsyncEngine):
        return url_or_engine.dialect.name == "sqlite"
    return str(url_or_engine).startswith("sqlite")


def make_engine(url: str) -> AsyncEngine:
    url = normalized_url(url)
    if not is_sqlite(url):
        # lock_timeout: a write waiting for a row another instance holds gives up like SQLite's
        # busy timeout (503); pool_pre_ping: a connection the server dropped is replaced, not used
        return create_async_engine(url, pool_pre_ping=True, pool_timeout=BUSY_TIMEOUT_SECONDS,
                                   connect_args={"options": f"-c lock_timeout={BUSY_TIMEOUT_SECONDS * 1000}",
                                                 "connect_timeout": BUSY_TIMEOUT_SECONDS})
    path = url.split("///", 1)[-1]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = SerializedWrites(create_async_engine(url).sync_engine)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    event.listen(engine.sync_engine.pool, "reset", _back_to_normal)
    event.listen(engine.sync_engine.pool, "checkout", _retire_synced)
    _skip_idle_rollbacks(engine.sync_engine.dialect)
    return engine


def _alembic_config(connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade_all(connection) -> None:
    if connection.dialect.name == "postgresql":  # instances starting together migrate one at a time
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended('teleconsult-migrate', 0))"))
    command.upgrade(_alembic_config(connection), "head")
    # the drop box's tables follow filedrop's own revisions (filedrop/migrations/)
    filedrop.migrations.upgrade(connection)


async def migrate(engine: AsyncEngine) -> None:
    """Bring teleconsult's schema and the drop box's to their newest revisions (idempotent)."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade_all)
