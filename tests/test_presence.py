"""PresenceBook: who is in each call, from occupant events that may come late or twice."""

import pytest

from teleconsult.jitsi.presence import CLINICIAN, PATIENT, Presence, PresenceBook


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
