"""The clinician's own account: change the password (signs out every other session)."""

from __future__ import annotations

from aiohttp import web

from ... import accounts, credential_checks
from ..auth import finish_login, require_clinician
from ...errors import AuthenticationFailed, RateLimited
from ..appkeys import services_of
from ..bodies import read_form
from ..templating import render


async def _page(request: web.Request, clinician, message: str | None = None, status: int = 200) -> web.Response:
    return await render(request, "account.html", {
        "clinician": clinician, "message": message, "min_length": accounts.MIN_PASSWORD_LENGTH}, status=status)


async def account_page(request: web.Request) -> web.Response:
    return await _page(request, await require_clinician(request))


async def password_submit(request: web.Request) -> web.Response:
    clinician = await require_clinician(request)
    form = await read_form(request)
    current, new = str(form.get("current_password", "")), str(form.get("new_password", ""))
    if new != str(form.get("confirm_password", "")):
        return await _page(request, clinician, "mismatch", status=400)
    if len(new) < accounts.MIN_PASSWORD_LENGTH:
        return await _page(request, clinician, "too_short", status=400)
    try:
        clinician = await credential_checks.change_password(services_of(request), clinician, current, new)
    except RateLimited:
        return await _page(request, clinician, "throttled", status=429)
    except AuthenticationFailed:
        return await _page(request, clinician, "wrong", status=401)
    await finish_login(request, clinician)  # this session stays signed in, with the new epoch
    return await _page(request, clinician, "changed")
