"""Ending a consultation, whoever asks (the clinician, the API, Prosody's room destroyed
event, the sweeper's maximum duration): one path, so no trigger forgets the documents."""

from __future__ import annotations

from aiohttp import web

from . import consultations as cs
from .keys import drop_key, engine_key, hub_key, settings_key


async def end(app: web.Application, consultation: cs.Consultation, reason: str) -> cs.Consultation:
    ended = await cs.end_consultation(app[engine_key], consultation, reason, app[hub_key])
    # persisted deadline: a restart between now and then still deletes them
    await app[drop_key].schedule_box_deletion(
        ended.id, (ended.ended_at or 0) + app[settings_key].documents_grace_seconds)
    return ended


async def end_overdue(app: web.Application, now: float | None = None) -> int:
    """Sweeper step: end every consultation past its maximum duration."""
    overdue = await cs.overdue(app[engine_key], now)
    for consultation in overdue:
        await end(app, consultation, "max_duration")
    return len(overdue)
