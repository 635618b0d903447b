"""Who is calling: the clinician of the session cookie, or of a Bearer API token.

The (encrypted) session cookie carries the token of a server-side session (sessions.py), checked
against the database on every authenticated request: logout, a password change, a TOTP reset or
the idle timeout end it on the server, and any copy of the cookie with it."""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp_session import get_session, new_session

from .. import accounts, sessions
from ..accounts import Clinician
from ..errors import AuthenticationFailed, NotFound
from .appkeys import services_of

SESSION_TOKEN = "session"  # the server-side session's token


async def _server_session(request: web.Request, *, forget: bool = True) -> sessions.Session | None:
    """The server-side session this cookie names, if still valid; otherwise None, and the cookie
    is emptied when `forget` (not in a live stream: its headers are sent already)."""
    cookie = await get_session(request)
    token = cookie.get(SESSION_TOKEN)
    if not isinstance(token, str):
        return None
    services = services_of(request)
    found = await sessions.check_session(services.engine, token, now=time.time(),
                                         idle_seconds=services.settings.session_idle_minutes * 60)
    if found is None and forget:
        cookie.invalidate()
    return found


async def _clinician_of(request: web.Request, *, verified: bool) -> Clinician | None:
    found = await _server_session(request)
    if found is None or found.verified != verified:
        return None
    try:
        return await accounts.get_clinician(services_of(request).engine, found.clinician_id)
    except NotFound:
        return None


async def session_clinician(request: web.Request) -> Clinician | None:
    """The fully logged-in clinician of this request's session, or None."""
    return await _clinician_of(request, verified=True)


async def require_clinician(request: web.Request) -> Clinician:
    """For dashboard pages: redirect to the login page when nobody is logged in."""
    clinician = await session_clinician(request)
    if clinician is None:
        if request.method == "GET" and "text/html" in request.headers.get("Accept", "text/html"):
            raise web.HTTPSeeOther("/login")
        raise AuthenticationFailed("login required")
    return clinician


def session_still_valid(request: web.Request) -> Callable[[], Awaitable[bool]]:
    """For a live stream: asks again whether this request's login session is still valid."""
    async def ask() -> bool:
        found = await _server_session(request, forget=False)
        return found is not None and found.verified
    return ask


def bearer_token(request: web.Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None when absent or malformed."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


async def api_clinician(request: web.Request) -> Clinician:
    token = bearer_token(request)
    if token is None:
        raise AuthenticationFailed("Bearer API token required")
    return await accounts.clinician_for_api_token(services_of(request).engine, token)


async def _fresh_session(request: web.Request, clinician: Clinician, *, verified: bool) -> None:
    """A new cookie session (no fixation) naming a new server-side session; the previous one ends."""
    services = services_of(request)
    previous = (await get_session(request)).get(SESSION_TOKEN)
    if isinstance(previous, str):
        await sessions.end_session(services.engine, previous)
    token = await sessions.open_session(services.engine, clinician.id, verified=verified, now=time.time(),
                                        idle_seconds=services.settings.session_idle_minutes * 60)
    cookie = await new_session(request)
    cookie[SESSION_TOKEN] = token
    cookie["csrf"] = secrets.token_urlsafe(32)


async def start_login(request: web.Request, clinician: Clinician) -> None:
    """Password accepted: a session that only knows the second factor is due."""
    await _fresh_session(request, clinician, verified=False)


async def pending_clinician(request: web.Request) -> Clinician:
    """The clinician between the password and the second factor (sent to /login otherwise,
    also when a password change or a TOTP reset happened meanwhile)."""
    clinician = await _clinician_of(request, verified=False)
    if clinician is None:
        raise web.HTTPSeeOther("/login")
    return clinician


async def finish_login(request: web.Request, clinician: Clinician) -> None:
    """Logged in: a fresh session (also after a password change, to keep this one signed in)."""
    await _fresh_session(request, clinician, verified=True)


async def end_login(request: web.Request) -> None:
    """Logout: the server-side session ends, then the cookie is emptied."""
    cookie = await get_session(request)
    token = cookie.get(SESSION_TOKEN)
    if isinstance(token, str):
        await sessions.end_session(services_of(request).engine, token)
    cookie.invalidate()
