"""Consultations, knocks and admission: plain async functions over the store.

Statuses of a consultation: waiting (no patient admitted yet), in_call, ended.
Statuses of a knock: waiting, admitted, declined, ended.
The room name leaves the server only through teleconsult/call_access.py, and the patient's
only for an admitted knock of a consultation that has not ended.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from . import ids, names
from .accounts import Clinician
from .db_tables import consultations, knocks, used_rooms
from .errors import Conflict, InvalidInput, NotFound
from .live import Hub
from .settings import Settings

WAITING, IN_CALL, ENDED = "waiting", "in_call", "ended"
KNOCK_WAITING, KNOCK_ADMITTED, KNOCK_DECLINED, KNOCK_ENDED = "waiting", "admitted", "declined", "ended"
ROOM_NAME_ATTEMPTS = 5
# A room name is issued once for ever: a kept consultation holds its own (consultations.room_name
# is unique), a forgotten one leaves it in used_rooms (retention.forget_consultations). So a new
# consultation is one statement, inserted only if its name is not in used_rooms (a name that was
# drawn again inserts nothing, and returns no row: rowcount is not reliable for INSERT ... SELECT on
# PostgreSQL); built once, executed with its values: SQLAlchemy then builds no
# statement and no cache key per creation, and a create costs one round trip fewer to aiosqlite's thread.
_INSERT_CONSULTATION = consultations.insert().from_select(
    [column.name for column in consultations.c],
    sa.select(*(sa.bindparam(column.name, type_=column.type) for column in consultations.c)).where(
        ~sa.exists().where(used_rooms.c.room_name == sa.bindparam("room_name")))).returning(consultations.c.id)


@dataclass(frozen=True)
class Consultation:
    id: str
    clinician_id: str
    room_name: str
    join_token: str
    status: str
    allow_rejoin: bool
    created_at: float
    deadline_at: float
    ended_at: float | None
    end_reason: str | None
    sealed_secret: str | None = None  # S sealed to the clinician's key (docs/encryption.md section 9)
    sealed_to: str | None = None  # the id of that key

    def public(self, public_url: str) -> dict:
        """What the dashboard and the API show: never the room name."""
        return {
            "id": self.id,
            "status": self.status,
            "patient_url": patient_url(public_url, self.join_token),
            "created_at": self.created_at,
            "deadline_at": self.deadline_at,
            "ended_at": self.ended_at,
            "end_reason": self.end_reason,
            "sealed_secret": self.sealed_secret,
        }

    def listing(self, public_url: str, key_id: str | None) -> dict:
        """What the clinician's dashboard lists (and its live events carry), given the id of the
        clinician's current key: `key_lost` when S was sealed to a key a password reset forgot
        (only a browser that cached S still opens it)."""
        return {**self.public(public_url),
                "key_lost": self.sealed_to is not None and self.sealed_to != key_id}


@dataclass(frozen=True)
class Knock:
    id: str
    consultation_id: str
    sealed_name: str | None  # the name sealed to the consultation secret; None once purged
    status: str
    created_at: float
    decided_at: float | None

    def public(self) -> dict:
        return asdict(self)


def patient_url(public_url: str, join_token: str) -> str:
    """The patient link without its fragment; the creator appends '#' + base64url(S)."""
    return f"{public_url}/j/{join_token}"


def _consultation(row) -> Consultation:
    return Consultation(**{k: row._mapping[k] for k in Consultation.__dataclass_fields__})


def _knock(row) -> Knock:
    return Knock(**{k: row._mapping[k] for k in Knock.__dataclass_fields__})


def _notify(hub: Hub | None, consultation: Consultation, kind: str, /, **extra) -> None:
    if hub is None:
        return
    hub.publish(f"clinician:{consultation.clinician_id}",
                {"type": kind, "consultation_id": consultation.id, "status": consultation.status, **extra})


async def create_consultation(engine: AsyncEngine, settings: Settings, clinician: Clinician,
                              hub: Hub | None = None, now: float | None = None, *,
                              consultation_id: str | None = None, sealed_secret: str | None = None,
                              sealed_to: str | None = None) -> Consultation:
    """A new consultation. Its creator may choose its id (to seal S for it beforehand) and
    give S sealed to the clinician's key `sealed_to` (checked by the caller)."""
    now = time.time() if now is None else now
    if consultation_id is not None and not ids.valid_client_id(consultation_id):
        raise InvalidInput("a consultation id is 16 to 64 characters among A-Z a-z 0-9 - _")
    for _ in range(ROOM_NAME_ATTEMPTS):
        room = ids.room_name()
        try:
            async with engine.begin() as conn:
                if consultation_id is not None and await conn.scalar(
                        sa.select(consultations.c.id).where(consultations.c.id == consultation_id)):
                    raise Conflict("a consultation with this id already exists")
                values = dict(
                    id=consultation_id or ids.new_id(), clinician_id=clinician.id, room_name=room,
                    join_token=ids.new_id(), status=WAITING, allow_rejoin=True, created_at=now,
                    deadline_at=now + settings.consultation_max_minutes * 60, ended_at=None, end_reason=None,
                    sealed_secret=sealed_secret, sealed_to=sealed_to)
                if (await conn.execute(_INSERT_CONSULTATION, values)).first() is None:
                    continue  # the room name of a forgotten consultation: never reuse, draw again
        except sa.exc.IntegrityError:
            continue  # the room name of a consultation still kept: draw again
        consultation = Consultation(**values)
        # the dashboard shows the new consultation from the event itself: its listing goes with it
        # (S is sealed to the current key, checked by the caller, or to none: never lost)
        _notify(hub, consultation, "consultation", consultation=consultation.listing(settings.public_url, sealed_to))
        return consultation
    raise Conflict("could not draw an unused room name")


