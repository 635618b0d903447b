"""What both transports of the drop box client share and that needs no HTTP library: the
errors a transfer stops with, the :class:`Box` of URLs, the results, the status-to-error
mapping, the encryption of a file into parts and the placing of a received file.

Importing this module loads neither aiohttp nor asyncio: `teleconsult drop` (blocking.py)
starts transferring before aiohttp would have finished importing (docs/benchmarks.md)."""

from __future__ import annotations

import contextlib
import os
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import BinaryIO, NamedTuple

from .. import ece
from ..plain import repr_without

NOT_FOUND_MESSAGE = "no such document (unknown, expired or deleted)"
OWNER_HEADER = "X-Owner-Token"
OFFSET_HEADER = "Upload-Offset"

PART_SIZE = 8 * 1024 * 1024  # ciphertext bytes per PATCH (and in memory while it travels)
READ_SIZE = 16 * ece.RECORD_DATA_SIZE  # plaintext read from disk at a time (~1 MiB)
SEND_CHUNK = 256 * 1024  # body slices handed to the connection (granularity of the progress)
RETRIES = 6
RETRY_DELAY = 0.5  # seconds, doubled at each retry, capped at MAX_RETRY_DELAY
MAX_RETRY_DELAY = 8.0
DROP_SECRET_SIZE = 16  # standalone drops: 128 random bits per file
WRITEBACK_EVERY = 1024 * 1024  # a download's bytes handed to the disk as they come (see Saving)
MAX_NAME_BYTES = 200

NO_HEADERS: Mapping[str, str] = MappingProxyType({})

Progress = Callable[[int, int], None]  # (bytes done, bytes in all); "done" may go back on a retry


# --- errors ---------------------------------------------------------------------------


class DropClientError(Exception):
    """Anything that stops a transfer, with a message fit for one line on a terminal.
    (Decryption failures are :class:`filedrop.ece.DecryptionError`, not this.)"""


class NotFound(DropClientError):
    """The server does not have it: unknown, expired, used up or deleted (one answer)."""

    def __init__(self, message: str = NOT_FOUND_MESSAGE):
        super().__init__(message)


class OutputExists(DropClientError):
    """The output file exists and overwriting was not asked for."""


class TransferFailed(DropClientError):
    """The connection kept failing, or the server lost bytes it had acknowledged."""


class FileChanged(DropClientError):
    """The file being sent changed size while it was read."""


class HTTPError(DropClientError):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def status_error(status: int, message: str, what: str) -> DropClientError:
    """The error for an answer of `status` (>= 400) whose body said `message`."""
    if status == 404:
        return NotFound()
    if status == 401:
        return HTTPError(401, f"{what}: the server refused the API token ({message})")
    if status == 413:
        return HTTPError(413, f"{what}: too large for this server ({message})")
    return HTTPError(status, f"{what}: the server answered {status} ({message})")


def unreachable(exc: BaseException, what: str) -> DropClientError:
    detail = str(exc) or type(exc).__name__
    return DropClientError(f"{what}: cannot reach the server ({detail})")


def retry_delay_after(failures: int, retry_delay: float) -> float:
    return min(MAX_RETRY_DELAY, retry_delay * 2 ** (failures - 1))


def retryable(status: int) -> bool:
    """A part whose PATCH got this answer is sent again (after asking the offset)."""
    return status >= 500 or status in (408, 409, 429)


# --- where a box is mounted -----------------------------------------------------------


class Box(NamedTuple):  # not a dataclass: see filedrop/plain.py
    """URLs and credentials of one place the drop box is mounted (filedrop/http.py serves
    ``{prefix}``, ``{prefix}/{id}/upload``, ``/complete``, ``/metadata`` and ``{prefix}/{id}``).
    A host may split them: create and write where its API authorises, read elsewhere."""

    create_url: str  # POST here to reserve a document
    write_url: str  # {write_url}/{id}/upload and /complete; DELETE {write_url}/{id} (standalone)
    read_url: str  # {read_url}/{id} and /{id}/metadata; {read_url} lists a box
    headers: Mapping[str, str] = NO_HEADERS  # on create and writes (not in the repr: credentials)
    read_headers: Mapping[str, str] = NO_HEADERS  # (not in the repr)
    standalone: bool = False

    def __repr__(self) -> str:
        return repr_without(self, "headers", "read_headers")

    @classmethod
    def at(cls, url: str, headers: Mapping[str, str] | None = None, *, standalone: bool = False) -> Box:
        """Every operation at one mount `url` (``{server}{prefix}``), with the same headers."""
        url = url.rstrip("/")
        return cls(url, url, url, dict(headers or {}), dict(headers or {}), standalone=standalone)


# --- sending --------------------------------------------------------------------------


class Sent(NamedTuple):  # not a dataclass: see filedrop/plain.py
    id: str
    size: int  # ciphertext bytes (the padded size)
    metadata: dict
    document: dict  # the server's answer to /complete
    owner_token: str | None = None  # not in the repr, nor the secret
    secret: bytes | None = None

    def __repr__(self) -> str:
        return repr_without(self, "owner_token", "secret")


def encrypted_records(source: BinaryIO, encryptor: ece.Encryptor, size: int) -> Iterator[bytes]:
    """The records of exactly `size` plaintext bytes read from `source`, encrypted."""
    remaining = size
    while remaining:
        chunk = source.read(min(READ_SIZE, remaining))
        if not chunk:
            raise FileChanged(f"the file shrank while it was read ({size - remaining} of {size} bytes)")
        remaining -= len(chunk)
        yield from encryptor.feed(chunk)
    if source.read(1):
        raise FileChanged(f"the file grew while it was read (more than {size} bytes)")
    yield from encryptor.finish()


