"""Clinician account self-service: the host's commands (password, reset-totp, list) run as the
installed console script against a running app's data directory, and the /account page.

A password change or a TOTP reset signs out every other session of the account (test_sessions.py:
copies of a cookie, logout, idle timeout)."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pyotp
import pytest
import sqlalchemy as sa
from alembic import command

from teleconsult import accounts, db, db_tables
from teleconsult.errors import AuthenticationFailed
from browser import PHONE, axe_violations, chromium, horizontal_overflow, login_in_browser
import postgres_cluster
from conftest import PASSWORD, TEST_JITSI_SECRET, TEST_SECRET, add_api_clinician, add_clinician, csrf_from, login, make_settings

TELECONSULT = str(Path(sys.executable).parent / "teleconsult")
NEW_PASSWORD = "a brand new passphrase"
PAGE = {"Accept": "text/html"}  # as a browser asks for a page (an API client gets 401, not a redirect)


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


async def clinician_cli(app, *args: str, stdin: str = "") -> Run:
    """`teleconsult clinician ...` on the live app's data directory, while it serves
    (a subprocess, so the app's event loop keeps running)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELECONSULT_")}
    env.update(postgres_cluster.cli_environ(app.settings.data_dir))
    env.update({"TELECONSULT_SESSION_SECRET": TEST_SECRET, "TELECONSULT_JITSI_DOMAIN": "meet.example.org",
                "TELECONSULT_JITSI_APP_ID": "tc", "TELECONSULT_JITSI_APP_SECRET": TEST_JITSI_SECRET})
    process = await asyncio.create_subprocess_exec(
        TELECONSULT, "clinician", *args, "--data-dir", str(app.settings.data_dir), env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
    return Run(process.returncode, out.decode(), err.decode())


def next_code(clinician) -> str:
    """The next 30 s step's code: accepted (clock drift window) even when the current step's code
    was already used, so one test can open a second session without waiting."""
    return pyotp.TOTP(clinician.totp_secret).at(time.time() + 30)


@dataclass
class Page:
    status: int
    path: str
    html: str


async def start_login(client: aiohttp.ClientSession, base: str, email: str, password: str) -> Page:
    """The password step of the login form; the page it leads to."""
    async with client.get(base + "/login") as r:
        csrf = csrf_from(await r.text())
    async with client.post(base + "/login", data={"email": email, "password": password, "csrf_token": csrf}) as r:
        return Page(r.status, r.url.path, await r.text())


async def second_session(client: aiohttp.ClientSession, base: str, clinician) -> str:
    """Like conftest.login, with the next step's code; returns the session's CSRF token."""
    r = await start_login(client, base, clinician.email, clinician.password)
    assert r.path == "/login/totp", r.path
    async with client.post(base + "/login/totp", data={"code": next_code(clinician),
                                                       "csrf_token": csrf_from(r.html)}) as r:
        assert r.url.path == "/", r.url
        return csrf_from(await r.text())


async def is_logged_in(client: aiohttp.ClientSession, base: str) -> bool:
    async with client.get(base + "/", headers=PAGE, allow_redirects=False) as r:
        assert r.status in (200, 303), r.status
        return r.status == 200


async def change_password(client, base, csrf, current, new, confirm=None) -> tuple[int, str]:
    async with client.post(base + "/account/password", data={
            "current_password": current, "new_password": new,
            "confirm_password": new if confirm is None else confirm, "csrf_token": csrf}) as r:
        return r.status, await r.text()


async def test_cli_password_change_refuses_the_old_password_and_signs_out_existing_sessions(live, http):
    app = await live()
    doctor = await add_clinician(app.engine)
    browsing, acting = http(), http()
    await login(browsing, app.url, doctor)
    csrf = await second_session(acting, app.url, doctor)

    result = await clinician_cli(app, "password", doctor.email, stdin=NEW_PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"Password of {doctor.email} changed; all its sessions were signed out. Its documents key was "
        "forgotten: a new one is made at its next login, and open consultations created before open their "
        "documents only in the browsers that created them.")
    assert NEW_PASSWORD not in result.stdout + result.stderr

    # the session that was browsing is sent to the login page ...
    async with browsing.get(app.url + "/", headers=PAGE, allow_redirects=False) as r:
        assert r.status == 303 and r.headers["Location"] == "/login"
    # ... and the other one cannot act any more, with its CSRF token still right
    async with acting.post(app.url + "/consultations", headers={"X-CSRF-Token": csrf}) as r:
        assert r.status == 401
    async with acting.get(app.url + "/dashboard/state", headers={"Accept": "application/json"}) as r:
        assert r.status == 401

    r = await start_login(http(), app.url, doctor.email, PASSWORD)
    assert r.status == 401 and "E-mail ou mot de passe incorrect." in r.html
    r = await start_login(http(), app.url, doctor.email, NEW_PASSWORD)
    assert r.status == 200 and r.path == "/login/totp"


async def test_cli_password_prints_a_generated_password_once_when_none_is_piped(live, http):
    app = await live()
    doctor = await add_clinician(app.engine)
    result = await clinician_cli(app, "password", doctor.email, stdin="")
    assert result.returncode == 0, result.stderr
    match = re.search(r"^Password \(shown once\): (\S{12,})$", result.stdout, re.M)
    assert match and "signed out" in result.stdout.splitlines()[0]
    r = await start_login(http(), app.url, doctor.email, match.group(1))
    assert r.path == "/login/totp"


async def test_cli_totp_reset_makes_the_next_login_enrol_again(live, http):
    app = await live()
    doctor = await add_clinician(app.engine)
    logged_in = http()
    await login(logged_in, app.url, doctor)
    # a login half-way: password given, TOTP code not yet (a thief holding the lost phone)
    halfway = http()
    r = await start_login(halfway, app.url, doctor.email, PASSWORD)
    assert r.path == "/login/totp"
    halfway_csrf = csrf_from(r.html)

    result = await clinician_cli(app, "reset-totp", doctor.email)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1 and "all its sessions were signed out" in result.stdout

    assert not await is_logged_in(logged_in, app.url)
    # the half-way login cannot finish, even with a code of the old authenticator
    async with halfway.post(app.url + "/login/totp", data={"code": next_code(doctor),
                                                           "csrf_token": halfway_csrf}) as r:
        assert r.url.path == "/login"
    assert not await is_logged_in(halfway, app.url)

    # the next login enrols a new authenticator with a QR code, then reaches the dashboard
    client = http()
    r = await start_login(client, app.url, doctor.email, PASSWORD)
    assert r.path == "/login/totp/enrol" and "<svg" in r.html
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', r.html).group(1)
    assert secret != doctor.totp_secret
    async with client.post(app.url + "/login/totp/enrol", data={
            "code": pyotp.TOTP(secret).now(), "csrf_token": csrf_from(r.html)}) as r:
        assert r.url.path == "/"
    assert await is_logged_in(client, app.url)


async def test_cli_clinician_list_shows_accounts_without_secrets(live):
    app = await live()
    enrolled, token = await add_api_clinician(app.engine, "b.martin@example.org", name="Dr Bernard Martin")
    await add_clinician(app.engine, "a.durand@example.org", name="Dr Alice Durand", enrolled=False)

    result = await clinician_cli(app, "list")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "a.durand@example.org\tDr Alice Durand\tTOTP not enrolled",
        "b.martin@example.org\tDr Bernard Martin\tTOTP enrolled",
    ]
    async with app.engine.connect() as conn:
        rows = (await conn.execute(sa.select(db_tables.clinicians))).all()
    secrets_ = {token, enrolled.totp_secret, PASSWORD} | {
        value for row in rows for value in (row.password_hash, row.totp_secret, row.api_token_hash) if value}
    assert len(secrets_) == 6  # the token and its hash, the password and its two hashes, one TOTP secret
    for secret in secrets_:
        assert secret not in result.stdout + result.stderr
    assert "argon2" not in result.stdout


async def test_cli_account_commands_refuse_an_unknown_email_or_a_short_password_in_one_line(live):
    app = await live()
    doctor = await add_clinician(app.engine)
    for args, stdin in ((["password", "nobody@example.org"], NEW_PASSWORD + "\n"),
                        (["reset-totp", "nobody@example.org"], "")):
        result = await clinician_cli(app, *args, stdin=stdin)
        assert result.returncode == 1, args
        assert result.stderr == "teleconsult: no clinician with email nobody@example.org\n"
    result = await clinician_cli(app, "password", doctor.email, stdin="short\n")
    assert result.returncode == 1
    assert result.stderr == "teleconsult: password must have at least 12 characters\n"
    await accounts.verify_password(app.engine, doctor.email, PASSWORD)  # unchanged


async def test_account_page_changes_the_password_and_keeps_this_session_but_not_others(live, http):
    app = await live()
    doctor = await add_clinician(app.engine)
    this, other = http(), http()
    old_csrf = await login(this, app.url, doctor)
    await second_session(other, app.url, doctor)

    async with this.get(app.url + "/account") as r:
        assert r.status == 200
        csrf = csrf_from(await r.text())
    status, html = await change_password(this, app.url, csrf, PASSWORD, NEW_PASSWORD)
    assert status == 200
    assert "Votre mot de passe a été changé. Vos autres sessions ont été déconnectées." in html

    # this session stays on the dashboard, with a new session (and a new CSRF token) ...
    new_csrf = csrf_from(html)
    assert new_csrf != old_csrf
    assert await is_logged_in(this, app.url)
    async with this.post(app.url + "/consultations", headers={"X-CSRF-Token": new_csrf}) as r:
        assert r.status == 201
    # ... the other one is signed out
    assert not await is_logged_in(other, app.url)

    r = await start_login(http(), app.url, doctor.email, PASSWORD)
    assert r.status == 401
    r = await start_login(http(), app.url, doctor.email, NEW_PASSWORD)
    assert r.path == "/login/totp"


async def test_account_password_change_refuses_a_wrong_current_password_and_is_rate_limited(live, http):
    app = await live(login_max_failures=3)
    doctor = await add_clinician(app.engine)
    client = http()
    csrf = await login(client, app.url, doctor)
    statuses = []
    for _ in range(3):
        status, html = await change_password(client, app.url, csrf, "not my password", NEW_PASSWORD)
        statuses.append(status)
        assert '<p class="error" role="alert">Le mot de passe actuel est incorrect.</p>' in html
    # the right current password does not help once throttled
    status, html = await change_password(client, app.url, csrf, PASSWORD, NEW_PASSWORD)
    statuses.append(status)
    assert statuses == [401, 401, 401, 429]
    assert "Trop de tentatives" in html
    assert await is_logged_in(client, app.url)  # refused, not signed out
    await accounts.verify_password(app.engine, doctor.email, PASSWORD)  # unchanged


async def test_account_password_change_refuses_a_mismatch_or_a_short_password_without_spending_tries(live, http):
    app = await live(login_max_failures=1)
    doctor = await add_clinician(app.engine)
    client = http()
    csrf = await login(client, app.url, doctor)
    status, html = await change_password(client, app.url, csrf, PASSWORD, NEW_PASSWORD, confirm=NEW_PASSWORD + "!")
    assert status == 400
    assert "Le nouveau mot de passe et sa confirmation ne sont pas identiques." in html
    status, html = await change_password(client, app.url, csrf, PASSWORD, "too short")
    assert status == 400
    assert "Le nouveau mot de passe doit comporter au moins 12 caractères." in html
    status, html = await change_password(client, app.url, csrf, PASSWORD, NEW_PASSWORD)
    assert status == 200


async def test_account_password_change_requires_csrf(live, http):
    app = await live()
    doctor = await add_clinician(app.engine)
    client = http()
    csrf = await login(client, app.url, doctor)
    form = {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD}
    for forged in ({}, {"csrf_token": ""}, {"csrf_token": csrf[:-2] + "xx"}):
        async with client.post(app.url + "/account/password", data={**form, **forged}) as r:
            assert r.status == 403
    async with client.post(app.url + "/account/password", data=form,
                           headers={"X-CSRF-Token": "forged", "Origin": "https://evil.example"}) as r:
        assert r.status == 403
    await accounts.verify_password(app.engine, doctor.email, PASSWORD)  # unchanged
    assert await is_logged_in(client, app.url)
    # and nobody logged in cannot reach it at all
    async with http().get(app.url + "/account", headers=PAGE, allow_redirects=False) as r:
        assert r.status == 303 and r.headers["Location"] == "/login"


async def test_account_page_is_french_by_default_and_linked_from_the_dashboard(live, http):
    app = await live()
    doctor = await add_clinician(app.engine)
    client = http()
    await login(client, app.url, doctor)
    async with client.get(app.url + "/") as r:
        assert '<a id="account-link" href="/account">Mon compte</a>' in await r.text()
    async with client.get(app.url + "/account") as r:
        html = await r.text()
    assert '<html lang="fr">' in html and "<h1 id=\"account-title\">Mon compte</h1>" in html
    for text in ("Changer le mot de passe", "Mot de passe actuel", "Nouveau mot de passe",
                 "Confirmez le nouveau mot de passe", "Au moins 12 caractères.", doctor.email):
        assert text in html, text
    assert 'autocomplete="current-password"' in html and html.count('autocomplete="new-password"') == 2
    async with client.get(app.url + "/account?lang=en") as r:
        html = await r.text()
    assert "My account" in html and "Change password" in html and "Mon compte" not in html


async def test_account_page_is_accessible_and_usable_on_a_phone(live):
    app = await live()
    doctor = await add_clinician(app.engine)
    async with chromium() as browser:
        page = await (await browser.new_context(**PHONE)).new_page()
        csp_errors = []
        page.on("console", lambda msg: csp_errors.append(msg.text) if "Content Security Policy" in msg.text else None)
        await login_in_browser(page, app.url, doctor)
        await page.click("#account-link")
        await page.wait_for_url(app.url + "/account")
        assert await axe_violations(page) == []
        assert await horizontal_overflow(page) <= 0
        await page.fill("#current-password", "not my password")
        await page.fill("#new-password", NEW_PASSWORD)
        await page.fill("#confirm-password", NEW_PASSWORD)
        await page.click("form[action='/account/password'] button[type=submit]")
        await page.wait_for_selector("[role=alert]")
        assert "Le mot de passe actuel est incorrect." in await page.text_content("[role=alert]")
        assert await axe_violations(page) == []
        await page.fill("#current-password", PASSWORD)
        await page.fill("#new-password", NEW_PASSWORD)
        await page.fill("#confirm-password", NEW_PASSWORD)
        await page.click("form[action='/account/password'] button[type=submit]")
        await page.wait_for_selector("[role=status]")
        assert "Votre mot de passe a été changé" in await page.text_content("[role=status]")
        assert await horizontal_overflow(page) <= 0
    assert csp_errors == []
    with pytest.raises(AuthenticationFailed):
        await accounts.verify_password(app.engine, doctor.email, PASSWORD)


def test_upgrading_a_database_keeps_its_clinicians_with_no_session_open(tmp_path):
    url = make_settings(tmp_path / "old").sqlalchemy_url  # SQLite, or the run's PostgreSQL

    async def scenario():
        engine = db.make_engine(url)
        try:
            async with engine.begin() as conn:  # a database as release 0002 left it
                await conn.run_sync(lambda c: command.upgrade(db._alembic_config(c), "0002"))
                await conn.execute(sa.text(
                    "INSERT INTO clinicians (id, email, name, password_hash, totp_enabled, created_at) "
                    "VALUES ('c1', 'old@example.org', 'Dr Old', 'x', false, 0)"))
            await db.migrate(engine)
            async with engine.connect() as conn:
                open_sessions = (await conn.execute(sa.select(db_tables.sessions))).all()
            return await accounts.get_clinician(engine, "c1"), open_sessions
        finally:
            await engine.dispose()
    clinician, open_sessions = asyncio.run(scenario())
    assert (clinician.email, clinician.name, open_sessions) == ("old@example.org", "Dr Old", [])
