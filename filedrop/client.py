"""Python client of the drop box over HTTP (filedrop/http.py), with the same end-to-end
encryption as the browser (filedrop/ece.py, docs/encryption.md).

Memory is bounded whatever the file size:

* Upload: the file is read and encrypted record by record (64 KiB) into parts of about
  ``PART_SIZE`` bytes of ciphertext. The part being sent is kept in memory until the server
  acknowledges it, and the next part is encrypted (in a worker thread) while it travels: two
  parts at most. When a connection drops, the client asks the server where it stands
  (``GET .../{doc}/upload``) and sends the rest of the part again from that offset, out of
  memory. It never re-encrypts: re-encrypting a record under the same key and nonce would
  be harmless only if the file on disk had not changed in between, and AES-GCM with a
  reused nonce and a different plaintext leaks both plaintexts.
* Download: the ciphertext is decrypted as it arrives into a temporary file next to the
  target, which is renamed into place only when the whole stream authenticated (the last
  record seen, nothing after it) and its length matches the authenticated metadata. A
  :class:`filedrop.ece.DecryptionError` therefore leaves no file behind, corrupt or partial.

Where the box lives (teleconsult's mount points, teleconsult/views/documents.py):

* standalone drop: create at ``/api/drop/files`` (a clinician's Bearer API token), parts
  and completion with the owner token, anonymous download at ``/d/files/{id}``, delete at
  ``/api/drop/files/{id}`` with the owner token; link ``{server}/d/{id}#{secret}``;
* consultation box: ``/api/consultations/{id}/documents`` with the clinician's Bearer token;
  the patient link ``{server}/j/{join_token}#{secret}`` names the consultation through its
  ``patient_url`` in ``GET /api/consultations``.

The secret never leaves this process: it is not in any URL, header or body sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
import os
import secrets
import tempfile
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import aiohttp

from . import ece
from .links import ConsultationLink, DropLink, LinkError, parse_link

__all__ = [
    "PART_SIZE",
    "Box",
    "ConsultationLink",
    "DropClientError",
    "DropLink",
    "FileChanged",
    "LinkError",
    "NotFound",
    "OutputExists",
    "Received",
    "Sent",
    "TransferFailed",
    "client_session",
    "delete_drop",
    "download",
    "fetch_metadata",
    "find_consultation",
    "list_box",
    "parse_link",
    "safe_name",
    "send_drop",
    "upload",
]

PART_SIZE = 8 * 1024 * 1024  # ciphertext bytes per PATCH (and in memory while it travels)
READ_SIZE = 16 * ece.RECORD_DATA_SIZE  # plaintext read from disk at a time (~1 MiB)
SEND_CHUNK = 256 * 1024  # body slices handed to aiohttp (granularity of the progress)
RETRIES = 6
RETRY_DELAY = 0.5  # seconds, doubled at each retry, capped at MAX_RETRY_DELAY
MAX_RETRY_DELAY = 8.0
DROP_SECRET_SIZE = 16  # standalone drops: 128 random bits per file
NOT_FOUND_MESSAGE = "no such document (unknown, expired or deleted)"
OWNER_HEADER = "X-Owner-Token"
OFFSET_HEADER = "Upload-Offset"

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


# --- where a box is mounted -----------------------------------------------------------


@dataclass(frozen=True)
class Box:
    """URLs and credentials of one place the drop box is mounted."""

    create_url: str  # POST here to reserve a document
    write_url: str  # {write_url}/{id}/upload and /complete
    read_url: str  # {read_url}/{id} and /{id}/metadata; {read_url} lists a box
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # on create and writes
    read_headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    standalone: bool = False

    @classmethod
    def standalone_drops(cls, server: str, token: str | None = None) -> Box:
        server = server.rstrip("/")
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        return cls(server + "/api/drop/files", server + "/api/drop/files", server + "/d/files",
                   auth, {}, standalone=True)

    @classmethod
    def consultation(cls, server: str, token: str, consultation_id: str) -> Box:
        url = f"{server.rstrip('/')}/api/consultations/{consultation_id}/documents"
        auth = {"Authorization": f"Bearer {token}"}
        return cls(url, url, url, auth, auth)


# --- HTTP helpers ---------------------------------------------------------------------


def client_session(**kwargs) -> aiohttp.ClientSession:
    """A session whose timeouts suit long transfers: no total limit, but a stalled
    connection (nothing read for two minutes) fails and is retried."""
    timeout = aiohttp.ClientTimeout(total=None, connect=30, sock_connect=30, sock_read=120)
    return aiohttp.ClientSession(timeout=timeout, **kwargs)


async def _error_message(response: aiohttp.ClientResponse) -> str:
    try:
        body = await response.json(content_type=None)
        if isinstance(body, dict) and body.get("error"):
            return str(body["error"])
    except (ValueError, aiohttp.ClientError):
        pass
    return response.reason or f"HTTP {response.status}"


async def _raise_for(response: aiohttp.ClientResponse, what: str) -> None:
    if response.status < 400:
        return
    if response.status == 404:
        raise NotFound()
    message = await _error_message(response)
    if response.status == 401:
        raise HTTPError(401, f"{what}: the server refused the API token ({message})")
    if response.status == 413:
        raise HTTPError(413, f"{what}: too large for this server ({message})")
    raise HTTPError(response.status, f"{what}: the server answered {response.status} ({message})")


def _unreachable(exc: BaseException, what: str) -> DropClientError:
    detail = str(exc) or type(exc).__name__
    return DropClientError(f"{what}: cannot reach the server ({detail})")


async def _json(session: aiohttp.ClientSession, method: str, url: str, what: str, **kwargs) -> dict:
    try:
        async with session.request(method, url, **kwargs) as response:
            await _raise_for(response, what)
            return await response.json(content_type=None)
    except (TimeoutError, aiohttp.ClientConnectionError) as exc:
        raise _unreachable(exc, what) from None


async def find_consultation(session: aiohttp.ClientSession, link: ConsultationLink, token: str) -> dict:
    """The consultation (as GET /api/consultations gives it) whose patient link this is."""
    found = await _json(session, "GET", link.server + "/api/consultations", "listing your consultations",
                        headers={"Authorization": f"Bearer {token}"})
    for consultation in found.get("consultations", []):
        if consultation.get("patient_url") == link.patient_url:
            return consultation
    raise DropClientError("no consultation of yours (among the most recent) has this patient link; "
                          "check the link and that the API token is the clinician's")


async def list_box(session: aiohttp.ClientSession, box: Box) -> list[dict]:
    found = await _json(session, "GET", box.read_url, "listing documents", headers=dict(box.read_headers))
    return list(found.get("documents", []))


async def fetch_metadata(session: aiohttp.ClientSession, box: Box, doc_id: str, secret: bytes) -> dict:
    """Download and decrypt a document's metadata (name, type, size, role)."""
    try:
        async with session.get(f"{box.read_url}/{doc_id}/metadata", headers=dict(box.read_headers)) as response:
            await _raise_for(response, "reading the metadata")
            blob = await response.read()
    except (TimeoutError, aiohttp.ClientConnectionError) as exc:
        raise _unreachable(exc, "reading the metadata") from None
    return ece.decrypt_metadata(ece.derive_metadata_key(secret, doc_id), blob)