async def reseal(engine: AsyncEngine, settings: Settings, consultation: Consultation, sealed_secret: str,
                 key_id: str, hub: Hub | None = None) -> Consultation:
    """S sealed again, to the clinician's current key, by a browser that still caches it: for a
    consultation sealed to a key a password reset forgot, or created before keys. A secret
    already sealed to the current key is never replaced. The clinician's other dashboards get
    the new listing in a "consultation" event, and open S from it."""
    if consultation.status == ENDED:
        raise Conflict("the consultation has ended")
    async with engine.begin() as conn:
        result = await conn.execute(consultations.update().where(
            consultations.c.id == consultation.id,
            sa.or_(consultations.c.sealed_to.is_(None), consultations.c.sealed_to != key_id)).values(
            sealed_secret=sealed_secret, sealed_to=key_id))
    if result.rowcount != 1:
        raise Conflict("the secret of this consultation is already sealed to the current key")
    resealed = replace(consultation, sealed_secret=sealed_secret, sealed_to=key_id)
    _notify(hub, resealed, "consultation", consultation=resealed.listing(settings.public_url, key_id))
    return resealed


_OWN_CONSULTATION = sa.select(consultations).where(
    consultations.c.id == sa.bindparam("id"), consultations.c.clinician_id == sa.bindparam("clinician"))


async def get_consultation(engine: AsyncEngine, consultation_id: str, clinician: Clinician) -> Consultation:
    """The clinician's own consultation; another clinician's is NotFound, like a missing one."""
    async with engine.connect() as conn:
        row = (await conn.execute(_OWN_CONSULTATION, {"id": consultation_id, "clinician": clinician.id})).first()
    if row is None:
        raise NotFound("no such consultation")
    return _consultation(row)


async def list_consultations(engine: AsyncEngine, clinician: Clinician, limit: int = 50) -> list[Consultation]:
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(consultations)
                                   .where(consultations.c.clinician_id == clinician.id)
                                   .order_by(consultations.c.created_at.desc()).limit(limit))).all()
    return [_consultation(r) for r in rows]


async def consultation_by_join_token(engine: AsyncEngine, join_token: str) -> Consultation:
    if not join_token or len(join_token) > 64:
        raise NotFound("no such link")
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(consultations).where(
            consultations.c.join_token == join_token))).first()
    if row is None:
        raise NotFound("no such link")
    return _consultation(row)


async def consultation_by_id(engine: AsyncEngine, consultation_id: str) -> Consultation:
    """Any clinician's consultation, for the app's own triggers (not for a request: see get_consultation)."""
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(consultations).where(consultations.c.id == consultation_id))).first()
    if row is None:
        raise NotFound("no such consultation")
    return _consultation(row)


_BY_ROOM = sa.select(consultations).where(consultations.c.room_name == sa.bindparam("room"))


