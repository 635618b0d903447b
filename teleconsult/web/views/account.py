"""The clinician's own account: change the password (signs out every other session)."""

from __future__ import annotations

from aiohttp import web

from filedrop import safejson

from ... import accounts, clinician_keys, credential_checks, sealing
from ...sealing import WrappedKey
from ..auth import finish_login, require_clinician
from ...errors import AuthenticationFailed, InvalidInput, RateLimited
from ..appkeys import services_of
from ..bodies import read_form
from ..templating import render


async def _page(request: web.Request, clinician, message: str | None = None, status: int = 200) -> web.Response:
    key = await clinician_keys.get_key(services_of(request).engine, clinician.id)
    return await render(request, "account.html", {
        "clinician": clinician, "message": message, "min_length": accounts.MIN_PASSWORD_LENGTH,
        "key": key.for_owner() if key else None}, status=status)


def _browser_key(form) -> tuple[WrappedKey | None, tuple[str, WrappedKey] | None]:
    """What static/js/account.js put in the form: the clinician key re-wrapped under the new
    password (or, for an account without one, a new key pair). InvalidInput if malformed."""
    try:
        wrapped = safejson.loads(str(form.get("new_wrapped_key") or "null"))
    except ValueError:
        raise InvalidInput("the re-wrapped key is not JSON") from None
    if wrapped is None:
        return None, None
    if form.get("new_public_key"):
        return None, clinician_keys.proposed_key(str(form["new_public_key"]), wrapped)
    try:
        if not isinstance(wrapped, dict):
            raise sealing.MalformedValue("not an object")
        return sealing.check_wrapped_key(WrappedKey.from_dict(wrapped)), None
    except sealing.SealingError as exc:
        raise InvalidInput(f"the re-wrapped key is not valid: {exc}") from None


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
        rewrapped, new_key = _browser_key(form)
        clinician = await credential_checks.change_password(services_of(request), clinician, current, new,
                                                            rewrapped=rewrapped, new_key=new_key)
    except RateLimited:
        return await _page(request, clinician, "throttled", status=429)
    except AuthenticationFailed:
        return await _page(request, clinician, "wrong", status=401)
    except InvalidInput:
        # the browser did not re-wrap the clinician key (no JavaScript, or a bad value): the
        # password stays as it was, so that the key still opens
        return await _page(request, clinician, "key_required", status=400)
    await finish_login(request, clinician)  # this session stays signed in, with the new epoch
    return await _page(request, clinician, "changed")