async def delete_drop(session: aiohttp.ClientSession, server: str, doc_id: str, owner_token: str) -> None:
    """Delete a standalone drop with its owner token."""
    await _json(session, "DELETE", f"{server.rstrip('/')}/api/drop/files/{doc_id}", "deleting",
                headers={OWNER_HEADER: owner_token})


# --- upload ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    id: str
    size: int  # ciphertext bytes (the padded size)
    metadata: dict
    document: dict  # the server's answer to /complete
    owner_token: str | None = field(default=None, repr=False)
    secret: bytes | None = field(default=None, repr=False)


def _encrypted_parts(source: BinaryIO, encryptor: ece.Encryptor, size: int,
                     part_size: int) -> Iterator[bytearray]:
    """Ciphertext of exactly `size` plaintext bytes read from `source`, in parts of
    `part_size` bytes or up to one record more (the last part may be shorter)."""

    def records() -> Iterator[bytes]:
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

    part = bytearray()
    for record in records():
        part += record
        if len(part) >= part_size:
            yield part
            part = bytearray()
    if part:
        yield part


async def _body(part: memoryview, base: int, progress: Progress | None, total: int) -> AsyncIterator[bytes]:
    for start in range(0, len(part), SEND_CHUNK):
        yield part[start:start + SEND_CHUNK]
        if progress:
            progress(base + min(start + SEND_CHUNK, len(part)), total)