async def consultation_by_room(engine: AsyncEngine, room_name: str) -> Consultation:
    """The consultation of a Jitsi room (room events from Prosody); NotFound for any other room.

    Prosody reports the room JID's node, which it lowercases; room names are lowercase already."""
    if not room_name or len(room_name) > 64:
        raise NotFound("no such room")
    async with engine.connect() as conn:
        row = (await conn.execute(_BY_ROOM, {"room": room_name.lower()})).first()
    if row is None:
        raise NotFound("no such room")
    return _consultation(row)


# The end in one transaction that 20 rooms ending at once queue for: the update returns the row
# (RETURNING) instead of a SELECT after it, and every statement is built once.
_END = consultations.update().where(
    consultations.c.id == sa.bindparam("consultation"), consultations.c.status != ENDED).values(
    status=ENDED, ended_at=sa.bindparam("at"), end_reason=sa.bindparam("reason")).returning(*consultations.c)
_END_KNOCKS = knocks.update().where(
    knocks.c.consultation_id == sa.bindparam("consultation"),
    knocks.c.status.in_([KNOCK_WAITING, KNOCK_ADMITTED])).values(status=KNOCK_ENDED)
_CONSULTATION = sa.select(consultations).where(consultations.c.id == sa.bindparam("consultation"))
_KNOCK_IDS = sa.select(knocks.c.id).where(knocks.c.consultation_id == sa.bindparam("consultation"))


async def end_consultation(engine: AsyncEngine, consultation: Consultation, reason: str,
                           hub: Hub | None = None, now: float | None = None,
                           also: Callable[[AsyncConnection, float], Awaitable[object]] | None = None) -> Consultation:
    """End once; ending again is a no-op that returns the ended consultation (idempotent).
    `also(conn, ended_at)` writes what goes with the end in the same transaction (the
    documents' deadline): both are committed, or neither."""
    now = time.time() if now is None else now
    key = {"consultation": consultation.id}
    async with engine.begin() as conn:
        row = (await conn.execute(_END, {**key, "at": now, "reason": reason})).first()
        newly_ended = row is not None
        if newly_ended:
            await conn.execute(_END_KNOCKS, key)
        else:  # ended before: the row as it is
            row = (await conn.execute(_CONSULTATION, key)).first()
        knock_ids = (await conn.execute(_KNOCK_IDS, key)).scalars().all()
        if also is not None:
            await also(conn, row.ended_at)
    ended = _consultation(row)
    if newly_ended and hub is not None:
        _notify(hub, ended, "consultation")
        for knock_id in knock_ids:
            hub.publish(f"knock:{knock_id}", {"type": "status", "status": KNOCK_ENDED})
    return ended


async def overdue(engine: AsyncEngine, now: float | None = None) -> list[Consultation]:
    """Consultations still open past their maximum duration."""
    now = time.time() if now is None else now
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(consultations).where(
            consultations.c.status != ENDED, consultations.c.deadline_at <= now))).all()
    return [_consultation(r) for r in rows]


async def ended_at_of(engine: AsyncEngine, ids_: list[str]) -> dict[str, float]:
    """When each of these consultations ended, for those that have (id -> ended_at)."""
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(consultations.c.id, consultations.c.ended_at).where(
            consultations.c.id.in_(ids_), consultations.c.status == ENDED))).all()
    return {row.id: row.ended_at or 0 for row in rows}


async def next_deadline(engine: AsyncEngine) -> float | None:
    """When the earliest open consultation reaches its maximum duration (None: none open)."""
    async with engine.connect() as conn:
        return await conn.scalar(sa.select(sa.func.min(consultations.c.deadline_at)).where(
            consultations.c.status != ENDED))


def check_sealed_name(sealed_name: object) -> str:
    """A sealed name as the patient's page sends it (teleconsult/names.py): its shape is all the
    server can check, and all it keeps."""
    try:
        names.check_sealed(sealed_name)
    except names.BadSealedName as exc:
        raise InvalidInput(str(exc)) from None
    assert isinstance(sealed_name, str)
    return sealed_name


async def knock(engine: AsyncEngine, consultation: Consultation, sealed_name: str,
                hub: Hub | None = None, now: float | None = None) -> Knock:
    """A patient knocks, with its display name sealed to the consultation secret (the server
    never receives it in clear)."""
    if consultation.status == ENDED:
        raise Conflict("consultation has ended")
    sealed = check_sealed_name(sealed_name)
    now = time.time() if now is None else now
    new = Knock(id=ids.new_id(), consultation_id=consultation.id, sealed_name=sealed,
                status=KNOCK_WAITING, created_at=now, decided_at=None)
    async with engine.begin() as conn:
        await conn.execute(knocks.insert().values(**asdict(new)))
    _notify(hub, consultation, "knock", knock=new.public())
    return new


