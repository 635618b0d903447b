"""mod_teleconsult_events against a real Prosody, real XMPP clients, a real HTTP receiver.

Everything runs on loopback: Prosody (tests/prosody_server.py) with the module on
its MUC component, slixmpp clients joining and leaving rooms, and a tiny aiohttp
receiver that checks each request with teleconsult.room_events and records events.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import time
from pathlib import Path

import pytest
from aiohttp import web

from teleconsult.jitsi.events import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    BadEvent,
    BadSignature,
    ReplayGuard,
    Replayed,
    RoomEvent,
    StaleTimestamp,
    load_event,
    verify,
    verify_bearer,
)

try:
    from tests.prosody_server import MUC_DOMAIN, free_port, start_prosody
    from tests.xmpp_client import XmppClient
except ImportError:  # tests/ on sys.path (rootdir-relative import mode)
    from prosody_server import MUC_DOMAIN, free_port, start_prosody
    from xmpp_client import XmppClient

# Prosody is installed by .ci/run: its absence is a failure, never a skip.
pytestmark = [pytest.mark.timeout(60)]

SECRET = "test-secret-0123456789abcdef0123456789abcdef"
ROOM = f"room-abc@{MUC_DOMAIN}"

# Short delays so the retry tests take seconds, not minutes.
FAST_RETRIES = {
    "teleconsult_events_retry_delay": 0.1,
    "teleconsult_events_retry_max_delay": 0.4,
    "teleconsult_events_max_retries": 40,
    "teleconsult_events_timeout": 2,
}


# HTTP receiver ------------------------------------------------------------------


class Receiver:
    """The backend side: verifies every request and records the events it accepts."""

    def __init__(self, port: int, *, bearer: bool = False, status: int = 204, hang_first: bool = False):
        self.port = port
        self.url = f"http://127.0.0.1:{port}/api/jitsi/events"
        self.bearer = bearer
        self.status = status
        self.hang_first = hang_first
        self.events: list[RoomEvent] = []
        # (event_name, event_id) -> number of requests received
        self.attempts: collections.Counter[tuple[str, str]] = collections.Counter()
        self.rejections: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.bodies: list[bytes] = []  # every request body, as received
        self._requests = ReplayGuard(window_seconds=300)
        self._delivered = ReplayGuard(window_seconds=3600)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None

    async def start(self) -> "Receiver":
        app = web.Application()
        app.router.add_post("/api/jitsi/events", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.bodies.append(body)
        now = time.time()
        self.headers.append(dict(request.headers))
        try:
            data = json.loads(body)
            key = (data["event_name"], data["event_id"])
        except (ValueError, KeyError, TypeError):
            key = ("?", "?")
        self.attempts[key] += 1
        try:
            if self.bearer:
                verify_bearer(SECRET.encode(), request.headers.get("Authorization"))
            else:
                verify(SECRET.encode(), request.headers.get(TIMESTAMP_HEADER),
                       request.headers.get(SIGNATURE_HEADER), body, now)
                self._requests.check(request.headers[SIGNATURE_HEADER], now)
            event = load_event(body)
        except (BadSignature, StaleTimestamp, Replayed) as exc:
            self.rejections.append(repr(exc))
            return web.Response(status=401)
        except BadEvent as exc:
            self.rejections.append(repr(exc))
            return web.Response(status=400)
        if self.hang_first and self.attempts[key] == 1:
            await asyncio.sleep(1.5)  # longer than the module's request timeout
        if self.status >= 300:
            return web.Response(status=self.status)
        if not self._delivered.seen(event.event_id, now):
            self.events.append(event)
            async with self._changed:
                self._changed.notify_all()
        return web.Response(status=self.status)

    def named(self, event_name: str) -> list[RoomEvent]:
        return [e for e in self.events if e.event_name == event_name]

    async def wait_for(self, event_name: str, count: int = 1, timeout: float = 10) -> list[RoomEvent]:
        async def reached() -> list[RoomEvent]:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.named(event_name)) >= count)
            return self.named(event_name)

        try:
            return await asyncio.wait_for(reached(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(
                f"expected {count} x {event_name}; got {[e.event_name for e in self.events]},"
                f" rejections {self.rejections}"
            ) from None


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path / "prosody"


@contextlib.asynccontextmanager
async def running(workdir: Path, receiver: Receiver, *, start_receiver: bool = True,
                  host_options: dict | None = None, plugin_paths: tuple[Path, ...] = (), **options):
    """Prosody with the module posting to `receiver` (options set to None are left out), and
    `connect(user)` for XMPP clients (resource "test"). On exit the clients are closed, then
    Prosody and the receiver stopped; the test reads their logs and records afterwards."""
    if start_receiver:
        await receiver.start()
    muc_options = {
        "teleconsult_events_url": receiver.url,
        "teleconsult_events_secret": SECRET,
        **FAST_RETRIES,
        **options,
    }
    prosody = start_prosody(workdir, {k: v for k, v in muc_options.items() if v is not None},
                            host_options=host_options, plugin_paths=plugin_paths)
    clients: list[XmppClient] = []

    async def connect(user: str, password: str = "any-password") -> XmppClient:
        client = await XmppClient(prosody.port, user, password=password, resource="test").connect()
        clients.append(client)
        return client

    try:
        yield prosody, connect
    finally:
        for client in clients:
            await client.close()
        prosody.stop()
        await receiver.stop()


def _assert_common(event: RoomEvent) -> None:
    assert event.room_name == "room-abc"
    assert event.room_jid == ROOM
    assert event.is_breakout is False
    assert len(event.event_id) >= 16


def _attempts_of(receiver: Receiver, *event_names: str) -> list[int]:
    """Requests per event, for events of these names (clients closing add more events)."""
    return sorted(n for (name, _), n in receiver.attempts.items() if name in event_names)


# Tests --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_named_occupant_s_name_never_reaches_the_backend_only_its_token_id(workdir, tmp_path):
    """A client logged in with a Jitsi token whose context.user has a name, and which sends a
    XEP-0172 nick in its join presence (as Jitsi's web client does): the module reports the
    token's id, and neither name is in any request body the backend receives."""
    from teleconsult.jitsi import tokens
    from conftest import make_settings

    settings = make_settings(tmp_path)
    token = tokens.mint_token(settings, room="room-abc", user_id="knock-id-42", name="Zorglub Jeton",
                              moderator=False, expires_at=time.time() + 600)
    receiver = Receiver(free_port())
    async with running(workdir, receiver, host_options={
            "authentication": "teleconsult_test_token", "app_id": settings.jitsi_app_id,
            "app_secret": settings.jitsi_app_secret},
            plugin_paths=(Path(__file__).resolve().parent / "prosody_plugins",)) as (prosody, connect):
        patient = await connect("patient", password=token)
        await patient.join(ROOM, "patient-nick", display_name="Zorglub Pseudo")
        (joined,) = await receiver.wait_for("muc-occupant-joined")
        patient.leave(ROOM, "patient-nick")
        await receiver.wait_for("muc-room-destroyed")

    assert receiver.rejections == []
    assert joined.occupant.id == "knock-id-42"
    assert [o.id for o in receiver.named("muc-room-destroyed")[0].all_occupants] == ["knock-id-42"]
    assert len(receiver.bodies) >= 4
    for body in receiver.bodies:
        assert b"Zorglub" not in body, body
        assert b'"name"' not in body, body


@pytest.mark.asyncio
async def test_room_lifecycle_events_arrive_signed_with_event_sync_fields(workdir):
    receiver = Receiver(free_port())
    async with running(workdir, receiver) as (prosody, connect):
        t0 = int(time.time())
        alice = await connect("alice")
        await alice.join(ROOM, "alice-nick", display_name="Dr Alice")
        (created,) = await receiver.wait_for("muc-room-created")
        (alice_joined,) = await receiver.wait_for("muc-occupant-joined")

        bob = await connect("bob")
        await bob.join(ROOM, "bob-nick")
        joined = await receiver.wait_for("muc-occupant-joined", 2)

        bob.leave(ROOM, "bob-nick")
        (bob_left,) = await receiver.wait_for("muc-occupant-left")
        alice.leave(ROOM, "alice-nick")
        await receiver.wait_for("muc-occupant-left", 2)
        (destroyed,) = await receiver.wait_for("muc-room-destroyed")
        t1 = int(time.time())

    assert receiver.rejections == []
    for event in receiver.events:
        _assert_common(event)
    assert len({e.event_id for e in receiver.events}) == len(receiver.events) == 6
    for headers in receiver.headers:
        assert headers[SIGNATURE_HEADER].startswith("sha256=")
        assert "Authorization" not in headers

    assert t0 <= created.created_at <= t1

    assert alice_joined.active_occupants_count == 1
    assert not any(b"Dr Alice" in body for body in receiver.bodies)  # her nick is never sent
    assert alice_joined.occupant.occupant_jid == "alice@localhost/test"
    assert alice_joined.occupant.id is None  # no Jitsi token context on plain Prosody
    assert t0 <= alice_joined.occupant.joined_at <= t1
    assert alice_joined.occupant.left_at is None

    bob_joined = joined[1]
    assert bob_joined.occupant.occupant_jid == "bob@localhost/test"
    assert bob_joined.active_occupants_count == 2

    assert bob_left.occupant.occupant_jid == "bob@localhost/test"
    assert bob_left.active_occupants_count == 1
    assert bob_left.occupant.joined_at == bob_joined.occupant.joined_at
    assert bob_left.occupant.left_at >= bob_left.occupant.joined_at

    alice_left = receiver.named("muc-occupant-left")[1]
    assert alice_left.active_occupants_count == 0

    assert destroyed.created_at == created.created_at
    assert created.created_at <= destroyed.destroyed_at <= t1
    assert [o.occupant_jid for o in destroyed.all_occupants] == ["alice@localhost/test", "bob@localhost/test"]
    assert all(o.left_at is not None for o in destroyed.all_occupants)


@pytest.mark.asyncio
async def test_module_reload_keeps_room_state_and_does_not_announce_the_room_again(workdir):
    receiver = Receiver(free_port())
    async with running(workdir, receiver) as (prosody, connect):
        alice = await connect("alice")
        await alice.join(ROOM, "alice")
        (created,) = await receiver.wait_for("muc-room-created")
        await receiver.wait_for("muc-occupant-joined")

        output = await asyncio.to_thread(
            prosody.shell, f"module:reload('teleconsult_events', '{MUC_DOMAIN}')")
        assert "reloaded" in output.lower()

        bob = await connect("bob")
        await bob.join(ROOM, "bob")
        await receiver.wait_for("muc-occupant-joined", 2)
        bob.leave(ROOM, "bob")
        await receiver.wait_for("muc-occupant-left")
        alice.leave(ROOM, "alice")
        (destroyed,) = await receiver.wait_for("muc-room-destroyed")
        await asyncio.sleep(0.3)

    assert len(receiver.named("muc-room-created")) == 1
    assert destroyed.created_at == created.created_at
    assert [o.occupant_jid for o in destroyed.all_occupants] == ["alice@localhost/test", "bob@localhost/test"]
    alice_left = [e for e in receiver.named("muc-occupant-left") if e.occupant.occupant_jid.startswith("alice@")]
    assert alice_left[0].occupant.joined_at is not None  # joined before the reload, still known


@pytest.mark.asyncio
async def test_focus_occupant_and_health_check_room_are_ignored(workdir):
    receiver = Receiver(free_port())
    async with running(workdir, receiver) as (prosody, connect):
        # Jicofo's way: focus@<auth domain> joins first, with the nick "focus".
        focus = await connect("focus")
        await focus.join(ROOM, "focus")
        await receiver.wait_for("muc-room-created")

        alice = await connect("alice")
        await alice.join(f"__jicofo-health-check-1234@{MUC_DOMAIN}", "alice")
        alice.leave(f"__jicofo-health-check-1234@{MUC_DOMAIN}", "alice")
        await alice.join(ROOM, "alice")
        (alice_joined,) = await receiver.wait_for("muc-occupant-joined")
        alice.leave(ROOM, "alice")
        (alice_left,) = await receiver.wait_for("muc-occupant-left")

        focus.leave(ROOM, "focus")
        await receiver.wait_for("muc-room-destroyed")
        await asyncio.sleep(0.3)  # anything wrongly reported would have arrived by now

    assert receiver.rejections == []
    assert [e.event_name for e in receiver.events if e.event_name != "muc-room-created"] == [
        "muc-occupant-joined", "muc-occupant-left", "muc-room-destroyed"]
    assert {e.room_name for e in receiver.events} == {"room-abc"}
    assert alice_joined.active_occupants_count == 1  # focus not counted
    assert alice_left.active_occupants_count == 0
    assert [o.occupant_jid for o in receiver.named("muc-room-destroyed")[0].all_occupants] == [
        "alice@localhost/test"]


@pytest.mark.asyncio
async def test_no_event_is_lost_while_the_backend_is_down_within_the_retry_budget(workdir):
    receiver = Receiver(free_port())
    async with running(workdir, receiver, start_receiver=False) as (prosody, connect):
        alice = await connect("alice")
        await alice.join(ROOM, "alice")
        alice.leave(ROOM, "alice")
        await asyncio.to_thread(prosody.wait_for_log, "Delivery of muc-room-destroyed", 5)
        await asyncio.sleep(1.0)  # several failed attempts per event
        await receiver.start()
        for name in ("muc-room-created", "muc-occupant-joined", "muc-occupant-left", "muc-room-destroyed"):
            await receiver.wait_for(name, timeout=5)
        await asyncio.sleep(0.3)

    log = prosody.log_text()
    assert "failed (connection refused), retry 2/" in log
    assert "Giving up" not in log
    assert receiver.rejections == []
    assert sorted(e.event_name for e in receiver.events) == [
        "muc-occupant-joined", "muc-occupant-left", "muc-room-created", "muc-room-destroyed"]
    # Each event was delivered once; retries kept their event_id.
    assert len({e.event_id for e in receiver.events}) == 4


@pytest.mark.asyncio
async def test_backend_answering_5xx_is_retried_then_given_up_after_the_budget(workdir):
    receiver = Receiver(free_port(), status=503)
    async with running(workdir, receiver, teleconsult_events_max_retries=2) as (prosody, connect):
        alice = await connect("alice")
        await alice.join(ROOM, "alice")
        await asyncio.to_thread(prosody.wait_for_log, "Giving up on muc-occupant-joined", 5)
        await asyncio.to_thread(prosody.wait_for_log, "Giving up on muc-room-created", 5)
        await asyncio.sleep(0.5)

    assert receiver.rejections == []
    attempts = _attempts_of(receiver, "muc-room-created", "muc-occupant-joined")
    assert attempts == [3, 3], receiver.attempts  # 1 + 2 retries each


@pytest.mark.asyncio
async def test_backend_answering_401_is_not_retried(workdir):
    receiver = Receiver(free_port(), status=401)
    async with running(workdir, receiver) as (prosody, connect):
        alice = await connect("alice")
        await alice.join(ROOM, "alice")
        await asyncio.to_thread(prosody.wait_for_log, "Backend refused muc-occupant-joined", 5)
        await asyncio.to_thread(prosody.wait_for_log, "Backend refused muc-room-created", 5)
        await asyncio.sleep(1.0)  # FAST_RETRIES would have retried several times by now

    attempts = _attempts_of(receiver, "muc-room-created", "muc-occupant-joined")
    assert attempts == [1, 1], receiver.attempts
    assert "HTTP 401: not retrying" in prosody.log_text()


@pytest.mark.asyncio
async def test_backend_that_does_not_answer_in_time_is_retried(workdir):
    receiver = Receiver(free_port(), hang_first=True)
    async with running(workdir, receiver, teleconsult_events_timeout=0.5) as (prosody, connect):
        alice = await connect("alice")
        await alice.join(ROOM, "alice")
        await receiver.wait_for("muc-occupant-joined", timeout=5)
        await receiver.wait_for("muc-room-created", timeout=5)

    assert "(timeout)" in prosody.log_text()
    attempts = _attempts_of(receiver, "muc-room-created", "muc-occupant-joined")
    assert len(attempts) == 2 and min(attempts) >= 2, receiver.attempts


@pytest.mark.asyncio
async def test_bearer_option_sends_authorization_instead_of_signature(workdir):
    receiver = Receiver(free_port(), bearer=True)
    async with running(workdir, receiver, teleconsult_events_bearer=True) as (prosody, connect):
        alice = await connect("alice")
        await alice.join(ROOM, "alice")
        await receiver.wait_for("muc-occupant-joined")

    assert receiver.rejections == []
    assert receiver.headers and all(
        h["Authorization"] == f"Bearer {SECRET}" and SIGNATURE_HEADER not in h for h in receiver.headers)


@pytest.mark.asyncio
@pytest.mark.parametrize("missing, log_line", [
    ("teleconsult_events_secret", "teleconsult_events_secret is not set: refusing to load"),
    ("teleconsult_events_url", "teleconsult_events_url is not set: refusing to load"),
], ids=["no-secret", "no-url"])
async def test_module_refuses_to_load_without_secret_or_url(workdir, missing, log_line):
    receiver = Receiver(free_port())
    async with running(workdir, receiver, **{missing: None}) as (prosody, connect):
        log = await asyncio.to_thread(prosody.wait_for_log, log_line, 5)
        assert "Reporting room events" not in log
        # The server itself still runs; rooms work but nothing is reported.
        alice = await connect("alice")
        await alice.join(ROOM, "alice")
        await asyncio.sleep(0.5)

    assert receiver.attempts == {}
