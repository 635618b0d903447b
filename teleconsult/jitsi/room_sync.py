"""What a (verified, parsed) Prosody room event does to the app (DESIGN section 4).

- The room is mapped to its consultation by room name; a room that is not ours (breakout
  rooms, health checks, any other room on the host) is ignored, never an error.
- Occupant joined/left: the occupant's id is the Jitsi token's context.user.id, which the
  app set to the clinician's id or to the admitted patient's knock id. Presence (patient in
  the call, clinician in the call) is kept in services.presence (in process on SQLite, in the database on PostgreSQL:
  jitsi/shared_presence.py) and published on the
  hub topic "clinician:{id}" as a "presence" event.
- Room destroyed: the consultation ends (reason "room_destroyed"), which schedules the
  deletion of its documents after documents_grace_seconds. Idempotent: duplicate destroyed
  events end nothing twice. One exception: a room that only the consultation's clinician
  ever entered (waiting alone, then reloading the page or leaving) does not end it, since
  the patient has not come yet; the clinician's end action and the maximum duration still
  apply. Without token ids (a host without token authentication) the room always ends it.

Nothing here is HTTP; the view (web/views/jitsi_events.py) authenticates and deduplicates.
Log lines name the event and its event_id, never the room name, a person or a body.
"""

from __future__ import annotations

import logging
import time

from typing import TYPE_CHECKING

from .. import consultations as cs
from .. import ending
from ..errors import NotFound
from .events import OCCUPANT_JOINED, OCCUPANT_LEFT, ROOM_DESTROYED, RoomEvent
from .presence import CLINICIAN, PATIENT

if TYPE_CHECKING:
    from ..services import Services

log = logging.getLogger("teleconsult.jitsi_events")

IGNORED = "ignored"
NOTED = "noted"
PRESENCE = "presence"
ENDED = "ended"
ALREADY_ENDED = "already_ended"
KEPT_OPEN = "kept_open"

async def apply_event(services: Services, event: RoomEvent, now: float | None = None) -> str:
    """Apply one room event; returns what it did (one of the constants above)."""
    now = time.time() if now is None else now
    if event.is_breakout:
        log.debug("%s %s: breakout room, ignored", event.event_name, event.event_id)
        return IGNORED
    try:
        consultation = await cs.consultation_by_room(services.engine, event.room_name)
    except NotFound:
        log.debug("%s %s: not a room of ours, ignored", event.event_name, event.event_id)
        return IGNORED
    if event.event_name == ROOM_DESTROYED:
        return await _room_destroyed(services, consultation, event, now)
    if event.event_name in (OCCUPANT_JOINED, OCCUPANT_LEFT):
        return await _occupant(services, consultation, event, now)
    return NOTED  # room created: nothing to do until someone joins


async def publish_presence(services: Services, consultation: cs.Consultation) -> None:
    presence = await services.presence.get(consultation.id)
    services.hub.publish(f"clinician:{consultation.clinician_id}", {
        "type": "presence", "consultation_id": consultation.id, "status": consultation.status,
        "presence": presence.as_json()})


async def _role(services: Services, consultation: cs.Consultation, occupant_id: str | None) -> str | None:
    if not occupant_id:
        return None
    if occupant_id == consultation.clinician_id:
        return CLINICIAN
    try:
        await cs.get_knock(services.engine, consultation, occupant_id)
    except NotFound:
        return None
    return PATIENT


async def _occupant(services: Services, consultation: cs.Consultation, event: RoomEvent, now: float) -> str:
    book = services.presence
    if consultation.status == cs.ENDED:
        if any((await book.get(consultation.id)).as_json().values()):
            await book.forget(consultation.id)
            await publish_presence(services, consultation)
        return ALREADY_ENDED
    occupant = event.occupant
    assert occupant is not None  # parse_event requires it on occupant events
    if event.event_name == OCCUPANT_JOINED:
        role = await _role(services, consultation, occupant.id)
        if role is None:
            log.debug("%s %s: occupant without a known id, not shown", event.event_name, event.event_id)
            return NOTED
        changed = await book.joined(consultation.id, occupant.occupant_jid, occupant.joined_at, role, now)
    else:
        changed = await book.left(consultation.id, occupant.occupant_jid, occupant.joined_at, now)
    if changed:
        await publish_presence(services, consultation)
    return PRESENCE


async def _room_destroyed(services: Services, consultation: cs.Consultation, event: RoomEvent,
                          now: float) -> str:
    sessions = [(o.occupant_jid, o.joined_at) for o in event.all_occupants]
    if await services.presence.destroyed(consultation.id, sessions, now):
        await publish_presence(services, consultation)
    if consultation.status == cs.ENDED:
        return ALREADY_ENDED
    occupants = event.all_occupants
    if occupants and all(o.id == consultation.clinician_id for o in occupants):
        log.info("%s %s: only the clinician was in the room, the consultation stays open",
                 event.event_name, event.event_id)
        return KEPT_OPEN
    await ending.end(services, consultation, "room_destroyed")
    log.info("%s %s: consultation ended, its documents go in %d s", event.event_name, event.event_id,
             services.settings.documents_grace_seconds)
    return ENDED
