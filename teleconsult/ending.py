"""Ending a consultation and deleting its documents, read top to bottom.

1. Whoever ends a consultation (the clinician, the API, Prosody's room destroyed event, both
   parties gone from a direct call for its grace period, the maximum duration) calls `end`: one path, so no trigger forgets the documents.
2. `end` marks the consultation ended and persists its documents' deadline (end + grace) in
   the drop box, which announces it to the sweeper: a restart forgets nothing.
3. The sweeper (teleconsult/sweeper.py, the clock) runs `sweep_once` at that deadline, at the
   earliest one read back by `next_deadline`, and periodically: it ends overdue
   consultations, then applies every document deadline (filedrop/store.py deletes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import consultations as cs
from . import direct_call

if TYPE_CHECKING:
    from .services import Services


async def end(services: Services, consultation: cs.Consultation, reason: str) -> cs.Consultation:
    ended = await cs.end_consultation(services.engine, consultation, reason, services.hub)
    direct_call.announce_end(services.hub, ended.id)  # the direct call's pages stop (a no-op with Jitsi)
    services.signal_presence.forget(ended.id)
    # persisted deadline: a restart between now and then still deletes them
    await services.drops.schedule_box_deletion(
        ended.id, (ended.ended_at or 0) + services.settings.documents_grace_seconds)
    return ended


async def end_abandoned(services: Services, consultation_id: str) -> None:
    """A direct call that both parties left longer than the grace period ago (direct_call.SignalPresence)."""
    consultation = await cs.consultation_by_id(services.engine, consultation_id)
    if consultation.status != cs.ENDED:
        await end(services, consultation, "both_left")


async def end_overdue(services: Services, now: float | None = None) -> int:
    """End every consultation past its maximum duration."""
    overdue = await cs.overdue(services.engine, now)
    for consultation in overdue:
        await end(services, consultation, "max_duration")
    return len(overdue)


async def sweep_once(services: Services) -> dict[str, int]:
    """The sweeper's step: end overdue consultations, then apply every document deadline."""
    counts = {"consultations_ended": await end_overdue(services)}
    counts.update(await services.drops.sweep())
    return counts


async def next_deadline(services: Services) -> float | None:
    """The earliest moment `sweep_once` will have something to do (None: nothing pending)."""
    due = (await cs.next_deadline(services.engine), await services.drops.next_deadline())
    return min((at for at in due if at is not None), default=None)
