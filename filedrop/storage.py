"""Where the ciphertext lives: the storage interface the drop box writes through, and its
default implementation, a local directory (filedrop/s3storage.py is the other: an S3 bucket).

The drop box (filedrop/store.py, uploads.py) keeps every upload's state in its database row: bytes
received, and an opaque `state` string a storage may need to resume an upload on any instance
(the S3 store's multipart upload id and where the unfinished part waits). A storage holds no
upload in its own memory beyond the part being written. Memory per transfer is bounded.

Local directory: parts are written to a temporary file, published by an atomic rename, read
back in chunks. Memory per transfer is one chunk, whatever the size."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import AsyncContextManager, Protocol

SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{16,43}$")
CHUNK_SIZE = 256 * 1024
# while a part arrives, the disk is asked to write back what came so far each time this much more
# arrived (and the previous flush is over): publish's fsync then finds little left to write
WRITE_BACK_STEP = 4 * 1024 * 1024


class TooLarge(Exception):
    """More bytes arrived than were declared."""


class Incomplete(Exception):
    """Publishing found fewer bytes stored than were declared."""


class CannotRewind(Exception):
    """A part was sent again from an offset the storage can no longer resume from (an S3 part
    already sent cannot be read back): the client resumes from what the server holds."""


class Unavailable(Exception):
    """The storage could not be reached or refused a request (an S3 endpoint down, bad keys)."""


class DocumentStorage(Protocol):
    """What the drop box needs of a ciphertext store. `state` is the opaque string a storage
    returned for an upload (None at first), kept by the drop box in the file's row."""

    async def create(self, file_id: str) -> None: ...

    async def write_at(self, file_id: str, offset: int, chunks: AsyncIterator[bytes], limit: int, *,
                       state: str | None, held: int) -> tuple[int, str | None]:
        """Write from `offset` (<= `held`, the bytes the row says are stored): returns the new
        size and state. Raises TooLarge past `limit`, CannotRewind, Unavailable. Nothing this
        call wrote counts until the caller records the returned state."""

    async def discard(self, file_id: str, dropped: str | None, kept: str | None) -> None:
        """What `dropped` holds and `kept` does not is no longer needed (best effort)."""

    async def publish(self, file_id: str, size: int, *, state: str | None) -> None:
        """Make the whole ciphertext readable at once (idempotent). Raises Incomplete."""

    def reading(self, file_id: str) -> AsyncContextManager[AsyncIterator[bytes]]:
        """The published ciphertext in chunks; FileNotFoundError on entry when there is none."""

    def free_bytes(self) -> int | None:
        """Free space for the free-space floor; None: not measured (a bucket)."""

    async def remove(self, file_id: str) -> None:
        """Every trace of the file; missing is fine (idempotent)."""

    async def all_ids(self) -> set[str]:
        """Ids of every file held, finished or not (the sweep removes those without a row)."""

    async def close(self) -> None: ...


def checked_id(file_id: str) -> str:
    """File ids become file names or object keys: only ids of the drop box's own shape."""
    if not SAFE_ID.match(file_id):
        raise ValueError("bad file id")
    return file_id


async def bounded(chunks: AsyncIterator[bytes], offset: int, limit: int) -> AsyncIterator[bytes]:
    """`chunks`, refused (TooLarge) as soon as they would take the file past `limit` bytes."""
    position = offset
    async for chunk in chunks:
        if position + len(chunk) > limit:
            raise TooLarge(f"more than the declared {limit} bytes")
        position += len(chunk)
        yield chunk


