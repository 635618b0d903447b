"""Presence: who is in each call, from occupant events that may come late or twice. The same rules
hold in process (PresenceBook, LocalPresence: SQLite, one instance) and in the database
(SharedPresence: what several instances on PostgreSQL share; here on the run's database)."""

import pytest
import sqlalchemy as sa

from conftest import make_settings
from teleconsult import db, db_tables
from teleconsult.jitsi.presence import CLINICIAN, PATIENT, Presence, PresenceBook
from teleconsult.jitsi.shared_presence import LocalPresence, SharedPresence, forget_expired


def test_presence_follows_sessions_and_a_late_join_after_its_leave_is_ignored():
    book = PresenceBook()
    assert book.get("c1") == Presence()
    assert book.joined("c1", "doc@h/a", 100, CLINICIAN, now=100)
    assert not book.joined("c1", "doc@h/b", 101, CLINICIAN, now=101)  # a second device: no change
    assert book.joined("c1", "pat@h/a", 102, PATIENT, now=102)
    assert book.get("c1") == Presence(patient=True, clinician=True)
    assert not book.left("c1", "doc@h/a", 100, now=103)  # still there on the other device
    assert book.left("c1", "pat@h/a", 102, now=104)
    assert not book.joined("c1", "pat@h/a", 102, PATIENT, now=105)  # the retried join, late
    assert book.get("c1") == Presence(clinician=True)
    assert book.get("c2") == Presence()


def test_destroyed_room_clears_presence_and_its_sessions_stay_ended():
    book = PresenceBook()
    book.joined("c1", "pat@h/a", 100, PATIENT, now=100)
    assert book.destroyed("c1", [("pat@h/a", 100), ("doc@h/x", 99)], now=110)
    assert book.get("c1") == Presence()
    assert not book.joined("c1", "doc@h/x", 99, CLINICIAN, now=111)  # late, from the old room
    assert book.joined("c1", "doc@h/y", 110, CLINICIAN, now=112)  # the room opened again


def test_left_without_joined_at_ends_every_session_of_that_jid():
    book = PresenceBook()
    book.joined("c1", "pat@h/a", 100, PATIENT, now=100)
    assert book.left("c1", "pat@h/a", None, now=101)
    assert book.get("c1") == Presence()


def test_memory_is_bounded_in_rooms_and_tombstone_age():
    book = PresenceBook(max_rooms=3, tombstone_seconds=10)
    for i in range(5):
        book.joined(f"c{i}", "doc@h/a", 100, CLINICIAN, now=100 + i)
    assert len(book) == 3 and book.get("c0") == Presence() and book.get("c4").clinician
    book.left("c4", "doc@h/a", 100, now=200)
    assert not book.joined("c4", "doc@h/a", 100, CLINICIAN, now=205)
    assert book.joined("c4", "doc@h/a", 100, CLINICIAN, now=211)  # tombstone expired: taken as new
    book.forget("c4")
    assert book.get("c4") == Presence()
    with pytest.raises(ValueError):
        book.joined("c1", "x@h/a", 1, "visitor", now=1)


# The same rules through the awaitable books, in process and in the database ---------------------

async def _database_book(tmp_path):
    engine = db.make_engine(make_settings(tmp_path / "data").sqlalchemy_url)
    await db.migrate(engine)
    async with engine.begin() as conn:  # presence rows belong to consultations (deleted with them)
        await conn.execute(db_tables.clinicians.insert().values(id="d1", email="d@example.org", name="D",
                                                         password_hash="x", totp_enabled=False, created_at=0))
        for i in range(1, 5):
            await conn.execute(db_tables.consultations.insert().values(
                id=f"c{i}", clinician_id="d1", room_name=f"room{i}", join_token=f"token{i}",
                status="ended" if i == 4 else "waiting", created_at=0, deadline_at=10 ** 10))
    return SharedPresence(engine, tombstone_seconds=10)


