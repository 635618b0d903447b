"""HTTP hardening: security headers on every response, and domain errors turned into clean
HTTP answers (never a stack trace to a user). CSRF lives in csrf.py."""

from __future__ import annotations

import logging

from aiohttp import web

from .. import db_busy
from ..client_address import Network, client_address
from ..errors import AuthenticationFailed, Conflict, DomainError, Forbidden, InvalidInput, NotFound, RateLimited
from .appkeys import services_of
from .templating import render

log = logging.getLogger("teleconsult.security")

RETRY_AFTER_SECONDS = 2
UNAVAILABLE_MESSAGE = "the server is busy: nothing was lost, try again in a moment"
FULL_MESSAGE = "the server is full: nothing was saved; tell the host"
BAD_VALUE_MESSAGE = "a value sent contains a character that cannot be stored (NUL)"

DOMAIN_STATUS = {
    NotFound: 404,
    Forbidden: 403,
    Conflict: 409,
    InvalidInput: 400,
    AuthenticationFailed: 401,
    RateLimited: 429,
    DomainError: 400,
}


def client_address_middleware(networks: tuple[Network, ...], header: str):
    """Sets `request.remote` to the client's address (teleconsult/client_address.py) for
    everything after it; a no-op without trusted proxies."""
    @web.middleware
    async def middleware(request: web.Request, handler):
        if not networks:
            return await handler(request)
        return await handler(request.clone(remote=client_address(request.remote, request.headers, networks, header)))
    return middleware


# Pages that show a PDF the clinician's browser holds (the writer's preview, static/js/writer.js)
# in an iframe from a blob: URL. Only these frame blob: URLs; every other page frames Jitsi alone.
# A blob: URL's document inherits this page's policy (no script of its own can run), and no
# object-src is needed: Chromium's PDF viewer is a frame, not a plugin.
PDF_PREVIEW_ROUTES = frozenset({"consultation_call"})


def content_security_policy(jitsi_origin: str, *, pdf_preview: bool = False) -> str:
    """Jitsi's origin (empty without Jitsi: the direct call needs no other origin) and our own."""
    frames = " ".join(part for part in (jitsi_origin, "blob:" if pdf_preview else "") if part) or "'none'"
    return "; ".join([
        "default-src 'none'",
        " ".join(part for part in ("script-src 'self'", jitsi_origin) if part),
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        f"frame-src {frames}",
        "worker-src 'self'",
        "font-src 'self'",
        "manifest-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ])


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: also covers static files, SSE streams and error pages."""
    settings = services_of(request).settings
    headers = response.headers
    route = request.match_info.route.name if request.match_info.route else None
    headers["Content-Security-Policy"] = content_security_policy(
        settings.jitsi_origin, pdf_preview=route in PDF_PREVIEW_ROUTES)
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    allowed = f'self "{settings.jitsi_origin}"' if settings.jitsi_origin else "self"
    headers["Permissions-Policy"] = (
        f"camera=({allowed}), microphone=({allowed}), display-capture=({allowed}), geolocation=(), "
        "interest-cohort=()")
    if settings.secure_cookies:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    if "Cache-Control" not in headers and not request.path.startswith("/static/"):
        headers["Cache-Control"] = "no-store"


def _wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", "")


async def _error_response(request: web.Request, status: int, message: str, headers=None) -> web.StreamResponse:
    if _wants_json(request):
        return web.json_response({"error": message, "status": status}, status=status, headers=headers)
    response = await render(request, "error.html", {"status": status, "message": message},
                            status=status, csrf=False)
    if headers:
        response.headers.update(headers)
    return response


@web.middleware
async def error_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise  # redirects, and errors that already carry a JSON body for API clients
        headers = {k: v for k, v in exc.headers.items() if k in ("Retry-After", "WWW-Authenticate", "Allow")}
        return await _error_response(request, exc.status, exc.reason, headers)
    except DomainError as exc:
        status = next(code for kind, code in DOMAIN_STATUS.items() if isinstance(exc, kind))
        headers = {"Retry-After": str(int(exc.retry_after) + 1)} if isinstance(exc, RateLimited) else None
        if status in (401, 403):
            log.warning("%s refused (%d): %s", request.match_info.route.name or "?", status, exc)
        return await _error_response(request, status, str(exc), headers)
    except Exception as exc:
        if db_busy.refused_value(exc):  # e.g. a NUL character, which PostgreSQL's text cannot hold
            log.warning("%s refused (400): a value the database cannot store", request.match_info.route.name or "?")
            return await _error_response(request, 400, BAD_VALUE_MESSAGE)
        reason = db_busy.unavailable(exc)
        if reason is not None:  # nothing was written; the page retries (Retry-After)
            log.warning("%s: database %s", request.match_info.route.name or "?", reason)
            status, message = (503, UNAVAILABLE_MESSAGE) if reason == db_busy.BUSY else (507, FULL_MESSAGE)
            return await _error_response(request, status, message, {"Retry-After": str(RETRY_AFTER_SECONDS)})
        log.exception("unhandled error in %s", request.match_info.route.name or "?")
        return await _error_response(request, 500, "internal error")
