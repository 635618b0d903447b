"""The drop box's statements on the paths every transfer takes (create, parts, complete,
metadata, download), built once here and executed with their values.

Building a statement on every request (`select(...).where(column == value)`, `update().values(**)`)
cost SQLAlchemy's expression building and its cache key each time (py-spy on `teleconsult serve`
during standalone drops: about a third of the event loop's busy time in filedrop was building
statements, docs/benchmarks.md). Bound parameters are named `b_…`: an UPDATE's SET reserves the
column names for itself."""

from __future__ import annotations

import sqlalchemy as sa

from .schema import DELETING, READY, UPLOADING, audit, files


def _param(name: str, column: sa.Column) -> sa.BindParameter:
    return sa.bindparam(f"b_{name}", type_=column.type)


FILE_ID = _param("id", files.c.id)

BY_ID = sa.select(files).where(files.c.id == FILE_ID)

STATE_OF = sa.select(files.c.state).where(files.c.id == FILE_ID)

# become the writer of an unfinished upload and read what it holds, in one statement
TAKE_UPLOAD = files.update().where(files.c.id == FILE_ID, files.c.state == UPLOADING).values(
    writer=_param("writer", files.c.writer)).returning(files.c.received, files.c.size, files.c.store_state)

# what this writer holds, if it is still the writer
RECORD = files.update().where(
    files.c.id == FILE_ID, files.c.writer == _param("writer", files.c.writer), files.c.state == UPLOADING).values(
    received=_param("received", files.c.received), store_state=_param("store_state", files.c.store_state),
    writer=None, touched_at=_param("touched_at", files.c.touched_at))

PUBLISH = files.update().where(files.c.id == FILE_ID, files.c.state == UPLOADING).values(
    state=READY, meta=_param("meta", files.c.meta), completed_at=_param("completed_at", files.c.completed_at),
    writer=None, store_state=None)

DOWNLOADS_DONE = files.update().where(files.c.id == FILE_ID).values(
    completed_downloads=files.c.completed_downloads + 1).returning(files.c.downloads, files.c.completed_downloads)

AUDIT = audit.insert().values(
    at=_param("at", audit.c.at), action=_param("action", audit.c.action), file_id=_param("file_id", audit.c.file_id),
    box_id=_param("box_id", audit.c.box_id), reason=_param("reason", audit.c.reason))

# the columns a new row is given, in the order of the INSERT ... SELECT that creates it
CREATED_COLUMNS = ("id", "box_id", "uploaded_by", "state", "size", "received", "meta", "owner_token_hash",
                   "max_downloads", "downloads", "completed_downloads", "created_at", "completed_at", "expires_at",
                   "delete_at", "owner", "touched_at")


def _held(column: sa.Column, key: sa.BindParameter):
    """(files, reserved bytes) a box or an owner holds now: uploads count at their declared size."""
    where = sa.and_(column == key, files.c.state != DELETING)
    return (sa.select(sa.func.count()).select_from(files).where(where).scalar_subquery(),
            sa.select(sa.func.coalesce(sa.func.sum(files.c.size), 0)).where(where).scalar_subquery())


def held(column: sa.Column, key: str):
    """The same counts with `key` as a value (the message after a refused creation)."""
    return _held(column, sa.literal(key, type_=column.type))


def create_statement(box_quota: bool, owner_quota: bool) -> sa.Insert:
    """INSERT … SELECT of a new row, the SELECT returning it only while the box (with
    `box_quota`) and the owner (with `owner_quota`) have room for it: the quotas are read and the
    row written by one statement. Parameters: b_<column> for each of CREATED_COLUMNS, b_needed
    (the size again), and b_box_files, b_box_bytes, b_owner_files, b_owner_bytes as used."""
    row = sa.select(*(_param(name, files.c[name]) for name in CREATED_COLUMNS))
    conditions = []
    for used, column, name in ((box_quota, files.c.box_id, "box"), (owner_quota, files.c.owner, "owner")):
        if used:
            count, reserved = _held(column, _param(name if name == "owner" else "box_id", column))
            conditions += [count < sa.bindparam(f"b_{name}_files", type_=sa.Integer),
                           reserved + sa.bindparam("b_needed", type_=sa.BigInteger)
                           <= sa.bindparam(f"b_{name}_bytes", type_=sa.BigInteger)]
    # preserve_rowcount: SQLAlchemy keeps an INSERT's row count only when asked (PostgreSQL)
    return files.insert().from_select(list(CREATED_COLUMNS), row.where(*conditions)).execution_options(
        preserve_rowcount=True)
