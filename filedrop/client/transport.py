"""Talking to a drop box mount over HTTP: the errors a transfer can stop with, the Box of URLs
a mount has, a session fit for long transfers, and the small requests (list, metadata, delete).
The mount points are the host's: a Box is built from them (teleconsult/drop_links.py does it
for teleconsult)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import aiohttp

from .. import ece

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
    """URLs and credentials of one place the drop box is mounted (filedrop/http.py serves
    ``{prefix}``, ``{prefix}/{id}/upload``, ``/complete``, ``/metadata`` and ``{prefix}/{id}``).
    A host may split them: create and write where its API authorises, read elsewhere."""

    create_url: str  # POST here to reserve a document
    write_url: str  # {write_url}/{id}/upload and /complete; DELETE {write_url}/{id} (standalone)
    read_url: str  # {read_url}/{id} and /{id}/metadata; {read_url} lists a box
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # on create and writes
    read_headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    standalone: bool = False

    @classmethod
    def at(cls, url: str, headers: Mapping[str, str] | None = None, *, standalone: bool = False) -> Box:
        """Every operation at one mount `url` (``{server}{prefix}``), with the same headers."""
        url = url.rstrip("/")
        return cls(url, url, url, dict(headers or {}), dict(headers or {}), standalone=standalone)


# --- HTTP helpers ---------------------------------------------------------------------


def client_session(**kwargs) -> aiohttp.ClientSession:
    """A session whose timeouts suit long transfers: no total limit, but a stalled
    connection (nothing read for two minutes) fails and is retried."""
    timeout = aiohttp.ClientTimeout(total=None, connect=30, sock_connect=30, sock_read=120)
    return aiohttp.ClientSession(timeout=timeout, **kwargs)


async def error_message(response: aiohttp.ClientResponse) -> str:
    try:
        body = await response.json(content_type=None)
        if isinstance(body, dict) and body.get("error"):
            return str(body["error"])
    except (ValueError, aiohttp.ClientError):
        pass
    return response.reason or f"HTTP {response.status}"


async def raise_for(response: aiohttp.ClientResponse, what: str) -> None:
    if response.status < 400:
        return
    if response.status == 404:
        raise NotFound()
    message = await error_message(response)
    if response.status == 401:
        raise HTTPError(401, f"{what}: the server refused the API token ({message})")
    if response.status == 413:
        raise HTTPError(413, f"{what}: too large for this server ({message})")
    raise HTTPError(response.status, f"{what}: the server answered {response.status} ({message})")


def unreachable(exc: BaseException, what: str) -> DropClientError:
    detail = str(exc) or type(exc).__name__
    return DropClientError(f"{what}: cannot reach the server ({detail})")


async def request_json(session: aiohttp.ClientSession, method: str, url: str, what: str, **kwargs) -> dict:
    try:
        async with session.request(method, url, **kwargs) as response:
            await raise_for(response, what)
            return await response.json(content_type=None)
    except (TimeoutError, aiohttp.ClientConnectionError) as exc:
        raise unreachable(exc, what) from None


# --- small requests -------------------------------------------------------------------


async def list_box(session: aiohttp.ClientSession, box: Box) -> list[dict]:
    found = await request_json(session, "GET", box.read_url, "listing documents", headers=dict(box.read_headers))
    return list(found.get("documents", []))


async def fetch_metadata(session: aiohttp.ClientSession, box: Box, doc_id: str, secret: bytes) -> dict:
    """Download and decrypt a document's metadata (name, type, size, role)."""
    try:
        async with session.get(f"{box.read_url}/{doc_id}/metadata", headers=dict(box.read_headers)) as response:
            await raise_for(response, "reading the metadata")
            blob = await response.read()
    except (TimeoutError, aiohttp.ClientConnectionError) as exc:
        raise unreachable(exc, "reading the metadata") from None
    return ece.decrypt_metadata(ece.derive_metadata_key(secret, doc_id), blob)


async def delete_drop(session: aiohttp.ClientSession, box: Box, doc_id: str, owner_token: str) -> None:
    """Delete a standalone drop with its owner token."""
    await request_json(session, "DELETE", f"{box.write_url}/{doc_id}", "deleting",
                       headers={**box.headers, OWNER_HEADER: owner_token})

