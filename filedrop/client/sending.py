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
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import aiohttp

from .. import ece
from .common import (DROP_SECRET_SIZE, OFFSET_HEADER, OWNER_HEADER, PART_SIZE, RETRIES, RETRY_DELAY,  # noqa: F401
                     SEND_CHUNK, Box, HTTPError, Progress, Sent, TransferFailed, encrypted_parts, resume_at,
                     retry_delay_after, retryable)
from .transport import error_message, raise_for, request_json

_encrypted_parts = encrypted_parts


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
                if not retryable(response.status):
                    await raise_for(response, "sending")
                problem: BaseException = HTTPError(response.status, await error_message(response))
        except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            problem = exc
        failures += 1
        if failures > retries:
            raise TransferFailed(f"sending failed {failures} times in a row, giving up "
                                 f"({str(problem) or type(problem).__name__})")
        await asyncio.sleep(retry_delay_after(failures, retry_delay))
        try:
            reported = await _upload_offset(session, url, headers)
        except (TimeoutError, aiohttp.ClientConnectionError):
            continue  # still unreachable: try this part again from where we were
        offset = resume_at(reported, start, end)
        if offset is None:
            return  # the part arrived; only the answer was lost
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
