"""The drop box's domain: create, upload in parts, publish, list, download, count (`stats`);
deleting and sweeping are filedrop/deletion.py's rules, which DropBox inherits.

Plain async functions over an SQLAlchemy engine and a Storage; they raise filedrop/errors.py's
errors and know nothing of HTTP. Who may do what is the host's to decide before it calls here:
a role is an opaque short name it gives (stored as `uploaded_by`, echoed in events), except
STANDALONE, filedrop's own name for a drop outside any box.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from . import ece, statements as sql
from .deletion import DeletionRules, check_owner, token_hash
from .errors import (BadUpload, DropError, Gone, NotOwner, OffsetMismatch, OverQuota, StorageFull, StoreUnavailable,
                     TooBig)
from .schema import DELETING, READY, STATES, UPLOADING, audit, files
from .storage import CannotRewind, DocumentStorage, Incomplete, TooLarge, Unavailable

__all__ = ["BadUpload", "DELETING", "DropBox", "DropConfig", "DropError", "DropFile", "DropStats", "Gone",
           "NotOwner", "OffsetMismatch", "OverQuota", "Quota", "READY", "STANDALONE", "StorageFull", "StoreUnavailable",
           "TooBig",
           "UPLOADING", "typeable_token"]

ID_BYTES = 16  # 128 random bits, URL-safe
STANDALONE = "standalone"  # uploaded_by of a drop outside any box
ROLE = re.compile(r"[a-z][a-z0-9_-]{0,15}")  # what a host may name a role (drop_files.uploaded_by)
USED_UP_GRACE_SECONDS = 5

Notify = Callable[[str | None, dict], None]

# the pool record's info key marking a connection left at synchronous=FULL by durable_commit:
# a host running SQLite at synchronous=NORMAL retires such connections (teleconsult/db.py)
SYNCED_KEY = "synchronous_full"


async def durable_commit(conn) -> None:
    """Make this transaction's commit survive a power cut, whatever the host's SQLite
    `synchronous` setting (WAL at NORMAL syncs the log only at checkpoints): the commit then
    syncs the log. One fsync per published document. Other databases: nothing to do."""
    if conn.dialect.name != "sqlite":
        return
    await conn.exec_driver_sql("PRAGMA synchronous=FULL")  # outside the transaction: no DML yet
    (await conn.get_raw_connection()).info[SYNCED_KEY] = True


async def quota_locks(conn, box_id: str | None, owner: str | None) -> None:
    """On PostgreSQL, hold the box's and the owner's quota locks (advisory, until the transaction
    ends, always in the same order): instances creating files for one owner at once count one
    after the other. SQLite has one writer at a time: nothing to do."""
    if conn.dialect.name != "postgresql":
        return
    for key in sorted(k for k in (box_id and f"drop-box:{box_id}", owner and f"drop-owner:{owner}") if k):
        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key})


def typeable_token(nbytes: int, draw: Callable[[int], str] = secrets.token_urlsafe) -> str:
    """A URL-safe random token that does not start with "-": ids and owner tokens are typed
    as command-line arguments, where argparse would take "-x…" for an option. Redrawing the
    1 in 64 tokens that start with "-" costs under 0.03 bits of the 128 or more."""
    while True:
        token = draw(nbytes)
        if not token.startswith("-"):
            return token


@dataclass(frozen=True)
class Quota:
    """At most `files` files and `bytes` ciphertext bytes (reserved: declared sizes) at a time."""
    files: int
    bytes: int


@dataclass(frozen=True)
class DropConfig:
    max_size: int  # ciphertext bytes
    upload_ttl: float = 30 * 60  # an unfinished upload that received no part for this long is removed
    box_quota: Quota | None = None  # per box (a consultation)
    owner_quota: Quota | None = None  # per owner key given at creation (a clinician)
    min_free_bytes: int = 0  # refuse to reserve or write past this much free disk (StorageFull)
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
    downloads: int  # transfers started
    completed_downloads: int  # transfers whose last byte was sent
    created_at: float
    completed_at: float | None
    expires_at: float
    delete_at: float | None

    def public(self) -> dict:
        return {
            "id": self.id, "size": self.size, "uploaded_by": self.uploaded_by, "state": self.state,
            "metadata": ece.b64url_encode(self.meta) if self.meta else None,
            "downloads": self.downloads, "completed_downloads": self.completed_downloads,
            "max_downloads": self.max_downloads,
            "created_at": self.created_at, "expires_at": self.expires_at, "delete_at": self.delete_at,
        }


def _row(row) -> DropFile:
    return DropFile(**{k: row._mapping[k] for k in DropFile.__dataclass_fields__})


@dataclass(frozen=True)
class DropStats:
    """Aggregate counts for a host's metrics: never an id, a box or a size of one file."""
    by_state: dict[str, int]  # files by state, every state listed
    stored_bytes: int  # ciphertext bytes received and not being deleted
    deleted: dict[str, int]  # deletions ever, by reason (scheduled, expired, owner, ...)
    overdue: int  # files still stored `overdue_after` seconds past a deadline


