"""POST /api/jitsi/events over real HTTP: authentication, idempotence, presence, the end of the call.

Requests are built and signed as mod_teleconsult_events does (tests/room_event_client.py);
tests/test_jitsi_events_prosody.py has a real Prosody send them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import time

import pytest

from teleconsult import consultations as cs
from teleconsult.ending import sweep_once
from teleconsult.jitsi.events import SIGNATURE_HEADER, TIMESTAMP_HEADER
from teleconsult.settings import DEMO_SECRETS_FILE, SettingsError, load_settings
import s3_server
from conftest import add_api_clinician, gone_at, login, sealed
from drop_client import upload
from room_event_client import EVENTS_SECRET, MARKER, Poster, event, occupant, signed_headers

pytestmark = [pytest.mark.timeout(60)]

LOGGER = "teleconsult.jitsi_events"


# helpers ---------------------------------------------------------------------------------


async def setup(live, http, **settings):
    app = await live(jitsi_events_secret=EVENTS_SECRET, **settings)
    doctor, token = await add_api_clinician(app.engine)
    auth = {"Authorization": f"Bearer {token}"}
    client = http()
    async with client.post(app.url + "/api/consultations", headers=auth) as r:
        consultation = await r.json()
    async with client.post(app.url + f"/api/consultations/{consultation['id']}/join", headers=auth) as r:
        room = (await r.json())["room"]
    return app, doctor, client, auth, consultation, room


async def admitted_knock(app, consultation_id: str) -> str:
    """A patient knocked and was admitted: the knock id is the id in the patient's Jitsi token."""
    consultation = await consultation_row(app, consultation_id)
    knock = await cs.knock(app.engine, consultation, sealed("Camille"), app.services.hub)
    await cs.decide(app.engine, consultation, knock.id, True, app.services.hub)
    return knock.id


async def consultation_row(app, consultation_id: str) -> cs.Consultation:
    import sqlalchemy as sa
    from teleconsult.db_tables import consultations
    async with app.engine.connect() as conn:
        row = (await conn.execute(sa.select(consultations).where(consultations.c.id == consultation_id))).first()
    return cs.Consultation(**{k: row._mapping[k] for k in cs.Consultation.__dataclass_fields__})


async def api_consultation(client, app, auth, consultation_id) -> dict:
    async with client.get(app.url + f"/api/consultations/{consultation_id}", headers=auth) as r:
        assert r.status == 200
        return await r.json()


def assert_logs_clean(caplog, *secrets_: str) -> None:
    text = caplog.text + "".join(r.getMessage() for r in caplog.records)
    assert MARKER not in text
    for value in secrets_:
        assert value not in text


# authentication --------------------------------------------------------------------------


