"""Who is in each consultation's call, as Prosody's occupant events tell it.

Kept in memory (one `PresenceBook` per app, on app state), deliberately not in the
database: presence is a live hint for the dashboard, and only the Jitsi host knows the
truth. After a restart of the app the book starts empty, so it may under-report people
already in a call until they next join or leave, but it never shows someone stuck "in the
call" because a `left` or `destroyed` event was lost while the app was down. Events the
Prosody module retries across a restart rebuild it (within its retry budget).

Events may arrive out of order (a retried `joined` after its `left`): an occupant's session
is keyed by (occupant_jid, joined_at), which both its `joined` and `left` events carry, and a
`left` leaves a tombstone so that a late `joined` of the same session is ignored; so does a
destroyed room, for every session it lists (all_occupants) and every session still open. Prosody's
times are whole seconds, so the one case this gets wrong is a rejoin from the same JID within
the same second as the first join: it is under-reported (shown absent) until the next event,
never the other way round.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

PATIENT, CLINICIAN = "patient", "clinician"
ROLES = (PATIENT, CLINICIAN)

SessionKey = tuple[str, "int | None"]


@dataclass(frozen=True)
class Presence:
    patient: bool = False
    clinician: bool = False

    def as_json(self) -> dict[str, bool]:
        return {"patient": self.patient, "clinician": self.clinician}


NOBODY = Presence()


@dataclass
class _Room:
    sessions: dict[SessionKey, str] = field(default_factory=dict)  # live sessions -> role
    tombstones: dict[SessionKey, float] = field(default_factory=dict)  # ended sessions -> when noted
    touched: float = 0.0

    def presence(self) -> Presence:
        roles = set(self.sessions.values())
        return Presence(patient=PATIENT in roles, clinician=CLINICIAN in roles)


class PresenceBook:
    """Bounded: at most `max_rooms` consultations (least recently touched forgotten first),
    tombstones kept `tombstone_seconds` (longer than the module's retry budget)."""

    def __init__(self, max_rooms: int = 10_000, tombstone_seconds: float = 3600) -> None:
        self.max_rooms = max_rooms
        self.tombstone_seconds = tombstone_seconds
        self._rooms: OrderedDict[str, _Room] = OrderedDict()

    def __len__(self) -> int:
        return len(self._rooms)

    def get(self, consultation_id: str) -> Presence:
        room = self._rooms.get(consultation_id)
        return room.presence() if room else NOBODY

    def shown(self, consultation_id: str, ended: bool) -> dict[str, bool]:
        """What pages and the API show: nobody is in the call of an ended consultation."""
        return (NOBODY if ended else self.get(consultation_id)).as_json()

    def _room(self, consultation_id: str, now: float) -> _Room:
        room = self._rooms.get(consultation_id)
        if room is None:
            room = self._rooms[consultation_id] = _Room()
        self._rooms.move_to_end(consultation_id)
        room.touched = now
        room.tombstones = {k: t for k, t in room.tombstones.items() if now - t < self.tombstone_seconds}
        while len(self._rooms) > self.max_rooms:
            self._rooms.popitem(last=False)
        return room

    def joined(self, consultation_id: str, occupant_jid: str, joined_at: int | None, role: str,
               now: float) -> bool:
        """Note a session; returns True when the consultation's presence changed."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        room = self._room(consultation_id, now)
        key = (occupant_jid, joined_at)
        if key in room.tombstones:
            return False  # its `left` (or its room's destruction) came first
        before = room.presence()
        room.sessions[key] = role
        return room.presence() != before

    def left(self, consultation_id: str, occupant_jid: str, joined_at: int | None, now: float) -> bool:
        """End a session (or, without joined_at, every session of that JID); True if presence changed."""
        room = self._room(consultation_id, now)
        before = room.presence()
        if joined_at is None:
            for key in [k for k in room.sessions if k[0] == occupant_jid]:
                del room.sessions[key]
        else:
            room.sessions.pop((occupant_jid, joined_at), None)
            room.tombstones[(occupant_jid, joined_at)] = now
        return room.presence() != before

    def destroyed(self, consultation_id: str, sessions: Iterable[SessionKey], now: float) -> bool:
        """The room is gone: nobody is in it; `sessions` (occupant_jid, joined_at) were in it.
        True if presence changed."""
        room = self._room(consultation_id, now)
        before = room.presence()
        for key in [*room.sessions, *sessions]:
            room.tombstones[key] = now
        room.sessions.clear()
        return room.presence() != before

    def forget(self, consultation_id: str) -> None:
        self._rooms.pop(consultation_id, None)
