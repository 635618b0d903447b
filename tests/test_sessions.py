"""Login sessions end on the server: a copy of a session cookie made before logout, a password
change, a TOTP reset or the idle timeout is refused after it (by a real server, through the real
login forms). Time is moved by rewinding the moments the server stored, not by waiting."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pyotp
import pytest
import sqlalchemy as sa

from teleconsult import accounts, sessions
from teleconsult.db_tables import sessions as sessions_table
from conftest import PASSWORD, add_clinician, csrf_from, login

JSON = {"Accept": "application/json"}
PAGE = {"Accept": "text/html"}


def copy_of(cookies, url: str | None = None) -> aiohttp.ClientSession:
    """Another client holding a copy of some cookies (a stolen or shared cookie); `cookies` is a
    client (its cookies for `url` are copied) or cookies copied before."""
    if isinstance(cookies, aiohttp.ClientSession):
        cookies = cookies.cookie_jar.filter_cookies(url)
    thief = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    thief.cookie_jar.update_cookies(cookies)
    return thief


async def works(source: aiohttp.ClientSession, base: str, csrf: str) -> tuple[int, int, int]:
    """What a copy of the cookies opens, each tried by its own copy: the dashboard's state, a new
    consultation, the dashboard page (refused: 401, 401 and a redirect to the login page)."""
    cookies = source.cookie_jar.filter_cookies(base)
    async with copy_of(cookies) as client, client.get(base + "/dashboard/state", headers=JSON) as r:
        state = r.status
    async with copy_of(cookies) as client, client.post(
            base + "/consultations", headers={"X-CSRF-Token": csrf, **JSON}) as r:
        create = r.status
    async with copy_of(cookies) as client, client.get(base + "/", headers=PAGE, allow_redirects=False) as r:
        page = r.status
    return state, create, page


REFUSED = (401, 401, 303)


async def rows(app) -> list:
    async with app.engine.connect() as conn:
        return (await conn.execute(sa.select(sessions_table))).all()


async def rewind(app, seconds: float, column: str = "last_seen_at") -> None:
    """As if `seconds` had passed since every session was last seen (or created)."""
    async with app.engine.begin() as conn:
        await conn.execute(sessions_table.update().values({column: getattr(sessions_table.c, column) - seconds}))


async def test_a_cookie_copied_before_logout_no_longer_works_after_it(live, http):
    app = await live()
    doctor = await add_clinician(app.engine)
    browser = http()
    csrf = await login(browser, app.url, doctor)
    async with copy_of(browser, app.url) as thief:
        assert (await works(thief, app.url, csrf))[0] == 200
        async with browser.post(app.url + "/logout", data={"csrf_token": csrf}, allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/login"
        assert await works(thief, app.url, csrf) == REFUSED
    # the browser that logged out has a fresh cookie session: its old CSRF token is refused too
    assert await works(browser, app.url, csrf) == (401, 403, 303)
    assert await rows(app) == []


@pytest.mark.parametrize("change", ["password_on_another_session", "password_by_cli", "totp_reset"])
async def test_a_copied_cookie_stops_working_when_the_account_changes(live, http, change):
    app = await live()
    doctor = await add_clinician(app.engine)
    browser = http()
    csrf = await login(browser, app.url, doctor)
    async with copy_of(browser, app.url) as thief:
        if change == "password_on_another_session":
            other = http()
            async with other.get(app.url + "/login") as r:
                form_csrf = csrf_from(await r.text())
            async with other.post(app.url + "/login", data={"email": doctor.email, "password": PASSWORD,
                                                            "csrf_token": form_csrf}) as r:
                form_csrf = csrf_from(await r.text())
            code = pyotp.TOTP(doctor.totp_secret).at(time.time() + 30)  # the next step's: not used yet
            async with other.post(app.url + "/login/totp", data={"code": code, "csrf_token": form_csrf}) as r:
                assert r.url.path == "/"
            async with other.get(app.url + "/account") as r:
                form_csrf = csrf_from(await r.text())
            async with other.post(app.url + "/account/password", data={
                    "current_password": PASSWORD, "new_password": "a brand new passphrase",
                    "confirm_password": "a brand new passphrase", "csrf_token": form_csrf}) as r:
                assert r.status == 200
            assert len(await rows(app)) == 1  # the session that changed it stays
        elif change == "password_by_cli":
            await accounts.set_password(app.engine, doctor.email, "a brand new passphrase")
            assert await rows(app) == []
        else:
            await accounts.reset_totp(app.engine, doctor.email)
            assert await rows(app) == []
        assert await works(thief, app.url, csrf) == REFUSED
    assert await works(browser, app.url, csrf) == REFUSED


async def test_a_session_ends_after_the_idle_timeout_and_activity_keeps_it(live, http):
    app = await live(session_idle_minutes=30)
    doctor = await add_clinician(app.engine)
    browser = http()
    csrf = await login(browser, app.url, doctor)
    await rewind(app, 29 * 60)  # seen 29 minutes ago: still valid, and seen now
    assert (await works(browser, app.url, csrf))[0] == 200
    await rewind(app, 29 * 60)  # 29 more minutes: 29 since the last request, not 58
    assert (await works(browser, app.url, csrf))[0] == 200
    async with copy_of(browser, app.url) as thief:
        await rewind(app, 30 * 60 + 1)  # then nothing for 30 minutes
        assert await works(thief, app.url, csrf) == REFUSED
    assert await works(browser, app.url, csrf) == REFUSED
    assert await rows(app) == []


async def test_a_session_ends_twelve_hours_after_login_whatever_the_activity(live, http):
    app = await live()
    doctor = await add_clinician(app.engine)
    browser = http()
    csrf = await login(browser, app.url, doctor)
    await rewind(app, sessions.MAX_AGE_SECONDS - 60, "created_at")
    assert (await works(browser, app.url, csrf))[0] == 200
    await rewind(app, 61, "created_at")
    assert await works(browser, app.url, csrf) == REFUSED


async def test_last_seen_is_written_at_most_once_a_minute_not_on_every_request(live, http):
    app = await live()
    doctor = await add_clinician(app.engine)
    browser = http()
    await login(browser, app.url, doctor)
    [before] = await rows(app)
    for _ in range(5):
        async with browser.get(app.url + "/dashboard/state", headers=JSON) as r:
            assert r.status == 200
    [after] = await rows(app)
    assert after.last_seen_at == before.last_seen_at
    await rewind(app, sessions.TOUCH_SECONDS)
    async with browser.get(app.url + "/dashboard/state", headers=JSON) as r:
        assert r.status == 200
    [touched] = await rows(app)
    assert abs(touched.last_seen_at - time.time()) < 5


async def test_a_half_way_login_ends_with_a_password_change_and_cannot_finish(live, http):
    app = await live()
    doctor = await add_clinician(app.engine)
    halfway = http()
    async with halfway.get(app.url + "/login") as r:
        csrf = csrf_from(await r.text())
    async with halfway.post(app.url + "/login", data={"email": doctor.email, "password": PASSWORD,
                                                      "csrf_token": csrf}) as r:
        assert r.url.path == "/login/totp"
        csrf = csrf_from(await r.text())
    [pending] = await rows(app)
    assert not pending.verified
    await accounts.set_password(app.engine, doctor.email, "a brand new passphrase")
    async with halfway.post(app.url + "/login/totp", data={"code": pyotp.TOTP(doctor.totp_secret).now(),
                                                           "csrf_token": csrf}) as r:
        assert r.url.path == "/login"
    assert await rows(app) == []


async def test_a_live_dashboard_stream_ends_when_its_session_is_logged_out(live, http):
    app = await live(live_heartbeat_seconds=1)  # the stream checks its session at every heartbeat
    doctor = await add_clinician(app.engine)
    browser = http()
    csrf = await login(browser, app.url, doctor)
    async with copy_of(browser, app.url) as thief:
        async with thief.get(app.url + "/dashboard/events") as stream:
            assert stream.status == 200
            first = await stream.content.readline()
            assert first.startswith(b"data:")
            async with browser.post(app.url + "/logout", data={"csrf_token": csrf}) as r:
                assert r.status == 200
            rest = await asyncio.wait_for(stream.content.read(), 5)  # ends: the server closed it
            # nothing but the heartbeat's pings reached the thief
            assert [line for line in rest.splitlines()
                    if line.startswith(b"data:") and line != b'data: {"type":"ping","every":1}'] == []
