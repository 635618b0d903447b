"""Several `teleconsult serve` instances on one PostgreSQL database (issue 15): what one instance
does, a page served by another sees at once. Two real app servers on loopback ports share a
database of the throwaway cluster (tests/postgres_cluster.py), whichever database the rest of the
run uses: these behaviours exist only on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import pytest
import sqlalchemy as sa

import postgres_cluster
from conftest import add_api_clinician, add_clinician, csrf_from, login, sealed
from filedrop import ece
from filedrop.schema import files
from filedrop.storage import Storage
from filedrop.store import DropBox, DropConfig
from room_event_client import EVENTS_SECRET, Poster, event, occupant, signed_headers
from served import served
from teleconsult import consultations as cs
from teleconsult import db, db_tables

pytestmark = [pytest.mark.timeout(60)]


@pytest.fixture
async def two(live, tmp_path):
    """Instances A and B: same database, same settings, different ports (no sticky sessions)."""
    async def start(**overrides):
        url = postgres_cluster.cluster().database_for(str(tmp_path / "shared"))
        a = await live(database_url=url, data_dir=tmp_path / "shared", **overrides)
        b = await live(database_url=url, data_dir=tmp_path / "shared", **overrides)
        return a, b
    return start


async def sse_events(response):
    """The JSON events of a text/event-stream response, as they arrive."""
    async for line in response.content:
        line = line.decode().strip()
        if line.startswith("data:"):
            yield json.loads(line[5:])


async def next_event(events, wanted, timeout: float = 5.0) -> dict:
    async def first():
        async for event in events:
            if wanted(event):
                return event
        raise AssertionError("the stream ended")
    return await asyncio.wait_for(first(), timeout)


def on(app, url: str) -> str:
    """`url` (a link one instance printed) as reached through `app` instead."""
    path = url.split("/", 3)[3]
    return f"{app.url}/{path}"


async def test_a_knock_through_instance_a_rings_the_dashboard_open_on_b_and_admit_on_b_reaches_the_patient_on_a(two, http):
    a, b = await two()
    doctor = await add_clinician(a.engine)
    clinician = http()
    csrf = await login(clinician, b.url, doctor)  # logged in through B
    async with clinician.post(b.url + "/consultations", headers={"X-CSRF-Token": csrf}) as r:
        assert r.status == 201
        consultation = await r.json()
    async with clinician.get(b.url + "/dashboard/events") as dashboard:
        assert dashboard.status == 200
        ringing = sse_events(dashboard)
        await next_event(ringing, lambda e: True)  # the stream's first state: B listens from now on

        patient = http()
        patient_url = on(a, consultation["patient_url"])
        async with patient.get(patient_url) as r:
            html = await r.text()
        async with patient.post(patient_url + "/knock", data={
                "sealed_name": sealed("Camille"), "consent": "yes", "csrf_token": csrf_from(html)}) as r:
            assert r.status == 200 and r.url.port == a.server.port
        knocked = await next_event(ringing, lambda e: e.get("type") == "knock")
        assert knocked["consultation_id"] == consultation["id"] and knocked["knock"]["status"] == "waiting"

        async with patient.get(patient_url + "/events") as waiting_room:  # the patient's stream, on A
            statuses = sse_events(waiting_room)
            assert (await next_event(statuses, lambda e: True))["status"] == "waiting"
            knock_id = knocked["knock"]["id"]
            async with clinician.post(b.url + f"/consultations/{consultation['id']}/knocks/{knock_id}/admit",
                                      headers={"X-CSRF-Token": csrf, "Accept": "application/json"}) as r:
                assert r.status == 200, await r.text()
            admitted = await next_event(statuses, lambda e: e.get("type") == "status")
            assert admitted["status"] == "admitted"


async def test_an_event_published_on_one_instance_is_delivered_once_to_each_subscriber_of_both(two):
    a, b = await two()
    async with a.services.hub.subscribe("clinician:x") as on_a, b.services.hub.subscribe("clinician:x") as on_b:
        b.services.hub.publish("clinician:x", {"type": "ping", "n": 1})
        assert await asyncio.wait_for(on_a.get(), 5) == {"type": "ping", "n": 1}
        assert await asyncio.wait_for(on_b.get(), 5) == {"type": "ping", "n": 1}
        await asyncio.sleep(0.3)  # a duplicate (B hearing its own notification) would be here by now
        assert on_a.empty() and on_b.empty()


async def test_an_event_too_big_for_a_notification_reaches_the_other_instance_as_a_resync(two):
    a, b = await two()
    async with b.services.hub.subscribe("clinician:x") as on_b:
        a.services.hub.publish("clinician:x", {"type": "consultation", "padding": "x" * 10_000})
        assert await asyncio.wait_for(on_b.get(), 5) == {"type": "resync"}


async def test_failed_logins_spread_over_both_instances_share_one_allowance(two, http):
    a, b = await two(login_max_failures=3)
    doctor = await add_clinician(a.engine)
    statuses = []
    for app in (a, b, a, b):
        client = http()
        async with client.get(app.url + "/login") as r:
            csrf = csrf_from(await r.text())
        async with client.post(app.url + "/login", data={
                "email": doctor.email, "password": "wrong password!", "csrf_token": csrf}) as r:
            statuses.append(r.status)
    assert statuses == [401, 401, 401, 429]


async def test_the_shared_limits_store_no_address_or_account_a_database_reader_could_check(two, http):
    """rate_limits is read by whoever reads the database or a backup: its keys are an HMAC under a
    key derived from the session secret, not a plain hash of `login:<email>:<address>` that a
    reader could confirm by hashing every IPv4 address."""
    import hashlib
    import hmac

    from teleconsult.credential_checks import login_keys
    from teleconsult.ratelimit import key_secret
    a, _ = await two()
    doctor = await add_clinician(a.engine)
    client = http()
    async with client.get(a.url + "/login") as r:
        csrf = csrf_from(await r.text())
    async with client.post(a.url + "/login", data={
            "email": doctor.email, "password": "wrong password!", "csrf_token": csrf}) as r:
        assert r.status == 401
    async with a.engine.connect() as conn:
        stored = set((await conn.execute(sa.select(db_tables.rate_limits.c.key))).scalars())
    wanted = [f"login:{key}" for key in login_keys(doctor.email, "127.0.0.1", None)]
    assert stored, "the failure was counted"
    assert not stored & {hashlib.sha256(key.encode()).hexdigest() for key in wanted}
    secret = key_secret(a.settings.session_secret)
    assert stored == {hmac.new(secret, key.encode(), hashlib.sha256).hexdigest() for key in wanted}


async def test_link_guesses_sent_at_once_through_both_instances_pass_the_limit_no_more_than_once_each(two, http):
    a, b = await two(link_guess_max=5)
    client = http()

    async def guess(app, n):
        async with client.get(f"{app.url}/j/not-a-real-link-{n:04d}-xxxxxxxxxxxxxx") as r:
            await r.read()
            return r.status

    statuses = await asyncio.gather(*(guess((a, b)[n % 2], n) for n in range(30)))
    assert sorted(statuses) == [404] * 5 + [429] * 25


DUE = 2000  # enough groups of deletions (filedrop.deletion.DELETE_BATCH) for A's sweep to be caught midway


async def test_one_sweep_at_a_time_and_a_sweeper_killed_mid_run_on_a_is_finished_by_b(live, tmp_path):
    """A is a real `teleconsult serve` process; its start-up sweep deletes DUE due documents.
    Frozen midway (SIGSTOP, holding the sweeper's turn), B's sweep waits and deletes nothing;
    killed (SIGKILL), its turn passes to B, which deletes the rest: nothing due is left behind."""
    url = postgres_cluster.cluster().database_for(str(tmp_path / "data"))
    engine = db.make_engine(url)
    await db.migrate(engine)
    documents = tmp_path / "data" / "documents"
    box = DropBox(engine, Storage(documents), DropConfig(max_size=10 ** 7))  # no sweeper of its own
    for _ in range(DUE):
        await box.create(size=ece.padded_size(100), uploaded_by="clinician", box_id="consultation-1")
    await box.schedule_box_deletion("consultation-1", time.time() - 1)

    async def left() -> int:
        async with engine.connect() as conn:
            return await conn.scalar(sa.select(sa.func.count()).select_from(files))

    async def turn_held_elsewhere() -> bool:
        async with engine.connect() as conn:
            return bool(await conn.scalar(sa.text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()")))

    with served(tmp_path, database_url=url) as a:
        while not (await turn_held_elsewhere() and 0 < await left() < DUE):
            assert a.process.poll() is None and await left() > 0, "A's sweep ended before it could be caught"
            await asyncio.sleep(0.002)
        os.kill(a.process.pid, signal.SIGSTOP)
        midway = await left()
        # its start-up sweep begins; the documents are in the local directory A and the test share
        b = await live(database_url=url, data_dir=tmp_path / "data", documents_store="local")
        await asyncio.sleep(1.5)
        assert await left() == midway, "B swept while A held the turn"
        os.kill(a.process.pid, signal.SIGKILL)
        a.process.wait()
        for _ in range(200):
            if await left() == 0:
                break
            await asyncio.sleep(0.05)
        assert await left() == 0
        assert not [p for p in documents.rglob("*") if p.is_file()], "a file outlived its row"
    await engine.dispose()


async def test_a_signed_room_event_replayed_to_the_other_instance_or_after_a_restart_is_refused(two, live, http, tmp_path):
    a, b = await two(jitsi_events_secret=EVENTS_SECRET)
    _, _, _, _, room = await _consultation_with_room(a, http)
    body = json.dumps(event("muc-room-created", room)).encode()
    headers = signed_headers(body)
    assert (await Poster(a, http()).raw(body, headers))[0] == 200
    status, answer = await Poster(b, http()).raw(body, headers)
    assert status == 403 and answer["error"] == "stale or replayed"
    await a.server.close()  # A and B gone: a restarted instance still remembers
    await b.server.close()
    restarted = await live(database_url=a.settings.database_url, data_dir=tmp_path / "shared",
                           jitsi_events_secret=EVENTS_SECRET)
    status, _ = await Poster(restarted, http()).raw(body, headers)
    assert status == 403


async def test_a_room_event_retried_to_the_other_instance_is_applied_once(two, http):
    a, b = await two(jitsi_events_secret=EVENTS_SECRET)
    doctor, _, _, _, room = await _consultation_with_room(a, http)
    t = int(time.time())
    destroyed = event("muc-room-destroyed", room, all_occupants=[occupant(doctor.id, "doc@meet.example.org/a", t - 30, t)])
    status, answer = await Poster(a, http()).send(destroyed)
    assert status == 200 and answer["result"] != "duplicate"  # applied by A
    status, answer = await Poster(b, http()).send({**destroyed, "delivery_attempt": 2})  # the module's retry
    assert (status, answer["result"]) == (200, "duplicate")


async def _consultation_with_room(a, http):
    """A clinician with an API token, and a consultation created and joined through A's API."""
    doctor, token = await add_api_clinician(a.engine)
    client = http()
    auth = {"Authorization": f"Bearer {token}"}
    async with client.post(a.url + "/api/consultations", headers=auth) as r:
        consultation = await r.json()
    async with client.post(a.url + f"/api/consultations/{consultation['id']}/join", headers=auth) as r:
        room = (await r.json())["room"]
    return doctor, client, auth, consultation, room


async def _room_with_admitted_patient(a, http):
    """A consultation (through A's API) whose patient knocked and was admitted: the knock id is the
    id in the patient's Jitsi token."""
    from test_jitsi_events_http import admitted_knock
    doctor, client, auth, consultation, room = await _consultation_with_room(a, http)
    return doctor, client, auth, consultation, room, await admitted_knock(a, consultation["id"])


async def _next_presence(queue) -> dict:
    """The next presence event on a hub subscription (the knock's own events may come first)."""
    while (published := await asyncio.wait_for(queue.get(), 5))["type"] != "presence":
        pass
    return published["presence"]


async def _presence_through(app, client, auth, consultation_id):
    async with client.get(app.url + f"/api/consultations/{consultation_id}", headers=auth) as r:
        assert r.status == 200
        return (await r.json())["presence"]


async def test_presence_noted_from_an_event_received_by_a_is_what_b_answers_and_a_late_join_sent_to_b_stays_ignored(two, http):
    a, b = await two(jitsi_events_secret=EVENTS_SECRET)
    doctor, client, auth, consultation, room, knock_id = await _room_with_admitted_patient(a, http)
    t = int(time.time())
    patient = occupant(knock_id, "patient@meet.example.org/web", t - 10)
    async with b.services.hub.subscribe(f"clinician:{doctor.id}") as dashboard_on_b:
        assert (await Poster(a, http()).send(event("muc-occupant-joined", room, occupant=patient)))[1]["result"] == "presence"
        assert await _next_presence(dashboard_on_b) == {"patient": True, "clinician": False}
    assert await _presence_through(b, client, auth, consultation["id"]) == {"patient": True, "clinician": False}
    # the patient leaves (told to A); the module's late retry of the join lands on B: still gone, on both
    await Poster(a, http()).send(event("muc-occupant-left", room, occupant={**patient, "left_at": t}))
    await Poster(b, http()).send(event("muc-occupant-joined", room, occupant=patient))
    for app in (a, b):
        assert await _presence_through(app, client, auth, consultation["id"]) == {"patient": False, "clinician": False}


async def test_one_occupant_event_delivered_to_both_instances_at_once_is_applied_and_announced_once(two, http):
    a, b = await two(jitsi_events_secret=EVENTS_SECRET)
    doctor, client, auth, consultation, room, knock_id = await _room_with_admitted_patient(a, http)
    joined = event("muc-occupant-joined", room, occupant=occupant(knock_id, "patient@meet.example.org/web",
                                                                  int(time.time())))
    async with a.services.hub.subscribe(f"clinician:{doctor.id}") as dashboard:
        answers = await asyncio.gather(Poster(a, http()).send(joined),
                                       Poster(b, http()).send({**joined, "delivery_attempt": 2}))
        assert sorted(answer["result"] for _, answer in answers) == ["duplicate", "presence"]
        assert (await _next_presence(dashboard))["patient"]
        await asyncio.sleep(0.3)  # a second announcement would be here by now
        assert not [e for e in [dashboard.get_nowait() for _ in range(dashboard.qsize())] if e["type"] == "presence"]
    async with a.engine.connect() as conn:
        sessions = await conn.scalar(sa.select(sa.func.count()).select_from(db_tables.presence_sessions))
    assert sessions == 1


async def test_a_direct_call_with_the_clinician_on_a_and_the_patient_on_b_is_one_call_and_ends_when_both_have_left(two, http):
    from test_direct_call_signalling import NO_JITSI, _consultation, _ended_soon, _open
    a, b = await two(direct_leave_grace_seconds=1, **NO_JITSI)
    doctor = await add_clinician(a.engine)
    doctor_http = http()
    csrf = await login(doctor_http, a.url, doctor)
    call = await _consultation(a, doctor_http, csrf, http())
    await call.admit()
    clinician = await _open(doctor_http, call.clinician_url("/events"))  # on A
    patient = await _open(call.patient, f"{b.url}/j/{call.token}/signal/events")  # on B
    assert patient.events[0] == {"type": "hello", "peer": True}, "B knows the clinician is connected to A"
    await clinician.wait_for(lambda e: e == {"type": "peer", "present": True})
    async with doctor_http.get(b.url + "/dashboard/state") as r:
        item = next(c for c in (await r.json())["consultations"] if c["id"] == call.id)
    assert item["presence"] == {"patient": True, "clinician": True}
    # the patient's page reloads onto A: B's stream closes, B's grace period passes, the call goes on
    again = await _open(call.patient, call.patient_url("/events"))
    await patient.close()
    await asyncio.sleep(1.6)
    assert (await cs.consultation_by_id(a.engine, call.id)).status != cs.ENDED
    await again.close()
    await clinician.wait_for(lambda e: e == {"type": "peer", "present": False})
    await asyncio.sleep(1.6)  # the clinician is still connected (to A): nothing ends
    assert (await cs.consultation_by_id(a.engine, call.id)).status != cs.ENDED
    await clinician.close()
    ended = await _ended_soon(a.engine, call.id)
    assert (ended.status, ended.end_reason) == (cs.ENDED, "both_left")
