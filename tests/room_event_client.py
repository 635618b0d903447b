"""Test helper: room events built and signed exactly as mod_teleconsult_events sends them
(teleconsult.room_events documents the wire format), posted to a running app."""

from __future__ import annotations

import json
import secrets
import time

from teleconsult.jitsi.events import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

EVENTS_SECRET = "events-secret-" + "e" * 40  # the app's jitsi_events_secret in these tests
MARKER = "BODY-MARKER-Camille-Dupont"  # occupants' default name: must never reach a log line


def event(name: str, room: str, **fields) -> dict:
    body = {"event_id": secrets.token_urlsafe(16), "event_name": name, "room_name": room,
            "room_jid": f"{room}@conference.meet.example.org", "is_breakout": False, "delivery_attempt": 1}
    now = int(time.time())
    if name == "muc-room-created":
        body["created_at"] = now
    if name == "muc-room-destroyed":
        body.update(created_at=now - 60, destroyed_at=now, all_occupants=[])
    if name in ("muc-occupant-joined", "muc-occupant-left"):
        body["active_occupants_count"] = 1
    body.update(fields)
    return body


def occupant(ident: str | None, jid: str, joined_at: int, left_at: int | None = None, name: str = MARKER) -> dict:
    record = {"occupant_jid": jid, "name": name, "joined_at": joined_at}
    if ident is not None:
        record["id"] = ident
    if left_at is not None:
        record["left_at"] = left_at
    return record


def signed_headers(body: bytes, secret: str = EVENTS_SECRET, timestamp: int | None = None) -> dict:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {"Content-Type": "application/json", TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret.encode(), timestamp, body)}


class Poster:
    """Sends events to the app as Prosody's module does."""

    def __init__(self, app, session):
        self.app, self.session = app, session
        self.url = app.url + "/api/jitsi/events"

    async def raw(self, body: bytes, headers: dict) -> tuple[int, dict]:
        async with self.session.post(self.url, data=body, headers=headers) as r:
            text = await r.text()
            return r.status, (json.loads(text) if text.startswith("{") else {})

    async def send(self, payload: dict, **sign_options) -> tuple[int, dict]:
        body = json.dumps(payload).encode()
        return await self.raw(body, signed_headers(body, **sign_options))
