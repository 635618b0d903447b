"""The pre-call page in real Chromium on a phone-sized screen: fake camera and microphone reach a
verdict against the app's own echo peer; a refused camera shows how to allow it in this browser."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from browser import PHONE, axe_violations, chromium, horizontal_overflow, wait_until
from conftest import add_api_clinician

SECRET = "c2VjcmV0LW9mLXRoZS1jb25zdWx0YXRpb24tMzItYnl0ZXM"  # stands for a patient link's fragment


def camera_like_video(path: Path, width: int = 640, height: int = 480, frames: int = 30) -> Path:
    """A Y4M clip for Chromium's fake camera that compresses like a real camera's picture (a moving
    gradient with sensor-like noise). Chromium's built-in fake picture is so simple that its
    encoder sends a fraction of what a camera would, and no upload verdict could be checked."""
    gradient = bytes((x * 200 // width) for x in range(width)) * height
    low_bits = bytes(range(256)).translate(bytes(b & 0x1F for b in range(256)))
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n".encode())
        chroma = bytes([128]) * (width * height // 2)
        for i in range(frames):
            shift = (i * 8) % width
            moved = int.from_bytes(gradient[shift:] + gradient[:shift], "big")
            noise = int.from_bytes(os.urandom(width * height).translate(low_bits), "big")
            out.write(b"FRAME\n" + (moved ^ noise).to_bytes(width * height, "big") + chroma)
    return path


launch = chromium  # Chromium with some arguments added or dropped


def _watch(page, app_url):
    """Collects CSP complaints, page errors and every request that leaves for another origin."""
    seen = {"csp": [], "errors": [], "foreign": [], "requests": []}
    ours = urlsplit(app_url).netloc
    page.on("console", lambda msg: seen["csp"].append(msg.text) if "Content Security Policy" in msg.text else None)
    page.on("pageerror", lambda exc: seen["errors"].append(str(exc)))

    def on_request(request):
        seen["requests"].append(request.url)
        if urlsplit(request.url).scheme in ("http", "https") and urlsplit(request.url).netloc != ours:
            seen["foreign"].append(request.url)
    page.on("request", on_request)
    return seen


async def test_fake_camera_and_microphone_reach_a_good_verdict_with_measures_on_a_phone(live, tmp_path):
    # default loss and RTT thresholds (< 5 %, < 300 ms); "good" upload from 500 kbit/s instead of 1 Mbit/s:
    # aiortc's receiving end shares two loaded cores with the whole suite (916 kbit/s seen on loopback)
    app = await live(precall_good_upload_kbps=500)
    peers = app.services.precall_peers
    clip = camera_like_video(tmp_path / "camera.y4m")
    async with launch(add=[f"--use-file-for-fake-video-capture={clip}"]) as browser:
        page = await (await browser.new_context(**PHONE)).new_page()
        seen = _watch(page, app.url)
        await page.goto(f"{app.url}/precall?back=/j/abc123#{SECRET}")
        assert "Tester mon équipement" in await page.text_content("h1")
        assert await axe_violations(page) == []
        assert await horizontal_overflow(page) <= 0

        # coming back keeps the link's fragment (which no request carries), and so do the language links
        back = await page.get_attribute("#back-link", "href")
        assert back == f"/j/abc123#{SECRET}"
        english = await page.get_attribute("a[hreflang=en]", "href")
        assert "back=%2Fj%2Fabc123" in english and english.endswith("#" + SECRET) and "lang=en" in english

        await page.click("#start")
        await wait_until(page, "document.getElementById('self-view').videoWidth > 0", timeout=10)
        await wait_until(page, "document.getElementById('camera-select').options.length > 0", timeout=5)
        assert await page.evaluate("document.getElementById('mic-select').options.length") > 0
        await wait_until(page, "document.getElementById('mic-level').value > 0", timeout=5)

        # the tone and its question, answered "no": the advice says what to do
        await page.click("#play-tone")
        await page.click("[data-heard=no]")
        assert await page.is_visible("#tone-advice")

        # the echo peer holds one session while the network test runs
        await wait_until(page, "document.getElementById('network-progress').hidden === false", timeout=15)
        assert peers.active_count == 1
        await wait_until(page, "document.getElementById('verdict').hidden === false", timeout=20)
        verdict = await page.evaluate("({...document.getElementById('verdict').dataset})")
        assert verdict["verdict"] == "good", verdict
        assert float(verdict["rttMs"]) < 300
        assert float(verdict["lossPercent"]) < 5
        assert float(verdict["uploadKbps"]) >= 500
        assert "Votre équipement est prêt" in await page.text_content("#verdict-title")
        measures = await page.evaluate(
            "Object.fromEntries([...document.querySelectorAll('#measures dd')].map(d => [d.dataset.measure, d.textContent]))")
        assert set(measures) == {"rtt", "loss", "jitter", "upload"}
        assert measures["rtt"].endswith("ms") and measures["upload"].endswith("Mbit/s")
        advice = await page.evaluate("[...document.querySelectorAll('#advice li')].map(li => li.dataset.advice)")
        assert "advice_volume" in advice

        # the page hung up: the session is released at once, not after the idle timeout
        for _ in range(100):
            if peers.active_count == 0:
                break
            await asyncio.sleep(0.05)
        assert peers.active_count == 0

        assert await axe_violations(page) == []
        assert await horizontal_overflow(page) <= 0
        assert seen["csp"] == [] and seen["errors"] == [] and seen["foreign"] == []
        assert all(SECRET not in url for url in seen["requests"])
        offers = [url for url in seen["requests"] if url.endswith("/api/precall/offer")]
        assert len(offers) == 1


async def test_a_refused_camera_shows_how_to_allow_it_in_this_browser_first(live):
    app = await live()
    # Chromium's fake devices, but no fake "allow" click: every permission prompt is denied
    async with launch(drop=["--use-fake-ui-for-media-stream"], add=["--deny-permission-prompts"]) as browser:
        page = await (await browser.new_context(**PHONE)).new_page()
        seen = _watch(page, app.url)
        await page.goto(f"{app.url}/precall")
        await page.click("#start")
        await page.wait_for_selector("#permission-help", state="visible", timeout=10_000)
        assert "Autorisez la caméra et le micro" in await page.text_content("#permission-title")
        first = page.locator("#help-list .help").first
        assert await first.get_attribute("data-browser") == "chrome"  # Chromium's help comes first
        assert await first.locator(".yours").is_visible()
        assert "Autorisations" in await first.text_content()
        assert await axe_violations(page) == []
        assert await horizontal_overflow(page) <= 0

        # the network is still tested (data channel only), and the verdict says to allow the camera
        await wait_until(page, "document.getElementById('verdict').hidden === false", timeout=25)
        assert await page.get_attribute("#verdict", "data-verdict") == "poor"
        advice = await page.evaluate("[...document.querySelectorAll('#advice li')].map(li => li.dataset.advice)")
        assert advice[0] == "advice_allow", advice
        assert seen["csp"] == [] and seen["errors"] == [] and seen["foreign"] == []


async def test_the_patient_goes_from_the_join_page_to_the_test_and_back_with_the_link_secret_intact(live):
    app = await live()
    _, token = await add_api_clinician(app.engine, "dr.precall@example.org")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as api:
        async with api.post(app.url + "/api/consultations") as r:
            link = (await r.json())["patient_url"] + "#" + SECRET
    async with launch() as browser:
        page = await (await browser.new_context(**PHONE)).new_page()
        seen = _watch(page, app.url)
        await page.goto(link)
        assert "Tester mon équipement" in await page.text_content("#precall-link")
        await page.click("#precall-link")
        await page.wait_for_url("**/precall?**")
        assert "Revenir à la consultation" in await page.text_content("#back-link")
        await page.click("#back-link")
        await page.wait_for_url(link)
        assert page.url == link
        assert await page.is_visible("#knock-form")
        assert all(SECRET not in url for url in seen["requests"])


async def test_the_verdict_rules_follow_the_thresholds_and_the_help_follows_the_browser(live):
    app = await live()
    async with launch() as browser:
        page = await browser.new_page()
        await page.goto(app.url + "/precall")
        result = await page.evaluate("""async () => {
          const l = await import("/static/js/precall_logic.js");
          const t = {good: {loss_percent: 5, rtt_ms: 300, upload_kbps: 1000},
                     usable: {loss_percent: 10, rtt_ms: 800, upload_kbps: 300}};
          const media = {audio: true, video: true, problem: null};
          const v = (m, extra = {}) => l.verdictOf({connected: true, media, m, ...extra}, t);
          const ok = {rttMs: 40, lossPercent: 0.5, uploadKbps: 1500};
          const answer = "v=0\\r\\nm=video 9 UDP/TLS/RTP/SAVPF 96 97\\r\\na=rtpmap:96 VP8/90000\\r\\n"
            + "a=rtpmap:97 rtx/90000\\r\\na=fmtp:97 apt=96\\r\\n";
          return {
            good: v(ok),
            rttAtGoodLimit: v({...ok, rttMs: 300}),
            lossAtGoodLimit: v({...ok, lossPercent: 5}),
            slowUpload: v({...ok, uploadKbps: 999}),
            tooSlow: v({...ok, uploadKbps: 299}),
            tooFar: v({...ok, rttMs: 800}),
            tooLossy: v({...ok, lossPercent: 10}),
            noRtt: v({...ok, rttMs: null}),
            notConnected: v(ok, {connected: false}),
            noCamera: v(ok, {media: {audio: true, video: false, problem: "denied"}}),
            adviceSlow: l.adviceFor({verdict: "usable", connected: true, busy: false, media, micHeard: true,
                                     heardTone: "yes", m: {...ok, uploadKbps: 500}}, t),
            adviceLossy: l.adviceFor({verdict: "poor", connected: true, busy: false, media, micHeard: false,
                                      heardTone: null, m: {...ok, lossPercent: 12}}, t),
            adviceBlocked: l.adviceFor({verdict: "poor", connected: false, busy: false,
                                        media: {audio: false, video: false, problem: "denied"}, micHeard: false,
                                        heardTone: "no", m: null}, t),
            adviceGood: l.adviceFor({verdict: "good", connected: true, busy: false, media, micHeard: true,
                                     heardTone: "yes", m: ok}, t),
            families: [
              "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
              "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/119.0.6045.169 Mobile/15E148 Safari/604.1",
              "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
              "Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0",
              "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
              "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
              "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
            ].map((ua) => l.browserFamily(ua, 0)),
            iPadAsMac: l.browserFamily("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15", 5),
            denied: l.mediaProblem({name: "NotAllowedError"}),
            startBitrate: l.withStartBitrate(answer, 1250),
          };
        }""")
    assert result["good"] == "good"
    assert result["rttAtGoodLimit"] == result["lossAtGoodLimit"] == result["slowUpload"] == "usable"
    assert result["tooSlow"] == result["tooFar"] == result["tooLossy"] == result["noRtt"] == "poor"
    assert result["notConnected"] == result["noCamera"] == "poor"
    assert result["adviceSlow"] == ["advice_closer", "advice_downloads"]
    assert result["adviceLossy"] == ["advice_switch", "advice_mic_silent"]
    assert result["adviceBlocked"] == ["advice_allow", "advice_blocked", "advice_browser", "advice_volume"]
    assert result["adviceGood"] == ["advice_ready"]
    assert result["families"] == ["chrome", "safari", "safari", "firefox", "firefox", "safari", "chrome"]
    assert result["iPadAsMac"] == "safari" and result["denied"] == "denied"
    assert "a=rtpmap:96 VP8/90000\r\na=fmtp:96 x-google-start-bitrate=1250\r\n" in result["startBitrate"]
    assert "a=fmtp:97 apt=96\r\n" in result["startBitrate"]  # retransmissions untouched


async def test_a_lossy_uplink_is_measured_and_not_called_good(live, tmp_path, monkeypatch):
    """The echo peer loses one RTP packet in four on arrival (a bad uplink); the page must see it
    in the peer's RTCP reports and say so."""
    from aiortc.rtcdtlstransport import RTCDtlsTransport
    original = RTCDtlsTransport._handle_rtp_data
    arrived = {"n": 0}

    async def lossy(self, data, arrival_time_ms):
        arrived["n"] += 1
        if arrived["n"] % 4:
            await original(self, data, arrival_time_ms)
    monkeypatch.setattr(RTCDtlsTransport, "_handle_rtp_data", lossy)

    app = await live()
    clip = camera_like_video(tmp_path / "camera.y4m")
    async with launch(add=[f"--use-file-for-fake-video-capture={clip}"]) as browser:
        page = await (await browser.new_context(**PHONE)).new_page()
        await page.goto(app.url + "/precall")
        await page.click("#start")
        await wait_until(page, "document.getElementById('verdict').hidden === false", timeout=25)
        verdict = await page.evaluate("({...document.getElementById('verdict').dataset})")
        advice = await page.evaluate("[...document.querySelectorAll('#advice li')].map(li => li.dataset.advice)")
    assert arrived["n"] > 100
    assert float(verdict["lossPercent"]) >= 5, verdict
    assert verdict["verdict"] in ("usable", "poor"), verdict
    assert "advice_switch" in advice, advice
