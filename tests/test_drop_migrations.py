"""The drop box's tables follow filedrop's own migrations (filedrop/migrations/, version table
filedrop_alembic_version); teleconsult's migrate step runs both chains. A database that
teleconsult's migrations brought to 0003 or 0004 before the hand-over, drop tables included,
keeps every row. tests/databases/teleconsult_000N_with_drops.sql were dumped (sqlite3 iterdump)
from databases made by main at commits 1820ae9e (head 0003) and 7d9e5b5c (head 0004) with
their own migrations and DropBox: a published document, an upload half way, a standalone drop
downloaded once, and one deleted by its owner (only its audit lines remain)."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

import filedrop.migrations
from filedrop.schema import metadata as drop_metadata
from filedrop.storage import Storage
from filedrop.store import DropBox, DropConfig
from teleconsult import db, db_tables
import stored
from conftest import make_settings

TABLES = ("clinicians", "consultations", "drop_files", "drop_audit")


@dataclass(frozen=True)
class OldDatabase:
    dump: str  # in tests/databases/
    head: str  # teleconsult's revision it was at
    published: str  # the clinician's published document in box k1
    drop: str  # the standalone drop downloaded once
    owner_token: str  # that drop's, printed when the database was made


OLD = [OldDatabase("teleconsult_0003_with_drops.sql", "0003", "zKYpGfiA-LqA-fsB2kF2GA", "ycgj-u90lDumCbqZ58pwqg",
                   "LaFZsJRaJJzpKVugsN6bjhpNjYs8ynYt"),
       OldDatabase("teleconsult_0004_with_drops.sql", "0004", "7-KtjHykrobhOkWv633ivg", "euimya8f37KJgzsySzbG0A",
                   "OxbosHmqD5Tt8RD8U7D5L5wNWjA7kV7F")]
ALL_TABLES = {*db_tables.metadata.tables, *drop_metadata.tables, "alembic_version", filedrop.migrations.VERSION_TABLE}
NEWEST = ScriptDirectory.from_config(db._alembic_config(None)).get_current_head()  # teleconsult's

FILEDROP_NEWEST = "fd_0004_downloads_completed"

def _load_dump(path: Path, old: OldDatabase) -> None:
    with sqlite3.connect(path) as con:
        con.executescript((Path(__file__).parent / "databases" / old.dump).read_text())


def _columns(path: Path) -> dict[str, list[str]]:
    with sqlite3.connect(path) as con:
        return {table: [row[1] for row in con.execute(f"PRAGMA table_info({table})")] for table in TABLES}


def _rows(path: Path, columns: dict[str, list[str]]) -> dict[str, list[tuple]]:
    """Every row of TABLES, in the columns the old database had."""
    with sqlite3.connect(path) as con:
        return {table: sorted(con.execute(f"SELECT {', '.join(columns[table])} FROM {table}").fetchall())
                for table in TABLES}


def _added_values(path: Path, old: dict[str, list[str]]) -> set:
    """Every value the old rows hold in the columns later revisions added (fd_0002: owner,
    touched_at; 0006: the clinician key and the sealed secret), but fd_0004's
    completed_downloads, which takes the old count (checked after the upgrade)."""
    found = set()
    with sqlite3.connect(path) as con:
        for table, names in _columns(path).items():
            for column in set(names) - set(old[table]) - {"completed_downloads"}:
                found |= {row[0] for row in con.execute(f"SELECT {column} FROM {table}")}
    return found


def _version(path: Path, table: str) -> list[str]:
    with sqlite3.connect(path) as con:
        return [row[0] for row in con.execute(f"SELECT version_num FROM {table}")]


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as con:
        return {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _engine(path: Path):
    return db.make_engine(f"sqlite+aiosqlite:///{path}")


@pytest.mark.sqlite_only  # old SQLite databases (sqlite3 dumps)
@pytest.mark.parametrize("old", OLD, ids=lambda old: old.head)
def test_a_database_made_before_the_hand_over_keeps_every_drop_row_when_filedrop_takes_its_tables_over(
        tmp_path, old):
    path = tmp_path / "teleconsult.sqlite3"
    _load_dump(path, old)
    assert _version(path, "alembic_version") == [old.head]
    columns = _columns(path)
    before = _rows(path, columns)
    assert len(before["drop_files"]) == 3 and len(before["drop_audit"]) == 8, "the dump holds the rows"

    async def scenario():
        engine = _engine(path)
        try:
            await db.migrate(engine)
            await db.migrate(engine)  # and again: nothing to do
            box = DropBox(engine, Storage(tmp_path / "documents"), DropConfig(max_size=1 << 20))
            listed = await box.list_box("k1")
            stats = await box.stats()
            await box.delete_owned(old.drop, old.owner_token)  # the owner token still opens it
            return listed, stats
        finally:
            await engine.dispose()

    listed, stats = asyncio.run(scenario())
    after = _rows(path, columns)
    assert _version(path, "alembic_version") == [NEWEST]
    assert _version(path, filedrop.migrations.VERSION_TABLE) == [FILEDROP_NEWEST]
    assert after["clinicians"] == before["clinicians"] and after["consultations"] == before["consultations"]
    # later revisions add columns, empty on old rows: the old ones are kept
    assert after["drop_files"] == [row for row in before["drop_files"] if row[0] != old.drop]
    assert _added_values(path, columns) == {None}
    assert after["drop_audit"][:8] == before["drop_audit"]
    assert [row[2:4] + row[5:] for row in after["drop_audit"][8:]] == [("deleted", old.drop, "owner")]
    assert [(f.id, f.uploaded_by, f.state) for f in listed] == [(old.published, "clinician", "ready")]
    assert stats.by_state == {"uploading": 1, "ready": 2, "deleting": 0} and stats.deleted == {"owner": 1}


@pytest.mark.sqlite_only  # old SQLite databases (sqlite3 dumps)
@pytest.mark.parametrize("old", OLD, ids=lambda old: old.head)
def test_the_upgrade_alone_changes_no_row_of_a_database_made_before_the_hand_over(tmp_path, old):
    path = tmp_path / "teleconsult.sqlite3"
    _load_dump(path, old)
    columns = _columns(path)
    before = _rows(path, columns)

    async def upgrade():
        engine = _engine(path)
        try:
            await db.migrate(engine)
        finally:
            await engine.dispose()

    asyncio.run(upgrade())
    assert _rows(path, columns) == before
    assert _added_values(path, columns) == {None}
    with sqlite3.connect(path) as con:  # downloads were counted at their start before fd_0004
        counts = con.execute("SELECT downloads, completed_downloads FROM drop_files").fetchall()
    assert counts and all(started == completed for started, completed in counts)
    assert _tables(path) == ALL_TABLES


def _url(tmp_path: Path, name: str) -> str:
    """A fresh database of the run's engine: a SQLite file, or a database of the PostgreSQL cluster."""
    (tmp_path / name).mkdir()
    return make_settings(tmp_path / name).sqlalchemy_url