def encrypted_parts(source: BinaryIO, encryptor: ece.Encryptor, size: int, part_size: int) -> Iterator[bytearray]:
    """Ciphertext of exactly `size` plaintext bytes read from `source`, in parts of
    `part_size` bytes or up to one record more (the last part may be shorter)."""
    part = bytearray()
    for record in encrypted_records(source, encryptor, size):
        part += record
        if len(part) >= part_size:
            yield part
            part = bytearray()
    if part:
        yield part


def metadata_blob(secret: bytes, doc_id: str, metadata: dict) -> bytes:
    return ece.encrypt_metadata(ece.derive_metadata_key(secret, doc_id), metadata)


# --- receiving ------------------------------------------------------------------------

_FORBIDDEN_IN_NAMES = set('<>:"/\\|?*')


def safe_name(name: str, fallback: str = "document") -> str:
    """A file name from the (sender-chosen) metadata name that is safe to create in the
    current directory: no directory part, no control or reserved characters, not hidden,
    at most MAX_NAME_BYTES bytes of UTF-8 (keeping the extension)."""
    name = unicodedata.normalize("NFC", str(name)).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable() and c not in _FORBIDDEN_IN_NAMES)
    name = name.strip().lstrip(".").strip()
    stem, dot, extension = name.rpartition(".")
    if not dot or len(extension.encode()) > 16:
        stem, extension = name, ""
    suffix = "." + extension if extension else ""
    budget = MAX_NAME_BYTES - len(suffix.encode())
    while len(stem.encode()) > budget:
        stem = stem[:-1]
    name = (stem.rstrip() + suffix) if stem.strip() else ""
    return name if name not in ("", ".", "..") else fallback


class Received(NamedTuple):  # not a dataclass: see filedrop/plain.py
    path: Path
    metadata: dict
    size: int  # plaintext bytes written


def target_of(output: str | os.PathLike | None, directory: str | os.PathLike, metadata: dict,
              force: bool) -> Path:
    """Where a download goes; refused (before anything is downloaded) when it exists and
    `force` is false, or when its directory does not exist."""
    if output is None:
        target = Path(directory) / safe_name(metadata["name"])
    else:
        target = Path(output)
        if target.is_dir():
            target = target / safe_name(metadata["name"])
    if not force and (target.exists() or target.is_symlink()):
        raise OutputExists(f"{target} exists; not overwritten (use --force)")
    if not target.parent.is_dir():
        raise DropClientError(f"{target.parent} is not a directory")
    return target


def place(temporary: str, target: Path, force: bool) -> None:
    """Move the finished temporary file to `target`; without `force`, never replace an
    existing file (a hard link fails atomically if the name is taken)."""
    if force:
        os.replace(temporary, target)
        return
    try:
        os.link(temporary, target)
    except FileExistsError:
        raise OutputExists(f"{target} exists; not overwritten (use --force)") from None
    except OSError:  # a file system without hard links: check, then rename
        if target.exists():
            raise OutputExists(f"{target} exists; not overwritten (use --force)") from None
        os.replace(temporary, target)
        return
    os.unlink(temporary)


def resume_at(reported: int, start: int, end: int) -> int | None:
    """Where a part [start, end) whose answer was lost goes on, from the offset the server
    reports: None when the whole part arrived, else the offset to send from. An offset outside
    the part means the upload is not the one we were sending: the transfer stops."""
    if reported == end:
        return None
    if not start <= reported < end:
        raise TransferFailed(f"the server holds {reported} bytes, but this part starts at {start}; "
                             "send the file again")
    return reported


class Saving:
    """The temporary file a download writes into (see :func:`saving`), counting what it holds.

    Every WRITEBACK_EVERY bytes it asks the kernel to start writing them to the disk, without
    waiting: the fsync that ends the download then waits for the last MiB only (16 MiB: 8-9 ms
    of fsync became 0.6 ms, the whole write 32 -> 24 ms; docs/benchmarks.md). The standard
    library has no sync_file_range(2); posix_fadvise(DONTNEED) starts the writeback of a
    range's dirty pages in the same way (Linux; PostgreSQL's pg_flush_data falls back on it),
    and drops the pages already on disk from the cache, which a file just saved can spare.
    Durability is unchanged: nothing is placed before the fsync."""

    def __init__(self, out: BinaryIO) -> None:
        self.out, self.written = out, 0
        self._handed = 0  # bytes whose writeback was started

    def write(self, plaintext: bytes) -> None:
        self.written += self.out.write(plaintext)
        if self.written - self._handed >= WRITEBACK_EVERY and hasattr(os, "posix_fadvise"):
            self.out.flush()
            os.posix_fadvise(self.out.fileno(), self._handed, self.written - self._handed, os.POSIX_FADV_DONTNEED)
            self._handed = self.written


@contextlib.contextmanager
def saving(target: Path, force: bool, metadata: dict) -> Iterator[Saving]:
    """All or nothing: the body writes into a temporary file beside `target`; at the end its
    length is checked against the metadata, it is fsynced and moved into place (never over an
    existing file without `force`); on any failure it is removed and nothing is left."""
    import tempfile  # on first use: the command's start-up stays light (docs/benchmarks.md)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name[:100]}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            saved = Saving(out)
            yield saved
            check_length(saved.written, metadata)
            out.flush()
            os.fsync(out.fileno())
        place(temporary, target, force)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def check_length(written: int, metadata: dict) -> None:
    if written != metadata["size"]:
        raise ece.DecryptionError(f"the content has {written} bytes but its metadata says {metadata['size']}")
