"""Talking to a drop box mount over HTTP with aiohttp (for asyncio programs: tests, bench/,
integrators): a session fit for long transfers, and the small requests (list, metadata,
delete). The errors and the Box of URLs a mount has are in common.py (shared with blocking.py,
the command line's transport). The mount points are the host's: a Box is built from them
(teleconsult/drop_links.py does it for teleconsult)."""

from __future__ import annotations

import aiohttp

from .. import ece

from .common import (NOT_FOUND_MESSAGE, OFFSET_HEADER, OWNER_HEADER, Box, DropClientError, FileChanged,  # noqa: F401
                     HTTPError, NotFound, OutputExists, Progress, TransferFailed, status_error, unreachable)


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
    message = "" if response.status == 404 else await error_message(response)
    raise status_error(response.status, message, what)


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