@pytest.fixture
async def shared_book(tmp_path):
    book = await _database_book(tmp_path)
    yield book
    await book.engine.dispose()


@pytest.fixture(params=["in process", "in the database"])
async def book(request, tmp_path):
    if request.param == "in process":
        yield LocalPresence(PresenceBook(tombstone_seconds=10))
        return
    shared = await _database_book(tmp_path)
    yield shared
    await shared.engine.dispose()


async def test_each_book_follows_sessions_and_ignores_a_late_join_after_its_leave(book):
    assert await book.get("c1") == Presence()
    assert await book.joined("c1", "doc@h/a", 100, CLINICIAN, now=100)
    assert not await book.joined("c1", "doc@h/b", 101, CLINICIAN, now=101)
    assert await book.joined("c1", "pat@h/a", 102, PATIENT, now=102)
    assert not await book.joined("c1", "pat@h/a", 102, PATIENT, now=102)  # the same event twice
    assert await book.get("c1") == Presence(patient=True, clinician=True)
    assert not await book.left("c1", "doc@h/a", 100, now=103)
    assert await book.left("c1", "pat@h/a", 102, now=104)
    assert not await book.joined("c1", "pat@h/a", 102, PATIENT, now=105)  # the retried join, late
    assert not await book.joined("c1", "pat@h/a", 102, PATIENT, now=113)  # tombstone still young
    assert await book.joined("c1", "pat@h/a", 102, PATIENT, now=115)  # tombstone expired: taken as new
    assert await book.shown_many([("c1", False), ("c2", False), ("c3", True)]) == {
        "c1": {"patient": True, "clinician": True}, "c2": {"patient": False, "clinician": False},
        "c3": {"patient": False, "clinician": False}}
    assert await book.shown("c1", ended=True) == {"patient": False, "clinician": False}
    with pytest.raises(ValueError):
        await book.joined("c1", "x@h/a", 1, "visitor", now=1)


async def test_each_book_ends_every_session_of_a_destroyed_room_and_of_a_jid_left_without_joined_at(book):
    await book.joined("c1", "pat@h/a", 100, PATIENT, now=100)
    await book.joined("c1", "doc@h/y", 100, CLINICIAN, now=100)
    assert await book.destroyed("c1", [("pat@h/a", 100), ("doc@h/x", 99)], now=101)
    assert await book.get("c1") == Presence()
    assert not await book.joined("c1", "doc@h/x", 99, CLINICIAN, now=102)  # late, from the old room
    assert not await book.joined("c1", "doc@h/y", 100, CLINICIAN, now=102)  # listed or not, it was in it
    assert await book.joined("c1", "doc@h/y", 102, CLINICIAN, now=102)  # the room opened again
    await book.joined("c2", "pat@h/a", None, PATIENT, now=100)
    await book.joined("c2", "pat@h/a", 100, PATIENT, now=100)
    assert await book.left("c2", "pat@h/a", None, now=101)
    assert await book.get("c2") == Presence()
    await book.forget("c1")
    assert await book.get("c1") == Presence()


async def test_the_database_book_forgets_old_tombstones_and_the_rows_of_ended_consultations_and_keeps_no_jid(
        shared_book):
    book = shared_book
    await book.joined("c4", "doc@h/a", 100, CLINICIAN, now=100)  # c4 has ended
    await book.left("c1", "pat@h/a", 100, now=100)
    await book.left("c2", "pat@h/a", 100, now=200)
    await book.joined("c3", "doc@h/a", 100, CLINICIAN, now=100)
    assert await forget_expired(book.engine, now=205, tombstone_seconds=10) == 2
    async with book.engine.connect() as conn:
        left = (await conn.execute(sa.select(db_tables.presence_sessions.c.consultation_id))).scalars().all()
        hashes = (await conn.execute(sa.select(db_tables.presence_sessions.c.jid_hash))).scalars().all()
    assert sorted(left) == ["c2", "c3"]
    assert hashes and not any("@" in h for h in hashes), "an occupant's JID is stored hashed"
