"""teleconsult/db_sqlite.py's SQLite engine skips the rollback round trip to aiosqlite's thread when SQLite
has no transaction open (after a commit, after reads), and only then: a connection closed in the
middle of a write transaction still rolls it back; and a connection whose commit was synced
(filedrop's publish, synchronous=FULL) is set back to NORMAL on its return to the pool rather than
replaced. Real SQLite file, real aiosqlite."""

from __future__ import annotations

import aiosqlite
import pytest
import sqlalchemy as sa

from filedrop.uploads import durable_commit
from teleconsult import db

pytestmark = [pytest.mark.sqlite_only]  # SQLite's engine and aiosqlite's thread


def _count_rollbacks(monkeypatch) -> list[int]:
    calls = []
    rollback = aiosqlite.Connection.rollback

    async def counted(self):
        calls.append(1)
        return await rollback(self)

    monkeypatch.setattr(aiosqlite.Connection, "rollback", counted)
    return calls


async def test_reads_and_committed_writes_make_no_rollback_round_trip(tmp_path, monkeypatch):
    engine = db.make_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.sqlite3'}")
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE t (v INTEGER)"))
        rollbacks = _count_rollbacks(monkeypatch)
        for _ in range(3):
            async with engine.connect() as conn:
                assert await conn.scalar(sa.text("SELECT 1")) == 1
            async with engine.begin() as conn:
                await conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        assert rollbacks == []
        async with engine.connect() as conn:
            assert await conn.scalar(sa.text("SELECT count(*) FROM t")) == 3
    finally:
        await engine.dispose()


async def test_a_write_left_open_is_still_rolled_back(tmp_path, monkeypatch):
    engine = db.make_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.sqlite3'}")
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE t (v INTEGER)"))
        rollbacks = _count_rollbacks(monkeypatch)
        async with engine.connect() as conn:  # no commit: closing it must undo the insert
            await conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        assert rollbacks == [1]
        try:
            async with engine.begin() as conn:
                await conn.execute(sa.text("INSERT INTO t VALUES (2)"))
                raise RuntimeError("the request failed half-way")
        except RuntimeError:
            pass
        assert rollbacks == [1, 1]
        async with engine.connect() as conn:
            assert await conn.scalar(sa.text("SELECT count(*) FROM t")) == 0
    finally:
        await engine.dispose()


def _count_connects(engine) -> list[int]:
    opened = []
    sa.event.listen(engine.sync_engine, "connect", lambda *_: opened.append(1))
    return opened


async def test_a_publishing_commit_is_synced_and_the_connections_after_it_are_at_normal(tmp_path):
    engine = db.make_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.sqlite3'}")
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE t (v INTEGER)"))
        opened = _count_connects(engine)
        async with engine.begin() as conn:
            await durable_commit(conn)
            assert await conn.scalar(sa.text("PRAGMA synchronous")) == 2  # FULL: this commit syncs the WAL
            await conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        for _ in range(3):
            async with engine.connect() as conn:
                assert await conn.scalar(sa.text("PRAGMA synchronous")) == 1  # NORMAL again
        assert opened == [1]  # the synced one retired (teleconsult/db_sqlite.py says why), one fresh
    finally:
        await engine.dispose()


async def test_a_publishing_transaction_that_failed_leaves_no_connection_at_full(tmp_path):
    engine = db.make_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.sqlite3'}")
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE t (v INTEGER)"))
        try:
            async with engine.begin() as conn:
                await durable_commit(conn)
                await conn.execute(sa.text("INSERT INTO t VALUES (1)"))
                raise RuntimeError("the publish failed half-way")
        except RuntimeError:
            pass
        for _ in range(3):
            async with engine.connect() as conn:
                assert await conn.scalar(sa.text("PRAGMA synchronous")) == 1
                assert await conn.scalar(sa.text("SELECT count(*) FROM t")) == 0
    finally:
        await engine.dispose()
