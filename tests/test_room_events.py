"""Unit tests of teleconsult.room_events: signatures, replay guard, event parsing."""

import dataclasses
import hashlib
import hmac
import json

import pytest

from teleconsult.jitsi.events import (
    BadEvent,
    BadSignature,
    Occupant,
    ReplayGuard,
    Replayed,
    RoomEvent,
    StaleTimestamp,
    load_event,
    parse_event,
    sign,
    verify,
    verify_bearer,
)

SECRET = b"s3cret-shared-between-prosody-and-the-app"
NOW = 1_700_000_000
BODY = b'{"event_name":"muc-room-created","room_name":"room-abc"}'


def _signed(body=BODY, timestamp=NOW, secret=SECRET):
    return str(timestamp), sign(secret, timestamp, body)


# sign / verify ------------------------------------------------------------------


def test_signature_is_hex_hmac_sha256_over_timestamp_dot_body():
    expected = hmac.new(SECRET, b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, NOW, BODY) == "sha256=" + expected


def test_signature_matches_vector_computed_by_prosody():
    # hex.encode(util.hashes.hmac_sha256("key", "1700000000." .. body)) under Prosody 0.12 / Lua 5.4.
    body = b'{"event_name":"muc-room-created"}'
    assert sign(b"key", NOW, body) == "sha256=ecf3e76ff730ecddc7ad70e72c0af828acb31dfe4802d7a3294276cd57a7a532"


def test_verify_accepts_fresh_authentic_request_and_returns_timestamp():
    ts, sig = _signed()
    assert verify(SECRET, ts, sig, BODY, now=NOW + 10) == NOW


def test_verify_accepts_uppercase_hex():
    ts, sig = _signed()
    assert verify(SECRET, ts, "sha256=" + sig[7:].upper(), BODY, now=NOW) == NOW


def test_forged_signature_is_rejected():
    ts, _ = _signed()
    with pytest.raises(BadSignature):
        verify(SECRET, ts, "sha256=" + "0" * 64, BODY, now=NOW)


def test_tampered_body_is_rejected():
    ts, sig = _signed()
    with pytest.raises(BadSignature):
        verify(SECRET, ts, sig, BODY.replace(b"room-abc", b"room-xyz"), now=NOW)


def test_tampered_timestamp_is_rejected():
    _, sig = _signed()
    with pytest.raises(BadSignature):
        verify(SECRET, str(NOW + 1), sig, BODY, now=NOW)


def test_wrong_secret_is_rejected():
    ts, sig = _signed(secret=b"another-secret")
    with pytest.raises(BadSignature):
        verify(SECRET, ts, sig, BODY, now=NOW)


@pytest.mark.parametrize("header", [None, "", "sha256=", "sha1=" + "0" * 40, "0" * 64, "sha256=" + "g" * 64,
                                    "sha256=" + "0" * 63, "sha256=" + "0" * 65])
def test_malformed_signature_header_is_rejected(header):
    ts, _ = _signed()
    with pytest.raises(BadSignature):
        verify(SECRET, ts, header, BODY, now=NOW)


@pytest.mark.parametrize("header", [None, "", "-1", "+1700000000", " 1700000000", "1700000000.5", "1_700_000_000",
                                    "١٧٠٠٠٠٠٠٠٠", "1" * 13])
def test_malformed_timestamp_header_is_rejected(header):
    _, sig = _signed()
    with pytest.raises(BadSignature):
        verify(SECRET, header, sig, BODY, now=NOW)


def test_stale_timestamp_is_rejected():
    ts, sig = _signed(timestamp=NOW - 301)
    with pytest.raises(StaleTimestamp):
        verify(SECRET, ts, sig, BODY, now=NOW)


def test_timestamp_from_the_future_is_rejected():
    ts, sig = _signed(timestamp=NOW + 301)
    with pytest.raises(StaleTimestamp):
        verify(SECRET, ts, sig, BODY, now=NOW)


def test_timestamp_at_the_window_edge_is_accepted():
    ts, sig = _signed(timestamp=NOW - 300)
    assert verify(SECRET, ts, sig, BODY, now=NOW) == NOW - 300


def test_custom_window_is_honoured():
    ts, sig = _signed(timestamp=NOW - 31)
    with pytest.raises(StaleTimestamp):
        verify(SECRET, ts, sig, BODY, now=NOW, window_seconds=30)


def test_forged_stale_request_reports_bad_signature_not_staleness():
    with pytest.raises(BadSignature):
        verify(SECRET, str(NOW - 10_000), "sha256=" + "a" * 64, BODY, now=NOW)


