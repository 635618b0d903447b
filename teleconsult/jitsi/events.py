"""Room events posted by Prosody's mod_teleconsult_events: signatures and parsing.

Pure Python, no web framework. The wire format (see jitsi_plugin/README.md):

    POST {public_url}/api/jitsi/events
    Content-Type: application/json
    X-Teleconsult-Timestamp: <unix seconds, decimal digits>
    X-Teleconsult-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>

The HMAC covers the exact body bytes, so verify before parsing JSON. A handler does:

    timestamp = verify(secret, ts_header, sig_header, body, now=time.time())
    guard.check(sig_header, now)          # same request replayed: reject
    event = load_event(body)
    if guard.seen(event.event_id, now):   # a retry of a delivered event: acknowledge
        return 200

The module retries an event with the same event_id, a "delivery_attempt" counter in
the body (1, 2, ...) and a fresh timestamp/signature, so every attempt has its own
signature, and duplicates of an event are expected and must be acknowledged (2xx), not
refused: any 4xx answer makes the module drop the event; 408, 425, 429 and 5xx make it retry.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Mapping

from filedrop import safejson

__all__ = [
    "TIMESTAMP_HEADER",
    "SIGNATURE_HEADER",
    "EVENT_NAMES",
    "RoomEventError",
    "BadSignature",
    "StaleTimestamp",
    "Replayed",
    "BadEvent",
    "sign",
    "verify",
    "verify_bearer",
    "ReplayGuard",
    "Occupant",
    "RoomEvent",
    "parse_event",
    "load_event",
]

TIMESTAMP_HEADER = "X-Teleconsult-Timestamp"
SIGNATURE_HEADER = "X-Teleconsult-Signature"

ROOM_CREATED = "muc-room-created"
ROOM_DESTROYED = "muc-room-destroyed"
OCCUPANT_JOINED = "muc-occupant-joined"
OCCUPANT_LEFT = "muc-occupant-left"
EVENT_NAMES = frozenset({ROOM_CREATED, ROOM_DESTROYED, OCCUPANT_JOINED, OCCUPANT_LEFT})

_SIGNATURE_PREFIX = "sha256="
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
_SIGNATURE_RE = re.compile(r"sha256=[0-9a-fA-F]{64}")
_EVENT_ID_RE = re.compile(r"[A-Za-z0-9_-]{8,128}")
_MAX_TEXT = 1024
_MAX_OCCUPANTS_LISTED = 10_000
# Unix seconds up to year 3000: rejects milliseconds and absurd values.
_MAX_TIMESTAMP = 32_503_680_000


class RoomEventError(Exception):
    """Base of the errors raised while authenticating or parsing a room event."""


class BadSignature(RoomEventError):
    """Missing, malformed or wrong signature (or timestamp header, or bearer token)."""


class StaleTimestamp(RoomEventError):
    """Correctly signed, but the timestamp is outside the accepted window."""


class Replayed(RoomEventError):
    """The same signed request (or key) was already seen within the window."""


class BadEvent(RoomEventError):
    """The body is not a valid room event."""


# Signatures -------------------------------------------------------------------


def _mac(secret: bytes, timestamp: str, body: bytes) -> str:
    message = timestamp.encode("ascii") + b"." + body
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """Value of the signature header for `body` sent at `timestamp` (Unix seconds)."""
    if not isinstance(secret, bytes) or not secret:
        raise ValueError("secret must be non-empty bytes")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValueError("timestamp must be a non-negative int")
    return _SIGNATURE_PREFIX + _mac(secret, str(timestamp), body)


def verify(
    secret: bytes,
    timestamp_header: str | None,
    signature_header: str | None,
    body: bytes,
    now: float,
    window_seconds: float = 300,
) -> int:
    """Check a signed request; return its timestamp.

    Raises BadSignature when a header is missing or malformed or the HMAC does not
    match, StaleTimestamp when the (authentic) timestamp is more than
    `window_seconds` away from `now`, in the past or the future. The HMAC is checked
    first, so an unauthenticated caller learns nothing about the clock.
    """
    if not secret:
        raise ValueError("secret must be non-empty bytes")
    if not timestamp_header or not _TIMESTAMP_RE.fullmatch(timestamp_header):
        raise BadSignature(f"missing or malformed {TIMESTAMP_HEADER} header")
    if not signature_header or not _SIGNATURE_RE.fullmatch(signature_header):
        raise BadSignature(f"missing or malformed {SIGNATURE_HEADER} header")
    expected = _mac(secret, timestamp_header, body)
    given = signature_header[len(_SIGNATURE_PREFIX):].lower()
    if not hmac.compare_digest(expected.encode("ascii"), given.encode("ascii")):
        raise BadSignature("signature does not match")
    timestamp = int(timestamp_header)
    if abs(now - timestamp) > window_seconds:
        ahead = timestamp - now  # > 0: the sender's clock is ahead of ours
        raise StaleTimestamp(f"timestamp {timestamp} is {abs(ahead):.0f} s "
                             f"{'in the future' if ahead > 0 else 'old'} ({ahead:+.0f} s from now)")
    return timestamp


def verify_bearer(secret: bytes, authorization_header: str | None) -> None:
    """Check `Authorization: Bearer <secret>` (module option teleconsult_events_bearer).

    Bearer mode has no timestamp: replays are only caught by event_id deduplication.
    """
    if not secret:
        raise ValueError("secret must be non-empty bytes")
    scheme, _, token = (authorization_header or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise BadSignature("missing or malformed Authorization header")
    if not hmac.compare_digest(token.strip().encode("utf-8"), secret):
        raise BadSignature("bearer token does not match")


class ReplayGuard:
    """Remembers keys (signature headers, event ids) for `window_seconds`.

    Memory is bounded by `max_entries`: when full, the oldest key is forgotten
    early. Size it above the number of requests expected per window; the
    timestamp window still limits how long a forgotten signature stays usable.
    One instance per application (keep it in app state), not per request.
    """

    def __init__(self, window_seconds: float = 300, max_entries: int = 100_000) -> None:
        if window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.window_seconds = window_seconds
        self.max_entries = max_entries
        self._expiry: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._expiry)

    def _purge(self, now: float) -> None:
        # Entries are kept in insertion order, which is (nearly) expiry order.
        while self._expiry:
            key, expires = next(iter(self._expiry.items()))
            if expires > now:
                break
            del self._expiry[key]

    def seen(self, key: str, now: float) -> bool:
        """Return True if `key` was recorded within the window; record it otherwise."""
        self._purge(now)
        expires = self._expiry.get(key)
        if expires is not None and expires > now:
            return True
        self._expiry.pop(key, None)
        self._expiry[key] = now + self.window_seconds
        while len(self._expiry) > self.max_entries:
            self._expiry.popitem(last=False)
        return False

    def check(self, key: str, now: float) -> None:
        """Record `key`; raise Replayed if it was already recorded within the window."""
        if self.seen(key, now):
            raise Replayed("request already seen")

    def forget(self, key: str) -> None:
        """Drop `key` (e.g. an event whose processing failed, so that its retry is processed)."""
        self._expiry.pop(key, None)


# Events -----------------------------------------------------------------------


@dataclass(frozen=True)
class Occupant:
    """An occupant as the backend keeps it: ids, never a display name. Our Prosody module sends
    none; event_sync's `name` from another sender is dropped here, unread (issue 17)."""
    occupant_jid: str
    id: str | None = None
    joined_at: int | None = None
    left_at: int | None = None


