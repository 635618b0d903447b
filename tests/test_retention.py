"""What the host keeps about a consultation after its end, and for how long (issue 17): knocks lose
their names when the documents go (end + grace), the consultation's record goes after the retention
period; both applied by the sweeper's step (teleconsult/ending.py sweep_once), read on the clock the
services are given. Real SQLite in a temporary data directory; the clock is a hand-moved value."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from filedrop import ece
from filedrop.schema import audit, files
from teleconsult import consultations as cs
from teleconsult import ending
from teleconsult.accounts import get_clinician
from teleconsult.db_tables import consultations, knocks, used_rooms
from teleconsult.services import open_services
import stored
from conftest import add_clinician, make_settings, sealed

T0 = 1_900_000_000.0
GRACE = 300
RETENTION_DAYS = 30
DAY = 86400
MARKER = "Zorglub Marqueur"


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def _settings(tmp_path: Path):
    # a periodic step far away: only the explicit sweep_once calls below apply deadlines
    return make_settings(tmp_path, documents_grace_seconds=GRACE, consultation_retention_days=RETENTION_DAYS,
                         documents_sweep_seconds=86400 * 365)


async def _consultation_with_a_knock_and_a_document(services, clock: Clock, email="dr.martin@example.org"):
    clinician = await get_clinician(services.engine, (await add_clinician(services.engine, email)).id)
    consultation = await cs.create_consultation(services.engine, services.settings, clinician, now=clock())
    knock = await cs.knock(services.engine, consultation, sealed(MARKER), now=clock())
    await services.drops.create(size=ece.padded_size(1000), uploaded_by="clinician", box_id=consultation.id)
    return consultation, knock


async def _rows(services, table, where) -> list:
    async with services.engine.connect() as conn:
        return (await conn.execute(sa.select(table).where(where))).all()


def _database_bytes(settings) -> bytes:
    """What a backup of the database holds (tests/stored.py): SQLite's files after a checkpoint
    (secure_delete zeroes what was deleted); on PostgreSQL, its dump. (PostgreSQL's own files
    keep a deleted row's bytes until VACUUM reuses the space: not checked there.)"""
    return stored.backup_bytes(settings.sqlalchemy_url)


async def test_knocks_lose_their_names_when_the_documents_go_and_not_a_second_before(tmp_path):
    clock = Clock(T0)
    settings = _settings(tmp_path)
    async with open_services(settings, clock=clock) as services:
        consultation, knock = await _consultation_with_a_knock_and_a_document(services, clock)
        clock.now = T0 + 600
        ended = await ending.end(services, consultation, "clinician")
        assert ended.ended_at == T0 + 600  # read on the services' clock
        assert await ending.next_deadline(services) == ended.ended_at + GRACE

        clock.now = ended.ended_at + GRACE - 1
        await ending.sweep_once(services)
        assert (await cs.get_knock(services.engine, ended, knock.id)).sealed_name == knock.sealed_name

        clock.now = ended.ended_at + GRACE
        counts = await ending.sweep_once(services)
        assert counts["knock_names_purged"] == 1 and counts["scheduled"] == 1, counts
        assert (await cs.get_knock(services.engine, ended, knock.id)).sealed_name is None
        assert await _rows(services, files, files.c.box_id == ended.id) == []
        # the next thing to do is forgetting the record, a retention period after the end
        assert await ending.next_deadline(services) == ended.ended_at + RETENTION_DAYS * DAY
        assert (await ending.sweep_once(services))["knock_names_purged"] == 0  # once only
    # overwritten, not just unlinked from the row: the sealed name is in no database file (SQLite)
    # or dump (PostgreSQL) any more
    assert knock.sealed_name.encode() not in _database_bytes(settings)
    assert MARKER.encode() not in _database_bytes(settings)


async def test_a_consultation_is_forgotten_with_its_knocks_and_audit_lines_after_the_retention_period(tmp_path):
    clock = Clock(T0)
    settings = _settings(tmp_path)
    async with open_services(settings, clock=clock) as services:
        consultation, knock = await _consultation_with_a_knock_and_a_document(services, clock)
        left_open, _ = await _consultation_with_a_knock_and_a_document(services, clock, "dr.other@example.org")
        clock.now = T0 + 60
        ended = await ending.end(services, consultation, "clinician")
        clock.now = left_open.deadline_at  # its maximum duration: the sweep ends it
        await ending.sweep_once(services)  # and the first one's documents go
        assert (await cs.consultation_by_id(services.engine, left_open.id)).status == cs.ENDED
        assert await _rows(services, audit, audit.c.box_id == ended.id)  # created, deleted

        clock.now = ended.ended_at + RETENTION_DAYS * DAY - 1
        assert (await ending.sweep_once(services))["consultations_forgotten"] == 0
        assert await _rows(services, consultations, consultations.c.id == ended.id)

        clock.now = ended.ended_at + RETENTION_DAYS * DAY
        assert (await ending.sweep_once(services))["consultations_forgotten"] == 1
        assert await _rows(services, consultations, consultations.c.id == ended.id) == []
        assert await _rows(services, knocks, knocks.c.consultation_id == ended.id) == []
        assert await _rows(services, audit, audit.c.box_id == ended.id) == []
        # its room name stays taken, so it is never handed out again
        assert await _rows(services, used_rooms, used_rooms.c.room_name == ended.room_name)

        # the other one ended later (at that sweep, past its maximum duration): kept until its own turn
        other = await cs.consultation_by_id(services.engine, left_open.id)
        assert other.ended_at == left_open.deadline_at and other.end_reason == "max_duration"
        assert await ending.next_deadline(services) == other.ended_at + RETENTION_DAYS * DAY
        clock.now = other.ended_at + RETENTION_DAYS * DAY
        assert (await ending.sweep_once(services))["consultations_forgotten"] == 1
        assert await ending.next_deadline(services) is None


async def test_a_record_whose_documents_are_still_stored_is_kept_until_they_go(tmp_path):
    """A document still stored past the retention period (a deletion that kept failing, a deadline
    moved by hand): the audit lines will be the trace of its deletion, so the record waits for it."""
    clock = Clock(T0)
    settings = _settings(tmp_path)
    async with open_services(settings, clock=clock) as services:
        consultation, _ = await _consultation_with_a_knock_and_a_document(services, clock)
        ended = await ending.end(services, consultation, "clinician")
        async with services.engine.begin() as conn:
            await conn.execute(files.update().where(files.c.box_id == ended.id).values(
                state="ready", delete_at=T0 + 400 * DAY, expires_at=T0 + 400 * DAY))
        clock.now = ended.ended_at + RETENTION_DAYS * DAY
        assert (await ending.sweep_once(services))["consultations_forgotten"] == 0
        assert await _rows(services, consultations, consultations.c.id == ended.id)
        assert await ending.next_deadline(services) == T0 + 400 * DAY  # the document's own deadline


async def test_no_room_name_is_issued_twice_neither_a_kept_consultations_nor_a_forgotten_ones(tmp_path, monkeypatch):
    """Creation draws again when the name it drew belongs to a kept consultation (unique column)
    or to a forgotten one (used_rooms, where forgetting moved it)."""
    clock = Clock(T0)
    settings = _settings(tmp_path)
    async with open_services(settings, clock=clock) as services:
        forgotten, _ = await _consultation_with_a_knock_and_a_document(services, clock)
        kept, _ = await _consultation_with_a_knock_and_a_document(services, clock, "dr.other@example.org")
        ended = await ending.end(services, forgotten, "clinician")
        clock.now = ended.ended_at + RETENTION_DAYS * DAY
        assert (await ending.sweep_once(services))["consultations_forgotten"] == 1
        assert await _rows(services, consultations, consultations.c.id == forgotten.id) == []

        draws = iter([forgotten.room_name, kept.room_name, "a-fresh-room-name"])
        monkeypatch.setattr(cs.ids, "room_name", lambda: next(draws))
        clinician = await get_clinician(services.engine, kept.clinician_id)
        new = await cs.create_consultation(services.engine, settings, clinician, now=clock.now)
        assert new.room_name == "a-fresh-room-name"
        names = [row.room_name for row in await _rows(services, consultations, consultations.c.id != "")]
        assert sorted(names) == sorted([kept.room_name, "a-fresh-room-name"])
        assert await _rows(services, used_rooms, used_rooms.c.room_name == forgotten.room_name)
