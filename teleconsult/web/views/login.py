"""Login: password, then TOTP (enrolment with a QR code on first login), logout."""

from __future__ import annotations

import io

import segno
from aiohttp import web
from aiohttp_session import get_session
from markupsafe import Markup

from ... import accounts
from ..auth import finish_login, pending_clinician, start_login
from ...errors import AuthenticationFailed, RateLimited
from ..appkeys import services_of
from ..templating import render

ENROL_SECRET = "totp_enrol_secret"


def _client_address(request: web.Request) -> str:
    return request.remote or "unknown"


async def login_page(request: web.Request) -> web.Response:
    return await render(request, "login.html", {"error": None, "email": ""})


async def login_submit(request: web.Request) -> web.Response:
    form = await request.post()
    email = str(form.get("email", "")).strip().lower()
    password = str(form.get("password", ""))
    limiter = services_of(request).limiters.login
    keys = (f"addr:{_client_address(request)}", f"email:{email}")
    try:
        for key in keys:
            limiter.check(key)
    except RateLimited:
        return await render(request, "login.html", {"error": "throttled", "email": email}, status=429)
    try:
        clinician = await accounts.verify_password(services_of(request).engine, email, password)
    except AuthenticationFailed:
        for key in keys:
            limiter.hit(key)
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
    form = await request.post()
    limiter = services_of(request).limiters.login
    limiter.check(f"totp:{clinician.id}")
    try:
        await accounts.enable_totp(services_of(request).engine, clinician.id, secret, str(form.get("code", "")))
    except AuthenticationFailed:
        limiter.hit(f"totp:{clinician.id}")
        uri = accounts.totp_uri(secret, clinician.email)
        return await render(request, "totp_enrol.html",
                            {"qr_svg": _qr_svg(uri), "secret": secret, "error": "wrong"}, status=401)
    await finish_login(request, clinician)
    raise web.HTTPSeeOther("/")


async def totp_page(request: web.Request) -> web.Response:
    await pending_clinician(request)
    return await render(request, "totp.html", {"error": None})


async def totp_submit(request: web.Request) -> web.Response:
    clinician = await pending_clinician(request)
    form = await request.post()
    limiter = services_of(request).limiters.login
    try:
        limiter.check(f"totp:{clinician.id}")
    except RateLimited:
        return await render(request, "totp.html", {"error": "throttled"}, status=429)
    try:
        await accounts.verify_totp(services_of(request).engine, clinician.id, str(form.get("code", "")))
    except AuthenticationFailed:
        limiter.hit(f"totp:{clinician.id}")
        return await render(request, "totp.html", {"error": "wrong"}, status=401)
    await finish_login(request, clinician)
    raise web.HTTPSeeOther("/")


async def logout(request: web.Request) -> web.Response:
    session = await get_session(request)
    session.invalidate()
    raise web.HTTPSeeOther("/login")