def test_filedrop_migrates_an_empty_database_alone_and_teleconsult_runs_both_chains(tmp_path):
    alone, hosted = _url(tmp_path, "alone"), _url(tmp_path, "hosted")

    async def migrate_both():
        for url, migrate in ((alone, filedrop.migrations.migrate), (hosted, db.migrate)):
            engine = db.make_engine(url)
            try:
                await migrate(engine)
            finally:
                await engine.dispose()

    asyncio.run(migrate_both())
    assert stored.tables(alone) == {"drop_files", "drop_audit", filedrop.migrations.VERSION_TABLE}
    assert stored.tables(hosted) == ALL_TABLES == stored.tables(alone) | {*db_tables.metadata.tables, "alembic_version"}


def test_each_chain_builds_exactly_the_tables_its_code_declares(tmp_path):
    """Autogenerate finds nothing to add or drop on either side: teleconsult's chain leaves the
    drop box's tables to filedrop's, and filedrop's ignores the host's tables."""
    url = _url(tmp_path, "t")

    async def check():
        engine = db.make_engine(url)
        try:
            await db.migrate(engine)
            async with engine.connect() as conn:
                return await conn.run_sync(lambda c: (
                    compare_metadata(MigrationContext.configure(c, opts={"include_name": _not_drop_tables}),
                                     db_tables.metadata),
                    compare_metadata(MigrationContext.configure(c, opts={
                        "version_table": filedrop.migrations.VERSION_TABLE,
                        "include_name": lambda name, type_, parents: type_ != "table" or name in drop_metadata.tables}),
                        drop_metadata)))
        finally:
            await engine.dispose()

    teleconsult_diff, filedrop_diff = asyncio.run(check())
    assert teleconsult_diff == [] and filedrop_diff == []


def _not_drop_tables(name, type_, parents) -> bool:
    return type_ != "table" or name not in {*drop_metadata.tables, filedrop.migrations.VERSION_TABLE}


def test_tables_of_another_shape_stop_the_upgrade_and_stay_as_they_were(tmp_path):
    url = _url(tmp_path, "other")
    for statement in ("CREATE TABLE drop_files (id TEXT PRIMARY KEY, colour TEXT)",
                      "CREATE TABLE drop_audit (seq INTEGER PRIMARY KEY)",
                      "INSERT INTO drop_files VALUES ('a', 'blue')"):
        stored.execute(url, statement)

    async def upgrade():
        engine = db.make_engine(url)
        try:
            await filedrop.migrations.migrate(engine)
        finally:
            await engine.dispose()

    with pytest.raises(RuntimeError, match=r"drop_files exists but is not the drop box's .*colour"):
        asyncio.run(upgrade())
    assert stored.query(url, "SELECT * FROM drop_files") == [("a", "blue")]
    # SQLite's driver commits DDL as it goes: the version table may exist, but records nothing
    assert (filedrop.migrations.VERSION_TABLE not in stored.tables(url)
            or stored.query(url, f"SELECT version_num FROM {filedrop.migrations.VERSION_TABLE}") == [])
    assert stored.tables(url) <= {"drop_files", "drop_audit", filedrop.migrations.VERSION_TABLE}
