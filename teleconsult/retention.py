"""What the host keeps about a consultation once it has ended, and for how long (issue 17).

Two deadlines, both counted from the end (`consultations.ended_at`) and applied by the sweeper
(teleconsult/ending.py `sweep_once`, read back by `next_deadline`), so a restart forgets neither:

1. end + `documents_grace_seconds`: the documents go (filedrop) and every knock of the
   consultation loses its display name (sealed to the consultation secret: `sealed_name` becomes
   NULL; SQLite's secure_delete zeroes the old bytes).
2. end + `consultation_retention_days`: the consultation row, its knocks and its documents'
   audit lines are deleted. Its room name moves to `used_rooms` in the same transaction, so
   that it is never reused (a kept consultation's row holds its own).

A consultation whose documents are not all deleted yet (a deletion that keeps failing) is kept
until they are: its audit lines are the trace of that deletion.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from filedrop.schema import audit, files

from .db_tables import consultations, knocks, used_rooms

ENDED = "ended"  # consultations.ENDED (not imported: consultations imports nothing from here either)
DAY_SECONDS = 86400
FORGET_BATCH = 500  # consultations deleted per transaction: a long backlog never holds the lock long


def _named_knocks():
    return sa.and_(knocks.c.consultation_id == consultations.c.id, knocks.c.sealed_name.isnot(None))


async def purge_names(engine: AsyncEngine, grace_seconds: float, now: float) -> int:
    """Blank the display names of the knocks of every consultation ended `grace_seconds` ago or
    more. Returns how many knocks lost their name."""
    ended_long_enough = sa.select(consultations.c.id).where(
        consultations.c.status == ENDED, consultations.c.ended_at <= now - grace_seconds)
    async with engine.begin() as conn:
        result = await conn.execute(knocks.update().where(
            knocks.c.consultation_id.in_(ended_long_enough), knocks.c.sealed_name.isnot(None)).values(sealed_name=None))
    return result.rowcount


async def forget_consultations(engine: AsyncEngine, retention_seconds: float, now: float) -> int:
    """Delete every consultation ended `retention_seconds` ago or more, with its knocks and its
    documents' audit lines; its room name moves to used_rooms. Returns how many were deleted."""
    forgotten = 0
    while True:
        async with engine.begin() as conn:
            ids = (await conn.execute(sa.select(consultations.c.id).where(
                consultations.c.status == ENDED, consultations.c.ended_at <= now - retention_seconds,
                ~sa.exists().where(files.c.box_id == consultations.c.id)).limit(FORGET_BATCH))).scalars().all()
            if not ids:
                return forgotten
            await conn.execute(audit.delete().where(audit.c.box_id.in_(ids)))
            await conn.execute(knocks.delete().where(knocks.c.consultation_id.in_(ids)))
            # the room names go to used_rooms with the rows (names issued before this rule are there already)
            await conn.execute(used_rooms.insert().from_select(["room_name"], sa.select(consultations.c.room_name).where(
                consultations.c.id.in_(ids), ~sa.exists().where(used_rooms.c.room_name == consultations.c.room_name))))
            await conn.execute(consultations.delete().where(consultations.c.id.in_(ids)))
        forgotten += len(ids)


async def next_deadline(engine: AsyncEngine, grace_seconds: float, retention_seconds: float) -> float | None:
    """The earliest moment `purge_names` or `forget_consultations` will have something to do."""
    async with engine.connect() as conn:
        named, oldest = (await conn.execute(sa.select(
            sa.select(sa.func.min(consultations.c.ended_at)).where(
                consultations.c.status == ENDED, sa.exists().where(_named_knocks())).scalar_subquery(),
            sa.select(sa.func.min(consultations.c.ended_at)).where(
                consultations.c.status == ENDED,  # documents still there: their own deadline comes first
                ~sa.exists().where(files.c.box_id == consultations.c.id)).scalar_subquery()))).one()
    due = (named + grace_seconds if named is not None else None,
           oldest + retention_seconds if oldest is not None else None)
    return min((at for at in due if at is not None), default=None)
