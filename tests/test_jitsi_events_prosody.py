"""The whole chain on loopback: a real Prosody with mod_teleconsult_events posting to the real app.

Clients log in to Prosody with the Jitsi JWTs the app minted (tests/prosody_plugins/
mod_auth_teleconsult_test_token.lua verifies them as Jitsi's token auth does and puts
context.user on the session), so the module reports the same occupant ids as on a Jitsi host:
the clinician's id and the patient's knock id. Everything goes through the app's HTTP API.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestServer

from filedrop.schema import audit

from teleconsult.web.app import create_app
from conftest import add_api_clinician, login, patient_knocks
import s3_server
from drop_client import upload

try:
    from tests.prosody_server import MUC_DOMAIN, free_port, start_prosody
    from tests.xmpp_client import XmppClient
except ImportError:  # tests/ on sys.path (rootdir-relative import mode)
    from prosody_server import MUC_DOMAIN, free_port, start_prosody
    from xmpp_client import XmppClient

# Prosody is installed by .ci/run: its absence is a failure, never a skip.
pytestmark = [pytest.mark.timeout(60)]

EVENTS_SECRET = "prosody-events-secret-" + "p" * 40
TEST_PLUGINS = Path(__file__).resolve().parent / "prosody_plugins"
FAST_RETRIES = {
    "teleconsult_events_retry_delay": 0.1,
    "teleconsult_events_retry_max_delay": 0.4,
    "teleconsult_events_max_retries": 60,  # about 20 s of retries
    "teleconsult_events_timeout": 2,
}
LOGGER = "teleconsult.jitsi_events"
KNOCK_NAME = "Camille"
SHOWN_NAME = "Zorglub Affiche"  # the name a patient's Jitsi client shows, sent in its join presence


async def eventually(probe, predicate, timeout: float = 10.0, interval: float = 0.05):
    """Poll `probe()` until `predicate(value)`; return the value, or fail with the last one."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if predicate(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in {timeout} s; last value: {value!r}")
        await asyncio.sleep(interval)


class Recorder:
    """Between Prosody and the app: keeps every event body the app is sent, and forwards it with
    its signature headers unchanged (the app's answer goes back to Prosody)."""

    def __init__(self, target: str):
        self.target = target
        self.bodies: list[bytes] = []
        self.server: TestServer | None = None
        self.url = ""

    async def start(self, http) -> "Recorder":
        client = http()

        async def forward(request: web.Request) -> web.Response:
            body = await request.read()
            self.bodies.append(body)
            headers = {k: v for k, v in request.headers.items() if k.lower().startswith("x-teleconsult-")}
            headers["Content-Type"] = request.headers.get("Content-Type", "application/json")
            async with client.post(self.target, data=body, headers=headers) as answer:
                return web.Response(status=answer.status, body=await answer.read())

        relay = web.Application()
        relay.router.add_post("/api/jitsi/events", forward)
        self.server = TestServer(relay, host="127.0.0.1", port=free_port())
        await self.server.start_server()
        self.url = f"http://127.0.0.1:{self.server.port}/api/jitsi/events"
        return self


