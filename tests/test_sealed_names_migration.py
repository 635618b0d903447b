"""Migration 0007 on a database with rows: knocks written with a name in clear (before issue 17)
keep their row, lose the name, and the name is in no database file afterwards (SQLite's
secure_delete: the rebuilt table's old pages are zeroed; on PostgreSQL, in no dump of it)."""

import sqlalchemy as sa
from alembic import command

from teleconsult import db, db_tables
import stored
from conftest import make_settings

MARKER = "Zorglub Ancien"


def _at_0006(connection) -> None:
    command.upgrade(db._alembic_config(connection), "0006")


async def test_knocks_written_in_clear_keep_their_row_and_lose_the_name_at_the_upgrade(tmp_path):
    settings = make_settings(tmp_path)
    engine = db.make_engine(settings.sqlalchemy_url)
    async with engine.begin() as conn:
        await conn.run_sync(_at_0006)
        await conn.execute(sa.text(
            "INSERT INTO clinicians (id, email, name, password_hash, totp_enabled, created_at, session_epoch)"
            " VALUES ('c1', 'a@example.org', 'Dr A', 'x', false, 1, 0)"))
        await conn.execute(sa.text(
            "INSERT INTO consultations (id, clinician_id, room_name, join_token, status, allow_rejoin,"
            " created_at, deadline_at) VALUES ('k1', 'c1', 'room1', 'join1', 'waiting', true, 1, 2)"))
        await conn.execute(sa.text(
            "INSERT INTO knocks (id, consultation_id, display_name, status, created_at)"
            f" VALUES ('n1', 'k1', '{MARKER}', 'waiting', 1)"))
    await db.migrate(engine)
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(db_tables.knocks))).all()
    await engine.dispose()
    assert [(r.id, r.sealed_name, r.status) for r in rows] == [("n1", None, "waiting")]
    assert MARKER.encode() not in stored.backup_bytes(settings.sqlalchemy_url)
