"""The drop box over HTTP: filedrop's own routes, mounted by a host app under any prefix.

    rows = routes(prefix, authorise, box)            # (method, path, handler, name) rows for a route table
    mount(app.router, prefix, authorise, box)        # or straight onto an aiohttp router

The host says who may do what: `authorise(request, operation)` runs first in every handler
(operation is one of OPERATIONS) and returns the Access granted (which box, and the role the
host names the caller by, an opaque short name), or raises an aiohttp HTTP error to refuse.
A box mount serves one box per request (box_id from `authorise`); a standalone mount serves
drops outside any box, each written only with its owner token and listed never. The handlers
stay thin and map the drop box's errors to HTTP.

Upload protocol (resumable, in parts):
  POST   {prefix}                  {"size": ciphertext bytes, ...} -> 201 {"id", "offset": 0, ...}
  GET    {prefix}/{doc}/upload     -> {"offset", "size"}        (where to resume)
  PATCH  {prefix}/{doc}/upload     Upload-Offset: n, body = bytes -> {"offset"}
  POST   {prefix}/{doc}/complete   body = encrypted metadata     -> the file, published
  GET    {prefix}                  -> {"documents": [...]}       (box only)
  GET    {prefix}/{doc}            -> the RFC 8188 ciphertext, streamed
"""

from __future__ import annotations

import inspect
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from . import safejson, store
from .storage import CHUNK_SIZE, Unavailable

log = logging.getLogger("filedrop")

OFFSET_HEADER = "Upload-Offset"
OWNER_HEADER = "X-Owner-Token"


OPERATIONS = ("list", "create", "upload_state", "upload_part", "complete", "metadata", "download", "delete")
BOX_OPERATIONS = tuple(op for op in OPERATIONS if op != "delete")  # a box's files go by its deadline
STANDALONE_OPERATIONS = tuple(op for op in OPERATIONS if op != "list")  # nobody lists every drop


@dataclass(frozen=True)
class Access:
    box_id: str | None  # None: a standalone drop
    role: str  # the host's name for the caller (stored as uploaded_by); unused by a standalone mount
    owner: str | None = None  # who new files count against for quotas (an opaque key of the host's)


Authorise = Callable[[web.Request, str], Awaitable[Access]]
BoxGetter = Callable[[web.Request], store.DropBox]
Route = tuple[str, str, Callable, str]

