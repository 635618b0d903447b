"""Encrypt a file while uploading it in parts, resuming after a dropped connection.

The file is read and encrypted record by record (64 KiB) into parts of about ``PART_SIZE`` bytes
of ciphertext. The part being sent is kept in memory until the server acknowledges it, and the
next part is encrypted (in a worker thread) while it travels: two parts at most. When a
connection drops, the client asks the server where it stands (``GET .../{doc}/upload``) and
sends the rest of the part again from that offset, out of memory. It never re-encrypts:
re-encrypting a record under the same key and nonce would be harmless only if the file on disk
had not changed in between, and AES-GCM with a reused nonce and a different plaintext leaks
both plaintexts.
"""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
import os
import secrets
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import aiohttp

from .. import ece
from .transport import (OFFSET_HEADER, OWNER_HEADER, Box, FileChanged, HTTPError, Progress, TransferFailed,
                        error_message, raise_for, request_json)

PART_SIZE = 8 * 1024 * 1024  # ciphertext bytes per PATCH (and in memory while it travels)
READ_SIZE = 16 * ece.RECORD_DATA_SIZE  # plaintext read from disk at a time (~1 MiB)
SEND_CHUNK = 256 * 1024  # body slices handed to aiohttp (granularity of the progress)
RETRIES = 6
RETRY_DELAY = 0.5  # seconds, doubled at each retry, capped at MAX_RETRY_DELAY
MAX_RETRY_DELAY = 8.0
DROP_SECRET_SIZE = 16  # standalone drops: 128 random bits per file


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
        await raise_for(response, "asking where the upload stands")
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
                    await raise_for(response, "sending")
                problem: BaseException = HTTPError(response.status, await error_message(response))
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
        created = await request_json(session, "POST", box.create_url, "creating the document",
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
    document = await request_json(session, "POST", f"{box.write_url}/{doc_id}/complete", "completing the upload",
                           data=blob, headers={**headers, "Content-Type": "application/octet-stream"})
    return Sent(doc_id, size, metadata, document, created.get("owner_token"), secret)



async def send_drop(session: aiohttp.ClientSession, box: Box, path: str | os.PathLike, *,
                    expires_in: float | None = None, max_downloads: int | None = None,
                    progress: Progress | None = None, **kwargs) -> Sent:
    """A standalone drop into `box`: a fresh random secret (in the result, for the link), the
    file uploaded with the expiry and download limit asked for."""
    secret = secrets.token_bytes(DROP_SECRET_SIZE)
    extra = {}
    if expires_in is not None:
        extra["expires_in"] = expires_in
    if max_downloads is not None:
        extra["max_downloads"] = max_downloads
    return await upload(session, box, path, secret, role="sender", extra=extra, progress=progress, **kwargs)