class DropBox(DeletionRules):
    """The store and its collaborators, built once per app (no module state)."""

    def __init__(self, engine: AsyncEngine, storage: DocumentStorage, config: DropConfig,
                 notify: Notify | None = None, clock: Callable[[], float] = time.time,
                 on_deadline: Callable[[float], None] | None = None):
        self.engine, self.storage, self.config = engine, storage, config
        self.notify = notify or (lambda box_id, event: None)
        # told every deadline written, so a sweep can run then rather than at its next tick
        self.on_deadline = on_deadline or (lambda at: None)
        self.clock = clock
        # file id -> the request of this process writing a part of it (stopped by a newer one at once);
        # across instances, the row's `writer` token decides who may record bytes (see upload_part)
        self._writers: dict[str, asyncio.Task] = {}
        self._sweeping = asyncio.Lock()  # one sweep at a time: a deadline wake-up may meet the periodic one
        self._creating: dict[tuple[bool, bool], sa.Insert] = {}  # creating statements by the quotas they check

    # -- creation and upload -------------------------------------------------------------

    async def create(self, *, size: int, uploaded_by: str, box_id: str | None = None, owner: str | None = None,
                     expires_in: float | None = None, max_downloads: int | None = None) -> tuple[DropFile, str | None]:
        """Reserve an id for `size` ciphertext bytes, counted against the box's quota and the
        `owner`'s (an opaque key of the host's). Returns the file and, for a standalone drop,
        its owner token (shown once, stored hashed)."""
        if not isinstance(uploaded_by, str) or not ROLE.fullmatch(uploaded_by):
            raise BadUpload("unknown role")
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise BadUpload("size must be a positive whole number")
        if size > self.config.max_size:
            raise TooBig(f"larger than {self.config.max_size} bytes")
        if not ece.is_padded_size(size):
            raise BadUpload("size is not a padded ciphertext size")
        if max_downloads is not None and (isinstance(max_downloads, bool) or not isinstance(max_downloads, int)
                                          or not 1 <= max_downloads <= 1000):
            raise BadUpload("max_downloads must be a whole number between 1 and 1000 (leave it out: no limit)")
        self._check_free_space(size)
        now = self.clock()
        ttl = self.config.box_file_ttl if box_id else (expires_in or self.config.max_expiry)
        if not 60 <= ttl <= (self.config.box_file_ttl if box_id else self.config.max_expiry):
            raise BadUpload("expiry out of range")
        owner_token = None if box_id else typeable_token(24)
        file_id = typeable_token(ID_BYTES)
        values = dict(id=file_id, box_id=box_id, uploaded_by=uploaded_by, state=UPLOADING, size=size,
                      received=0, meta=None, owner_token_hash=token_hash(owner_token) if owner_token else None,
                      max_downloads=max_downloads, downloads=0, completed_downloads=0, created_at=now,
                      completed_at=None, expires_at=now + ttl, delete_at=None)
        statement, limits = self._room_for(box_id, owner)
        params = {f"b_{k}": v for k, v in values.items()} | {"b_owner": owner, "b_touched_at": now,
                                                              "b_needed": size, **limits}
        async with self.engine.begin() as conn:
            # one statement: the quotas are read and the row written together, so requests sent
            # at once cannot all pass (SQLite runs one writing statement at a time; PostgreSQL
            # reads a snapshot, so there the box and the owner are locked first until commit)
            await quota_locks(conn, box_id, owner)
            result = await conn.execute(statement, params)
            if result.rowcount != 1:
                raise await self._over_quota(conn, box_id, owner)
            await self._audit(conn, "created", file_id, box_id)
        await self.storage.create(file_id)
        self.on_deadline(values["expires_at"])
        values.pop("owner_token_hash")
        return DropFile(**values), owner_token

    def _room_for(self, box_id: str | None, owner: str | None) -> tuple[sa.Insert, dict]:
        """The creating statement for the quotas that apply (built once per kind: see
        filedrop/statements.py) and the limits it compares with."""
        limits = {}
        for quota, key, name in ((self.config.box_quota, box_id, "box"), (self.config.owner_quota, owner, "owner")):
            if quota is not None and key is not None:
                limits |= {f"b_{name}_files": quota.files, f"b_{name}_bytes": quota.bytes}
        kind = ("b_box_files" in limits, "b_owner_files" in limits)
        if kind not in self._creating:
            self._creating[kind] = sql.create_statement(*kind)
        return self._creating[kind], limits

    async def _over_quota(self, conn, box_id: str | None, owner: str | None) -> OverQuota:
        for quota, column, key, whose in ((self.config.box_quota, files.c.box_id, box_id, "this box"),
                                          (self.config.owner_quota, files.c.owner, owner, "its owner")):
            if quota is None or key is None:
                continue
            count, held = (await conn.execute(sa.select(*sql.held(column, key)))).one()
            if count >= quota.files:
                return OverQuota(f"{whose} already holds {quota.files} documents, its limit")
            return OverQuota(f"{whose} would hold more than {quota.bytes // (1024 * 1024)} MiB, its limit")
        return OverQuota("over quota")

    def _check_free_space(self, needed: int) -> None:
        if not self.config.min_free_bytes:
            return  # no floor: nothing to measure
        free = self.storage.free_bytes()  # None: not measured (a bucket)
        if free is not None and free - needed < self.config.min_free_bytes:
            raise StorageFull("the server's disk is nearly full: nothing was saved")

    async def get(self, file_id: str, box_id: str | None = None, *, ready: bool = False,
                  owner_token: str | None = None) -> DropFile:
        """A live file (in `box_id` when given). Anything else is Gone. With `owner_token`,
        also a standalone drop of that owner (NotOwner otherwise), in the same query."""
        return (await self._live_row(file_id, box_id, ready=ready, owner_token=owner_token))[0]

    async def _live_row(self, file_id: str, box_id: str | None = None, *, ready: bool = False,
                        owner_token: str | None = None):
        """`get`, with the whole row read (the storage's state of an upload, …)."""
        if not isinstance(file_id, str) or not 16 <= len(file_id) <= 43:
            raise Gone("no such file")
        async with self.engine.connect() as conn:
            row = (await conn.execute(sql.BY_ID, {"b_id": file_id})).first()
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
            check_owner(row.owner_token_hash, row.box_id, owner_token)
        return found, row

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

    # -- reading ---------------------------------------------------------------------------

    async def list_box(self, box_id: str) -> list[DropFile]:
        now = self.clock()
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(files).where(
                files.c.box_id == box_id, files.c.state == READY, files.c.expires_at > now,
                sa.or_(files.c.delete_at.is_(None), files.c.delete_at > now)).order_by(files.c.completed_at))).all()
        return [_row(r) for r in rows]

    async def start_download(self, file_id: str, box_id: str | None, downloader: str | None = None):
        """Count one transfer started (atomically against the limit: a transfer cut midway has
        sent bytes, so it uses one up); returns the file (its bytes: `self.storage.reading(file_id)`).
        The transfer is announced as a download by `finish_download`, once its last byte was sent."""
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
        return found

    async def finish_download(self, file_id: str, box_id: str | None, downloader: str | None = None) -> None:
        """The transfer `start_download` began has sent its last byte: count it as downloaded and
        announce it (`downloader`: the role the page shows). A file deleted meanwhile changes nothing."""
        async with self.engine.begin() as conn:
            row = (await conn.execute(sql.DOWNLOADS_DONE, {"b_id": file_id})).first()
            if row is None:
                return
            await self._audit(conn, "received", file_id, box_id)
        if downloader is not None:
            self.notify(box_id, {"type": "document", "action": "downloaded", "id": file_id, "by": downloader,
                                 "downloads": row.downloads, "completed_downloads": row.completed_downloads})

    # -- counts ----------------------------------------------------------------------------

    async def stats(self, overdue_after: float = 60) -> DropStats:
        """What a host's metrics report, read now from the database."""
        now = self.clock()
        late = now - overdue_after
        async with self.engine.connect() as conn:
            by_state = dict((await conn.execute(
                sa.select(files.c.state, sa.func.count()).group_by(files.c.state))).all())
            stored = await conn.scalar(sa.select(sa.func.coalesce(sa.func.sum(files.c.received), 0)).where(
                files.c.state != DELETING))
            deleted = dict((await conn.execute(sa.select(audit.c.reason, sa.func.count()).where(
                audit.c.action == "deleted").group_by(audit.c.reason))).all())
            overdue = await conn.scalar(sa.select(sa.func.count()).select_from(files).where(
                sa.or_(files.c.expires_at <= late, files.c.delete_at <= late)))
        return DropStats(by_state={state: by_state.get(state, 0) for state in STATES}, stored_bytes=stored,
                         deleted=deleted, overdue=overdue)
