"""Request bodies from strangers: forms and JSON, every malformed one a 400, never a 500.

`read_form` is `request.post()` with every way a malformed body makes aiohttp's parser fail
turned into a 400.
aiohttp raises ValueError (no multipart boundary, a part without a name, a truncated body),
HttpProcessingError (a part header that is not a header: its message holds the raw bytes,
so it is never logged), RuntimeError (an unknown Content-Transfer-Encoding) and LookupError
(an unknown charset). `read_json` decodes through filedrop.safejson, the one JSON parser for
bodies (nesting too deep, integers too long, NaN: InvalidInput, so 400)."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDictProxy

from filedrop import safejson

from ..errors import InvalidInput

log = logging.getLogger("teleconsult.security")

MALFORMED = (ValueError, LookupError, RuntimeError, HttpProcessingError)


async def read_form(request: web.Request) -> MultiDictProxy:
    """The form fields (parsed once, then cached by aiohttp); 400 when the body is malformed."""
    try:
        return await request.post()
    except MALFORMED as exc:
        # the kind of error only: its message may repeat the client's bytes
        log.info("malformed form refused (400): %s %s", type(exc).__name__, request.match_info.route.name or "?")
        raise web.HTTPBadRequest(reason="Malformed form") from None


async def read_json(request: web.Request) -> Any:
    """The decoded JSON body (within the app's body size limit); InvalidInput (400) otherwise."""
    try:
        return safejson.loads(await request.read())
    except safejson.BadJSON as exc:
        raise InvalidInput(f"the body must be JSON ({exc})") from None
