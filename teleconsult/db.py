"""The database: the async engine for a database_url, and migrations by Alembic.

Around it: the tables (teleconsult/db_tables.py), SQLite's engine with its pragmas and one writer
at a time (teleconsult/db_sqlite.py), and what a busy or refusing database answers, with the
retries and locks between instances (teleconsult/db_busy.py).

SQLite (a `sqlite://` database_url, the default) runs in WAL mode with its writes in arrival
order (db_sqlite.py). PostgreSQL (a `postgresql://` database_url, for several instances on one
database; driver: psycopg 3) needs none of that: it has row locks and many writers, so `begin()`
is SQLAlchemy's own and the pragmas do not apply. A statement waiting for a lock longer than
BUSY_TIMEOUT_SECONDS (lock_timeout), a deadlock, a serialization failure, a full connection
table or an unreachable server is "busy" (503, nothing written; db_busy.py).
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import filedrop.migrations

from .db_busy import BUSY_TIMEOUT_SECONDS
from .db_sqlite import sqlite_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


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
    return sqlite_engine(url)


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
