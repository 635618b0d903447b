"""Guessing limits (issue: hostile review items 1-3): concurrency cannot bypass them, an attacker
cannot turn them against honest users, and behind a trusted proxy they see each client."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

import aiohttp
import pyotp
import pytest

from conftest import PASSWORD, add_clinician, csrf_from, free_port, login, sealed
from test_cli import TELECONSULT, _env, wait_until_up

from teleconsult.client_address import client_address, parse_networks
from multidict import CIMultiDict

MiB = 1024 * 1024
ARGON2_MIB = 64  # argon2-cffi's default memory cost per hash


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


class ServeProcess:
    """`teleconsult serve` as a host runs it, so that its memory is its own."""

    def __init__(self, tmp_path: Path, **settings):
        self.port = free_port()
        extra = {f"TELECONSULT_{k.upper()}": str(v) for k, v in settings.items()}
        self.env = _env(tmp_path, TELECONSULT_PORT=str(self.port), **extra)
        self.url = f"http://127.0.0.1:{self.port}"
        subprocess.run(TELECONSULT + ["clinician", "add", "dr@example.org", "--name", "Dr G"], env=self.env,
                       input=PASSWORD + "\n", text=True, capture_output=True, check=True, timeout=60)
        self.process = subprocess.Popen(TELECONSULT + ["serve"], env=self.env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT)

    def stop(self) -> str:
        self.process.terminate()
        return self.process.communicate(timeout=20)[0].decode()


async def _burst(client: aiohttp.ClientSession, url: str, forms: list[dict]) -> list[int]:
    async def one(form):
        async with client.post(url, data=form) as r:
            await r.read()
            return r.status
    return list(await asyncio.gather(*(one(form) for form in forms)))


async def test_200_concurrent_wrong_passwords_verify_at_most_the_limit_and_the_server_memory_stays_bounded(tmp_path):
    # the per-address connection cap would turn most of the burst away first: lift it so that
    # every request reaches the guessing limit, which is what is tested here
    server = ServeProcess(tmp_path, http_max_connections_per_address=1000)
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
            await wait_until_up(client, server.url)
            async with client.get(server.url + "/login") as r:
                csrf = csrf_from(await r.text())
            rss_before = _status_kib(server.process.pid, "VmRSS")
            statuses = await _burst(client, server.url + "/login", [
                {"email": "dr@example.org", "password": f"wrong guess {i}", "csrf_token": csrf} for i in range(200)])
            grown_mib = (_status_kib(server.process.pid, "VmHWM") - rss_before) / 1024
    finally:
        output = server.stop()
    assert statuses.count(401) <= 5, statuses  # verified and wrong: at most login_max_failures
    assert statuses.count(401) + statuses.count(429) == 200, sorted(set(statuses))
    # two argon2 hashes at a time at most (64 MiB each), whatever the burst
    assert grown_mib < 3 * ARGON2_MIB, f"server memory grew by {grown_mib:.0f} MiB"
    assert "Traceback" not in output


async def test_60_concurrent_wrong_totp_codes_verify_at_most_the_limit(tmp_path):
    server = ServeProcess(tmp_path, http_max_connections_per_address=1000)
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
            await wait_until_up(client, server.url)
            # enrol the second factor once, as the clinician does at first login, then sign out
            async with client.get(server.url + "/login") as r:
                csrf = csrf_from(await r.text())
            async with client.post(server.url + "/login", data={
                    "email": "dr@example.org", "password": PASSWORD, "csrf_token": csrf}) as r:
                page = await r.text()
            secret = re.search(r"\b([A-Z2-7]{32})\b", page).group(1)
            async with client.post(server.url + "/login/totp/enrol", data={
                    "code": pyotp.TOTP(secret).now(), "csrf_token": csrf_from(page)}) as r:
                assert r.url.path == "/"
                csrf = csrf_from(await r.text())
            await client.post(server.url + "/logout", data={"csrf_token": csrf})
            client.cookie_jar.clear()
            async with client.get(server.url + "/login") as r:
                csrf = csrf_from(await r.text())
            async with client.post(server.url + "/login", data={
                    "email": "dr@example.org", "password": PASSWORD, "csrf_token": csrf}) as r:
                assert r.url.path == "/login/totp"
                csrf = csrf_from(await r.text())
            statuses = await _burst(client, server.url + "/login/totp", [
                {"code": f"{i:06d}", "csrf_token": csrf} for i in range(60)])
    finally:
        server.stop()
    assert statuses.count(401) <= 5, statuses
    assert statuses.count(401) + statuses.count(429) == 60, sorted(set(statuses))


async def _past_password(client, base, doctor) -> str:
    async with client.get(base + "/login") as r:
        csrf = csrf_from(await r.text())
    async with client.post(base + "/login", data={
            "email": doctor.email, "password": PASSWORD, "csrf_token": csrf}) as r:
        assert r.url.path == "/login/totp"
        return csrf_from(await r.text())


async def test_one_totp_code_sent_by_six_sessions_at_once_logs_in_exactly_one(live, http):
    app = await live(login_max_failures=10)  # the replay rule, not the limit, refuses the five
    doctor = await add_clinician(app.engine)
    clients = [http() for _ in range(6)]
    tokens = [await _past_password(c, app.url, doctor) for c in clients]
    code = pyotp.TOTP(doctor.totp_secret).now()

    async def send(client, csrf):
        async with client.post(app.url + "/login/totp", data={"code": code, "csrf_token": csrf}) as r:
            return r.url.path, r.status
    landed = await asyncio.gather(*(send(c, t) for c, t in zip(clients, tokens)))
    assert sorted(landed) == [("/", 200)] + [("/login/totp", 401)] * 5, landed


async def _wrong_logins(client, base, email, n) -> list[int]:
    async with client.get(base + "/login") as r:
        csrf = csrf_from(await r.text())
    statuses = []
    for _ in range(n):
        async with client.post(base + "/login", data={"email": email, "password": "not the password",
                                                      "csrf_token": csrf}) as r:
            statuses.append(r.status)
    return statuses


async def test_guessing_a_password_elsewhere_never_locks_the_clinician_out_of_a_browser_they_logged_in_from(live, http):
    app = await live(login_max_failures=3)
    doctor = await add_clinician(app.engine)
    own = http()
    await login(own, app.url, doctor)  # this browser becomes a trusted device
    attacker = http()
    assert await _wrong_logins(attacker, app.url, doctor.email, 4) == [401, 401, 401, 429]
    # a new browser is refused for now (the account is under attack)...
    stranger = http()
    async with stranger.get(app.url + "/login") as r:
        csrf = csrf_from(await r.text())
    async with stranger.post(app.url + "/login", data={"email": doctor.email, "password": PASSWORD,
                                                       "csrf_token": csrf}) as r:
        assert r.status == 429
    # ...but the clinician's own browser logs in with the right password (same address, too)
    async with own.get(app.url + "/login") as r:
        csrf = csrf_from(await r.text())
    async with own.post(app.url + "/login", data={"email": doctor.email, "password": PASSWORD,
                                                  "csrf_token": csrf}) as r:
        assert r.status == 200 and r.url.path == "/login/totp"


async def test_a_device_cookie_made_for_another_account_or_forged_gives_no_allowance_of_its_own(live, http):
    app = await live(login_max_failures=2)
    doctor = await add_clinician(app.engine)
    other = await add_clinician(app.engine, email="other@example.org")
    own = http()
    await login(own, app.url, other)  # trusted for other@, not for the doctor
    assert await _wrong_logins(own, app.url, doctor.email, 3) == [401, 401, 429]
    forged = http()
    forged.cookie_jar.update_cookies({"tc_device": "abc.def"}, response_url=aiohttp.client.URL(app.url + "/login"))
    assert (await _wrong_logins(forged, app.url, doctor.email, 1)) == [429]


async def _knock(client, base, token, name="Camille"):
    async with client.get(f"{base}/j/{token}") as r:
        csrf = csrf_from(await r.text())
    async with client.post(f"{base}/j/{token}/knock", data={
            "sealed_name": sealed(name), "consent": "yes", "csrf_token": csrf}, allow_redirects=False) as r:
        return r.status


async def test_unknown_links_from_one_address_never_block_a_patient_whose_link_exists(live, http):
    app = await live(link_guess_max=3)
    doctor = await add_clinician(app.engine)
    from teleconsult import consultations as cs
    consultation = await cs.create_consultation(app.engine, app.settings, await _clinician(app, doctor), app.services.hub)
    guesser = http()
    statuses = []
    for i in range(5):
        async with guesser.get(f"{app.url}/j/unknown{i}aaaaaaaaaaaaaaaaaaaaaaaaaa") as r:
            statuses.append(r.status)
    assert statuses == [404, 404, 404, 429, 429]
    patient = http()  # same address (loopback), a real link
    assert await _knock(patient, app.url, consultation.join_token) == 303
    async with patient.get(f"{app.url}/j/{consultation.join_token}/status") as r:
        assert r.status == 200


async def _clinician(app, doctor):
    from teleconsult import accounts
    return await accounts.get_clinician(app.engine, doctor.id)


async def test_the_knock_limit_is_per_browser_not_per_address(live, http):
    app = await live(knock_max=2)
    doctor = await add_clinician(app.engine)
    from teleconsult import consultations as cs
    consultation = await cs.create_consultation(app.engine, app.settings, await _clinician(app, doctor), app.services.hub)

    async def knock_then_declined(client) -> int:
        status = await _knock(client, app.url, consultation.join_token)
        for knock in await cs.list_knocks(app.engine, consultation):
            if knock.status == cs.KNOCK_WAITING:
                await cs.decide(app.engine, consultation, knock.id, False, app.services.hub)
        return status
    first = http()
    assert [await knock_then_declined(first) for _ in range(3)] == [303, 303, 429]
    second = http()  # another browser at the same address
    assert await _knock(second, app.url, consultation.join_token) == 303


async def test_behind_a_trusted_proxy_each_client_has_its_own_allowance_and_others_cannot_spoof_one(live, http):
    app = await live(link_guess_max=2, trusted_proxies="127.0.0.1")
    client = http()

    async def guess(forwarded_for: str) -> int:
        async with client.get(app.url + "/j/nosuchlinkaaaaaaaaaaaaaaaaaaaaaaaa",
                              headers={"X-Forwarded-For": forwarded_for}) as r:
            return r.status
    assert [await guess("203.0.113.5") for _ in range(3)] == [404, 404, 429]
    assert await guess("198.51.100.7") == 404  # another client behind the same proxy
    # a client prepending a fake address gains nothing: the proxy's own entry (rightmost) counts
    assert await guess("198.51.100.99, 203.0.113.5") == 429


async def test_without_trusted_proxies_forwarded_headers_are_ignored(live, http):
    app = await live(link_guess_max=2)
    client = http()
    statuses = []
    for i in range(3):
        async with client.get(app.url + "/j/nosuchlinkaaaaaaaaaaaaaaaaaaaaaaaa",
                              headers={"X-Forwarded-For": f"198.51.100.{i}"}) as r:
            statuses.append(r.status)
    assert statuses == [404, 404, 429]


@pytest.mark.parametrize("peer, header, value, expected", [
    ("10.0.0.2", "x-forwarded-for", "203.0.113.5", "203.0.113.5"),
    ("10.0.0.2", "x-forwarded-for", "1.1.1.1, 203.0.113.5, 10.0.0.3", "203.0.113.5"),
    ("192.0.2.1", "x-forwarded-for", "203.0.113.5", "192.0.2.1"),  # untrusted peer: header ignored
    ("10.0.0.2", "x-forwarded-for", "not-an-ip", "10.0.0.2"),  # unreadable: stop at the proxy
    ("10.0.0.2", "x-forwarded-for", "", "10.0.0.2"),
    ("10.0.0.2", "forwarded", 'for=192.0.2.60;proto=https, for="[2001:db8::1]:4711"', "2001:db8::1"),
    ("10.0.0.2", "forwarded", "for=unknown", "10.0.0.2"),
])
def test_the_client_address_is_the_rightmost_address_that_is_not_a_trusted_proxy(peer, header, value, expected):
    headers = CIMultiDict({header: value} if value else {})
    assert client_address(peer, headers, parse_networks("10.0.0.0/8"), header) == expected


def test_a_forwarded_header_other_than_the_configured_one_is_never_read():
    headers = CIMultiDict({"Forwarded": "for=198.51.100.1", "X-Forwarded-For": "203.0.113.5"})
    assert client_address("10.0.0.2", headers, parse_networks("10.0.0.0/8"), "x-forwarded-for") == "203.0.113.5"
    assert client_address("10.0.0.2", headers, parse_networks("10.0.0.0/8"), "forwarded") == "198.51.100.1"


def test_trusted_proxies_must_be_addresses_or_networks(settings_factory):
    from teleconsult.settings import SettingsError
    with pytest.raises(SettingsError, match="'nginx' is not an IP address"):
        settings_factory(trusted_proxies="127.0.0.1, nginx")
    with pytest.raises(SettingsError, match="forwarded_header must be one of"):
        settings_factory(forwarded_header="x-real-ip")
