"""Who is calling: the clinician of the session cookie, or of a Bearer API token.

A session remembers the clinician's session epoch from its login; once a password change or a
TOTP reset has bumped it in the database, that session is refused (signed out)."""

from __future__ import annotations

import secrets

from aiohttp import web
from aiohttp_session import get_session, new_session

from .. import accounts
from ..accounts import Clinician
from ..errors import AuthenticationFailed, NotFound
from .appkeys import services_of

SESSION_CLINICIAN = "clinician_id"
SESSION_PENDING = "pending_clinician_id"  # password checked, second factor not yet
SESSION_EPOCH = "session_epoch"


async def session_clinician(request: web.Request) -> Clinician | None:
    session = await get_session(request)
    clinician_id = session.get(SESSION_CLINICIAN)
    if not clinician_id:
        return None
    try:
        clinician = await accounts.get_clinician(services_of(request).engine, clinician_id)
    except NotFound:
        clinician = None
    if clinician is None or session.get(SESSION_EPOCH) != clinician.session_epoch:
        session.invalidate()
        return None
    return clinician


async def require_clinician(request: web.Request) -> Clinician:
    """For dashboard pages: redirect to the login page when nobody is logged in."""
    clinician = await session_clinician(request)
    if clinician is None:
        if request.method == "GET" and "text/html" in request.headers.get("Accept", "text/html"):
            raise web.HTTPSeeOther("/login")
        raise AuthenticationFailed("login required")
    return clinician


def bearer_token(request: web.Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None when absent or malformed."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


async def api_clinician(request: web.Request) -> Clinician:
    token = bearer_token(request)
    if token is None:
        raise AuthenticationFailed("Bearer API token required")
    return await accounts.clinician_for_api_token(services_of(request).engine, token)


async def start_login(request: web.Request, clinician: Clinician) -> None:
    """Password accepted: a fresh session (no fixation) that only knows the second factor is due."""
    session = await new_session(request)
    session[SESSION_PENDING] = clinician.id
    session[SESSION_EPOCH] = clinician.session_epoch
    session["csrf"] = secrets.token_urlsafe(32)


async def pending_clinician(request: web.Request) -> Clinician:
    session = await get_session(request)
    clinician_id = session.get(SESSION_PENDING)
    if not clinician_id:
        raise web.HTTPSeeOther("/login")
    clinician = await accounts.get_clinician(services_of(request).engine, clinician_id)
    if session.get(SESSION_EPOCH) != clinician.session_epoch:  # password or TOTP reset meanwhile
        session.invalidate()
        raise web.HTTPSeeOther("/login")
    return clinician


async def finish_login(request: web.Request, clinician: Clinician) -> None:
    """Logged in: a fresh session (also after a password change, to keep this one signed in)."""
    session = await new_session(request)
    session[SESSION_CLINICIAN] = clinician.id
    session[SESSION_EPOCH] = clinician.session_epoch
    session["csrf"] = secrets.token_urlsafe(32)
