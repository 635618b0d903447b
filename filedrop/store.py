"""The drop box's domain: create, list, download, count (`stats`); uploading in parts and
publishing are filedrop/uploads.py's rules, deleting and sweeping filedrop/deletion.py's, which
DropBox inherits.

Plain async functions over an SQLAlchemy engine and a Storage; they raise filedrop/errors.py's
errors and know nothing of HTTP. Who may do what is the host's to decide before it calls here:
a role is an opaque short name it gives (stored as `uploaded_by`, echoed in events), except
STANDALONE, filedrop's own name for a drop outside any box.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from . import ece, statements as sql
from .deletion import DeletionRules, check_owner, token_hash
from .errors import (BadUpload, DropError, Gone, NotOwner, OffsetMismatch, OverQuota, StorageFull, StoreUnavailable,
                     TooBig)
from .schema import DELETING, READY, STATES, UPLOADING, audit, files
from .storage import DocumentStorage
from .uploads import UploadRules

__all__ = ["BadUpload", "DELETING", "DropBox", "DropConfig", "DropError", "DropFile", "DropStats", "Gone",
           "NotOwner", "OffsetMismatch", "OverQuota", "Quota", "READY", "STANDALONE", "StorageFull", "StoreUnavailable",
           "TooBig",
           "UPLOADING", "typeable_token"]

ID_BYTES = 16  # 128 random bits, URL-safe
STANDALONE = "standalone"  # uploaded_by of a drop outside any box
ROLE = re.compile(r"[a-z][a-z0-9_-]{0,15}")  # what a host may name a role (drop_files.uploaded_by)
USED_UP_GRACE_SECONDS = 5

Notify = Callable[[str | None, dict], None]


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


class DropBox(UploadRules, DeletionRules):
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

    # -- creation ------------------------------------------------------------------------

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
