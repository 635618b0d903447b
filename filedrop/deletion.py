"""The drop box's deletion rules, and the sweep that applies them.

A file goes when the first of these comes:
- its box's deadline: the host schedules it (`schedule_box_deletion`: teleconsult at the end of
  a consultation plus its grace period);
- its hard expiry (`expires_at`, always set at creation);
- its download limit: once used up it is kept USED_UP_GRACE_SECONDS for the transfer that used
  it up (filedrop/store.py, `start_download`);
- its owner's delete (standalone drops, with the owner token);
- an upload that received no part for `upload_ttl` (minutes: a phone that went away).

Deadlines live in the database, so a restart forgets none. The sweep marks a row `deleting`
before it touches the disk, so a crash in between is finished by the next sweep; ciphertext on
disk without a row (a crash before the row was written) is removed too. Deletion leaves only
an audit line: what, when, which box, why; never a name or a size.
"""

from __future__ import annotations

import hashlib
import hmac

import sqlalchemy as sa

from .errors import Gone, NotOwner
from .schema import DELETING, UPLOADING, audit, files
from .statements import AUDIT

DELETE_BATCH = 200  # files deleted per pair of transactions by one sweep (bounds one write)


def _last_activity():
    """When an unfinished upload last moved: its last part, or its creation."""
    return sa.func.coalesce(files.c.touched_at, files.c.created_at)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_owner(stored_hash: str | None, box_id: str | None, owner_token: str) -> None:
    """Only a standalone drop has an owner; the token is compared in constant time."""
    if box_id is not None or not stored_hash:
        raise Gone("no such file")
    if not hmac.compare_digest(stored_hash, token_hash(owner_token)):
        raise NotOwner("wrong owner token")


class DeletionRules:
    """The deletion half of filedrop.store.DropBox (which sets `engine`, `storage`, `config`,
    `clock`, `notify`, `on_deadline` and the `_sweeping` lock)."""

    async def _audit(self, conn, action: str, file_id: str, box_id: str | None, reason: str | None = None) -> None:
        await conn.execute(AUDIT, {"b_at": self.clock(), "b_action": action, "b_file_id": file_id,
                                   "b_box_id": box_id, "b_reason": reason})

    async def delete_owned(self, file_id: str, owner_token: str) -> None:
        """The sender deletes a standalone drop (even one past its deadline) with its owner token."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(files.c.owner_token_hash, files.c.box_id).where(
                files.c.id == file_id))).first()
        if row is None:
            raise Gone("no such file")
        check_owner(row.owner_token_hash, row.box_id, owner_token)
        await self._delete(file_id, None, "owner")

    async def schedule_box_deletion(self, box_id: str, at: float, conn=None) -> int:
        """The box's owner is done with it: every document of the box is deleted at `at`
        (persisted). With `conn` (an open transaction of the host's, on this engine), the deadline
        is written inside it, so that it is committed with the host's own write or not at all;
        the host then calls `on_deadline(at)` once it has committed."""
        statement = files.update().where(
            files.c.box_id == box_id, sa.or_(files.c.delete_at.is_(None), files.c.delete_at > at)).values(delete_at=at)
        if conn is not None:
            return (await conn.execute(statement)).rowcount
        async with self.engine.begin() as own:
            result = await own.execute(statement)
        if result.rowcount:
            self.on_deadline(at)
        return result.rowcount

    async def unscheduled_boxes(self) -> list[str]:
        """Boxes holding a document with no box deadline yet (the host checks which are done)."""
        async with self.engine.connect() as conn:
            return list((await conn.execute(sa.select(files.c.box_id).where(
                files.c.box_id.is_not(None), files.c.delete_at.is_(None)).distinct())).scalars().all())

    async def _delete(self, file_id: str, box_id: str | None, reason: str) -> None:
        await self._delete_many([(file_id, box_id, reason)])

    async def _delete_many(self, doomed: list[tuple[str, str | None, str]]) -> None:
        """Delete files (id, box, reason): rows marked `deleting`, files removed, rows deleted
        and audited. A crash between the steps leaves `deleting` rows, resumed by the next
        sweep. Many files go in two transactions (in groups of DELETE_BATCH), not two each:
        20 rooms ending at once wait for 2 commits instead of 40."""
        for start in range(0, len(doomed), DELETE_BATCH):
            group = doomed[start:start + DELETE_BATCH]
            ids = [file_id for file_id, _, _ in group]
            async with self.engine.begin() as conn:
                await conn.execute(files.update().where(files.c.id.in_(ids)).values(state=DELETING))
            for file_id in ids:
                await self.storage.remove(file_id)
            at = self.clock()
            async with self.engine.begin() as conn:
                await conn.execute(files.delete().where(files.c.id.in_(ids)))
                # the audit lines in one statement (executemany), not one round trip each
                await conn.execute(audit.insert(), [dict(at=at, action="deleted", file_id=file_id, box_id=box_id,
                                                         reason=reason) for file_id, box_id, reason in group])
            for file_id, box_id, _ in group:
                self.notify(box_id, {"type": "document", "action": "deleted", "id": file_id})

    async def next_deadline(self) -> float | None:
        """The earliest moment :meth:`sweep` will have something to do (None: nothing stored).
        A row already `deleting` (a crash mid-deletion) is due at once."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(
                sa.func.min(files.c.expires_at), sa.func.min(files.c.delete_at),
                sa.select(sa.func.min(_last_activity())).where(files.c.state == UPLOADING).scalar_subquery(),
                sa.select(sa.func.min(files.c.created_at)).where(files.c.state == DELETING).scalar_subquery(),
            ))).one()
        expires, delete, oldest_upload, deleting = row
        due = [expires, delete, deleting, oldest_upload + self.config.upload_ttl if oldest_upload is not None else None]
        return min((at for at in due if at is not None), default=None)

    async def sweep(self) -> dict[str, int]:
        """Apply every deadline that has passed; remove orphans. Returns counts by reason."""
        async with self._sweeping:
            return await self._sweep()

    async def _sweep(self) -> dict[str, int]:
        now = self.clock()
        counts: dict[str, int] = {}
        # list the disk first: a row is always inserted before its file is created, so a file
        # seen here with no row below is a true orphan, never an upload that has just begun
        on_disk = await self.storage.all_ids()
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(
                files.c.id, files.c.box_id, files.c.state, files.c.expires_at, files.c.delete_at,
                files.c.created_at).where(sa.or_(
                    files.c.state == DELETING,
                    files.c.expires_at <= now,
                    files.c.delete_at <= now,
                    sa.and_(files.c.state == UPLOADING, _last_activity() <= now - self.config.upload_ttl))))).all()
            known = set((await conn.execute(sa.select(files.c.id))).scalars().all())
        doomed = []
        for row in rows:
            if row.state == DELETING:
                reason = "resumed"
            elif row.delete_at is not None and row.delete_at <= now:
                reason = "scheduled"
            elif row.expires_at <= now:
                reason = "expired"
            else:
                reason = "abandoned"
            doomed.append((row.id, row.box_id, reason))
            counts[reason] = counts.get(reason, 0) + 1
        await self._delete_many(doomed)
        for orphan in on_disk - known:
            await self.storage.remove(orphan)
            counts["orphan"] = counts.get("orphan", 0) + 1
        return counts
