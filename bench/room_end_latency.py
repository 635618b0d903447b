#!/usr/bin/env python
"""Latency from a Jitsi room's destruction (its last occupant leaves) to its documents deleted.

The whole chain on loopback, as in tests/test_jitsi_events_prosody.py: a real Prosody
(tests/prosody_server.py, Debian's prosody) with jitsi_plugin/mod_teleconsult_events on its MUC
component posts to the real app (this process, aiohttp on a loopback port) with
documents_sweep_seconds=1 and documents_grace_seconds=0. Clients log in to Prosody with the JWTs
the app minted (tests/prosody_plugins/mod_auth_teleconsult_test_token.lua), so occupants carry
the clinician's id and the patient's knock id as on a Jitsi host.

Per room: create a consultation (HTTP API), upload one encrypted document (HTTP API), the
clinician and the admitted patient join the room (slixmpp), the patient leaves, then, after a
random 0-1 s pause (so rooms do not line up with the sweeper's ticks), the clinician leaves:
t0 = when that last `unavailable` presence is sent. Then, polled every 5 ms by one task (in the app's own event loop, so it polls lightly):

  ended    the consultation's row says ended (room_destroyed): Prosody -> HTTP -> app
  deleted  the document's row is gone from the database (filedrop deletes it after the file;
           that no file is left is checked at the end)

Sequential rooms by default; --burst makes every room's last occupant leave at once.

    .venv/bin/python bench/room_end_latency.py [--rooms 20] [--burst] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import sqlalchemy as sa
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from drop_client import upload  # noqa: E402  (tests/)
from prosody_server import MUC_DOMAIN, free_port, start_prosody  # noqa: E402
from xmpp_client import XmppClient  # noqa: E402

from filedrop.schema import files  # noqa: E402
from teleconsult import accounts, call_access  # noqa: E402
from teleconsult import consultations as cs  # noqa: E402
from teleconsult import names  # noqa: E402
from teleconsult.web.app import create_app  # noqa: E402
from teleconsult.web.appkeys import services_key  # noqa: E402
from teleconsult.db_tables import consultations  # noqa: E402
from teleconsult.settings import load_settings  # noqa: E402

EVENTS_SECRET = "bench-events-secret-" + secrets.token_urlsafe(32)
POLL = 0.005


class Room:
    def __init__(self, consultation: dict, doc_id: str, clinician: XmppClient, patient: XmppClient, room_jid: str):
        self.consultation, self.doc_id = consultation, doc_id
        self.clinician, self.patient, self.room_jid = clinician, patient, room_jid
        self.t0 = self.ended = self.deleted = 0.0


async def prepare_room(app, settings, http, auth, prosody_port) -> Room:
    engine = app[services_key].engine
    async with http.post(settings.public_url + "/api/consultations", headers=auth) as r:
        consultation = await r.json()
    prefix = f"/api/consultations/{consultation['id']}/documents"
    doc = await upload(http, settings.public_url, prefix, secrets.token_bytes(32), os.urandom(20_000), "cr.pdf",
                       "clinician", headers=auth)
    async with http.post(settings.public_url + f"/api/consultations/{consultation['id']}/join", headers=auth) as r:
        clinician_access = await r.json()
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(consultations).where(consultations.c.id == consultation["id"]))).first()
    record = cs.Consultation(**{k: row._mapping[k] for k in cs.Consultation.__dataclass_fields__})
    knock = await cs.knock(engine, record, names.seal_text(os.urandom(32), "Camille"), app[services_key].hub)
    async with http.post(settings.public_url + f"/api/consultations/{record.id}/knocks/{knock.id}/admit",
                         headers=auth) as r:
        assert r.status == 200, r.status
    knock = await cs.get_knock(engine, record, knock.id)
    patient_access = call_access.call_for_patient(settings, record, knock)
    room_jid = f"{clinician_access['room']}@{MUC_DOMAIN}"
    clinician = await XmppClient(prosody_port, "clinician", password=clinician_access["jwt"]).connect()
    patient = await XmppClient(prosody_port, "patient", password=patient_access.jwt).connect()
    await clinician.join(room_jid, "clinician")
    await patient.join(room_jid, "patient")
    return Room(consultation, doc["id"], clinician, patient, room_jid)


async def watch(app, settings, rooms: list[Room], timeout: float = 30) -> None:
    """One poller for every room (one query per table and one walk of the documents' directory
    per tick): it runs in the app's own event loop, and twenty pollers each walking the tree
    and querying twice every 2 ms used to be what delayed the app most in a burst."""
    engine = app[services_key].engine
    path_root = Path(settings.data_dir) / "documents"
    deadline = time.monotonic() + timeout
    while not all(room.ended and room.deleted for room in rooms):
        now = time.perf_counter()
        waiting = {room.consultation["id"]: room for room in rooms if not room.ended}
        if waiting:
            async with engine.connect() as conn:
                rows = (await conn.execute(sa.select(consultations.c.id).where(
                    consultations.c.id.in_(list(waiting)), consultations.c.status == "ended"))).all()
            for (consultation_id,) in rows:
                waiting[consultation_id].ended = now
        present = {room.doc_id: room for room in rooms if not room.deleted}
        if present:  # filedrop deletes the row after the file (filedrop/deletion.py): no row, no file
            async with engine.connect() as conn:
                with_rows = set((await conn.scalars(sa.select(files.c.id).where(files.c.id.in_(list(present))))).all())
            for doc_id, room in present.items():
                if doc_id not in with_rows:
                    room.deleted = now
        if time.monotonic() > deadline:
            raise TimeoutError("rooms left: " + ", ".join(r.consultation["id"] for r in rooms
                                                          if not (r.ended and r.deleted)))
        await asyncio.sleep(POLL)
    left = {room.doc_id for room in rooms} & {name for _, _, names in os.walk(path_root) for name in names}
    if left:
        raise RuntimeError(f"rows deleted but files left on disk: {sorted(left)}")


async def last_one_leaves(room: Room) -> None:
    room.patient.leave(room.room_jid, "patient")
    await asyncio.sleep(0.2)
    room.t0 = time.perf_counter()
    room.clinician.leave(room.room_jid, "clinician")


def summary(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"median": statistics.median(ordered), "p90": ordered[max(0, int(round(0.9 * len(ordered))) - 1)],
            "worst": ordered[-1], "best": ordered[0]}


async def run(args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="room-end-latency-"))
    port = free_port()
    settings = load_settings(None, {
        "data_dir": str(workdir / "data"), "host": "127.0.0.1", "port": port,
        "public_url": f"http://127.0.0.1:{port}", "session_secret": secrets.token_urlsafe(48),
        "jitsi_domain": "meet.example.org", "jitsi_app_id": "teleconsult-bench",
        "jitsi_app_secret": secrets.token_urlsafe(48), "jitsi_events_secret": EVENTS_SECRET,
        "documents_sweep_seconds": args.sweep, "documents_grace_seconds": 0,
    }, environ={})
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    prosody = start_prosody(workdir / "prosody", {
        "teleconsult_events_url": settings.public_url + "/api/jitsi/events",
        "teleconsult_events_secret": EVENTS_SECRET,
    }, host_options={"authentication": "teleconsult_test_token", "app_id": settings.jitsi_app_id,
                     "app_secret": settings.jitsi_app_secret},
        plugin_paths=(ROOT / "tests" / "prosody_plugins",))
    rooms: list[Room] = []
    try:
        await accounts.create_clinician(app[services_key].engine, "bench@example.org", "Dr Bench", "bench password 123")
        token = await accounts.issue_api_token(app[services_key].engine, "bench@example.org")
        auth = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession() as http:
            if args.burst:
                rooms = [await prepare_room(app, settings, http, auth, prosody.port) for _ in range(args.rooms)]
                await asyncio.sleep(random.random())
                watcher = asyncio.create_task(watch(app, settings, rooms))
                await asyncio.gather(*(last_one_leaves(room) for room in rooms))
                await watcher
            else:
                for i in range(args.rooms):
                    room = await prepare_room(app, settings, http, auth, prosody.port)
                    rooms.append(room)
                    await asyncio.sleep(random.random())  # a random phase against the sweeper's ticks
                    watcher = asyncio.create_task(watch(app, settings, [room]))
                    await last_one_leaves(room)
                    await watcher
                    if not args.json:
                        print(f"room {i + 1:2d}: ended after {1000 * (room.ended - room.t0):6.1f} ms, "
                              f"document deleted after {1000 * (room.deleted - room.t0):6.1f} ms", flush=True)
    finally:
        for room in rooms:
            for client in (room.clinician, room.patient):
                await client.close()
        prosody.stop()
        await runner.cleanup()
    if "Giving up" in prosody.log_text() or "Backend refused" in prosody.log_text():
        raise RuntimeError("the module lost events: see " + str(prosody.log_path))
    ended = [1000 * (r.ended - r.t0) for r in rooms]
    deleted = [1000 * (r.deleted - r.t0) for r in rooms]
    return {"rooms": len(rooms), "mode": "burst" if args.burst else "sequential", "sweep_seconds": args.sweep,
            "grace_seconds": 0, "ended_ms": summary(ended), "deleted_ms": summary(deleted)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--burst", action="store_true", help="every room's last occupant leaves at once")
    parser.add_argument("--sweep", type=int, default=1, help="documents_sweep_seconds (default 1)")
    parser.add_argument("--json", action="store_true", help="print only the summary, as JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for key, label in (("ended_ms", "room destroyed -> consultation ended"),
                       ("deleted_ms", "room destroyed -> document deleted")):
        s = result[key]
        print(f"{label}: median {s['median']:.0f} ms, p90 {s['p90']:.0f} ms, worst {s['worst']:.0f} ms, "
              f"best {s['best']:.0f} ms ({result['rooms']} rooms, {result['mode']})")


if __name__ == "__main__":
    main()
