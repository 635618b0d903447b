"""A browser where a clinician has fully logged in (password and TOTP) is remembered by a
signed cookie, so that password guessing against the account cannot lock the clinician out.

Without the cookie, failed logins count against the account and against the client's address;
with a valid cookie for the email being tried, they count only against that device. An
attacker can therefore make the account wait on new devices, never on the clinician's own
(OWASP's "device cookies" against lockout attacks). The cookie names no account: it holds a
random device id and an HMAC over it and the account's email, under a key derived from
session_secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from aiohttp import web

from ..settings import Settings

COOKIE = "tc_device"
COOKIE_PATH = "/login"
MAX_AGE_SECONDS = 365 * 86400


def _key(settings: Settings) -> bytes:
    return hashlib.sha256(b"teleconsult/v1/trusted-device" + settings.session_secret.encode()).digest()


def _signature(settings: Settings, email: str, device_id: str) -> str:
    message = email.strip().lower().encode() + b"\n" + device_id.encode()
    return hmac.new(_key(settings), message, hashlib.sha256).hexdigest()


def trusted_device(request: web.Request, settings: Settings, email: str) -> str | None:
    """The device id if this browser's cookie was issued for `email`; None otherwise."""
    device_id, _, signature = request.cookies.get(COOKIE, "").partition(".")
    if not device_id or not signature:
        return None
    if not hmac.compare_digest(signature, _signature(settings, email, device_id)):
        return None
    return device_id


def remember_device(response: web.StreamResponse, settings: Settings, email: str) -> None:
    device_id = secrets.token_urlsafe(16)
    response.set_cookie(COOKIE, f"{device_id}.{_signature(settings, email, device_id)}", max_age=MAX_AGE_SECONDS,
                        path=COOKIE_PATH, httponly=True, samesite="Lax", secure=settings.secure_cookies)
