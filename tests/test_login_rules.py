"""Login rules that each stop one attack, tried against the running app: throttles per address
and per second factor, a reset that catches a half-finished login, an enrolled second factor
that a password alone cannot replace, and unknown emails that cost as much as known ones."""

import pyotp
import sqlalchemy as sa

from teleconsult import accounts
from teleconsult.db_tables import clinicians
from conftest import PASSWORD, add_clinician, csrf_from


async def _password_step(client, base, email, password=PASSWORD):
    """Through the login form; returns (status, final path, page html)."""
    async with client.get(base + "/login") as r:
        csrf = csrf_from(await r.text())
    async with client.post(base + "/login", data={"email": email, "password": password, "csrf_token": csrf}) as r:
        return r.status, r.url.path, await r.text()


async def test_a_password_reset_between_the_password_and_the_code_sends_the_login_back_to_the_start(live, http):
    app = await live()
    doctor = await add_clinician(app.engine)
    intruder = http()  # knows the password, not yet the code
    status, path, html = await _password_step(intruder, app.url, doctor.email)
    assert path == "/login/totp"
    await accounts.set_password(app.engine, doctor.email, "a brand new password")  # the host resets it
    async with intruder.post(app.url + "/login/totp", data={
            "code": pyotp.TOTP(doctor.totp_secret).now(), "csrf_token": csrf_from(html)}) as r:
        assert r.url.path == "/login", r.url
    async with intruder.get(app.url + "/dashboard/state", headers={"Accept": "application/json"}) as r:
        assert r.status == 401


async def test_one_address_trying_many_accounts_is_throttled(live, http):
    app = await live(login_max_failures=3)
    await add_clinician(app.engine)
    client = http()
    statuses = [(await _password_step(client, app.url, f"guess{i}@example.org", "wrong password!"))[0]
                for i in range(5)]
    assert statuses == [401, 401, 401, 429, 429], statuses


async def test_wrong_second_factor_codes_are_throttled_even_before_the_right_one(live, http):
    app = await live(login_max_failures=3)
    doctor = await add_clinician(app.engine)
    client = http()
    _, path, html = await _password_step(client, app.url, doctor.email)
    assert path == "/login/totp"
    csrf = csrf_from(html)
    right = pyotp.TOTP(doctor.totp_secret).now()
    wrong = f"{(int(right) + 500_000) % 1_000_000:06d}"
    statuses = []
    for code in (wrong, wrong, wrong, right):
        async with client.post(app.url + "/login/totp", data={"code": code, "csrf_token": csrf}) as r:
            statuses.append(r.status)
            last_path = r.url.path
    assert statuses == [401, 401, 401, 429] and last_path == "/login/totp", (statuses, last_path)


async def test_wrong_enrolment_codes_are_throttled(live, http):
    app = await live(login_max_failures=3)
    doctor = await add_clinician(app.engine, enrolled=False)
    client = http()
    _, path, html = await _password_step(client, app.url, doctor.email)
    assert path == "/login/totp/enrol"
    statuses = []
    for _ in range(4):
        async with client.post(app.url + "/login/totp/enrol", data={"code": "000000", "csrf_token": csrf_from(html)},
                               allow_redirects=False) as r:
            statuses.append(r.status)
    assert statuses == [401, 401, 401, 429], statuses


async def test_an_enrolled_second_factor_cannot_be_replaced_with_the_password_alone(live, http):
    """An intruder with the password opens the enrolment page before the clinician enrols;
    once the clinician has enrolled, the intruder's own code must not take over."""
    app = await live()
    doctor = await add_clinician(app.engine, enrolled=False)
    intruder, clinician = http(), http()
    _, path, intruder_html = await _password_step(intruder, app.url, doctor.email)
    assert path == "/login/totp/enrol"
    intruder_secret = _secret_on(intruder_html)

    _, _, html = await _password_step(clinician, app.url, doctor.email)
    own_secret = _secret_on(html)
    async with clinician.post(app.url + "/login/totp/enrol", data={
            "code": pyotp.TOTP(own_secret).now(), "csrf_token": csrf_from(html)}) as r:
        assert r.url.path == "/"

    async with intruder.post(app.url + "/login/totp/enrol", data={
            "code": pyotp.TOTP(intruder_secret).now(), "csrf_token": csrf_from(intruder_html)}) as r:
        assert r.url.path != "/", "the intruder enrolled a second factor of their own"
    async with intruder.get(app.url + "/dashboard/state", headers={"Accept": "application/json"}) as r:
        assert r.status == 401
    async with app.engine.connect() as conn:
        stored = await conn.scalar(sa.select(clinicians.c.totp_secret).where(clinicians.c.id == doctor.id))
    assert stored == own_secret


def _secret_on(html: str) -> str:
    import re
    return re.search(r'id="totp-secret">([A-Z2-7]+)<', html).group(1)


async def test_an_unknown_email_costs_one_password_hash_like_a_known_one(live, monkeypatch):
    app = await live()
    doctor = await add_clinician(app.engine)
    checked = []
    real = accounts._password_matches

    async def counting(stored, password):
        checked.append(stored)
        return await real(stored, password)

    monkeypatch.setattr(accounts, "_password_matches", counting)
    for email in ("nobody@example.org", doctor.email):
        try:
            await accounts.verify_password(app.engine, email, "wrong password!")
        except accounts.AuthenticationFailed:
            pass
        else:
            raise AssertionError("a wrong password was accepted")
    assert len(checked) == 2 and all(h.startswith("$argon2") for h in checked), checked
