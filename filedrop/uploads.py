"""The drop box's upload path: parts written at an offset, one writer per file at a time (on
any instance), then published in a commit that survives a power cut.

A part may be sent again after a dropped connection, to any instance: the row holds the bytes
received and the storage's state, and a `writer` token in the row makes the latest request the
only one whose bytes are recorded. Publishing checks every byte is stored (the storage fsyncs
the file) and writes the row with `durable_commit`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from . import ece, statements as sql
from .errors import BadUpload, Gone, OffsetMismatch, StoreUnavailable, TooBig
from .schema import READY, UPLOADING
from .storage import CannotRewind, Incomplete, TooLarge, Unavailable

if TYPE_CHECKING:
    from .store import DropFile

# the pool record's info key marking a connection left at synchronous=FULL by durable_commit:
# a host running SQLite at synchronous=NORMAL retires such connections (teleconsult/db_sqlite.py)
SYNCED_KEY = "synchronous_full"


async def durable_commit(conn) -> None:
    """Make this transaction's commit survive a power cut, whatever the host's SQLite
    `synchronous` setting (WAL at NORMAL syncs the log only at checkpoints): the commit then
    syncs the log. One fsync per published document. Other databases: nothing to do."""
    if conn.dialect.name != "sqlite":
        return
    await conn.exec_driver_sql("PRAGMA synchronous=FULL")  # outside the transaction: no DML yet
    (await conn.get_raw_connection()).info[SYNCED_KEY] = True


class UploadRules:
    """The upload half of filedrop.store.DropBox (which sets `engine`, `storage`, `clock`,
    `notify` and the `_writers` of this process, and gives `get`, `_live_row` and
    `_check_free_space`; `_audit` is DeletionRules')."""

    async def upload_part(self, file_id: str, box_id: str | None, offset: int,
                          chunks: AsyncIterator[bytes], length: int | None = None,
                          owner_token: str | None = None) -> int:
        """Write a part at `offset`. A part may be sent again (a retry after a dropped
        connection): it replaces what was there. Returns the bytes received so far.

        Any instance may receive any part: the row holds the bytes received and the storage's
        state, and the `writer` token taken here makes the latest request the only one whose
        bytes are recorded (a stale request elsewhere finds its token gone and records nothing)."""
        # authorise first: only whoever may write this file can stop a stale writer of it
        await self.get(file_id, box_id, owner_token=owner_token)
        task, _ = await self._claim_writer(file_id)
        token = secrets.token_hex(16)
        try:
            held, size, state = await self._take_upload(file_id, token)
            if offset < 0 or offset > held:
                raise OffsetMismatch(held)
            if length is not None and offset + length > size:
                raise TooBig("part goes past the declared size")
            self._check_free_space(size - offset)
            try:
                received, new_state = await self.storage.write_at(file_id, offset, chunks, size, state=state, held=held)
            except TooLarge:
                await self._record(file_id, token, offset, state)
                raise TooBig("part goes past the declared size") from None
            except CannotRewind:
                await self._record(file_id, token, held, state)
                raise OffsetMismatch(held) from None
            except (Unavailable, FileNotFoundError) as exc:
                if not await self._record(file_id, token, offset, state):
                    raise Gone("no such file") from None  # deleted (or taken over) meanwhile
                raise StoreUnavailable(f"the document store failed: {exc}") from None
            except BaseException:
                # connection dropped mid-part: keep what arrived whole up to the client's next HEAD
                await self._record(file_id, token, offset, state)
                raise
            if not await self._record(file_id, token, received, new_state):
                await self.storage.discard(file_id, new_state, state)  # a newer request took over
                raise OffsetMismatch((await self.get(file_id, box_id)).received)
            await self.storage.discard(file_id, state, new_state)
            return received
        finally:
            if self._writers.get(file_id) is task:
                del self._writers[file_id]

    async def _take_upload(self, file_id: str, token: str) -> tuple[int, int, str | None]:
        """Become the file's writer (the latest request wins, on any instance); returns the
        bytes stored, the declared size and the storage's state, read after taking it."""
        async with self.engine.begin() as conn:
            row = (await conn.execute(sql.TAKE_UPLOAD, {"b_id": file_id, "b_writer": token})).first()
            if row is None:
                exists = await conn.scalar(sql.STATE_OF, {"b_id": file_id})
                raise BadUpload("upload already complete") if exists == READY else Gone("no such file")
        return row.received, row.size, row.store_state

    async def _record(self, file_id: str, token: str, received: int, state: str | None) -> bool:
        """Record what this writer holds, if it is still the writer (False: another took over)."""
        async with self.engine.begin() as conn:
            result = await conn.execute(sql.RECORD, {"b_id": file_id, "b_writer": token, "b_received": received,
                                                     "b_store_state": state, "b_touched_at": self.clock()})
        return result.rowcount == 1

    async def _claim_writer(self, file_id: str) -> tuple[asyncio.Task, bool]:
        """One writer per file, the latest wins. A part sent again after a dropped connection
        may find the old request still waiting for its body (a phone gone from 4G leaves a
        half-open connection for minutes): that writer is stopped and its roll-back finished
        before this one starts, or its late truncate would cut the new bytes, even once
        published. (Per process; across instances the row's `writer` token fences, upload_part.)"""
        task, superseded = asyncio.current_task(), False
        while (stale := self._writers.get(file_id)) is not None and stale is not task:
            stale.cancel()
            await asyncio.wait({stale})
            superseded = True
            if self._writers.get(file_id) is stale:
                del self._writers[file_id]
        self._writers[file_id] = task
        return task, superseded

    async def complete(self, file_id: str, box_id: str | None, meta: bytes,
                       owner_token: str | None = None) -> DropFile:
        """All bytes are in: attach the encrypted metadata and publish atomically. Completing
        again with the same metadata answers the published file (a retry); other metadata is refused."""
        found, row = await self._live_row(file_id, box_id, owner_token=owner_token)
        if found.state == READY and found.meta == meta:
            return found  # the same publication again (the sender's answer was lost): the same answer
        if found.state != UPLOADING:
            raise BadUpload("upload already complete")
        if not 0 < len(meta) <= ece.METADATA_MAX_SIZE:
            raise BadUpload("metadata missing or too large")
        if file_id in self._writers:
            raise BadUpload("a part is still being received")
        if found.received != found.size:
            raise BadUpload(f"only {found.received} of {found.size} bytes received")
        try:
            await self.storage.publish(file_id, found.size, state=row.store_state)
        except Incomplete:
            raise BadUpload(f"only part of the {found.size} bytes are stored: send the missing parts") from None
        except (Unavailable, FileNotFoundError) as exc:
            raise StoreUnavailable(f"the document store failed: {exc}") from None
        now = self.clock()
        async with self.engine.begin() as conn:
            await durable_commit(conn)  # a published document survives a power cut (file fsynced above)
            await conn.execute(sql.PUBLISH, {"b_id": file_id, "b_meta": meta, "b_completed_at": now})
            await self._audit(conn, "completed", file_id, box_id)
        done = dataclasses.replace(found, state=READY, meta=meta, completed_at=now)
        # the listing goes with the event (what GET {box} shows every subscriber of the box):
        # pages add the document without listing the box again
        self.notify(box_id, {"type": "document", "action": "added", "id": file_id,
                             "uploaded_by": found.uploaded_by, "document": done.public()})
        return done
