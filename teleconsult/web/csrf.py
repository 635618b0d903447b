"""CSRF protection: a per-session token, required on every state-changing request that a
cookie authenticates (form field or X-CSRF-Token header), compared in constant time."""

from __future__ import annotations

import logging
import secrets

from aiohttp import web
from aiohttp_session import get_session

from .bodies import read_form

log = logging.getLogger("teleconsult.security")

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Paths authenticated by something other than a cookie (Bearer token, HMAC signature):
# a cross-site page cannot forge those, so CSRF does not apply.
CSRF_EXEMPT_PREFIXES = ("/api/",)


async def csrf_token(request: web.Request) -> str:
    session = await get_session(request)
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


@web.middleware
async def csrf_middleware(request: web.Request, handler):
    if request.method in SAFE_METHODS or request.path.startswith(CSRF_EXEMPT_PREFIXES):
        return await handler(request)
    session = await get_session(request)
    expected = session.get("csrf")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        sent = (await read_form(request)).get(CSRF_FIELD)
    if not expected or not isinstance(sent, str) or not secrets.compare_digest(expected, sent):
        log.warning("csrf refused: %s %s", request.method, request.match_info.route.name or "?")
        raise web.HTTPForbidden(reason="CSRF token missing or wrong")
    return await handler(request)