class LocalStorage:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.partial_dir = self.root / "partial"
        self.ready_dir = self.root / "ready"
        for directory in (self.partial_dir, self.ready_dir):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._flusher: ThreadPoolExecutor | None = None  # started with the first part

    def _checked(self, file_id: str) -> str:
        return checked_id(file_id)

    def partial_path(self, file_id: str) -> Path:
        return self.partial_dir / self._checked(file_id)

    def ready_path(self, file_id: str) -> Path:
        return self.ready_dir / self._checked(file_id)

    async def create(self, file_id: str) -> None:
        fd = os.open(self.partial_path(file_id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)

    async def write_at(self, file_id: str, offset: int, chunks: AsyncIterator[bytes], limit: int, *,
                       state: str | None = None, held: int = 0) -> tuple[int, str | None]:
        """Write from `offset` (truncating what was there: a retried part replaces itself).

        Raises TooLarge as soon as the file would exceed `limit`; the file is then cut back to
        `offset`, so a refused part leaves nothing behind. Returns the new size."""
        path = self.partial_path(file_id)
        fd = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(fd, offset)
            os.lseek(fd, offset, os.SEEK_SET)
            position = flushed = offset
            flushing = None  # the write-back under way, if any
            try:
                async for chunk in bounded(chunks, offset, limit):
                    view = memoryview(chunk)
                    while view:
                        written = os.write(fd, view)
                        view = view[written:]
                    position += len(chunk)
                    if position - flushed >= WRITE_BACK_STEP and (flushing is None or flushing.done()):
                        flushing, flushed = self._write_back(fd), position
            except BaseException:
                os.ftruncate(fd, offset)
                raise
            self._write_back(fd)
            return position, None
        finally:
            os.close(fd)

    async def discard(self, file_id: str, dropped: str | None, kept: str | None) -> None:
        """Nothing: a write's bytes are the file itself."""

    def _write_back(self, fd: int) -> asyncio.Future:
        """Start putting what was written on disk while the rest of the part and the next ones
        arrive (one background thread for the whole store), so that publish's fsync only waits
        for what is left: without it, that fsync wrote the whole file at once, blocking the
        event loop (0.25 s per 512 MiB on the benchmark machine, seconds on a slow disk). Not
        waited for: a part is answered once written and recorded, as before; what makes a
        document durable is publish's fsync of the file and its directory."""
        if self._flusher is None:
            self._flusher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="filedrop-writeback")
        own = os.dup(fd)

        def flush() -> None:
            try:
                os.fdatasync(own)
            except OSError:
                pass  # publish's fsync will say
            finally:
                os.close(own)
        return asyncio.get_running_loop().run_in_executor(self._flusher, flush)

    async def publish(self, file_id: str, size: int, *, state: str | None = None) -> None:
        """fsync then rename: a reader sees the whole ciphertext or nothing. Published again
        after a crash between the rename and the database's commit: fsyncs it again."""
        if self.size(file_id) != size:
            raise Incomplete(f"{self.size(file_id)} of {size} bytes stored")
        path = self.partial_path(file_id)
        if not path.exists() and self.ready_path(file_id).exists():
            path = self.ready_path(file_id)
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if path != self.ready_path(file_id):
            os.replace(path, self.ready_path(file_id))
        dir_fd = os.open(self.ready_dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    @contextlib.asynccontextmanager
    async def reading(self, file_id: str) -> AsyncIterator[AsyncIterator[bytes]]:
        fd = os.open(self.ready_path(file_id), os.O_RDONLY)

        async def chunks() -> AsyncIterator[bytes]:
            while chunk := os.read(fd, CHUNK_SIZE):
                yield chunk
        try:
            yield chunks()
        finally:
            os.close(fd)

    def free_bytes(self) -> int:
        """Free space on the disk that holds the documents (for the free-space floor)."""
        return shutil.disk_usage(self.root).free

    def size(self, file_id: str) -> int:
        """Bytes held for the file; 0 when there is none (a crash removed nothing: see publish)."""
        for path in (self.partial_path(file_id), self.ready_path(file_id)):
            with contextlib.suppress(FileNotFoundError):
                return path.stat().st_size
        return 0

    async def remove(self, file_id: str) -> None:
        """Remove every trace of the file; missing files are fine (idempotent)."""
        for path in (self.partial_path(file_id), self.ready_path(file_id)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    async def all_ids(self) -> set[str]:
        return {p.name for d in (self.partial_dir, self.ready_dir) for p in d.iterdir() if SAFE_ID.match(p.name)}

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.shutdown(wait=True)


Storage = LocalStorage  # the name hosts used before there were two
