"""Moving an instance's database to another one (`teleconsult migrate-database --to URL`): the
single-machine SQLite file to the PostgreSQL database that several instances will share.

1. The source (the current settings' database) is brought to the newest schema, as `serve` would,
   then read in ONE transaction that also holds SQLite's write lock (BEGIN IMMEDIATE): a `serve`
   still running cannot change anything during the copy (its writes wait, then answer 503), and
   what is copied is one consistent state.
2. The target must be empty: no row in any of our tables (a database already in use is never
   overwritten nor merged). It is migrated to the newest schema (both chains: teleconsult's and
   the drop box's).
3. Every table is copied in dependency order (parents before the rows that point at them) in ONE
   transaction on the target; the row count of every table is compared with the source's before
   the commit; any difference, or any error, rolls everything back: the target stays empty.
4. PostgreSQL sequences (drop_audit.seq) are set past the largest copied value, so the next row
   gets a fresh number.

Every table of the code's schema is copied, including login sessions (nobody is signed out), API
token hashes, clinicians' wrapped keys, open consultations, knocks and the drop box's rows.
The document files are not touched: they stay in the data directory (or go to S3 by their own
move). A table the code does not know (a newer version's?) stops the move before anything is
written. Hand-written because it is our schema's order and checks; the copying itself is
SQLAlchemy's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from filedrop.migrations import VERSION_TABLE as DROP_VERSION_TABLE
from filedrop.schema import metadata as drop_metadata

from . import db, db_busy, db_tables
from .errors import Conflict, InvalidInput

BATCH_ROWS = 1000
# bookkeeping the migrations write themselves on the target
NOT_COPIED = {"alembic_version", DROP_VERSION_TABLE}


class TargetNotEmpty(Conflict):
    """The target database already holds rows of ours."""


class MoveFailed(Conflict):
    """The copy did not match the source: nothing was written."""


def tables_in_order() -> list[sa.Table]:
    """Our tables, each after every table it points at (teleconsult's, then the drop box's, which
    points at none of ours)."""
    return [*db_tables.metadata.sorted_tables, *drop_metadata.sorted_tables]


@dataclass(frozen=True)
class Moved:
    counts: dict[str, int]  # table -> rows copied

    @property
    def total(self) -> int:
        return sum(self.counts.values())


async def _names(conn: AsyncConnection) -> set[str]:
    return set(await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names()))


async def _count(conn: AsyncConnection, table: sa.Table) -> int:
    return await conn.scalar(sa.select(sa.func.count()).select_from(table))


async def check_target_empty(target: AsyncEngine) -> None:
    known = {t.name for t in tables_in_order()}
    async with target.connect() as conn:
        names = await _names(conn)
        foreign = names - known - NOT_COPIED
        if foreign:
            raise TargetNotEmpty(f"the target database holds tables that are not ours ({', '.join(sorted(foreign))}): "
                                 "give an empty database")
        present = names & known
        for table in tables_in_order():
            if table.name in present and await _count(conn, table):
                raise TargetNotEmpty(f"the target database is not empty (table {table.name} has rows): "
                                     "give an empty database")


async def _lock_source(conn: AsyncConnection) -> None:
    if conn.dialect.name == "sqlite":
        await conn.exec_driver_sql("BEGIN IMMEDIATE")  # nobody writes until we are done (see above)


async def _set_sequences(conn: AsyncConnection) -> None:
    if conn.dialect.name != "postgresql":
        return
    for table in tables_in_order():
        for column in table.primary_key.columns:
            if not (column.autoincrement is True or (column.autoincrement == "auto" and isinstance(
                    column.type, sa.Integer) and len(table.primary_key.columns) == 1)):
                continue
            sequence = await conn.scalar(sa.text("SELECT pg_get_serial_sequence(:table, :column)"),
                                         {"table": table.name, "column": column.name})
            if sequence is None:
                continue
            largest = await conn.scalar(sa.select(sa.func.max(column)))
            await conn.execute(sa.text("SELECT setval(:sequence, :value, :called)"),
                               {"sequence": sequence, "value": largest or 1, "called": largest is not None})


async def move(source: AsyncEngine, target: AsyncEngine,
               say: Callable[[str], None] = lambda _line: None) -> Moved:
    """Copy every row of `source` into the empty `target` (both migrated here); see the module."""
    if source.url == target.url:
        raise InvalidInput("the target is the database in use: give another one")
    await db.migrate(source)
    await check_target_empty(target)  # before migrating: a database of something else stays untouched
    await db.migrate(target)
    tables = tables_in_order()
    async with source.connect() as src:
        await _lock_source(src)
        unknown = await _names(src) - {t.name for t in tables} - NOT_COPIED
        unknown = {name for name in unknown if not name.startswith("sqlite_")}
        if unknown:
            raise MoveFailed(f"the source has tables this version does not know ({', '.join(sorted(unknown))}): "
                             "nothing was moved; run the version that made them")
        expected = {table.name: await _count(src, table) for table in tables}
        counts: dict[str, int] = {}
        async with target.begin() as dst:
            await db_busy.lock_keys(dst, "teleconsult-migrate")
            await check_target_empty_in(dst)
            for table in tables:
                copied = 0
                result = await src.stream(sa.select(table).order_by(*table.primary_key.columns))
                async for rows in result.partitions(BATCH_ROWS):
                    await dst.execute(table.insert(), [dict(row._mapping) for row in rows])
                    copied += len(rows)
                counts[table.name] = await _count(dst, table)
                if counts[table.name] != expected[table.name]:
                    raise MoveFailed(f"table {table.name}: {counts[table.name]} rows in the target, "
                                     f"{expected[table.name]} in the source; nothing was moved")
                say(f"{table.name}: {copied} rows")
            await _set_sequences(dst)
        await src.rollback()  # releases the source's lock; it was only read
    return Moved(counts)


async def check_target_empty_in(conn: AsyncConnection) -> None:
    """Again inside the copy's transaction (an instance started on the target meanwhile?)."""
    for table in tables_in_order():
        if await _count(conn, table):
            raise TargetNotEmpty(f"the target database is not empty (table {table.name} has rows): "
                                 "give an empty database")
