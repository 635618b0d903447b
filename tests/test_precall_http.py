"""The pre-call test over HTTP: precallOffer on the running app, driven by a Python aiortc client
(what any WebRTC client, a monitoring probe say, can do), and the /precall page's server side."""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest
from aiortc import RTCSessionDescription

from teleconsult.settings import SettingsError
from conftest import add_clinician, login, make_settings
from test_precall_peer import MARKER_LUMA, TONE_AMPLITUDE, Client
from test_security import _Refs

CONNECT_TIMEOUT = 10.0


async def wait_for(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.02)


async def offer_to(session, app, client: Client):
    """POST the client's offer to precallOffer; (status, headers, JSON body)."""
    async with session.post(app.url + "/api/precall/offer", json=await client.offer()) as r:
        return r.status, r.headers, await r.json()


async def connect(session, app, client: Client) -> None:
    status, _headers, answer = await offer_to(session, app, client)
    assert status == 200, answer
    await client.pc.setRemoteDescription(RTCSessionDescription(**answer))
    await wait_for(lambda: client.pc.connectionState == "connected", CONNECT_TIMEOUT)


@pytest.fixture
async def clients():
    made: list[Client] = []

    def make(**kwargs) -> Client:
        client = Client(**kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.pc.close()


def _mean_luma(frame) -> float:
    plane = frame.planes[0]
    buffer = bytes(plane)
    rows = [buffer[row * plane.line_size: row * plane.line_size + plane.width] for row in range(plane.height)]
    luma = b"".join(rows)
    return sum(luma) / len(luma)


async def test_a_python_client_runs_the_test_through_precall_offer_and_gets_its_media_and_data_back(
        live, http, clients):
    app = await live()
    peers = app.services.precall_peers
    client = clients()
    session = http()  # no cookie, no token: a patient has no account
    status, _headers, answer = await offer_to(session, app, client)
    assert status == 200
    assert set(answer) == {"sdp", "type"} and answer["type"] == "answer"
    assert "a=fingerprint:" in answer["sdp"] and "a=candidate:" in answer["sdp"]  # no trickle
    await client.pc.setRemoteDescription(RTCSessionDescription(**answer))
    await wait_for(lambda: client.pc.connectionState == "connected", CONNECT_TIMEOUT)
    assert peers.active_count == 1
    assert set(client.received) == {"audio", "video"}

    # its own video comes back (re-encoded, so compared by brightness)
    frame = await asyncio.wait_for(client.received["video"].recv(), 5)
    assert abs(_mean_luma(frame) - MARKER_LUMA) < 10

    # its own tone comes back, not silence
    import array
    import math
    loudest = 0.0
    for _ in range(50):
        decoded = await asyncio.wait_for(client.received["audio"].recv(), 5)
        pcm = array.array("h", bytes(decoded.planes[0]))[: decoded.samples * len(decoded.layout.channels)]
        loudest = max(loudest, math.sqrt(sum(s * s for s in pcm) / len(pcm)))
        if loudest > TONE_AMPLITUDE / 4:
            break
    assert loudest > TONE_AMPLITUDE / 4

    # the page's pings come back unchanged, quickly
    channel = client.channel
    await wait_for(lambda: channel.readyState == "open", 5)
    replies: asyncio.Queue = asyncio.Queue()
    channel.on("message", replies.put_nowait)
    for seq in range(5):
        ping = json.dumps({"seq": seq, "t": time.monotonic()})
        channel.send(ping)
        assert await asyncio.wait_for(replies.get(), 2) == ping

    # hanging up frees the session at once
    await client.pc.close()
    await wait_for(lambda: peers.active_count == 0, 5)


async def test_one_session_too_many_gets_503_with_retry_after_then_a_freed_session_is_reused(
        live, http, clients):
    app = await live(precall_max_sessions=1, precall_max_seconds=30)
    peers = app.services.precall_peers
    session = http()
    first = clients(audio=False)
    await connect(session, app, first)

    status, headers, body = await offer_to(session, app, clients(audio=False))
    assert status == 503
    assert body["status"] == 503 and "try again" in body["error"]
    assert headers["Content-Type"].startswith("application/json")
    assert 1 <= int(headers["Retry-After"]) <= 30
    assert peers.active_count == 1

    await first.pc.close()
    await wait_for(lambda: peers.active_count == 0, 5)
    third = clients(audio=False)
    await connect(session, app, third)
    assert peers.active_count == 1
    frame = await asyncio.wait_for(third.received["video"].recv(), 5)
    assert frame.width == 160


async def test_malformed_offers_get_400_json_and_hold_no_session(live, http):
    app = await live()
    session = http()
    url = app.url + "/api/precall/offer"
    attempts = [
        {"data": b"not json", "headers": {"Content-Type": "application/json"}},
        {"json": ["sdp", "offer"]},
        {"json": {"sdp": "v=0\r\n", "type": "answer"}},
        {"json": {"sdp": 42, "type": "offer"}},
        {"json": {"sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", "type": "offer"}},
        {"json": {"sdp": "hello\r\nworld", "type": "offer"}},
        {"json": {"type": "offer"}},
    ]
    for attempt in attempts:
        async with session.post(url, **attempt) as r:
            assert r.status == 400, attempt
            body = await r.json()
            assert body["status"] == 400 and body["error"], attempt
    assert app.services.precall_peers.active_count == 0


async def test_offers_are_rate_limited_per_address(live, http):
    app = await live(precall_offers_max=3, precall_offers_window_seconds=60)
    session = http()
    statuses = []
    for _ in range(4):
        async with session.post(app.url + "/api/precall/offer", json={"sdp": "x", "type": "offer"}) as r:
            statuses.append(r.status)
            if r.status == 429:
                assert 1 <= int(r.headers["Retry-After"]) <= 61
                assert (await r.json())["status"] == 429
    assert statuses == [400, 400, 400, 429]
    async with session.get(app.url + "/precall") as r:  # the page itself stays reachable
        assert r.status == 200


async def test_shutting_down_the_app_closes_every_test_session(live, http, clients):
    app = await live()
    peers = app.services.precall_peers
    client = clients(audio=False)
    await connect(http(), app, client)
    assert peers.active_count == 1
    await app.server.close()
    assert peers.active_count == 0
    await wait_for(lambda: client.pc.connectionState in ("closed", "failed", "disconnected"), 10)


def _page_data(html: str) -> dict:
    match = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', html, re.S)
    assert match, "no page data"
    return json.loads(match.group(1))


async def test_precall_page_carries_settings_as_data_and_keeps_the_strict_policy(live, http):
    ice = [{"urls": "turn:meet.example.org:3478", "username": "u", "credential": "p"}]
    app = await live(precall_ice_servers=json.dumps(ice), precall_good_rtt_ms=250)
    async with http().get(app.url + "/precall") as r:
        assert r.status == 200
        html = await r.text()
        headers = r.headers
    assert "Tester mon équipement" in html and 'lang="fr"' in html
    assert "Set-Cookie" not in headers  # nobody needs a session to test their equipment
    csp = headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp and "connect-src 'self'" in csp
    assert "camera=(self" in headers["Permissions-Policy"] and "microphone=(self" in headers["Permissions-Policy"]
    refs = _Refs()
    refs.feed(html)
    assert refs.inline_scripts == 0 and refs.inline_styles == 0 and refs.handlers == []
    assert all(not re.match(r"https?://", url) for url in refs.urls), refs.urls
    data = _page_data(html)
    assert data["ice_servers"] == ice
    assert data["offer_url"] == "/api/precall/offer"
    assert data["thresholds"] == {"good": {"loss_percent": 5, "rtt_ms": 250, "upload_kbps": 1000},
                                  "usable": {"loss_percent": 10, "rtt_ms": 800, "upload_kbps": 300}}
    assert data["i18n"]["verdict_poor"] == "Insuffisant pour une consultation vidéo"
    async with http().get(app.url + "/precall?lang=en") as r:
        assert _page_data(await r.text())["i18n"]["verdict_poor"] == "Not enough for a video consultation"


async def test_default_settings_give_the_page_no_ice_server_at_all(live, http):
    app = await live()
    async with http().get(app.url + "/precall") as r:
        assert _page_data(await r.text())["ice_servers"] == []


@pytest.mark.parametrize("back, expected", [
    ("/j/abc-DEF_123", "/j/abc-DEF_123"),
    ("/", "/"),
    ("/j/x?lang=en", "/j/x?lang=en"),
    ("//evil.example/j/x", None),
    ("https://evil.example/", None),
    ("/\\evil.example", None),
    ("javascript:alert(1)", None),
    ("/api/consultations", None),
    ("j/relative", None),
    ("/j/\u00e9", None),
])
async def test_the_return_link_only_ever_points_to_a_path_of_ours(live, http, back, expected):
    app = await live()
    async with http().get(app.url + "/precall", params={"back": back}) as r:
        html = await r.text()
    match = re.search(r'<a id="back-link"[^>]*href="([^"]*)"', html)
    if expected is None:
        assert match is None
    else:
        assert match and match.group(1).replace("&amp;", "&") == expected


def test_malformed_ice_servers_are_refused_at_start_up_with_a_clear_message(tmp_path):
    for value, words in [("stun:meet.example.org", "not valid JSON"),
                         ('{"urls": "stun:meet.example.org"}', "must be a JSON list"),
                         ('[{"urls": "turn:meet.example.org"}]', "needs username and credential"),
                         ('[{"urls": "https://stun.example.org"}]', "stun:/stuns:/turn:/turns:")]:
        with pytest.raises(SettingsError) as excinfo:
            make_settings(tmp_path, precall_ice_servers=value)
        assert "precall_ice_servers" in str(excinfo.value) and words in str(excinfo.value), value
    with pytest.raises(SettingsError, match="precall_usable_rtt_ms"):
        make_settings(tmp_path, precall_good_rtt_ms=500, precall_usable_rtt_ms=400)


async def test_the_dashboard_links_to_the_equipment_test_and_back(live, http):
    app = await live()
    doctor = await add_clinician(app.engine)
    clinician = http()
    await login(clinician, app.url, doctor)
    async with clinician.get(app.url + "/") as r:
        html = await r.text()
    link = re.search(r'<a id="precall-link"[^>]*href="([^"]*)"', html)
    assert link and link.group(1) == "/precall?back=/"
    async with clinician.get(app.url + link.group(1)) as r:
        page = await r.text()
    assert re.search(r'<a id="back-link"[^>]*href="/"', page)