@dataclass(frozen=True)
class RoomEvent:
    event_id: str
    event_name: str
    room_name: str
    room_jid: str
    is_breakout: bool = False
    created_at: int | None = None
    destroyed_at: int | None = None
    active_occupants_count: int | None = None
    occupant: Occupant | None = None
    all_occupants: tuple[Occupant, ...] = ()


def _text(data: Mapping[str, Any], key: str, *, required: bool, where: str = "") -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise BadEvent(f"{where}{key} is required")
        return None
    if not isinstance(value, str) or not value or len(value) > _MAX_TEXT:
        raise BadEvent(f"{where}{key} must be a non-empty string of at most {_MAX_TEXT} characters")
    return value


def _count(data: Mapping[str, Any], key: str, *, required: bool) -> int | None:
    value = data.get(key)
    if value is None:
        if required:
            raise BadEvent(f"{key} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000_000:
        raise BadEvent(f"{key} must be a non-negative integer")
    return value


def _timestamp(data: Mapping[str, Any], key: str, *, required: bool, where: str = "") -> int | None:
    value = data.get(key)
    if value is None:
        if required:
            raise BadEvent(f"{where}{key} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_TIMESTAMP:
        raise BadEvent(f"{where}{key} must be Unix seconds (integer)")
    return value


def _jid_with_node(value: str, key: str, where: str = "") -> str:
    node, at, domain = value.partition("@")
    if not at or not node or not domain or "/" in node or any(c.isspace() for c in value):
        raise BadEvent(f"{where}{key} is not a JID with a node part")
    return value


def _occupant(data: Any, *, event_name: str, where: str) -> Occupant:
    if not isinstance(data, Mapping):
        raise BadEvent(f"{where.rstrip('.')} must be an object")
    occupant_jid = _text(data, "occupant_jid", required=True, where=where)
    assert occupant_jid is not None
    _jid_with_node(occupant_jid, "occupant_jid", where)
    joined_at = _timestamp(data, "joined_at", required=event_name == OCCUPANT_JOINED, where=where)
    left_at = _timestamp(data, "left_at", required=event_name == OCCUPANT_LEFT, where=where)
    if joined_at is not None and left_at is not None and left_at < joined_at:
        raise BadEvent(f"{where}left_at is before joined_at")
    ident = data.get("id")
    if isinstance(ident, int) and not isinstance(ident, bool):
        ident = str(ident)  # token contexts sometimes carry numeric ids
    return Occupant(
        occupant_jid=occupant_jid,
        id=_text({"id": ident}, "id", required=False, where=where),
        joined_at=joined_at,
        left_at=left_at,
    )


def parse_event(data: Mapping[str, Any]) -> RoomEvent:
    """Validate a decoded event_sync-style object and return a RoomEvent.

    Unknown fields are ignored (forward compatibility); known fields are checked
    for type and presence according to event_name. Raises BadEvent.
    """
    if not isinstance(data, Mapping):
        raise BadEvent("event must be a JSON object")
    event_name = data.get("event_name")
    if event_name not in EVENT_NAMES:
        raise BadEvent("event_name is missing or unknown")
    event_id = _text(data, "event_id", required=True)
    assert event_id is not None
    if not _EVENT_ID_RE.fullmatch(event_id):
        raise BadEvent("event_id must be 8 to 128 characters of A-Z a-z 0-9 _ -")
    room_name = _text(data, "room_name", required=True)
    room_jid = _text(data, "room_jid", required=True)
    assert room_name is not None and room_jid is not None
    _jid_with_node(room_jid, "room_jid")
    is_breakout = data.get("is_breakout", False)
    if not isinstance(is_breakout, bool):
        raise BadEvent("is_breakout must be a boolean")

    created_at = _timestamp(data, "created_at", required=event_name == ROOM_CREATED)
    destroyed_at = _timestamp(data, "destroyed_at", required=event_name == ROOM_DESTROYED)
    if created_at is not None and destroyed_at is not None and destroyed_at < created_at:
        raise BadEvent("destroyed_at is before created_at")

    occupant_event = event_name in (OCCUPANT_JOINED, OCCUPANT_LEFT)
    active = _count(data, "active_occupants_count", required=occupant_event)
    occupant = None
    if occupant_event:
        occupant = _occupant(data.get("occupant"), event_name=event_name, where="occupant.")

    all_occupants: tuple[Occupant, ...] = ()
    if event_name == ROOM_DESTROYED and data.get("all_occupants") is not None:
        listed = data["all_occupants"]
        if not isinstance(listed, list) or len(listed) > _MAX_OCCUPANTS_LISTED:
            raise BadEvent("all_occupants must be a list")
        all_occupants = tuple(
            _occupant(item, event_name=event_name, where=f"all_occupants[{i}].")
            for i, item in enumerate(listed)
        )

    return RoomEvent(
        event_id=event_id,
        event_name=event_name,
        room_name=room_name,
        room_jid=room_jid,
        is_breakout=is_breakout,
        created_at=created_at,
        destroyed_at=destroyed_at,
        active_occupants_count=active,
        occupant=occupant,
        all_occupants=all_occupants,
    )


def load_event(body: bytes) -> RoomEvent:
    """Decode a (verified) request body and parse it. Raises BadEvent."""
    try:
        data = safejson.loads(body)
    except safejson.BadJSON as exc:  # also nesting too deep, numbers too long, NaN
        raise BadEvent(f"body: {exc}") from None
    return parse_event(data)