async def _upload_offset(session: aiohttp.ClientSession, url: str, headers: dict) -> int:
    async with session.get(url, headers=headers) as response:
        await _raise_for(response, "asking where the upload stands")
        return int((await response.json(content_type=None))["offset"])


async def _send_part(session: aiohttp.ClientSession, url: str, headers: dict, start: int, part: bytes,
                     total: int, progress: Progress | None, retries: int, retry_delay: float) -> None:
    """PATCH one part at `start`; after a dropped connection, resume from the offset the
    server reports, out of the part kept in memory."""
    end = start + len(part)
    view = memoryview(part)
    offset = start
    failures = 0
    while True:
        try:
            async with session.patch(url, data=_body(view[offset - start:], offset, progress, total), headers={
                    **headers, OFFSET_HEADER: str(offset), "Content-Length": str(end - offset),
                    "Content-Type": "application/octet-stream"}) as response:
                if response.status == 200:
                    acknowledged = int((await response.json(content_type=None))["offset"])
                    if acknowledged != end:
                        raise TransferFailed(f"the server acknowledged {acknowledged} bytes, {end} were sent")
                    return
                if response.status < 500 and response.status not in (408, 409, 429):
                    await _raise_for(response, "sending")
                problem: BaseException = HTTPError(response.status, await _error_message(response))
        except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            problem = exc
        failures += 1
        if failures > retries:
            raise TransferFailed(f"sending failed {failures} times in a row, giving up "
                                 f"({str(problem) or type(problem).__name__})")
        await asyncio.sleep(min(MAX_RETRY_DELAY, retry_delay * 2 ** (failures - 1)))
        try:
            reported = await _upload_offset(session, url, headers)
        except (TimeoutError, aiohttp.ClientConnectionError):
            continue  # still unreachable: try this part again from where we were
        if reported == end:
            return  # the part arrived; only the answer was lost
        if not start <= reported < end:
            raise TransferFailed(f"the server holds {reported} bytes, but this part starts at {start}; "
                                 "send the file again")
        offset = reported
        if progress:
            progress(offset, total)


async def upload(session: aiohttp.ClientSession, box: Box, path: str | os.PathLike, secret: bytes, *,
                 role: str, name: str | None = None, content_type: str | None = None,
                 extra: Mapping | None = None, part_size: int = PART_SIZE, progress: Progress | None = None,
                 retries: int = RETRIES, retry_delay: float = RETRY_DELAY) -> Sent:
    """Encrypt the file at `path` under `secret` while uploading it in parts into `box`.
    `extra` goes into the creation request (standalone: ``expires_in``, ``max_downloads``)."""
    path = Path(path)
    name = path.name if name is None else name
    if content_type is None:
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    with open(path, "rb") as source:
        plaintext_size = os.fstat(source.fileno()).st_size
        size = ece.padded_size(plaintext_size)
        created = await _json(session, "POST", box.create_url, "creating the document",
                              json={"size": size, **(extra or {})}, headers=dict(box.headers))
        doc_id = created["id"]
        headers = dict(box.headers)
        if created.get("owner_token"):
            headers[OWNER_HEADER] = created["owner_token"]
        upload_url = f"{box.write_url}/{doc_id}/upload"
        encryptor = ece.Encryptor(ece.derive_content_ikm(secret, doc_id))
        parts = _encrypted_parts(source, encryptor, plaintext_size, part_size)
        if progress:
            progress(0, size)
        offset = 0
        # the next part is encrypted in a worker thread while the current one travels
        pending = asyncio.ensure_future(asyncio.to_thread(next, parts, None))
        try:
            while (part := await pending) is not None:
                pending = asyncio.ensure_future(asyncio.to_thread(next, parts, None))
                await _send_part(session, upload_url, headers, offset, part, size, progress, retries, retry_delay)
                offset += len(part)
        finally:
            # let the worker thread finish its part before the file is closed under it
            with contextlib.suppress(BaseException):
                await pending
        if offset != size:  # cannot happen unless the encryptor and padded_size disagree
            raise TransferFailed(f"encrypted {offset} bytes, {size} were announced")
    metadata = {"name": name, "type": content_type, "size": plaintext_size, "role": role}
    blob = ece.encrypt_metadata(ece.derive_metadata_key(secret, doc_id), metadata)
    document = await _json(session, "POST", f"{box.write_url}/{doc_id}/complete", "completing the upload",
                           data=blob, headers={**headers, "Content-Type": "application/octet-stream"})
    return Sent(doc_id, size, metadata, document, created.get("owner_token"), secret)


