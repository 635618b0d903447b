"""Shared fixtures: real settings, a real app on a loopback port, real SQLite files."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pyotp
import pytest
from aiohttp.test_utils import TestServer

from teleconsult import accounts, names
import postgres_cluster
import s3_server
from teleconsult.services import Services
from teleconsult.web.app import create_app
from teleconsult.web.appkeys import services_key
from teleconsult.settings import Settings, load_settings

TEST_SECRET = "test-session-secret-" + "x" * 40
TEST_JITSI_SECRET = "test-jitsi-app-secret-" + "y" * 40
PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_settings(data_dir: Path, **overrides) -> Settings:
    values = {
        "data_dir": str(data_dir),
        "session_secret": TEST_SECRET,
        "jitsi_domain": "meet.example.org",
        "jitsi_app_id": "teleconsult-test",
        "jitsi_app_secret": TEST_JITSI_SECRET,
    }
    if postgres_cluster.wanted():  # TELECONSULT_TEST_DATABASE=postgresql: one database per data_dir
        values["database_url"] = postgres_cluster.cluster().database_for(str(Path(data_dir).resolve()))
    if s3_server.wanted() and "documents_store" not in overrides:  # TELECONSULT_TEST_STORE=s3: one bucket per data_dir
        values.update(s3_server.s3_settings(Path(data_dir)))
    values.update(overrides)
    return load_settings(None, values, environ={})


def pytest_sessionfinish(session, exitstatus):
    postgres_cluster.stop_all()


@dataclass
class Live:
    url: str
    settings: Settings
    app: object
    server: TestServer

    @property
    def engine(self):
        return self.services.engine

    @property
    def services(self) -> Services:
        return self.app[services_key]


@pytest.fixture
def settings_factory(tmp_path):
    def factory(**overrides):
        return make_settings(tmp_path / "data", **overrides)
    return factory


@pytest.fixture
async def live(tmp_path):
    """The app on a real HTTP server on loopback, with its public_url matching."""
    servers = []

    async def start(**overrides) -> Live:
        port = free_port()
        data_dir = overrides.pop("data_dir", tmp_path / f"data-{port}")  # another app's: the same data
        settings = make_settings(data_dir, host="127.0.0.1", port=port,
                                 public_url=f"http://127.0.0.1:{port}", **overrides)
        app = create_app(settings)
        server = TestServer(app, host="127.0.0.1", port=port)
        await server.start_server()
        servers.append(server)
        return Live(url=f"http://127.0.0.1:{port}", settings=settings, app=app, server=server)

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def app_with_jitsi(live, request):
    """(app, clinician): the app embedding the stand-in of Jitsi's IFrame API (tests/browser.py:
    Jitsi's web app and videobridge cannot run here), closed after the test. A test marked
    `@pytest.mark.app_settings(name=value, ...)` starts it with those settings."""
    from browser import stand_in_jitsi
    marker = request.node.get_closest_marker("app_settings")
    jitsi_server, domain = await stand_in_jitsi()
    try:
        app = await live(jitsi_domain=domain, jitsi_scheme="http", **(marker.kwargs if marker else {}))
        yield app, await add_clinician(app.engine)
    finally:
        await jitsi_server.close()


@pytest.fixture
async def http():
    """A cookie-keeping HTTP client (unsafe=True: cookies on an IP address)."""
    sessions = []

    def make() -> aiohttp.ClientSession:
        session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        await session.close()


@dataclass
class TestClinician:
    email: str
    password: str
    totp_secret: str
    id: str
    name: str


async def add_clinician(engine, email="dr.martin@example.org", name="Dr Martin", enrolled=True) -> TestClinician:
    clinician = await accounts.create_clinician(engine, email, name, PASSWORD)
    secret = pyotp.random_base32()
    if enrolled:
        # enrol with the previous step's code, so that a login now may use the current one
        previous = pyotp.TOTP(secret).at(time.time() - 30)
        await accounts.enable_totp(engine, clinician.id, secret, previous, now=time.time() - 30)
    return TestClinician(email=email, password=PASSWORD, totp_secret=secret, id=clinician.id, name=name)


async def add_api_clinician(engine, email="doc@example.org", **kwargs) -> tuple[TestClinician, str]:
    """A clinician with an API token (for the Bearer API and `teleconsult drop`)."""
    clinician = await add_clinician(engine, email, **kwargs)
    return clinician, await accounts.issue_api_token(engine, email)


# A consultation secret for tests that knock without a patient's browser (which seals the name
# with the secret of its link): the server only checks a sealed name's shape.
NAME_SECRET = bytes(range(32))


async def api_consultation(app, http) -> tuple[aiohttp.ClientSession, dict, dict]:
    """A clinician with an API token, a client of the API and a consultation it created: the
    client, its Bearer header and the consultation's JSON."""
    _, token = await add_api_clinician(app.engine)
    auth = {"Authorization": f"Bearer {token}"}
    client = http()
    async with client.post(app.url + "/api/consultations", headers=auth) as r:
        assert r.status == 201
        consultation = await r.json()
    return client, auth, consultation


