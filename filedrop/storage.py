"""Ciphertext on a local directory: parts are written to a temporary file, published by an
atomic rename, read back in chunks. Memory per transfer is one chunk, whatever the size."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{16,43}$")
CHUNK_SIZE = 256 * 1024


class TooLarge(Exception):
    """More bytes arrived than were declared."""


class Storage:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.partial_dir = self.root / "partial"
        self.ready_dir = self.root / "ready"
        for directory in (self.partial_dir, self.ready_dir):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._flusher: ThreadPoolExecutor | None = None  # started with the first part

    def _checked(self, file_id: str) -> str:
        if not SAFE_ID.match(file_id):
            raise ValueError("bad file id")
        return file_id

    def partial_path(self, file_id: str) -> Path:
        return self.partial_dir / self._checked(file_id)

    def ready_path(self, file_id: str) -> Path:
        return self.ready_dir / self._checked(file_id)

    def create(self, file_id: str) -> None:
        fd = os.open(self.partial_path(file_id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)

    async def write_at(self, file_id: str, offset: int, chunks: AsyncIterator[bytes], limit: int) -> int:
        """Write from `offset` (truncating what was there: a retried part replaces itself).

        Raises TooLarge as soon as the file would exceed `limit`; the file is then cut back to
        `offset`, so a refused part leaves nothing behind. Returns the new size."""
        path = self.partial_path(file_id)
        fd = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(fd, offset)
            os.lseek(fd, offset, os.SEEK_SET)
            position = offset
            try:
                async for chunk in chunks:
                    if position + len(chunk) > limit:
                        raise TooLarge(f"more than the declared {limit} bytes")
                    view = memoryview(chunk)
                    while view:
                        written = os.write(fd, view)
                        view = view[written:]
                    position += len(chunk)
            except BaseException:
                os.ftruncate(fd, offset)
                raise
            self._write_back(fd)
            return position
        finally:
            os.close(fd)

    def _write_back(self, fd: int) -> None:
        """Start putting this part on disk while the next one arrives (one background thread
        for the whole store), so that publish's fsync only waits for what is left: without
        it, that fsync wrote the whole file at once, blocking the event loop (0.25 s per
        512 MiB on the benchmark machine, seconds on a slow disk)."""
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
        asyncio.get_running_loop().run_in_executor(self._flusher, flush)

    def publish(self, file_id: str) -> None:
        """fsync then rename: a reader sees the whole ciphertext or nothing. Published again
        after a crash between the rename and the database's commit: fsyncs it again."""
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

    def free_bytes(self) -> int:
        """Free space on the disk that holds the documents (for the free-space floor)."""
        return shutil.disk_usage(self.root).free

    def size(self, file_id: str) -> int:
        """Bytes held for the file; 0 when there is none (a crash removed nothing: see publish)."""
        for path in (self.partial_path(file_id), self.ready_path(file_id)):
            with contextlib.suppress(FileNotFoundError):
                return path.stat().st_size
        return 0

    def remove(self, file_id: str) -> None:
        """Remove every trace of the file; missing files are fine (idempotent)."""
        for path in (self.partial_path(file_id), self.ready_path(file_id)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def all_ids(self) -> set[str]:
        return {p.name for d in (self.partial_dir, self.ready_dir) for p in d.iterdir() if SAFE_ID.match(p.name)}