async def get_knock(engine: AsyncEngine, consultation: Consultation, knock_id: str) -> Knock:
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(knocks).where(
            knocks.c.id == knock_id, knocks.c.consultation_id == consultation.id))).first()
    if row is None:
        raise NotFound("no such knock")
    return _knock(row)


async def device_number(engine: AsyncEngine, knock: Knock) -> int:
    """Which device of the link this knock is: 1 for the first browser that knocked on the
    consultation, 2 for another one with the same link, and so on (a reload keeps its knock)."""
    async with engine.connect() as conn:
        before = await conn.scalar(sa.select(sa.func.count()).select_from(knocks).where(
            knocks.c.consultation_id == knock.consultation_id,
            sa.or_(knocks.c.created_at < knock.created_at,
                   sa.and_(knocks.c.created_at == knock.created_at, knocks.c.id < knock.id))))
    return before + 1


async def list_knocks(engine: AsyncEngine, consultation: Consultation) -> list[Knock]:
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(knocks).where(knocks.c.consultation_id == consultation.id)
                                   .order_by(knocks.c.created_at))).all()
    return [_knock(r) for r in rows]


async def open_knocks(engine: AsyncEngine, consultation_ids: list[str]) -> dict[str, list[Knock]]:
    """Waiting and admitted knocks of several consultations in one query, oldest first."""
    found: dict[str, list[Knock]] = {cid: [] for cid in consultation_ids}
    if not consultation_ids:
        return found
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(knocks).where(
            knocks.c.consultation_id.in_(consultation_ids),
            knocks.c.status.in_([KNOCK_WAITING, KNOCK_ADMITTED])).order_by(knocks.c.created_at))).all()
    for row in rows:
        found[row.consultation_id].append(_knock(row))
    return found


def _decision(allowed: list[str]) -> sa.Update:
    """The knock's new status, if it is in an `allowed` one, and the row as it is then (RETURNING):
    one statement where an UPDATE and a SELECT were, inside the write transactions that a burst
    of admits queues for."""
    return (knocks.update()
            .where(knocks.c.id == sa.bindparam("knock"), knocks.c.consultation_id == sa.bindparam("consultation"),
                   knocks.c.status.in_(allowed))
            .values(status=sa.bindparam("new_status"), decided_at=sa.bindparam("at"))
            .returning(*knocks.c))


_ADMIT = _decision([KNOCK_WAITING])
_DECLINE = _decision([KNOCK_WAITING, KNOCK_ADMITTED])
_IN_CALL = consultations.update().where(
    consultations.c.id == sa.bindparam("consultation"), consultations.c.status == WAITING).values(status=IN_CALL)


async def decide(engine: AsyncEngine, consultation: Consultation, knock_id: str, admit: bool,
                 hub: Hub | None = None, now: float | None = None) -> Knock:
    """Admit a waiting knock, or decline a waiting or admitted one (which also stops its re-admission).
    Asking again what was already done (two tabs, a retried request) answers the knock as it is.

    The caller has checked that the clinician owns the consultation."""
    if consultation.status == ENDED:
        raise Conflict("consultation has ended")
    now = time.time() if now is None else now
    status = KNOCK_ADMITTED if admit else KNOCK_DECLINED
    async with engine.begin() as conn:
        row = (await conn.execute(_ADMIT if admit else _DECLINE, {
            "knock": knock_id, "consultation": consultation.id, "new_status": status, "at": now})).first()
        if row is None:
            row = (await conn.execute(sa.select(knocks).where(
                knocks.c.id == knock_id, knocks.c.consultation_id == consultation.id))).first()
            if row is not None and row.status == status:
                return _knock(row)  # already done (another tab, a retry): the same answer, nothing published
            raise NotFound("no knock in a state to decide with that id")
        if admit:
            await conn.execute(_IN_CALL, {"consultation": consultation.id})
    decided = _knock(row)
    if hub is not None:
        hub.publish(f"knock:{knock_id}", {"type": "status", "status": status})
        _notify(hub, replace(consultation, status=IN_CALL) if admit else consultation, "knock",
                knock=decided.public())
    return decided