async def test_forged_signature_is_refused_with_401_and_logged_without_the_body(live, http, caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    app, doctor, client, auth, consultation, room = await setup(live, http)
    poster = Poster(app, http())
    payload = event("muc-room-destroyed", room)
    status, body = await poster.send(payload, secret="not-the-secret-" + "x" * 30)
    assert status == 401 and body["error"] == "not authenticated"
    # no headers at all, a malformed signature, and a valid signature over another body
    raw = json.dumps(payload).encode()
    assert (await poster.raw(raw, {"Content-Type": "application/json"}))[0] == 401
    assert (await poster.raw(raw, {TIMESTAMP_HEADER: str(int(time.time())), SIGNATURE_HEADER: "sha256=zz"}))[0] == 401
    other = signed_headers(json.dumps(event("muc-room-created", room)).encode())
    assert (await poster.raw(raw, other))[0] == 401
    assert (await api_consultation(client, app, auth, consultation["id"]))["status"] == "waiting"
    refusals = [r for r in caplog.records if r.name == LOGGER and "refused (401)" in r.getMessage()]
    assert len(refusals) == 4
    assert_logs_clean(caplog, room, EVENTS_SECRET)


async def test_stale_or_future_timestamp_is_refused_with_403(live, http, caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    app, doctor, client, auth, consultation, room = await setup(live, http, jitsi_events_window_seconds=60)
    poster = Poster(app, http())
    for skew in (-61, 61, -3600):
        status, body = await poster.send(event("muc-room-destroyed", room), timestamp=int(time.time()) + skew)
        assert status == 403 and body["error"] == "stale or replayed"
    status, _ = await poster.send(event("muc-room-created", room), timestamp=int(time.time()) - 50)
    assert status == 200
    assert (await api_consultation(client, app, auth, consultation["id"]))["status"] == "waiting"
    assert len([r for r in caplog.records if "refused (403)" in r.getMessage()]) == 3
    assert_logs_clean(caplog, room)


async def test_replayed_request_is_refused_with_403_and_has_no_effect(live, http, caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    app, doctor, client, auth, consultation, room = await setup(live, http)
    poster = Poster(app, http())
    body = json.dumps(event("muc-room-created", room)).encode()
    headers = signed_headers(body)
    assert (await poster.raw(body, headers))[0] == 200
    status, answer = await poster.raw(body, headers)
    assert status == 403 and answer["error"] == "stale or replayed"
    # the signature's hex case does not make a new request
    upper = {**headers, SIGNATURE_HEADER: "sha256=" + headers[SIGNATURE_HEADER][7:].upper()}
    assert (await poster.raw(body, upper))[0] == 403
    assert any("request already seen" in r.getMessage() for r in caplog.records)
    assert_logs_clean(caplog, room)


async def test_bearer_mode_accepts_only_the_right_bearer_token(live, http, caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    app, doctor, client, auth, consultation, room = await setup(live, http, jitsi_events_bearer=True)
    poster = Poster(app, http())
    body = json.dumps(event("muc-room-created", room)).encode()
    json_type = {"Content-Type": "application/json"}
    assert (await poster.raw(body, {**json_type, "Authorization": "Bearer wrong-" + "w" * 40}))[0] == 401
    assert (await poster.raw(body, {**json_type, "Authorization": EVENTS_SECRET}))[0] == 401
    assert (await poster.raw(body, signed_headers(body)))[0] == 401  # bearer mode wants the bearer
    status, answer = await poster.raw(body, {**json_type, "Authorization": f"Bearer {EVENTS_SECRET}"})
    assert status == 200 and answer["result"] == "noted"
    # no timestamp in bearer mode: the event id still stops a replay from acting twice
    status, answer = await poster.raw(body, {**json_type, "Authorization": f"Bearer {EVENTS_SECRET}"})
    assert status == 200 and answer["result"] == "duplicate"
    assert_logs_clean(caplog, EVENTS_SECRET, room)


async def test_without_a_secret_the_app_starts_and_the_endpoint_answers_503(live, http, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    app = await live()
    assert app.settings.jitsi_events_secret == ""
    async with http().get(app.url + "/healthz") as r:
        assert r.status == 200
    body = json.dumps(event("muc-room-created", "a" * 40)).encode()
    status, answer = await Poster(app, http()).raw(body, signed_headers(body))
    assert status == 503 and answer["error"] == "room events are not configured"
    assert any("jitsi_events_secret is not set" in r.getMessage() for r in caplog.records)


# parsing and idempotence ------------------------------------------------------------------


async def test_signed_but_malformed_body_is_400_never_500(live, http, caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    app, doctor, client, auth, consultation, room = await setup(live, http)
    poster = Poster(app, http())
    bodies = [b"{not json " + MARKER.encode(), b"\xff\xfe" + MARKER.encode(), b"[]", b"",
              json.dumps({"event_name": "muc-room-destroyed", "room_name": room, "name": MARKER}).encode(),
              json.dumps(event("muc-occupant-joined", room)).encode(),  # no occupant
              json.dumps(event("muc-nonsense", room)).encode()]
    for body in bodies:
        status, answer = await poster.raw(body, signed_headers(body))
        assert status == 400, (body, status)
        assert answer["error"] == "not a valid room event"
    assert (await api_consultation(client, app, auth, consultation["id"]))["status"] == "waiting"
    assert_logs_clean(caplog, room)


async def test_body_over_the_limit_is_413(live, http):
    app, doctor, client, auth, consultation, room = await setup(live, http)
    body = json.dumps(event("muc-room-created", room, padding="x" * (1024 * 1024 + 10))).encode()
    status, _ = await Poster(app, http()).raw(body, signed_headers(body))
    assert status == 413


async def test_a_chunked_body_growing_past_the_limit_is_413(live, http):
    app, doctor, client, auth, consultation, room = await setup(live, http)
    body = json.dumps(event("muc-room-created", room, padding="x" * (1024 * 1024 + 10))).encode()

    async def chunks():  # no Content-Length: the size is only known while reading
        for start in range(0, len(body), 64 * 1024):
            yield body[start:start + 64 * 1024]
    status, _ = await Poster(app, http()).raw(chunks(), signed_headers(body))
    assert status == 413


async def test_a_body_declared_too_large_is_refused_before_it_is_read(live, http):
    app, doctor, client, auth, consultation, room = await setup(live, http)
    reader, writer = await asyncio.open_connection("127.0.0.1", app.server.port)
    try:
        writer.write(b"POST /api/jitsi/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 2000000\r\n\r\n{")  # and nothing more: the app must not wait for it
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=3)
    finally:
        writer.close()
    assert status_line.split()[1] == b"413", status_line


async def test_a_forged_signature_is_401_even_with_a_stale_timestamp_so_the_clock_is_not_revealed(live, http):
    app, doctor, client, auth, consultation, room = await setup(live, http, jitsi_events_window_seconds=60)
    poster = Poster(app, http())
    for skew in (0, -3600, 3600):
        status, _ = await poster.send(event("muc-room-destroyed", room), secret="forged-" + "f" * 40,
                                      timestamp=int(time.time()) + skew)
        assert status == 401, (skew, status)


async def test_unknown_room_and_breakout_room_are_acknowledged_and_ignored(live, http, caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    app, doctor, client, auth, consultation, room = await setup(live, http)
    poster = Poster(app, http())
    for payload in (event("muc-room-destroyed", "someone-elses-meeting"),
                    event("muc-room-destroyed", "x" * 300),
                    event("muc-room-destroyed", room, is_breakout=True),
                    event("muc-occupant-joined", "someone-elses-meeting",
                          occupant=occupant(doctor.id, "a@meet.example.org/x", int(time.time())))):
        status, answer = await poster.send(payload)
        assert (status, answer["result"]) == (200, "ignored")
    assert (await api_consultation(client, app, auth, consultation["id"]))["status"] == "waiting"
    assert any("not a room of ours" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert_logs_clean(caplog, "someone-elses-meeting")


async def test_duplicate_event_id_is_acknowledged_and_destroyed_twice_ends_once(live, http):
    app, doctor, client, auth, consultation, room = await setup(live, http)
    poster = Poster(app, http())
    knock_id = await admitted_knock(app, consultation["id"])
    t = int(time.time())
    destroyed = event("muc-room-destroyed", room, all_occupants=[
        occupant(doctor.id, "doc@meet.example.org/a", t - 30, t), occupant(knock_id, "p@meet.example.org/b", t - 20, t)])
    status, answer = await poster.send(destroyed)
    assert (status, answer["result"]) == (200, "ended")
    ended = await api_consultation(client, app, auth, consultation["id"])
    assert (ended["status"], ended["end_reason"]) == ("ended", "room_destroyed")
    # the module's retry (same event_id, new attempt number, fresh signature)
    status, answer = await poster.send({**destroyed, "delivery_attempt": 2})
    assert (status, answer["result"]) == (200, "duplicate")
    # Jitsi sending destroyed again for the same room: a new event id, nothing ends twice
    status, answer = await poster.send({**destroyed, "event_id": secrets.token_urlsafe(16)})
    assert (status, answer["result"]) == (200, "already_ended")
    again = await api_consultation(client, app, auth, consultation["id"])
    assert again["ended_at"] == ended["ended_at"]


async def test_a_failed_event_is_processed_again_when_the_module_retries_it(live, http, monkeypatch):
    app, doctor, client, auth, consultation, room = await setup(live, http)
    poster = Poster(app, http())
    from teleconsult.jitsi import room_sync
    real = room_sync.apply_event
    calls = []

    async def flaky(app_, event_, now=None):
        calls.append(event_.event_id)
        if len(calls) == 1:
            raise RuntimeError("database is locked")
        return await real(app_, event_, now)
    monkeypatch.setattr(room_sync, "apply_event", flaky)
    destroyed = event("muc-room-destroyed", room)
    assert (await poster.send(destroyed))[0] == 500  # the module retries 5xx
    status, answer = await poster.send({**destroyed, "delivery_attempt": 2})
    assert (status, answer["result"]) == (200, "ended")


# what events do --------------------------------------------------------------------------


async def test_presence_follows_joins_and_leaves_on_the_dashboard_the_api_and_the_hub(live, http):
    app, doctor, client, auth, consultation, room = await setup(live, http)
    poster = Poster(app, http())
    knock_id = await admitted_knock(app, consultation["id"])
    dashboard = http()
    await login(dashboard, app.url, doctor)

    async def presence():
        async with dashboard.get(app.url + "/dashboard/state") as r:
            (item,) = (await r.json())["consultations"]
        async with client.get(app.url + "/api/consultations", headers=auth) as r:
            (listed,) = (await r.json())["consultations"]
        api = (await api_consultation(client, app, auth, consultation["id"]))["presence"]
        assert item["presence"] == listed["presence"] == api, "the dashboard and the API tell the same"
        return api

    assert await presence() == {"patient": False, "clinician": False}
    t = int(time.time())
    doc_occ = occupant(doctor.id, "doc@meet.example.org/web", t)
    pat_occ = occupant(knock_id, "patient@meet.example.org/web", t)
    async with app.services.hub.subscribe(f"clinician:{doctor.id}") as queue:
        assert (await poster.send(event("muc-room-created", room)))[1]["result"] == "noted"
        assert (await poster.send(event("muc-occupant-joined", room, occupant=doc_occ)))[1]["result"] == "presence"
        published = await asyncio.wait_for(queue.get(), 2)
        assert published == {"type": "presence", "consultation_id": consultation["id"], "status": "in_call",
                             "presence": {"patient": False, "clinician": True}}
        assert room not in json.dumps(published)
        assert await presence() == {"patient": False, "clinician": True}
        await poster.send(event("muc-occupant-joined", room, occupant=pat_occ))
        assert (await asyncio.wait_for(queue.get(), 2))["presence"] == {"patient": True, "clinician": True}
        assert await presence() == {"patient": True, "clinician": True}
        await poster.send(event("muc-occupant-left", room, occupant={**pat_occ, "left_at": t + 5}))
        assert (await asyncio.wait_for(queue.get(), 2))["presence"] == {"patient": False, "clinician": True}
    assert await presence() == {"patient": False, "clinician": True}
    # someone without a known id (another token, no token context) is not shown as anyone
    stranger = occupant("someone-else", "x@meet.example.org/y", t)
    assert (await poster.send(event("muc-occupant-joined", room, occupant=stranger)))[1]["result"] == "noted"
    assert await presence() == {"patient": False, "clinician": True}


async def test_a_late_joined_after_its_left_does_not_show_a_ghost(live, http):
    app, doctor, client, auth, consultation, room = await setup(live, http)
    poster = Poster(app, http())
    knock_id = await admitted_knock(app, consultation["id"])
    t = int(time.time())
    pat = occupant(knock_id, "patient@meet.example.org/web", t - 10)
    await poster.send(event("muc-occupant-left", room, occupant={**pat, "left_at": t}))
    await poster.send(event("muc-occupant-joined", room, occupant=pat))  # retried, delivered late
    assert not (await app.services.presence.get(consultation["id"])).patient
    # a rejoin (new session) shows again
    await poster.send(event("muc-occupant-joined", room, occupant={**pat, "joined_at": t + 1}))
    assert (await app.services.presence.get(consultation["id"])).patient


async def test_room_destroyed_ends_the_consultation_and_its_documents_go_after_the_grace(live, http):
    app, doctor, client, auth, consultation, room = await setup(live, http, documents_grace_seconds=1,
                                                                   documents_sweep_seconds=3600)
    poster = Poster(app, http())
    knock_id = await admitted_knock(app, consultation["id"])
    prefix = f"/api/consultations/{consultation['id']}/documents"
    sent = await upload(client, app.url, prefix, secrets.token_bytes(32), os.urandom(3000), "a.pdf", "clinician",
                        headers=auth)
    files = lambda: s3_server.stored(app.settings)  # noqa: E731  (the directory's files or the bucket's keys)
    assert len(files()) == 1
    t = int(time.time())
    pat = occupant(knock_id, "patient@meet.example.org/web", t)
    await poster.send(event("muc-occupant-joined", room, occupant=pat))
    status, answer = await poster.send(event("muc-room-destroyed", room, all_occupants=[{**pat, "left_at": t}]))
    destroyed_at = time.monotonic()
    assert (status, answer["result"]) == (200, "ended")
    assert not (await app.services.presence.get(consultation["id"])).patient
    ended = await api_consultation(client, app, auth, consultation["id"])
    assert (ended["status"], ended["end_reason"]) == ("ended", "room_destroyed")
    assert ended["presence"] == {"patient": False, "clinician": False}, "nobody is in an ended call"
    assert all(k["status"] == "ended" for k in ended["knocks"])
    await sweep_once(app.services)
    async with client.get(f"{app.url}{prefix}/{sent['id']}/metadata", headers=auth) as r:
        assert r.status == 200, "still there during the grace period"
    # deleted when the grace period ends, by the app alone (the periodic sweep is an hour away)
    deleted_after = await gone_at(client, f"{app.url}{prefix}/{sent['id']}", auth, files) - destroyed_at
    # not before the grace period; after it, within seconds (not the periodic sweep's hour): the bound
    # leaves room for a loaded machine and a store behind HTTP (S3)
    assert 0.9 <= deleted_after < 4.0, f"deleted {deleted_after:.2f} s after the room, for a 1 s grace period"
    assert files() == []
    # a late joined from before the destruction shows nobody
    await poster.send(event("muc-occupant-joined", room, occupant=pat))
    assert not (await app.services.presence.get(consultation["id"])).patient


async def test_room_only_the_clinician_entered_does_not_end_the_consultation(live, http, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    app, doctor, client, auth, consultation, room = await setup(live, http)
    poster = Poster(app, http())
    t = int(time.time())
    doc = occupant(doctor.id, "doc@meet.example.org/web", t - 20)
    await poster.send(event("muc-occupant-joined", room, occupant=doc))
    assert (await app.services.presence.get(consultation["id"])).clinician
    status, answer = await poster.send(event("muc-room-destroyed", room, all_occupants=[{**doc, "left_at": t}]))
    assert (status, answer["result"]) == (200, "kept_open")
    assert (await api_consultation(client, app, auth, consultation["id"]))["status"] == "waiting"
    assert not (await app.services.presence.get(consultation["id"])).clinician
    # without token ids, or with nobody listed, the room's end ends the consultation
    status, answer = await poster.send(event("muc-room-destroyed", room, all_occupants=[
        occupant(None, "anon@meet.example.org/x", t - 5, t)]))
    assert (status, answer["result"]) == (200, "ended")


async def test_events_for_an_ended_consultation_change_nothing(live, http):
    app, doctor, client, auth, consultation, room = await setup(live, http)
    poster = Poster(app, http())
    async with client.post(app.url + f"/api/consultations/{consultation['id']}/end", headers=auth) as r:
        assert r.status == 200
    t = int(time.time())
    status, answer = await poster.send(event("muc-occupant-joined", room,
                                             occupant=occupant(doctor.id, "d@meet.example.org/w", t)))
    assert (status, answer["result"]) == (200, "already_ended")
    assert not (await app.services.presence.get(consultation["id"])).clinician
    status, answer = await poster.send(event("muc-room-destroyed", room))
    assert (status, answer["result"]) == (200, "already_ended")
    assert (await api_consultation(client, app, auth, consultation["id"]))["end_reason"] == "clinician"


# settings --------------------------------------------------------------------------------


def test_demo_generates_an_events_secret_and_adds_it_to_an_older_demo_file(tmp_path):
    fresh = load_settings(None, {"data_dir": str(tmp_path / "new"), "demo": True}, environ={})
    assert len(fresh.jitsi_events_secret) >= 32
    older = tmp_path / "old"
    older.mkdir()
    (older / DEMO_SECRETS_FILE).write_text(
        f'session_secret = "{"s" * 40}"\njitsi_app_secret = "{"a" * 40}"\n'
        'jitsi_app_id = "teleconsult-demo"\njitsi_domain = "meet.invalid"\n')
    first = load_settings(None, {"data_dir": str(older), "demo": True}, environ={})
    second = load_settings(None, {"data_dir": str(older), "demo": True}, environ={})
    assert first.session_secret == "s" * 40
    assert len(first.jitsi_events_secret) >= 32 and first.jitsi_events_secret == second.jitsi_events_secret
    assert first.safe_dict()["jitsi_events_secret"] == "***"


def test_short_events_secret_and_zero_window_are_refused(tmp_path):
    base = {"data_dir": str(tmp_path), "session_secret": "s" * 40, "jitsi_domain": "meet.example.org",
            "jitsi_app_id": "a", "jitsi_app_secret": "a" * 40}
    with pytest.raises(SettingsError, match="jitsi_events_secret"):
        load_settings(None, {**base, "jitsi_events_secret": "short"}, environ={})
    with pytest.raises(SettingsError, match="jitsi_events_window_seconds"):
        load_settings(None, {**base, "jitsi_events_window_seconds": 0}, environ={})
    assert load_settings(None, base, environ={"TELECONSULT_JITSI_EVENTS_BEARER": "true"}).jitsi_events_bearer
