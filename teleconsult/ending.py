"""Ending a consultation and deleting its documents, read top to bottom.

1. Whoever ends a consultation (the clinician, the API, Prosody's room destroyed event, both
   parties gone from a direct call for its grace period, the maximum duration) calls `end`: one path, so no trigger forgets the documents.
2. `end` marks the consultation ended and persists its documents' deadline (end + grace) in
   the drop box in ONE transaction (a crash leaves both written or neither), then announces
   the deadline to the sweeper: a restart forgets nothing.
3. The sweeper (teleconsult/sweeper.py, the clock) runs `sweep_once` at that deadline, at the
   earliest one read back by `next_deadline`, at start-up and periodically: it applies every
   document deadline (filedrop/deletion.py deletes), then ends overdue consultations and gives a
   deadline to the documents of any ended consultation that has none (a database written by an
   older version that crashed between its two writes); both announce their deadlines, so the
   sweeper steps again at once for those that are due.
4. In the same step, the knocks of a consultation ended a grace period ago lose their names, and
   a consultation ended `consultation_retention_days` ago is deleted with its knocks and its
   documents' audit lines (teleconsult/retention.py; the room name moves to used_rooms).

Every moment here is read from `services.clock` (time.time in production, injected by tests).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import consultations as cs
from . import db, db_busy, direct_call, ratelimit, retention
from .jitsi import shared_presence, shared_replay

if TYPE_CHECKING:
    from .services import Services


async def end(services: Services, consultation: cs.Consultation, reason: str) -> cs.Consultation:
    grace = services.settings.documents_grace_seconds

    async def schedule(conn, ended_at: float) -> None:  # inside the end's own transaction
        await services.drops.schedule_box_deletion(consultation.id, ended_at + grace, conn=conn)

    ended = await cs.end_consultation(services.engine, consultation, reason, services.hub, also=schedule,
                                      now=services.clock())
    direct_call.announce_end(services.hub, ended.id)  # the direct call's pages stop (a no-op with Jitsi)
    services.signal_presence.forget(ended.id)
    # committed: a restart between now and then still deletes them; wake the sweeper then (the
    # knocks' names go then too, documents or not)
    services.drops.on_deadline((ended.ended_at or 0) + grace)
    return ended


async def end_abandoned(services: Services, consultation_id: str) -> None:
    """A direct call that both parties left longer than the grace period ago (direct_call.SignalPresence)."""
    consultation = await cs.consultation_by_id(services.engine, consultation_id)
    if consultation.status != cs.ENDED:
        await end(services, consultation, "both_left")


async def schedule_forgotten(services: Services) -> int:
    """Give their deadline (end + grace) to the documents of ended consultations that have none."""
    boxes = await services.drops.unscheduled_boxes()
    ended = await cs.ended_at_of(services.engine, boxes) if boxes else {}
    grace = services.settings.documents_grace_seconds
    for box_id, ended_at in ended.items():
        await services.drops.schedule_box_deletion(box_id, ended_at + grace)
    return len(ended)


async def end_overdue(services: Services, now: float | None = None) -> int:
    """End every consultation past its maximum duration."""
    overdue = await cs.overdue(services.engine, services.clock() if now is None else now)
    for consultation in overdue:
        await end(services, consultation, "max_duration")
    return len(overdue)


def _retention_seconds(services: Services) -> float:
    return services.settings.consultation_retention_days * retention.DAY_SECONDS


SWEEPER_LOCK = "teleconsult-sweeper"


async def sweep_once(services: Services) -> dict[str, int]:
    """The sweeper's step: apply every document deadline first (a room that just ended is waiting
    for it), then end overdue consultations and give a deadline to forgotten documents (either
    announces its deadline, so the sweeper steps again at once when it is due), blank the names of
    knocks past the grace period and forget consultations past the retention period.
    Several instances on PostgreSQL take turns (db_busy.exclusive): one step at a time, and the step
    of an instance killed midway is done again by the next one, since every deadline is read
    from the database."""
    async with db_busy.exclusive(services.engine, SWEEPER_LOCK):
        return await _sweep(services)


async def _sweep(services: Services) -> dict[str, int]:
    counts = dict(await services.drops.sweep())
    counts["consultations_ended"] = await end_overdue(services)
    counts["deletions_scheduled"] = await schedule_forgotten(services)
    now = services.clock()
    counts["knock_names_purged"] = await retention.purge_names(
        services.engine, services.settings.documents_grace_seconds, now)
    counts["consultations_forgotten"] = await retention.forget_consultations(
        services.engine, _retention_seconds(services), now)
    if not db.is_sqlite(services.engine):  # shared counters and handled events past their time
        counts["rate_limits_expired"] = await ratelimit.forget_expired(services.engine, now)
        counts["room_events_expired"] = await shared_replay.forget_expired(services.engine, now)
        counts["presence_rows_expired"] = await shared_presence.forget_expired(services.engine, now)
    return counts


async def next_deadline(services: Services) -> float | None:
    """The earliest moment `sweep_once` will have something to do (None: nothing pending)."""
    due = (await cs.next_deadline(services.engine), await services.drops.next_deadline(),
           await retention.next_deadline(services.engine, services.settings.documents_grace_seconds,
                                         _retention_seconds(services)))
    return min((at for at in due if at is not None), default=None)