async def patient_knocks(http, consultation: dict, name: str = "Camille") -> tuple[aiohttp.ClientSession, str]:
    """A patient opens the consultation's link and knocks (answered 200: the waiting room);
    returns the patient's session and its CSRF token."""
    patient = http()
    async with patient.get(consultation["patient_url"]) as r:
        csrf = csrf_from(await r.text())
    async with patient.post(consultation["patient_url"] + "/knock", data={
            "sealed_name": sealed(name), "consent": "yes", "csrf_token": csrf}) as r:
        assert r.status == 200
    return patient, csrf


def before_subscribing(hub, topic: str, action) -> None:
    """`await action()` runs when `topic` is first subscribed on `hub`, just before the
    subscription: an event stream's handler has read what it needed and does not listen yet."""
    subscribe, pending = hub.subscribe, [action]

    @contextlib.asynccontextmanager
    async def acting_first(subscribed: str):
        if subscribed == topic and pending:
            await pending.pop()()
        async with subscribe(subscribed) as queue:
            yield queue
    hub.subscribe = acting_first


def sealed(name: str, secret: bytes = NAME_SECRET) -> str:
    """`name` sealed as the patient's page does (teleconsult/names.py)."""
    return names.seal_text(secret, name)


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "page has no CSRF field"
    return match.group(1)


async def login(session: aiohttp.ClientSession, base: str, clinician: TestClinician, code: str | None = None) -> str:
    """Log in through the real forms (with `code`, or the current TOTP code); returns the
    session's CSRF token."""
    async with session.get(base + "/login") as r:
        csrf = csrf_from(await r.text())
    async with session.post(base + "/login", data={
            "email": clinician.email, "password": clinician.password, "csrf_token": csrf}) as r:
        assert r.status == 200 and r.url.path == "/login/totp", (r.status, r.url)
        csrf = csrf_from(await r.text())
    code = code or pyotp.TOTP(clinician.totp_secret).now()
    async with session.post(base + "/login/totp", data={"code": code, "csrf_token": csrf}) as r:
        assert r.status == 200 and r.url.path == "/", (r.status, r.url)
        return csrf_from(await r.text())


async def polled_until(condition, timeout: float, step: float = 0.02) -> float:
    """Poll until condition() is true; return the time it took (a state reached on a busy machine
    later than on a quiet one: poll for it, never sleep a fixed time and assert it)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(step)
    return time.monotonic() - started


async def gone_at(client, url: str, headers: dict, disk_files=lambda: [], timeout: float = 5.0) -> float:
    """Poll until `url` answers 404 and `disk_files()` is empty; returns that moment
    (time.monotonic). Nobody sweeps meanwhile: the app does it alone."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        async with client.get(url, headers=headers) as r:
            if r.status == 404 and not disk_files():
                return time.monotonic()
        await asyncio.sleep(0.05)
    raise AssertionError(f"{url} or its file still there after {timeout} s")


def fill_path(path: str, values: dict) -> str:
    """A route's path with its {parameters} replaced from `values`."""
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
