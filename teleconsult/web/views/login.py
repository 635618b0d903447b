"""Login: password, then TOTP (enrolment with a QR code on first login), logout."""

from __future__ import annotations

import io

import segno
from aiohttp import web
from aiohttp_session import get_session
from markupsafe import Markup

from ... import accounts, credential_checks
from ..auth import end_login, finish_login, pending_clinician, start_login
from ...errors import AuthenticationFailed, RateLimited
from ..appkeys import services_of
from ..bodies import read_form
from ..templating import render
from ..trusted_device import remember_device, trusted_device

ENROL_SECRET = "totp_enrol_secret"


async def login_page(request: web.Request) -> web.Response:
    return await render(request, "login.html", {"error": None, "email": ""})


async def login_submit(request: web.Request) -> web.Response:
    form = await read_form(request)
    email = str(form.get("email", "")).strip().lower()
    password = str(form.get("password", ""))
    services = services_of(request)
    device_id = trusted_device(request, services.settings, email)
    try:
        clinician = await credential_checks.check_password(services, email, password, request.remote or "unknown",
                                                           device_id)
    except RateLimited:
        return await render(request, "login.html", {"error": "throttled", "email": email}, status=429)
    except AuthenticationFailed:
        return await render(request, "login.html", {"error": "wrong", "email": email}, status=401)
    await start_login(request, clinician)
    raise web.HTTPSeeOther("/login/totp" if clinician.totp_enabled else "/login/totp/enrol")


def _qr_svg(uri: str) -> Markup:
    buf = io.BytesIO()
    segno.make(uri, error="m").save(buf, kind="svg", scale=5, xmldecl=False, svgns=True,
                                    title="QR code", nl=False)
    return Markup(buf.getvalue().decode("utf-8"))


async def enrol_page(request: web.Request) -> web.Response:
    clinician = await pending_clinician(request)
    if clinician.totp_enabled:
        raise web.HTTPSeeOther("/login/totp")
    session = await get_session(request)
    secret = session.get(ENROL_SECRET) or accounts.new_totp_secret()
    session[ENROL_SECRET] = secret
    uri = accounts.totp_uri(secret, clinician.email)
    return await render(request, "totp_enrol.html", {"qr_svg": _qr_svg(uri), "secret": secret, "error": None})


async def enrol_submit(request: web.Request) -> web.Response:
    clinician = await pending_clinician(request)
    session = await get_session(request)
    secret = session.get(ENROL_SECRET)
    if not secret or clinician.totp_enabled:
        raise web.HTTPSeeOther("/login")
    form = await read_form(request)
    try:
        await credential_checks.check_enrolment(services_of(request), clinician, secret, str(form.get("code", "")))
    except (AuthenticationFailed, RateLimited) as exc:
        uri = accounts.totp_uri(secret, clinician.email)
        status, error = (429, "throttled") if isinstance(exc, RateLimited) else (401, "wrong")
        return await render(request, "totp_enrol.html",
                            {"qr_svg": _qr_svg(uri), "secret": secret, "error": error}, status=status)
    return await _logged_in(request, clinician)


async def totp_page(request: web.Request) -> web.Response:
    await pending_clinician(request)
    return await render(request, "totp.html", {"error": None})


async def totp_submit(request: web.Request) -> web.Response:
    clinician = await pending_clinician(request)
    form = await read_form(request)
    try:
        await credential_checks.check_totp(services_of(request), clinician, str(form.get("code", "")))
    except RateLimited:
        return await render(request, "totp.html", {"error": "throttled"}, status=429)
    except AuthenticationFailed:
        return await render(request, "totp.html", {"error": "wrong"}, status=401)
    return await _logged_in(request, clinician)


async def _logged_in(request: web.Request, clinician) -> web.Response:
    """Both factors right: the session is the clinician's, and this browser becomes a trusted device."""
    await finish_login(request, clinician)
    response = web.HTTPSeeOther("/")
    remember_device(response, services_of(request).settings, clinician.email)
    raise response


async def logout(request: web.Request) -> web.Response:
    """Ends the session on the server: a copy of the cookie made before is worth nothing after."""
    await end_login(request)
    raise web.HTTPSeeOther("/login")
