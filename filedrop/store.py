"""The drop box's domain: create, upload in parts, publish, list, download, delete, sweep.

Plain async functions over an SQLAlchemy engine and a Storage; they raise the errors below
and know nothing of HTTP. Deadlines live in the database, so a restart forgets none; the
sweeper marks a row `deleting` before it touches the disk, so a crash in between is finished
by the next sweep and leaves neither a file nor a row.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from . import ece
from .schema import audit, files
from .storage import Storage, TooLarge

UPLOADING, READY, DELETING = "uploading", "ready", "deleting"
ID_BYTES = 16  # 128 random bits, URL-safe
ROLES = ("clinician", "patient", "standalone")
USED_UP_GRACE_SECONDS = 5

Notify = Callable[[str | None, dict], None]


def typeable_token(nbytes: int, draw: Callable[[int], str] = secrets.token_urlsafe) -> str:
    """A URL-safe random token that does not start with "-": ids and owner tokens are typed
    as command-line arguments, where argparse would take "-x…" for an option. Redrawing the
    1 in 64 tokens that start with "-" costs under 0.03 bits of the 128 or more."""
    while True:
        token = draw(nbytes)
        if not token.startswith("-"):
            return token


class DropError(Exception):
    """Base of the drop box's errors."""


class Gone(DropError):
    """Unknown, expired, deleted or used up: deliberately one answer for all."""


class TooBig(DropError):
    pass


class BadUpload(DropError):
    pass


class OffsetMismatch(DropError):
    def __init__(self, expected: int):
        super().__init__(f"upload offset must be at most {expected}")
        self.expected = expected


class NotOwner(DropError):
    pass


@dataclass(frozen=True)
class DropConfig:
    max_size: int  # ciphertext bytes
    upload_ttl: float = 6 * 3600  # an unfinished upload is removed after this long
    box_file_ttl: float = 24 * 3600  # hard expiry of a consultation document, whatever happens
    max_expiry: float = 7 * 86400  # longest a standalone drop may live


@dataclass(frozen=True)
class DropFile:
    id: str
    box_id: str | None
    uploaded_by: str
    state: str
    size: int
    received: int
    meta: bytes | None
    max_downloads: int | None
    downloads: int
    created_at: float
    completed_at: float | None
    expires_at: float
    delete_at: float | None

    def public(self) -> dict:
        return {
            "id": self.id, "size": self.size, "uploaded_by": self.uploaded_by, "state": self.state,
            "metadata": ece.b64url_encode(self.meta) if self.meta else None,
            "downloads": self.downloads, "max_downloads": self.max_downloads,
            "created_at": self.created_at, "expires_at": self.expires_at, "delete_at": self.delete_at,
        }


def _row(row) -> DropFile:
    return DropFile(**{k: row._mapping[k] for k in DropFile.__dataclass_fields__})


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_owner(stored_hash: str | None, box_id: str | None, owner_token: str) -> None:
    if box_id is not None or not stored_hash:
        raise Gone("no such file")
    if not hmac.compare_digest(stored_hash, _token_hash(owner_token)):
        raise NotOwner("wrong owner token")


