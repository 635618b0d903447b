"""The direct call: a one-to-one WebRTC call between the clinician's and the patient's browsers,
used when no Jitsi domain is configured (settings.call_engine == "direct").

Media go peer to peer (DTLS-SRTP); this app relays only the signalling (session descriptions and
ICE candidates), over the live channels the pages already hold (live.py Hub, web/sse.py):

- a party POSTs a message; `check_message` keeps only the known fields of a known kind (anything
  else, or anything too large, is refused and never relayed); `relay` publishes it on the OTHER
  party's topic (`clinician_topic`, or `patient_topic` of each admitted knock), which only that
  party's signal stream reads;
- who may send and read is decided by the views (the clinician's session + CSRF, the patient's
  admitted knock), through `open_call`: only the two parties of a consultation that has not ended,
  the patient only once admitted;
- `SignalPresence` counts each party's open signal streams: the other party learns when one comes
  (it then negotiates a fresh connection: a reload or a network change needs no new knock) or goes,
  and once the patient has joined, nobody connected for `direct_leave_grace_seconds` ends the
  consultation (the app sees it itself; there are no Prosody room events without Jitsi).

Hand-written because no library does this relay: it is a few checks around the Hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import consultations as cs
from .errors import Conflict, Forbidden, InvalidInput
from .live import Hub

CLINICIAN, PATIENT = "clinician", "patient"
MAX_MESSAGE_BYTES = 64 * 1024  # a Chromium offer with audio and video is about 6 KB
MAX_SDP_CHARS = 60_000
MAX_CANDIDATE_CHARS = 1_000
MAX_SESSION_CHARS = 64
# kind -> its fields (besides "kind" and "session"); "restart" asks the offerer for an ICE restart
KINDS = {"description": {"description"}, "candidate": {"candidate"}, "restart": set()}
DESCRIPTION_TYPES = ("offer", "answer")


class MessageTooLarge(InvalidInput):
    """A signalling message over MAX_MESSAGE_BYTES (answered 413)."""


def clinician_topic(consultation_id: str) -> str:
    """What the patient sends the clinician's page."""
    return f"signal:{consultation_id}:clinician"


def patient_topic(consultation_id: str, knock_id: str) -> str:
    """What the clinician sends one admitted patient's page (a declined patient gets nothing more)."""
    return f"signal:{consultation_id}:patient:{knock_id}"


def open_call(consultation: cs.Consultation, now: float | None = None) -> None:
    """Signalling is for a consultation that has not ended (nor passed its maximum duration)."""
    now = time.time() if now is None else now
    if consultation.status == cs.ENDED or now >= consultation.deadline_at:
        raise Conflict("consultation has ended")


def admitted(consultation: cs.Consultation, knock: cs.Knock) -> None:
    """The patient signals only with an admitted knock of this very consultation."""
    if knock.consultation_id != consultation.id or knock.status != cs.KNOCK_ADMITTED:
        raise Forbidden("not admitted")


