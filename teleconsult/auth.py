"""Who is calling: the clinician of the session cookie, or of a Bearer API token."""

from __future__ import annotations

import secrets

from aiohttp import web
from aiohttp_session import get_session, new_session

from . import accounts
from .accounts import Clinician
from .errors import AuthenticationFailed, NotFound
from .keys import engine_key

SESSION_CLINICIAN = "clinician_id"
SESSION_PENDING = "pending_clinician_id"  # password checked, second factor not yet


async def session_clinician(request: web.Request) -> Clinician | None:
    session = await get_session(request)
    clinician_id = session.get(SESSION_CLINICIAN)
    if not clinician_id:
        return None
    try:
        return await accounts.get_clinician(request.app[engine_key], clinician_id)
    except NotFound:
        session.invalidate()
        return None


async def require_clinician(request: web.Request) -> Clinician:
    """For dashboard pages: redirect to the login page when nobody is logged in."""
    clinician = await session_clinician(request)
    if clinician is None:
        if request.method == "GET" and "text/html" in request.headers.get("Accept", "text/html"):
            raise web.HTTPSeeOther("/login")
        raise AuthenticationFailed("login required")
    return clinician


async def api_clinician(request: web.Request) -> Clinician:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("Bearer API token required")
    return await accounts.clinician_for_api_token(request.app[engine_key], token.strip())


async def start_login(request: web.Request, clinician: Clinician) -> None:
    """Password accepted: a fresh session (no fixation) that only knows the second factor is due."""
    session = await new_session(request)
    session[SESSION_PENDING] = clinician.id
    session["csrf"] = secrets.token_urlsafe(32)


async def pending_clinician(request: web.Request) -> Clinician:
    session = await get_session(request)
    clinician_id = session.get(SESSION_PENDING)
    if not clinician_id:
        raise web.HTTPSeeOther("/login")
    return await accounts.get_clinician(request.app[engine_key], clinician_id)


async def finish_login(request: web.Request, clinician: Clinician) -> None:
    session = await new_session(request)
    session[SESSION_CLINICIAN] = clinician.id
    session["csrf"] = secrets.token_urlsafe(32)