STATUS = {store.Gone: 404, store.TooBig: 413, store.BadUpload: 400, store.OffsetMismatch: 409,
          store.NotOwner: 403, store.OverQuota: 409, store.StorageFull: 507, store.StoreUnavailable: 503}


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
    def __init__(self, box: store.DropBox | BoxGetter, authorise: Authorise, *, standalone: bool = False,
                 on_gone: Callable[[web.Request], Awaitable[None] | None] | None = None):
        """`box` is the DropBox, or a callable finding it from the request (a host that builds it at
        start-up); `on_gone` is told of every request for an unknown, expired or deleted id (to
        rate-limit guessing); `authorise` may refuse a request before any lookup."""
        self.get_box = (lambda request: box) if isinstance(box, store.DropBox) else box
        self.authorise, self.standalone, self.on_gone = authorise, standalone, on_gone

    async def _grant(self, request: web.Request, operation: str) -> Access:
        """The host's decision, first thing in every handler."""
        access = await self.authorise(request, operation)
        if (access.box_id is None) != self.standalone:  # a host's mistake, never the caller's
            raise TypeError("authorise must name a box on a box mount, and none on a standalone mount")
        return access

    async def _call(self, request: web.Request, coro):
        try:
            return await coro
        except store.DropError as exc:
            if isinstance(exc, store.Gone) and self.on_gone is not None:
                counted = self.on_gone(request)
                if inspect.isawaitable(counted):  # a host counting in its database
                    await counted
            raise _http_error(exc) from None

    async def list(self, request: web.Request) -> web.Response:
        access = await self._grant(request, "list")
        items = await self.get_box(request).list_box(access.box_id)
        return web.json_response({"documents": [f.public() for f in items]})

    async def create(self, request: web.Request) -> web.Response:
        access = await self._grant(request, "create")
        try:
            body = safejson.loads(await request.read())
            size = body["size"]  # a whole number: the store refuses 65557.5 rather than truncate it
            expires_in = float(body["expires_in"]) if self.standalone and body.get("expires_in") else None
            # absent or null: no limit; 0 is refused by the store (it never meant "unlimited")
            max_downloads = body.get("max_downloads") if self.standalone else None
        except (ValueError, KeyError, TypeError, AttributeError):
            raise _bad_request('expected JSON {"size": n}') from None
        created, owner_token = await self._call(request, self.get_box(request).create(
            size=size, uploaded_by=access.role if not self.standalone else store.STANDALONE,
            box_id=access.box_id, owner=access.owner, expires_in=expires_in, max_downloads=max_downloads))
        answer = {**created.public(), "offset": 0}
        if owner_token:
            answer["owner_token"] = owner_token
        return web.json_response(answer, status=201)

    def _owner(self, request: web.Request) -> str | None:
        """Standalone uploads are written only by whoever holds the owner token; the store
        checks it on the row it reads anyway (None: a box, where `authorise` decided)."""
        return request.headers.get(OWNER_HEADER, "") if self.standalone else None

    async def upload_state(self, request: web.Request) -> web.Response:
        access = await self._grant(request, "upload_state")
        found = await self._call(request, self.get_box(request).get(
            request.match_info["doc"], access.box_id, owner_token=self._owner(request)))
        return web.json_response({"offset": found.received, "size": found.size, "state": found.state},
                                 headers={OFFSET_HEADER: str(found.received)})

    async def upload_part(self, request: web.Request) -> web.Response:
        access = await self._grant(request, "upload_part")
        try:
            offset = int(request.headers[OFFSET_HEADER])
        except (KeyError, ValueError):
            raise _bad_request("Upload-Offset header required") from None
        received = await self._call(request, self.get_box(request).upload_part(
            request.match_info["doc"], access.box_id, offset,
            request.content.iter_chunked(CHUNK_SIZE), request.content_length, owner_token=self._owner(request)))
        return web.json_response({"offset": received}, headers={OFFSET_HEADER: str(received)})

    async def complete(self, request: web.Request) -> web.Response:
        access = await self._grant(request, "complete")
        meta = await request.read()
        done = await self._call(request, self.get_box(request).complete(
            request.match_info["doc"], access.box_id, meta, owner_token=self._owner(request)))
        return web.json_response(done.public())

    async def metadata(self, request: web.Request) -> web.Response:
        access = await self._grant(request, "metadata")
        found = await self._call(request, self.get_box(request).get(request.match_info["doc"], access.box_id, ready=True))
        return web.Response(body=found.meta, content_type="application/octet-stream")

    async def download(self, request: web.Request) -> web.StreamResponse:
        access = await self._grant(request, "download")
        found = await self._call(request, self.get_box(request).start_download(
            request.match_info["doc"], access.box_id, downloader=access.role))
        try:
            async with self.get_box(request).storage.reading(found.id) as chunks:
                response = web.StreamResponse(headers={
                    "Content-Type": "application/octet-stream", "Content-Length": str(found.size),
                    "Content-Disposition": "attachment", "Cache-Control": "no-store"})
                await response.prepare(request)
                try:
                    async for chunk in chunks:
                        await response.write(chunk)
                except Unavailable:
                    # the headers are gone: cut the connection, the client sees a short body
                    log.warning("document store failed mid-download")
                    if request.transport is not None:
                        request.transport.close()
                    return response
                await response.write_eof()
        except FileNotFoundError:
            raise _http_error(store.Gone("no such file")) from None
        except Unavailable:
            raise _http_error(store.StoreUnavailable("the document store cannot be reached")) from None
        # only a transfer that went to its last byte is a download (a cut one raised or returned above)
        try:
            await self.get_box(request).finish_download(found.id, access.box_id, downloader=access.role)
        except store.DropError:
            pass  # deleted meanwhile: nothing left to count
        except Exception as exc:  # the answer is sent: a failed count must not turn it into an error
            log.warning("download sent but not counted: %s", type(exc).__name__)
        return response

    async def delete(self, request: web.Request) -> web.Response:
        """Standalone drops only: the sender deletes with the owner token."""
        await self._grant(request, "delete")
        await self._call(request, self.get_box(request).delete_owned(
            request.match_info["doc"], request.headers.get(OWNER_HEADER, "")))
        return web.json_response({"deleted": True})


def routes(prefix: str, authorise: Authorise, box: store.DropBox | BoxGetter, *, standalone: bool = False,
           names: Mapping[str, str] | str | None = None,
           on_gone: Callable[[web.Request], Awaitable[None] | None] | None = None) -> list[Route]:
    """(method, path, handler, name) rows serving the drop box under `prefix`, for a host's route
    table. `names` maps each operation to route (list, create, upload_state, upload_part, complete,
    metadata, download; delete for a standalone mount) to its route name: operations left out are
    not routed. A string instead names every operation of the mount `{names}_{operation}`; by
    default, `filedrop_{prefix}_{operation}` (prefix "/box/{id}" gives filedrop_box_id_create)."""
    allowed = STANDALONE_OPERATIONS if standalone else BOX_OPERATIONS
    if names is None:
        names = "filedrop_" + (re.sub(r"\W+", "_", prefix).strip("_") or "root")
    if isinstance(names, str):
        names = {op: f"{names}_{op}" for op in allowed}
    if not set(names) <= set(allowed):
        raise ValueError(f"a {'standalone' if standalone else 'box'} mount serves only {allowed}, "
                         f"not {sorted(set(names) - set(allowed))}")
    handlers = DropHandlers(box, authorise, standalone=standalone, on_gone=on_gone)
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


def mount(router: web.UrlDispatcher, prefix: str, authorise: Authorise, box: store.DropBox | BoxGetter,
          **options) -> list[Route]:
    """Add the drop box's routes under `prefix` to an aiohttp router (options as for `routes`)."""
    rows = routes(prefix, authorise, box, **options)
    for method, path, handler, name in rows:
        router.add_route(method, path, handler, name=name)
    return rows