def _string(value: Any, limit: int, what: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidInput(f"{what} must be a string of at most {limit} characters")
    return value


def _only(obj: Any, allowed: set[str], required: set[str], what: str) -> dict:
    if not isinstance(obj, dict):
        raise InvalidInput(f"{what} must be a JSON object")
    unknown = set(obj) - allowed
    if unknown:
        raise InvalidInput(f"{what} has unknown fields")
    if required - set(obj):
        raise InvalidInput(f"{what} lacks {', '.join(sorted(required - set(obj)))}")
    return obj


def check_message(body: bytes) -> dict:
    """The message a party sent, rebuilt from its known fields only; InvalidInput otherwise.

    {"kind": "description", "session": S, "description": {"type": "offer"|"answer", "sdp": str}}
    {"kind": "candidate", "session": S, "candidate": {"candidate": str, "sdpMid": str|null,
                                                      "sdpMLineIndex": int|null, "usernameFragment": str|null}}
    {"kind": "restart", "session": S}   (the patient asks the clinician's page for an ICE restart)
    S names one peer connection of the clinician's page (a reload starts another)."""
    if len(body) > MAX_MESSAGE_BYTES:
        raise MessageTooLarge(f"a signalling message is at most {MAX_MESSAGE_BYTES} bytes")
    try:
        message = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInput("a signalling message is a JSON object") from None
    if not isinstance(message, dict) or message.get("kind") not in KINDS:
        raise InvalidInput(f"a signalling message has a kind among {', '.join(KINDS)}")
    kind = message["kind"]
    _only(message, {"kind", "session"} | KINDS[kind], {"kind", "session"} | KINDS[kind], "the message")
    session = _string(message["session"], MAX_SESSION_CHARS, "session")
    clean: dict[str, Any] = {"kind": kind, "session": session}
    if kind == "description":
        description = _only(message["description"], {"type", "sdp"}, {"type", "sdp"}, "description")
        if description["type"] not in DESCRIPTION_TYPES:
            raise InvalidInput("description type must be offer or answer")
        clean["description"] = {"type": description["type"],
                                "sdp": _string(description["sdp"], MAX_SDP_CHARS, "sdp")}
    elif kind == "candidate":
        fields = {"candidate", "sdpMid", "sdpMLineIndex", "usernameFragment"}
        candidate = _only(message["candidate"], fields, {"candidate"}, "candidate")
        index = candidate.get("sdpMLineIndex")
        if index is not None and (type(index) is not int or not 0 <= index < 64):
            raise InvalidInput("sdpMLineIndex must be a small whole number or null")
        clean["candidate"] = {
            "candidate": _string(candidate["candidate"], MAX_CANDIDATE_CHARS, "candidate"),
            "sdpMid": _string(candidate.get("sdpMid"), 64, "sdpMid", optional=True),
            "sdpMLineIndex": index,
            "usernameFragment": _string(candidate.get("usernameFragment"), 256, "usernameFragment", optional=True),
        }
    return clean


def relay(hub: Hub, consultation_id: str, message: dict, *, to_patients: list[str] | None = None) -> None:
    """Publish a checked message to the other party: the clinician (to_patients None) or the
    given admitted knocks."""
    event = {"type": "signal", "message": message}
    if to_patients is None:
        hub.publish(clinician_topic(consultation_id), event)
    for knock_id in to_patients or ():
        hub.publish(patient_topic(consultation_id, knock_id), event)


def announce_end(hub: Hub, consultation_id: str) -> None:
    """The clinician's call page stops: the consultation has ended (patients' pages learn it from
    their knock's status, consultations.end_consultation)."""
    hub.publish(clinician_topic(consultation_id), {"type": "ended"})


OnEmpty = Callable[[str], Awaitable[None]]
OnChange = Callable[[], Awaitable[None]]


class Book(Protocol):
    """services.presence (jitsi/shared_presence.py): in process on SQLite, in the database on PostgreSQL."""
    async def get(self, consultation_id: str) -> Any: ...
    async def joined(self, consultation_id: str, occupant_jid: str, joined_at: int | None, role: str,
                     now: float) -> bool: ...
    async def left(self, consultation_id: str, occupant_jid: str, joined_at: int | None, now: float) -> bool: ...
    async def came(self, consultation_id: str, role: str) -> bool: ...


STREAM_JOINED_AT = 0  # a stream's session key in the book: its own JID, this joined_at (a tombstone once closed)


@dataclass
class _Call:
    clinician_streams: int = 0
    patient_streams: dict[str, int] = field(default_factory=dict)  # knock id -> open streams
    patient_joined: bool = False
    empty_timer: asyncio.Task | None = None

    def anyone(self) -> bool:
        return bool(self.clinician_streams or self.patient_streams)


class SignalPresence:
    """Who holds a signal stream of each direct call. Each stream is also a session in the presence
    book (`book`: what the dashboard shows, and what every instance sees on PostgreSQL), so that a
    party connected to another instance counts: the `hello`'s peer flag, the "peer gone" news and
    the end of an abandoned call ask the book, not only this instance's streams. In process on
    SQLite (one instance): a restart forgets it, and then the maximum duration still ends every
    consultation.

    `on_empty(consultation_id)` runs when, after the patient joined, neither party has had a stream
    open (on any instance) for `grace_seconds`."""

    def __init__(self, hub: Hub, grace_seconds: float, on_empty: OnEmpty, book: Book,
                 clock: Callable[[], float] = time.time) -> None:
        self._hub = hub
        self._grace = grace_seconds
        self._on_empty = on_empty
        self._book = book
        self._clock = clock
        self._calls: dict[str, _Call] = {}

    async def present(self, consultation_id: str, party: str) -> bool:
        call = self._calls.get(consultation_id)
        if call is not None and self.present_in(call, party):
            return True
        return getattr(await self._book.get(consultation_id), party)

    def _tell(self, consultation_id: str, call: _Call, party: str, present: bool) -> None:
        event = {"type": "peer", "present": present}
        if party == PATIENT:
            self._hub.publish(clinician_topic(consultation_id), event)
        else:
            # the patients whose stream this instance holds (a patient's page only shows this news;
            # the clinician's page, which makes every offer, learns of a patient on any instance)
            for knock_id in call.patient_streams:
                self._hub.publish(patient_topic(consultation_id, knock_id), event)

    @contextlib.asynccontextmanager
    async def connected(self, consultation_id: str, knock_id: str | None = None,
                        on_change: OnChange | None = None):
        """Held while a signal stream is open: the clinician's (knock_id None) or an admitted
        patient's. The other party is told when a stream of this party opens and when its last one
        (on any instance) closes; `on_change` runs when the consultation's presence changed."""
        call = self._calls.setdefault(consultation_id, _Call())
        if call.empty_timer is not None:
            call.empty_timer.cancel()
            call.empty_timer = None
        party = CLINICIAN if knock_id is None else PATIENT
        jid = f"direct-call-{party}-{secrets.token_hex(8)}@signal"
        if party == CLINICIAN:
            call.clinician_streams += 1
        else:
            call.patient_joined = True
            call.patient_streams[knock_id] = call.patient_streams.get(knock_id, 0) + 1
        noted = False
        try:  # counted from here: whatever fails below (the database?) is uncounted in `finally`
            changed = await self._book.joined(consultation_id, jid, STREAM_JOINED_AT, party, self._clock())
            noted = True
            # told at every new stream, not only the first: a reloaded page's old stream may not be
            # closed yet, and the new page needs a fresh negotiation all the same
            self._tell(consultation_id, call, party, True)
            if changed and on_change is not None:
                await on_change()
            yield
        finally:
            if party == CLINICIAN:
                call.clinician_streams -= 1
            else:
                call.patient_streams[knock_id] -= 1
                if not call.patient_streams[knock_id]:
                    del call.patient_streams[knock_id]
            changed = noted and await self._book.left(consultation_id, jid, STREAM_JOINED_AT, self._clock())
            if not await self.present(consultation_id, party):
                self._tell(consultation_id, call, party, False)
            if changed and on_change is not None:
                await on_change()
            if not call.anyone() and self._calls.get(consultation_id) is call:
                if call.patient_joined or await self._book.came(consultation_id, PATIENT):
                    call.empty_timer = asyncio.get_running_loop().create_task(self._end_later(consultation_id))
                else:
                    del self._calls[consultation_id]  # only the clinician ever came: nothing to end

    @staticmethod
    def present_in(call: _Call, party: str) -> bool:
        return bool(call.clinician_streams) if party == CLINICIAN else bool(call.patient_streams)

    async def _end_later(self, consultation_id: str) -> None:
        await asyncio.sleep(self._grace)
        call = self._calls.get(consultation_id)
        if call is None or call.anyone():
            return
        del self._calls[consultation_id]
        now_there = await self._book.get(consultation_id)
        if now_there.patient or now_there.clinician:
            return  # a party is connected to another instance: the call goes on there
        await self._on_empty(consultation_id)

    def forget(self, consultation_id: str) -> None:
        """The consultation ended: no timer left for it."""
        call = self._calls.pop(consultation_id, None)
        if call is not None and call.empty_timer is not None and call.empty_timer is not asyncio.current_task():
            call.empty_timer.cancel()

    def close(self) -> None:
        for call in self._calls.values():
            if call.empty_timer is not None:
                call.empty_timer.cancel()
        self._calls.clear()
