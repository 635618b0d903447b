"""Checking credentials under the guessing limits (DESIGN section 9).

Every check counts its attempt before it verifies, in one step with the limit's check
(`RateLimiter.attempt`): requests sent at once cannot all be verified. A right credential is
forgiven, so only failures use up an allowance. argon2 runs at most PASSWORD_CHECKS_AT_ONCE
at a time whoever asks (`services.password_checks`), which bounds its memory (64 MiB each).

Keys, by what is attacked:
- a password from a browser the clinician fully logged in from before (a trusted device, see
  web/trusted_device.py): that device only, so guessing elsewhere never locks the clinician out;
- a password from anywhere else: the account and the client's address;
- a TOTP code (password already right) and a password change: the account.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import accounts
from .accounts import Clinician

if TYPE_CHECKING:
    from .services import Services

PASSWORD_CHECKS_AT_ONCE = 2


def login_keys(email: str, client: str, device_id: str | None) -> tuple[str, ...]:
    if device_id is not None:
        return (f"device:{device_id}",)
    return (f"email:{email.strip().lower()}", f"addr:{client}")


async def check_password(services: Services, email: str, password: str, client: str,
                         device_id: str | None) -> Clinician:
    """The clinician, or AuthenticationFailed (counted), or RateLimited (nothing verified)."""
    attempt = await services.limiters.login.attempt(*login_keys(email, client, device_id))
    async with services.password_checks:
        clinician = await accounts.verify_password(services.engine, email, password)
    await attempt.forgive()
    return clinician


async def check_totp(services: Services, clinician: Clinician, code: str) -> None:
    attempt = await services.limiters.login.attempt(f"totp:{clinician.id}")
    await accounts.verify_totp(services.engine, clinician.id, code)
    await attempt.forgive()


async def check_enrolment(services: Services, clinician: Clinician, secret: str, code: str) -> None:
    attempt = await services.limiters.login.attempt(f"totp:{clinician.id}")
    await accounts.enable_totp(services.engine, clinician.id, secret, code)
    await attempt.forgive()


async def change_password(services: Services, clinician: Clinician, current: str, new: str,
                          **key) -> Clinician:
    """`key`: the clinician key re-wrapped (or made) by the browser, see accounts.change_password."""
    attempt = await services.limiters.login.attempt(f"password:{clinician.id}")
    async with services.password_checks:
        changed = await accounts.change_password(services.engine, clinician.id, current, new, **key)
    await attempt.forgive()
    return changed