def test_sign_refuses_empty_secret_and_bad_timestamp():
    with pytest.raises(ValueError):
        sign(b"", NOW, BODY)
    with pytest.raises(ValueError):
        sign(SECRET, -1, BODY)
    with pytest.raises(ValueError):
        sign(SECRET, True, BODY)


def test_bearer_token_is_checked():
    verify_bearer(SECRET, "Bearer " + SECRET.decode())
    verify_bearer(SECRET, "bearer " + SECRET.decode())
    for header in (None, "", "Bearer", "Bearer wrong", "Basic " + SECRET.decode(), SECRET.decode()):
        with pytest.raises(BadSignature):
            verify_bearer(SECRET, header)


# ReplayGuard ----------------------------------------------------------------------


def test_replayed_signature_is_rejected_within_window():
    guard = ReplayGuard(window_seconds=300)
    guard.check("sha256=abc", NOW)
    with pytest.raises(Replayed):
        guard.check("sha256=abc", NOW + 299)


def test_replay_guard_forgets_after_window():
    guard = ReplayGuard(window_seconds=300)
    guard.check("sha256=abc", NOW)
    guard.check("sha256=abc", NOW + 301)  # the timestamp check refuses such a replay anyway
    assert len(guard) == 1


def test_replay_guard_tells_duplicate_event_ids():
    guard = ReplayGuard()
    assert guard.seen("event-1234", NOW) is False
    assert guard.seen("event-1234", NOW + 1) is True
    assert guard.seen("event-5678", NOW + 1) is False


def test_replay_guard_memory_is_bounded():
    guard = ReplayGuard(window_seconds=300, max_entries=100)
    for i in range(1000):
        guard.seen(f"key-{i}", NOW)
    assert len(guard) == 100
    assert guard.seen("key-999", NOW) is True
    assert guard.seen("key-0", NOW) is False  # evicted early


def test_replay_guard_purges_expired_entries():
    guard = ReplayGuard(window_seconds=10)
    for i in range(50):
        guard.seen(f"key-{i}", NOW)
    guard.seen("later", NOW + 11)
    assert len(guard) == 1


def test_replay_guards_are_independent():
    a, b = ReplayGuard(), ReplayGuard()
    assert a.seen("k", NOW) is False
    assert b.seen("k", NOW) is False, "a key seen by one guard was refused by another"
    assert a.seen("k", NOW) is True and b.seen("k", NOW) is True  # each remembers its own
    assert len(a) == len(b) == 1


def test_replay_guard_refuses_bad_settings():
    with pytest.raises(ValueError):
        ReplayGuard(window_seconds=0)
    with pytest.raises(ValueError):
        ReplayGuard(max_entries=0)


# parse_event ------------------------------------------------------------------------

BASE = {
    "event_id": "AbCdEfGh12345678_-xy",
    "room_name": "room-abc",
    "room_jid": "room-abc@conference.meet.example.org",
    "is_breakout": False,
}
JOINED = {
    **BASE,
    "event_name": "muc-occupant-joined",
    "active_occupants_count": 2,
    "occupant": {
        "id": "clinician-42",
        "name": "Dr Alice",
        "occupant_jid": "3f2a@meet.example.org/OWhl8jSh",
        "joined_at": NOW,
    },
}


def test_room_created_is_parsed():
    event = parse_event({**BASE, "event_name": "muc-room-created", "created_at": NOW})
    assert event == RoomEvent(
        event_id=BASE["event_id"], event_name="muc-room-created", room_name="room-abc",
        room_jid=BASE["room_jid"], is_breakout=False, created_at=NOW,
    )


def test_occupant_joined_is_parsed_and_a_display_name_that_arrives_is_dropped_unread():
    event = parse_event(JOINED)
    assert event.active_occupants_count == 2
    assert event.occupant == Occupant(occupant_jid="3f2a@meet.example.org/OWhl8jSh", id="clinician-42", joined_at=NOW)
    assert "Dr Alice" not in repr(event)
    # whatever its type: a name is never read, so it can neither be kept nor refuse the event
    for name in (7, "x" * 5000, {"nested": "Dr Alice"}):
        odd = parse_event({**JOINED, "occupant": {**JOINED["occupant"], "name": name}})
        assert odd.occupant == event.occupant


def test_occupant_left_is_parsed_without_identity():
    event = parse_event({
        **BASE, "event_name": "muc-occupant-left", "active_occupants_count": 0,
        "occupant": {"occupant_jid": "x@meet.example.org", "joined_at": NOW, "left_at": NOW + 60},
    })
    assert event.occupant.left_at == NOW + 60
    assert event.occupant.id is None


