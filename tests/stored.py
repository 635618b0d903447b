"""What a test reads of a database behind the app's back, on either engine: the rows of a table,
the names of the tables, every stored value, and the bytes a backup of it holds (SQLite: its
files, after a checkpoint; PostgreSQL: a pg_dump of it, from the Debian package beside the
throwaway cluster). Synchronous, through SQLAlchemy, on the URL the app was given."""

from __future__ import annotations

import subprocess
from pathlib import Path

import sqlalchemy as sa

import postgres_cluster


def sync_url(url: str) -> str:
    """The app's async URL as a synchronous engine takes it (sqlite+aiosqlite -> sqlite; psycopg
    3 serves both)."""
    return url.replace("sqlite+aiosqlite://", "sqlite://", 1)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def query(url: str, sql: str, **params) -> list[tuple]:
    engine = sa.create_engine(sync_url(url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(sql), params)]
    finally:
        engine.dispose()


def execute(url: str, sql: str, **params) -> None:
    """One statement in a transaction of its own, committed."""
    engine = sa.create_engine(sync_url(url), poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(sql), params)
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    engine = sa.create_engine(sync_url(url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


def every_value(url: str) -> list:
    """Every non-NULL value of every column of every table."""
    return [value for table in sorted(tables(url))
            for row in query(url, f'SELECT * FROM "{table}"') for value in row if value is not None]


def backup_bytes(url: str) -> bytes:
    """What a backup of the database holds. SQLite: every file of the database after a
    checkpoint (the main file, and the WAL if any is left). PostgreSQL: `pg_dump` of it (plain
    SQL, data included), which is what docs/operations.md has hosts back up."""
    if is_sqlite(url):
        path = Path(url.split("///", 1)[-1])
        engine = sa.create_engine(sync_url(url), poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            engine.dispose()
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    cluster = postgres_cluster.cluster()
    database = url.rsplit("/", 1)[1]
    return subprocess.run([str(cluster.bin / "pg_dump"), "-h", "127.0.0.1", "-p", str(cluster.port),
                           "-U", "postgres", "--no-owner", database],
                          check=True, capture_output=True, timeout=60).stdout