async def send_drop(session: aiohttp.ClientSession, server: str, token: str, path: str | os.PathLike, *,
                    expires_in: float | None = None, max_downloads: int | None = None,
                    progress: Progress | None = None, **kwargs) -> tuple[DropLink, Sent]:
    """A standalone drop: a fresh random secret, the file uploaded; returns its link."""
    secret = secrets.token_bytes(DROP_SECRET_SIZE)
    extra = {}
    if expires_in is not None:
        extra["expires_in"] = expires_in
    if max_downloads is not None:
        extra["max_downloads"] = max_downloads
    sent = await upload(session, Box.standalone_drops(server, token), path, secret, role="sender",
                        extra=extra, progress=progress, **kwargs)
    return DropLink(server.rstrip("/"), sent.id, secret), sent


# --- download -------------------------------------------------------------------------

_FORBIDDEN_IN_NAMES = set('<>:"/\\|?*')
MAX_NAME_BYTES = 200


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


@dataclass(frozen=True)
class Received:
    path: Path
    metadata: dict
    size: int  # plaintext bytes written


def _target(output: str | os.PathLike | None, directory: str | os.PathLike, metadata: dict) -> Path:
    if output is None:
        return Path(directory) / safe_name(metadata["name"])
    target = Path(output)
    if target.is_dir():
        return target / safe_name(metadata["name"])
    return target


def _place(temporary: str, target: Path, force: bool) -> None:
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


async def download(session: aiohttp.ClientSession, box: Box, doc_id: str, secret: bytes, *,
                   output: str | os.PathLike | None = None, directory: str | os.PathLike = ".",
                   force: bool = False, progress: Progress | None = None,
                   metadata: dict | None = None) -> Received:
    """Download and decrypt a document into `output` (a file, or a directory to put it in),
    else into `directory` under its sanitised metadata name. Raises
    :class:`filedrop.ece.DecryptionError` on a wrong key or tampered ciphertext, leaving
    nothing behind; :class:`OutputExists` before downloading anything (a standalone drop's
    download count is not spent) when the target exists and `force` is false."""
    if metadata is None:
        metadata = await fetch_metadata(session, box, doc_id, secret)
    target = _target(output, directory, metadata)
    if not force and (target.exists() or target.is_symlink()):
        raise OutputExists(f"{target} exists; not overwritten (use --force)")
    if not target.parent.is_dir():
        raise DropClientError(f"{target.parent} is not a directory")
    ikm = ece.derive_content_ikm(secret, doc_id)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name[:100]}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            written = 0
            try:
                async with session.get(f"{box.read_url}/{doc_id}", headers=dict(box.read_headers)) as response:
                    await _raise_for(response, "downloading")
                    total = response.content_length or 0
                    received = 0
                    decryptor = ece.Decryptor(ikm)
                    if progress:
                        progress(0, total)
                    async for chunk in response.content.iter_chunked(SEND_CHUNK):
                        received += len(chunk)
                        for plaintext in decryptor.feed(chunk):
                            out.write(plaintext)
                            written += len(plaintext)
                        if progress:
                            progress(received, total)
                    for plaintext in decryptor.finish():
                        out.write(plaintext)
                        written += len(plaintext)
            except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
                raise TransferFailed(f"the download was cut ({str(exc) or type(exc).__name__}); "
                                     "nothing was saved") from None
            if written != metadata["size"]:
                raise ece.DecryptionError(f"the content has {written} bytes but its metadata says "
                                          f"{metadata['size']}")
            out.flush()
            os.fsync(out.fileno())
        _place(temporary, target, force)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return Received(target, metadata, written)
