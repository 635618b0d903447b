"""Secrets are compared in constant time.

Timing cannot be measured reliably on a shared machine, so each comparison site is observed
instead: `hmac.compare_digest` (which `secrets.compare_digest` is) is wrapped by a recorder
that still compares, and each test checks that the secret it sent went through it. A site
that falls back to `==` fails its test.

Not compared here, by design: passwords (argon2's own verification) and API tokens (looked
up by their SHA-256 hash, so the time of the lookup says nothing about the token).
"""

import hashlib
import hmac
import secrets

import pyotp
import pytest

from filedrop import deletion
from teleconsult import accounts
from teleconsult.jitsi import events
from conftest import csrf_from

REAL = hmac.compare_digest


@pytest.fixture
def compared(monkeypatch):
    """Every pair of values given to compare_digest while the test runs, as text."""
    calls: list[tuple[str, str]] = []

    def recorder(a, b):
        text = [x.decode("latin-1") if isinstance(x, bytes) else str(x) for x in (a, b)]
        calls.append((text[0], text[1]))
        return REAL(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recorder)
    monkeypatch.setattr(secrets, "compare_digest", recorder)
    return calls


def _went_through(calls, value: str) -> bool:
    return any(value in pair for pair in calls)


async def test_the_csrf_token_is_compared_in_constant_time(live, http, compared):
    app = await live()
    client = http()
    async with client.get(app.url + "/login") as r:
        token = csrf_from(await r.text())
    async with client.post(app.url + "/login", data={"email": "x@example.org", "password": "wrong password",
                                                     "csrf_token": token}) as r:
        assert r.status == 401  # past the CSRF check, refused by the password
    assert _went_through(compared, token), compared


def test_totp_codes_are_compared_in_constant_time(compared):
    secret = pyotp.random_base32()
    code = pyotp.TOTP(secret).at(1_700_000_000)
    assert accounts._matching_counter(secret, code, 1_700_000_000) is not None
    assert _went_through(compared, code), compared


def test_room_event_signatures_are_compared_in_constant_time(compared):
    secret, body = b"s" * 40, b'{"event_name": "muc-room-created"}'
    signature = events.sign(secret, 1_700_000_000, body)
    events.verify(secret, "1700000000", signature, body, now=1_700_000_000)
    assert _went_through(compared, signature.removeprefix("sha256=")), compared


def test_room_event_bearer_tokens_are_compared_in_constant_time(compared):
    secret = "b" * 40
    events.verify_bearer(secret.encode(), f"Bearer {secret}")
    assert _went_through(compared, secret), compared


def test_drop_owner_tokens_are_compared_in_constant_time(compared):
    token = "owner-token-" + "o" * 20
    stored = hashlib.sha256(token.encode()).hexdigest()
    deletion.check_owner(stored, None, token)
    assert _went_through(compared, stored), compared


async def test_the_metrics_token_is_compared_in_constant_time(live, http, compared):
    token = "m" * 40
    app = await live(metrics_token=token)
    async with http().get(app.url + "/metrics", headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200
    assert _went_through(compared, token), compared


def test_device_cookie_signatures_are_compared_in_constant_time(settings_factory, compared):
    from aiohttp.test_utils import make_mocked_request
    from teleconsult.web import trusted_device
    settings = settings_factory()
    signature = trusted_device._signature(settings, "dr@example.org", "device-1")
    request = make_mocked_request("POST", "/login", headers={"Cookie": f"tc_device=device-1.{signature}"})
    assert trusted_device.trusted_device(request, settings, "dr@example.org") == "device-1"
    assert _went_through(compared, signature), compared
