"""Login: password, then TOTP (enrolment with a QR code on first login), logout."""

from __future__ import annotations

import io

import segno
from aiohttp import web
from aiohttp_session import get_session
from markupsafe import Markup

from filedrop import safejson

from ... import accounts, clinician_keys, credential_checks
from ...sealing import WrappedKey
from ..auth import end_login, finish_login, pending_clinician, start_login
from ...errors import AuthenticationFailed, InvalidInput, RateLimited
from ..appkeys import services_of
from ..bodies import read_form, read_json
from ..templating import render
from ..trusted_device import remember_device, trusted_device

ENROL_SECRET = "totp_enrol_secret"
PROPOSED_KEY = "proposed_clinician_key"


async def login_page(request: web.Request) -> web.Response:
    return await render(request, "login.html", {"error": None, "email": ""})


async def key_parameters(request: web.Request) -> web.Response:
    """{salt, iterations} of the clinician key's wrapping, for the login page to derive the
    wrapping key before the form is sent; the same shape for any email (clinician_keys.py)."""
    body = await read_json(request)
    email = body.get("email") if isinstance(body, dict) else None
    if not isinstance(email, str) or not email.strip() or len(email) > 320:
        raise InvalidInput("an email is required")
    services = services_of(request)
    return web.json_response(await clinician_keys.key_parameters(
        services.engine, services.settings.session_secret, email))


def _proposed_key(form) -> dict | None:
    """The key pair the login page made in case the account has none (static/js/login.js),
    kept in the session until the second factor is passed; a malformed one is ignored."""
    try:
        public_key, wrapped = clinician_keys.proposed_key(
            str(form.get("new_public_key", "")), safejson.loads(str(form.get("new_wrapped_key", "null"))))
    except (InvalidInput, ValueError):
        return None
    return {"public_key": public_key, "wrapped": wrapped.as_dict()}


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
    if (proposal := _proposed_key(form)) is not None:
        (await get_session(request))[PROPOSED_KEY] = proposal
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
    """Both factors right: the session is the clinician's, and this browser becomes a trusted device.
    A key the login page made is kept now, if the account has none (clinician_keys.adopt_key)."""
    proposal = (await get_session(request)).get(PROPOSED_KEY)
    if proposal:
        await clinician_keys.adopt_key(services_of(request).engine, clinician.id, proposal["public_key"],
                                       WrappedKey.from_dict(proposal["wrapped"]))
    await finish_login(request, clinician)
    response = web.HTTPSeeOther("/")
    remember_device(response, services_of(request).settings, clinician.email)
    raise response


async def logout(request: web.Request) -> web.Response:
    """Ends the session on the server: a copy of the cookie made before is worth nothing after.
    The browser forgets the clinician key and any cached consultation secret (IndexedDB,
    localStorage): static/js/logout.js does it before the form is sent, Clear-Site-Data again."""
    await end_login(request)
    raise web.HTTPSeeOther("/login", headers={"Clear-Site-Data": '"storage"'})