class Stack:
    """The app (live fixture), a clinician with an API token and a dashboard session, and Prosody."""

    def __init__(self, app, prosody, http, doctor, auth, recorder=None):
        self.app, self.prosody, self.http, self.doctor, self.auth = app, prosody, http, doctor, auth
        self.recorder = recorder
        self.api = http()
        self.dashboard = http()
        self.clients: list[XmppClient] = []

    @classmethod
    async def start(cls, live, http, tmp_path, *, module_options=None, record=False, **settings) -> "Stack":
        app = await live(jitsi_events_secret=EVENTS_SECRET, **settings)
        doctor, token = await add_api_clinician(app.engine)
        events_url = app.url + "/api/jitsi/events"
        recorder = await Recorder(events_url).start(http) if record else None
        prosody = start_prosody(tmp_path / "prosody", {
            "teleconsult_events_url": recorder.url if recorder else events_url,
            "teleconsult_events_secret": EVENTS_SECRET,
            **FAST_RETRIES, **(module_options or {}),
        }, host_options={
            "authentication": "teleconsult_test_token",
            "app_id": app.settings.jitsi_app_id,
            "app_secret": app.settings.jitsi_app_secret,
        }, plugin_paths=(TEST_PLUGINS,))
        stack = cls(app, prosody, http, doctor, {"Authorization": f"Bearer {token}"}, recorder)
        await login(stack.dashboard, app.url, doctor)
        return stack

    async def stop(self) -> None:
        for client in self.clients:
            await client.close()
        self.prosody.stop()
        if self.recorder is not None:
            await self.recorder.server.close()

    async def new_consultation(self) -> dict:
        async with self.api.post(self.app.url + "/api/consultations", headers=self.auth) as r:
            assert r.status == 201
            return await r.json()

    async def clinician_access(self, consultation: dict) -> dict:
        async with self.api.post(self.app.url + f"/api/consultations/{consultation['id']}/join",
                                 headers=self.auth) as r:
            assert r.status == 200
            return await r.json()

    async def admitted_patient_access(self, consultation: dict) -> dict:
        """Knock from the patient page, admit through the API, get the patient's call access."""
        patient, _ = await patient_knocks(self.http, consultation, KNOCK_NAME)
        (knock,) = (await self.consultation(consultation))["knocks"]
        async with self.api.post(self.app.url + f"/api/consultations/{consultation['id']}/knocks/{knock['id']}/admit",
                                 headers=self.auth) as r:
            assert r.status == 200
        async with patient.get(consultation["patient_url"] + "/call") as r:
            assert r.status == 200
            return await r.json()

    async def consultation(self, consultation: dict) -> dict:
        async with self.api.get(self.app.url + f"/api/consultations/{consultation['id']}", headers=self.auth) as r:
            assert r.status == 200
            return await r.json()

    async def presence(self, consultation: dict) -> dict:
        async with self.dashboard.get(self.app.url + "/dashboard/state") as r:
            items = {c["id"]: c for c in (await r.json())["consultations"]}
        return items[consultation["id"]]["presence"]

    async def enter(self, user: str, access: dict, display_name: str | None = None) -> tuple[XmppClient, str]:
        """Join with the access's token; `display_name` goes in the join presence, as Jitsi's web
        client sends the name the page gave it."""
        client = await XmppClient(self.prosody.port, user, password=access["jwt"]).connect()
        self.clients.append(client)
        room_jid = f"{access['room']}@{MUC_DOMAIN}"
        await client.join(room_jid, user, display_name=display_name)
        return client, room_jid

    def document_files(self) -> list[str]:
        return s3_server.stored(self.app.settings)  # files of the local directory, or the bucket's objects

    async def files_now(self) -> list[Path]:
        return self.document_files()

    async def upload_document(self, consultation: dict) -> dict:
        prefix = f"/api/consultations/{consultation['id']}/documents"
        return await upload(self.api, self.app.url, prefix, secrets.token_bytes(32), os.urandom(4000), "cr.pdf",
                            "clinician", headers=self.auth)

    async def deletion_of(self, doc: dict):
        """The drop box's audit line for the document's deletion (None while it is there)."""
        async with self.app.engine.connect() as conn:
            return (await conn.execute(sa.select(audit.c.at, audit.c.reason).where(
                audit.c.file_id == doc["id"], audit.c.action == "deleted"))).first()

    async def document_status(self, consultation: dict, doc: dict, base: str | None = None) -> int:
        url = f"{base or self.app.url}/api/consultations/{consultation['id']}/documents/{doc['id']}/metadata"
        async with self.api.get(url, headers=self.auth) as r:
            return r.status


@pytest.fixture
async def stacks():
    started: list[Stack] = []
    yield started
    for stack in started:
        await stack.stop()