class DropBox:
    """The store and its collaborators, built once per app (no module state)."""

    def __init__(self, engine: AsyncEngine, storage: Storage, config: DropConfig,
                 notify: Notify | None = None, clock: Callable[[], float] = time.time,
                 on_deadline: Callable[[float], None] | None = None):
        self.engine, self.storage, self.config = engine, storage, config
        self.notify = notify or (lambda box_id, event: None)
        # told every deadline written, so a sweep can run then rather than at its next tick
        self.on_deadline = on_deadline or (lambda at: None)
        self.clock = clock
        self._writers: dict[str, asyncio.Task] = {}  # file id -> the request writing a part of it
        self._sweeping = asyncio.Lock()  # one sweep at a time: a deadline wake-up may meet the periodic one

    async def _audit(self, conn, action: str, file_id: str, box_id: str | None, reason: str | None = None) -> None:
        await conn.execute(audit.insert().values(at=self.clock(), action=action, file_id=file_id,
                                                 box_id=box_id, reason=reason))

    # -- creation and upload -------------------------------------------------------------

    async def create(self, *, size: int, uploaded_by: str, box_id: str | None = None,
                     expires_in: float | None = None, max_downloads: int | None = None) -> tuple[DropFile, str | None]:
        """Reserve an id for `size` ciphertext bytes. Returns the file and, for a standalone
        drop, its owner token (shown once, stored hashed)."""
        if uploaded_by not in ROLES:
            raise BadUpload("unknown role")
        if not isinstance(size, int) or size <= 0:
            raise BadUpload("size must be a positive whole number")
        if size > self.config.max_size:
            raise TooBig(f"larger than {self.config.max_size} bytes")
        if not ece.is_padded_size(size):
            raise BadUpload("size is not a padded ciphertext size")
        if max_downloads is not None and not 1 <= max_downloads <= 1000:
            raise BadUpload("max_downloads must be between 1 and 1000")
        now = self.clock()
        ttl = self.config.box_file_ttl if box_id else (expires_in or self.config.max_expiry)
        if not 60 <= ttl <= max(self.config.max_expiry, self.config.box_file_ttl):
            raise BadUpload("expiry out of range")
        owner_token = None if box_id else typeable_token(24)
        file_id = typeable_token(ID_BYTES)
        values = dict(id=file_id, box_id=box_id, uploaded_by=uploaded_by, state=UPLOADING, size=size,
                      received=0, meta=None, owner_token_hash=_token_hash(owner_token) if owner_token else None,
                      max_downloads=max_downloads, downloads=0, created_at=now, completed_at=None,
                      expires_at=now + ttl, delete_at=None)
        async with self.engine.begin() as conn:
            await conn.execute(files.insert().values(**values))
            await self._audit(conn, "created", file_id, box_id)
        self.storage.create(file_id)
        self.on_deadline(values["expires_at"])
        values.pop("owner_token_hash")
        return DropFile(**values), owner_token

    async def get(self, file_id: str, box_id: str | None = None, *, ready: bool = False,
                  owner_token: str | None = None) -> DropFile:
        """A live file (in `box_id` when given). Anything else is Gone. With `owner_token`,
        also a standalone drop of that owner (NotOwner otherwise), in the same query."""
        if not isinstance(file_id, str) or not 16 <= len(file_id) <= 43:
            raise Gone("no such file")
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(files).where(files.c.id == file_id))).first()
        if row is None:
            raise Gone("no such file")
        found = _row(row)
        now = self.clock()
        if (found.box_id != box_id or found.state == DELETING or found.expires_at <= now
                or (found.delete_at is not None and found.delete_at <= now)
                or (ready and found.state != READY)
                or (found.max_downloads is not None and found.downloads >= found.max_downloads)):
            raise Gone("no such file")
        if owner_token is not None:
            _check_owner(row.owner_token_hash, row.box_id, owner_token)
        return found

    async def upload_part(self, file_id: str, box_id: str | None, offset: int,
                          chunks: AsyncIterator[bytes], length: int | None = None,
                          owner_token: str | None = None) -> int:
        """Write a part at `offset`. A part may be sent again (a retry after a dropped
        connection): it replaces what was there. Returns the bytes received so far."""
        # authorise first: only whoever may write this file can stop a stale writer of it
        found = await self.get(file_id, box_id, owner_token=owner_token)
        task, superseded = await self._claim_writer(file_id)
        try:
            if superseded:  # the stale writer rolled back: look again
                found = await self.get(file_id, box_id)
            if found.state != UPLOADING:
                raise BadUpload("upload already complete")
            if offset < 0 or offset > found.received:
                raise OffsetMismatch(found.received)
            if length is not None and offset + length > found.size:
                raise TooBig("part goes past the declared size")
            try:
                received = await self.storage.write_at(file_id, offset, chunks, found.size)
            except TooLarge:
                await self._set_received(file_id, offset)
                raise TooBig("part goes past the declared size") from None
            except BaseException:
                # connection dropped mid-part: keep what arrived whole up to the client's next HEAD
                await self._set_received(file_id, offset)
                raise
            await self._set_received(file_id, received)
            return received
        finally:
            if self._writers.get(file_id) is task:
                del self._writers[file_id]

    async def _claim_writer(self, file_id: str) -> tuple[asyncio.Task, bool]:
        """One writer per file, the latest wins. A part sent again after a dropped connection
        may find the old request still waiting for its body (a phone gone from 4G leaves a
        half-open connection for minutes): that writer is stopped and its roll-back finished
        before this one starts, or its late truncate would cut the new bytes, even once
        published. (Per process: several instances would need a lease in the database.)"""
        task, superseded = asyncio.current_task(), False
        while (stale := self._writers.get(file_id)) is not None and stale is not task:
            stale.cancel()
            await asyncio.wait({stale})
            superseded = True
            if self._writers.get(file_id) is stale:
                del self._writers[file_id]
        self._writers[file_id] = task
        return task, superseded

    async def _set_received(self, file_id: str, received: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(files.update().where(files.c.id == file_id).values(received=received))

    async def complete(self, file_id: str, box_id: str | None, meta: bytes,
                       owner_token: str | None = None) -> DropFile:
        """All bytes are in: attach the encrypted metadata and publish atomically."""
        found = await self.get(file_id, box_id, owner_token=owner_token)
        if found.state != UPLOADING:
            raise BadUpload("upload already complete")
        if not 0 < len(meta) <= ece.METADATA_MAX_SIZE:
            raise BadUpload("metadata missing or too large")
        if file_id in self._writers:
            raise BadUpload("a part is still being received")
        if found.received != found.size or self.storage.size(file_id) != found.size:
            raise BadUpload(f"only {found.received} of {found.size} bytes received")
        self.storage.publish(file_id)
        now = self.clock()
        async with self.engine.begin() as conn:
            await conn.execute(files.update().where(files.c.id == file_id).values(
                state=READY, meta=meta, completed_at=now))
            await self._audit(conn, "completed", file_id, box_id)
        done = dataclasses.replace(found, state=READY, meta=meta, completed_at=now)
        # the listing goes with the event (what GET {box} shows every subscriber of the box):
        # pages add the document without listing the box again
        self.notify(box_id, {"type": "document", "action": "added", "id": file_id,
                             "uploaded_by": found.uploaded_by, "document": done.public()})
        return done

    # -- reading ---------------------------------------------------------------------------

    async def list_box(self, box_id: str) -> list[DropFile]:
        now = self.clock()
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(files).where(
                files.c.box_id == box_id, files.c.state == READY, files.c.expires_at > now,
                sa.or_(files.c.delete_at.is_(None), files.c.delete_at > now)).order_by(files.c.completed_at))).all()
        return [_row(r) for r in rows]

    async def start_download(self, file_id: str, box_id: str | None, downloader: str | None = None):
        """Count one download (atomically against the limit); returns the file and its path."""
        found = await self.get(file_id, box_id, ready=True)
        now = self.clock()
        async with self.engine.begin() as conn:
            condition = [files.c.id == file_id, files.c.state == READY]
            if found.max_downloads is not None:
                condition.append(files.c.downloads < files.c.max_downloads)
            result = await conn.execute(files.update().where(*condition).values(downloads=files.c.downloads + 1))
            if not result.rowcount:
                raise Gone("no such file")
            if found.max_downloads is not None and found.downloads + 1 >= found.max_downloads:
                # used up: the sweeper deletes it once this transfer has had time to open it
                await conn.execute(files.update().where(files.c.id == file_id).values(
                    delete_at=now + USED_UP_GRACE_SECONDS))
            await self._audit(conn, "downloaded", file_id, box_id)
        if found.max_downloads is not None and found.downloads + 1 >= found.max_downloads:
            self.on_deadline(now + USED_UP_GRACE_SECONDS)
        if downloader is not None:
            self.notify(box_id, {"type": "document", "action": "downloaded", "id": file_id, "by": downloader,
                                 "downloads": found.downloads + 1})
        return found, self.storage.ready_path(file_id)

    # -- deletion --------------------------------------------------------------------------

    async def delete_owned(self, file_id: str, owner_token: str) -> None:
        """The sender deletes a standalone drop (even one past its deadline) with its owner token."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(files.c.owner_token_hash, files.c.box_id).where(
                files.c.id == file_id))).first()
        if row is None:
            raise Gone("no such file")
        _check_owner(row.owner_token_hash, row.box_id, owner_token)
        await self._delete(file_id, None, "owner")

    async def schedule_box_deletion(self, box_id: str, at: float) -> int:
        """The consultation ended: every document of the box is deleted at `at` (persisted)."""
        async with self.engine.begin() as conn:
            result = await conn.execute(files.update().where(
                files.c.box_id == box_id, sa.or_(files.c.delete_at.is_(None), files.c.delete_at > at)).values(
                delete_at=at))
        if result.rowcount:
            self.on_deadline(at)
        return result.rowcount

    async def _delete(self, file_id: str, box_id: str | None, reason: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(files.update().where(files.c.id == file_id).values(state=DELETING))
        self.storage.remove(file_id)
        async with self.engine.begin() as conn:
            await conn.execute(files.delete().where(files.c.id == file_id))
            await self._audit(conn, "deleted", file_id, box_id, reason)
        self.notify(box_id, {"type": "document", "action": "deleted", "id": file_id})

    async def next_deadline(self) -> float | None:
        """The earliest moment :meth:`sweep` will have something to do (None: nothing stored).
        A row already `deleting` (a crash mid-deletion) is due at once."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(
                sa.func.min(files.c.expires_at), sa.func.min(files.c.delete_at),
                sa.select(sa.func.min(files.c.created_at)).where(files.c.state == UPLOADING).scalar_subquery(),
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
        on_disk = self.storage.all_ids()
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(
                files.c.id, files.c.box_id, files.c.state, files.c.expires_at, files.c.delete_at,
                files.c.created_at).where(sa.or_(
                    files.c.state == DELETING,
                    files.c.expires_at <= now,
                    files.c.delete_at <= now,
                    sa.and_(files.c.state == UPLOADING, files.c.created_at <= now - self.config.upload_ttl))))).all()
            known = set((await conn.execute(sa.select(files.c.id))).scalars().all())
        for row in rows:
            if row.state == DELETING:
                reason = "resumed"
            elif row.delete_at is not None and row.delete_at <= now:
                reason = "scheduled"
            elif row.expires_at <= now:
                reason = "expired"
            else:
                reason = "abandoned"
            await self._delete(row.id, row.box_id, reason)
            counts[reason] = counts.get(reason, 0) + 1
        for orphan in on_disk - known:
            self.storage.remove(orphan)
            counts["orphan"] = counts.get("orphan", 0) + 1
        return counts