def test_room_destroyed_is_parsed_with_all_occupants():
    event = parse_event({
        **BASE, "event_name": "muc-room-destroyed", "created_at": NOW, "destroyed_at": NOW + 600,
        "all_occupants": [{"occupant_jid": "a@h/r", "joined_at": NOW, "left_at": NOW + 5}],
    })
    assert event.destroyed_at == NOW + 600
    assert event.all_occupants == (Occupant(occupant_jid="a@h/r", joined_at=NOW, left_at=NOW + 5),)


def test_parsed_event_is_frozen():
    event = parse_event(JOINED)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.room_name = "other"  # type: ignore[misc]


def test_unknown_fields_are_ignored():
    assert parse_event({**JOINED, "breakout_room_id": "x", "extra": [1, 2]}).room_name == "room-abc"


def test_numeric_context_id_becomes_text():
    event = parse_event({**JOINED, "occupant": {**JOINED["occupant"], "id": 42}})
    assert event.occupant.id == "42"


def _without(mapping, key):
    return {k: v for k, v in mapping.items() if k != key}


@pytest.mark.parametrize("data", [
    None,
    [],
    "muc-room-created",
    {**BASE, "event_name": "muc-room-exploded", "created_at": NOW},
    _without({**BASE, "event_name": "muc-room-created", "created_at": NOW}, "event_id"),
    {**BASE, "event_name": "muc-room-created", "created_at": NOW, "event_id": "short"},
    {**BASE, "event_name": "muc-room-created", "created_at": NOW, "event_id": "has spaces in it!"},
    {**BASE, "event_name": "muc-room-created"},
    {**BASE, "event_name": "muc-room-created", "created_at": "1700000000"},
    {**BASE, "event_name": "muc-room-created", "created_at": 1_700_000_000_000},
    {**BASE, "event_name": "muc-room-created", "created_at": 1.7e9},
    {**BASE, "event_name": "muc-room-created", "created_at": True},
    {**BASE, "event_name": "muc-room-created", "created_at": NOW, "room_jid": "no-node.example.org"},
    {**BASE, "event_name": "muc-room-created", "created_at": NOW, "room_name": ""},
    {**BASE, "event_name": "muc-room-created", "created_at": NOW, "room_name": "x" * 2000},
    {**BASE, "event_name": "muc-room-created", "created_at": NOW, "is_breakout": "no"},
    {**BASE, "event_name": "muc-room-destroyed", "created_at": NOW},
    {**BASE, "event_name": "muc-room-destroyed", "created_at": NOW, "destroyed_at": NOW - 1},
    {**BASE, "event_name": "muc-room-destroyed", "destroyed_at": NOW, "all_occupants": {"a": 1}},
    {**BASE, "event_name": "muc-room-destroyed", "destroyed_at": NOW, "all_occupants": [{"name": "x"}]},
    _without(JOINED, "occupant"),
    _without(JOINED, "active_occupants_count"),
    {**JOINED, "active_occupants_count": -1},
    {**JOINED, "active_occupants_count": False},
    {**JOINED, "occupant": "alice"},
    {**JOINED, "occupant": _without(JOINED["occupant"], "occupant_jid")},
    {**JOINED, "occupant": _without(JOINED["occupant"], "joined_at")},
    {**JOINED, "occupant": {**JOINED["occupant"], "id": {"nested": True}}},
    {**JOINED, "event_name": "muc-occupant-left"},  # no left_at
    {**JOINED, "event_name": "muc-occupant-left",
     "occupant": {**JOINED["occupant"], "left_at": NOW - 5}},  # left before joined
])
def test_malformed_event_is_rejected(data):
    with pytest.raises(BadEvent):
        parse_event(data)


def test_body_that_is_not_json_is_rejected():
    for body in (b"", b"{", b"\xff\xfe\x00", b"null", b"[1]"):
        with pytest.raises(BadEvent):
            load_event(body)


def test_body_is_loaded_and_parsed():
    assert load_event(json.dumps(JOINED).encode()).occupant.id == "clinician-42"


@pytest.mark.parametrize(("offset", "said"), [(600, "600 s in the future (+600 s from now)"),
                                              (-600, "600 s old (-600 s from now)")])
def test_a_stale_timestamp_is_reported_with_the_sign_of_the_senders_clock(offset, said):
    from teleconsult.jitsi.events import sign, verify
    secret, now, body = b"s" * 32, 1_800_000_000, b"{}"
    with pytest.raises(StaleTimestamp) as refused:
        verify(secret, str(now + offset), sign(secret, now + offset, body), body, now=now)
    assert str(refused.value) == f"timestamp {now + offset} is {said}"