async def test_presence_and_status_follow_the_room_and_documents_go_after_the_grace(
        live, http, tmp_path, stacks, caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    stack = await Stack.start(live, http, tmp_path, record=True, documents_grace_seconds=1,
                              documents_sweep_seconds=1)
    stacks.append(stack)
    consultation = await stack.new_consultation()
    doc = await stack.upload_document(consultation)
    assert len(stack.document_files()) == 1
    nobody = {"patient": False, "clinician": False}
    assert await stack.presence(consultation) == nobody

    clinician, room = await stack.enter("clinician", await stack.clinician_access(consultation))
    await eventually(lambda: stack.presence(consultation), lambda p: p == {"patient": False, "clinician": True})
    patient_access = await stack.admitted_patient_access(consultation)
    patient, _ = await stack.enter("patient", patient_access, display_name=SHOWN_NAME)
    await eventually(lambda: stack.presence(consultation), lambda p: p == {"patient": True, "clinician": True})
    assert (await stack.consultation(consultation))["status"] == "in_call"

    patient.leave(room, "patient")
    await eventually(lambda: stack.presence(consultation), lambda p: p == {"patient": False, "clinician": True})
    assert (await stack.consultation(consultation))["status"] == "in_call"
    patient, _ = await stack.enter("patient", patient_access)  # back after a reload
    await eventually(lambda: stack.presence(consultation), lambda p: p["patient"])

    patient.leave(room, "patient")
    clinician.leave(room, "clinician")  # the last one out: Prosody destroys the room
    ended = await eventually(lambda: stack.consultation(consultation), lambda c: c["status"] == "ended")
    assert ended["end_reason"] == "room_destroyed"
    assert await stack.presence(consultation) == nobody
    await eventually(lambda: stack.document_status(consultation, doc), lambda s: s == 404, timeout=5)
    await eventually(stack.files_now, lambda files: files == [], timeout=2)  # row marked first, then the file
    # the audit line (when, and why) is written just after the file goes: wait for it too
    deleted = await eventually(lambda: stack.deletion_of(doc), lambda line: line is not None, timeout=2)
    assert deleted.reason == "scheduled", deleted
    assert deleted.at >= ended["ended_at"] + 1, f"deleted {deleted.at - ended['ended_at']:.2f} s after the end"

    log = stack.prosody.log_text()
    assert "Backend refused" not in log and "Giving up" not in log
    # ids and counts only: neither the patient's shown name, nor the knock's, nor the clinician's
    # (in the clinician's token) is in any event the app was sent
    assert len(stack.recorder.bodies) >= 8
    for body in stack.recorder.bodies:
        for name in (SHOWN_NAME, KNOCK_NAME, stack.doctor.name):
            assert name.encode() not in body, (name, body)
    handled = [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.DEBUG]
    for name in ("muc-room-created", "muc-occupant-joined", "muc-occupant-left", "muc-room-destroyed"):
        assert any(m.startswith(name) for m in handled), (name, handled)
    assert not [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]


async def test_no_event_is_lost_while_the_app_is_down_within_the_retry_budget(live, http, tmp_path, stacks, caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    stack = await Stack.start(live, http, tmp_path, documents_grace_seconds=0, documents_sweep_seconds=1)
    stacks.append(stack)
    consultation = await stack.new_consultation()
    doc = await stack.upload_document(consultation)
    clinician, room = await stack.enter("clinician", await stack.clinician_access(consultation))
    patient, _ = await stack.enter("patient", await stack.admitted_patient_access(consultation))
    await eventually(lambda: stack.presence(consultation), lambda p: p == {"patient": True, "clinician": True})

    await stack.app.server.close()  # the app stops (deploy, crash): Prosody keeps the events
    caplog.clear()
    patient.leave(room, "patient")
    clinician.leave(room, "clinician")
    await asyncio.to_thread(stack.prosody.wait_for_log, "Delivery of muc-room-destroyed", 5)
    await asyncio.sleep(1.5)  # several failed attempts per event

    app = create_app(stack.app.settings)  # same data directory, same port
    port = int(stack.app.url.rsplit(":", 1)[1])
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    async def handled():
        return sorted(r.getMessage().split(" ")[0] for r in caplog.records
                      if r.name == LOGGER and r.levelno == logging.DEBUG and r.getMessage().startswith("muc-"))

    every_event = ["muc-occupant-left", "muc-occupant-left", "muc-room-destroyed"]
    try:
        ended = await eventually(lambda: stack.consultation(consultation), lambda c: c["status"] == "ended")
        assert ended["end_reason"] == "room_destroyed"
        await eventually(lambda: stack.document_status(consultation, doc), lambda s: s == 404, timeout=5)
        await eventually(stack.files_now, lambda files: files == [], timeout=2)  # row marked first, then the file
        # each event comes back on its own back-off schedule (at most retry_max_delay apart)
        await eventually(handled, lambda h: h == every_event, timeout=5)
        await asyncio.sleep(1.0)  # more than two retry delays: a duplicate delivery would show now
    finally:
        await server.close()

    log = stack.prosody.log_text()
    assert "failed (connection refused)" in log and "Giving up" not in log and "Backend refused" not in log
    # delivered to the restarted app: both leaves and the destruction, each once (never a duplicate)
    assert await handled() == every_event


async def test_bearer_mode_end_to_end_and_a_room_only_the_clinician_entered_keeps_the_consultation(
        live, http, tmp_path, stacks):
    stack = await Stack.start(live, http, tmp_path, jitsi_events_bearer=True,
                              module_options={"teleconsult_events_bearer": True})
    stacks.append(stack)
    consultation = await stack.new_consultation()
    clinician, room = await stack.enter("clinician", await stack.clinician_access(consultation))
    await eventually(lambda: stack.presence(consultation), lambda p: p["clinician"])
    clinician.leave(room, "clinician")  # waiting alone, then the page reloads: the room is destroyed
    await asyncio.to_thread(stack.prosody.wait_for_log, "Delivered muc-room-destroyed", 5)
    await eventually(lambda: stack.presence(consultation), lambda p: not p["clinician"])
    assert (await stack.consultation(consultation))["status"] == "waiting"
    # the patient can still come; the same room opens again
    clinician, room = await stack.enter("clinician", await stack.clinician_access(consultation))
    patient, _ = await stack.enter("patient", await stack.admitted_patient_access(consultation))
    await eventually(lambda: stack.presence(consultation), lambda p: p == {"patient": True, "clinician": True})
    patient.leave(room, "patient")
    clinician.leave(room, "clinician")
    ended = await eventually(lambda: stack.consultation(consultation), lambda c: c["status"] == "ended")
    assert ended["end_reason"] == "room_destroyed"
    assert "Backend refused" not in stack.prosody.log_text()


async def test_a_token_for_someone_else_is_refused_by_the_test_token_auth(live, http, tmp_path, stacks):
    """Guard for the harness itself: presence comes from verified tokens, not from anything a client says."""
    stack = await Stack.start(live, http, tmp_path)
    stacks.append(stack)
    mallory = XmppClient(stack.prosody.port, "mallory", password="not.a.token")
    stack.clients.append(mallory)
    with pytest.raises(PermissionError):
        await mallory.connect()
    assert "Token refused for mallory" in stack.prosody.log_text()
