"""HTTP handlers of the drop box, shared by every place it is mounted (consultation box for the
clinician, for the patient and for the API; standalone drops). A `resolve` callable says which
box a request may use and as whom; the handlers stay thin and map DropErrors to HTTP.

Upload protocol (resumable, in parts):
  POST   {prefix}                  {"size": ciphertext bytes, ...} -> 201 {"id", "offset": 0, ...}
  GET    {prefix}/{doc}/upload     -> {"offset", "size"}        (where to resume)
  PATCH  {prefix}/{doc}/upload     Upload-Offset: n, body = bytes -> {"offset"}
  POST   {prefix}/{doc}/complete   body = encrypted metadata     -> the file, published
  GET    {prefix}                  -> {"documents": [...]}       (box only)
  GET    {prefix}/{doc}            -> the RFC 8188 ciphertext, streamed
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from . import store
from .storage import CHUNK_SIZE

log = logging.getLogger("filedrop")

OFFSET_HEADER = "Upload-Offset"
OWNER_HEADER = "X-Owner-Token"


@dataclass(frozen=True)
class Access:
    box_id: str | None  # None: standalone drop
    role: str  # clinician | patient | standalone | anyone


Resolve = Callable[[web.Request], Awaitable[Access]]
BoxGetter = Callable[[web.Request], store.DropBox]

STATUS = {store.Gone: 404, store.TooBig: 413, store.BadUpload: 400, store.OffsetMismatch: 409,
          store.NotOwner: 403}


class DropHTTPError(web.HTTPClientError):
    """A client error with a JSON body ({"error", "status", ...})."""

    status_code = 400

    def __init__(self, status: int, body: dict):
        self.status_code = status
        super().__init__(text=json.dumps({**body, "status": status}), content_type="application/json")


def _http_error(exc: store.DropError) -> web.HTTPException:
    """Unknown, expired and deleted ids get one and the same answer."""
    status = next(code for kind, code in STATUS.items() if isinstance(exc, kind))
    body = {"error": str(exc) if status != 404 else "no such document (unknown, expired or deleted)"}
    if isinstance(exc, store.OffsetMismatch):
        body["offset"] = exc.expected
    return DropHTTPError(status, body)


def _bad_request(message: str) -> DropHTTPError:
    return DropHTTPError(400, {"error": message})


class DropHandlers:
    def __init__(self, get_box: BoxGetter, resolve: Resolve, *, standalone: bool = False,
                 on_gone: Callable[[web.Request], None] | None = None):
        """`on_gone` is told of every request for an unknown, expired or deleted id (to
        rate-limit guessing); `resolve` may refuse a request before any lookup."""
        self.get_box, self.resolve, self.standalone = get_box, resolve, standalone
        self.on_gone = on_gone

    async def _call(self, request: web.Request, coro):
        try:
            return await coro
        except store.DropError as exc:
            if isinstance(exc, store.Gone) and self.on_gone is not None:
                self.on_gone(request)
            raise _http_error(exc) from None

    async def list(self, request: web.Request) -> web.Response:
        access = await self.resolve(request)
        items = await self.get_box(request).list_box(access.box_id)
        return web.json_response({"documents": [f.public() for f in items]})

    async def create(self, request: web.Request) -> web.Response:
        access = await self.resolve(request)
        try:
            body = await request.json()
            size = int(body["size"])
            expires_in = float(body["expires_in"]) if self.standalone and body.get("expires_in") else None
            max_downloads = int(body["max_downloads"]) if self.standalone and body.get("max_downloads") else None
        except (ValueError, KeyError, TypeError):
            raise _bad_request('expected JSON {"size": n}') from None
        created, owner_token = await self._call(request, self.get_box(request).create(
            size=size, uploaded_by=access.role if not self.standalone else "standalone",
            box_id=access.box_id, expires_in=expires_in, max_downloads=max_downloads))
        answer = {**created.public(), "offset": 0}
        if owner_token:
            answer["owner_token"] = owner_token
        return web.json_response(answer, status=201)

    def _owner(self, request: web.Request) -> str | None:
        """Standalone uploads are written only by whoever holds the owner token; the store
        checks it on the row it reads anyway (None: a box, where `resolve` authorised)."""
        return request.headers.get(OWNER_HEADER, "") if self.standalone else None

    async def upload_state(self, request: web.Request) -> web.Response:
        access = await self.resolve(request)
        found = await self._call(request, self.get_box(request).get(
            request.match_info["doc"], access.box_id, owner_token=self._owner(request)))
        return web.json_response({"offset": found.received, "size": found.size, "state": found.state},
                                 headers={OFFSET_HEADER: str(found.received)})

    async def upload_part(self, request: web.Request) -> web.Response:
        access = await self.resolve(request)
        try:
            offset = int(request.headers[OFFSET_HEADER])
        except (KeyError, ValueError):
            raise _bad_request("Upload-Offset header required") from None
        received = await self._call(request, self.get_box(request).upload_part(
            request.match_info["doc"], access.box_id, offset,
            request.content.iter_chunked(CHUNK_SIZE), request.content_length, owner_token=self._owner(request)))
        return web.json_response({"offset": received}, headers={OFFSET_HEADER: str(received)})

    async def complete(self, request: web.Request) -> web.Response:
        access = await self.resolve(request)
        meta = await request.read()
        done = await self._call(request, self.get_box(request).complete(
            request.match_info["doc"], access.box_id, meta, owner_token=self._owner(request)))
        return web.json_response(done.public())

    async def metadata(self, request: web.Request) -> web.Response:
        access = await self.resolve(request)
        found = await self._call(request, self.get_box(request).get(request.match_info["doc"], access.box_id, ready=True))
        return web.Response(body=found.meta, content_type="application/octet-stream")

    async def download(self, request: web.Request) -> web.StreamResponse:
        access = await self.resolve(request)
        found, path = await self._call(request, self.get_box(request).start_download(
            request.match_info["doc"], access.box_id, downloader=access.role))
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise _http_error(store.Gone("no such file")) from None
        try:
            response = web.StreamResponse(headers={
                "Content-Type": "application/octet-stream", "Content-Length": str(found.size),
                "Content-Disposition": "attachment", "Cache-Control": "no-store"})
            await response.prepare(request)
            while chunk := os.read(fd, CHUNK_SIZE):
                await response.write(chunk)
            await response.write_eof()
            return response
        finally:
            os.close(fd)

    async def delete(self, request: web.Request) -> web.Response:
        """Standalone drops only: the sender deletes with the owner token."""
        await self._call(request, self.get_box(request).delete_owned(
            request.match_info["doc"], request.headers.get(OWNER_HEADER, "")))
        return web.json_response({"deleted": True})


def drop_routes(prefix: str, handlers: DropHandlers, names: dict[str, str]) -> list[tuple]:
    """(method, path, handler, name) rows for a route table; `names` maps each operation
    (list, create, upload_state, upload_part, complete, metadata, download, delete) to a
    route name; operations left out are not routed."""
    rows = [
        ("GET", prefix, handlers.list, "list"),
        ("POST", prefix, handlers.create, "create"),
        ("GET", prefix + "/{doc}/upload", handlers.upload_state, "upload_state"),
        ("PATCH", prefix + "/{doc}/upload", handlers.upload_part, "upload_part"),
        ("POST", prefix + "/{doc}/complete", handlers.complete, "complete"),
        ("GET", prefix + "/{doc}/metadata", handlers.metadata, "metadata"),
        ("GET", prefix + "/{doc}", handlers.download, "download"),
        ("DELETE", prefix + "/{doc}", handlers.delete, "delete"),
    ]
    return [(method, path, handler, names[op]) for method, path, handler, op in rows if op in names]
