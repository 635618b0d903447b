"""The pre-call test: the page ("Tester mon équipement") and its one signalling exchange.

`precallOffer` moves an SDP offer to the echo peer (teleconsult/precall/peer.py) and its answer
back; everything else (media, pings, measurements, the verdict) happens between the browser
and the peer. No account: a patient has none. Offers are rate-limited per address, and the
number and duration of sessions are bounded by `EchoPeers`.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from aiohttp import web

from filedrop import safejson

from ..appkeys import services_of
from ...precall.peer import BadOffer, PeersBusy
from ..templating import render, translator

#: How long the page sends media and pings before it gives its verdict.
TEST_SECONDS = 8
#: Longest return path accepted in ?back=.
MAX_BACK_CHARS = 512


def safe_back(value: str | None) -> str | None:
    """A same-origin path (with its query) to come back to, or None. Never another host."""
    if not value or len(value) > MAX_BACK_CHARS or not value.isascii() or not value.isprintable():
        return None
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path.startswith(("/api/", "/precall")):
        return None
    return urlunsplit(("", "", parts.path, parts.query, ""))


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message, "status": status}, status=status, headers=headers)


async def precall_offer(request: web.Request) -> web.Response:
    """POST {sdp, type: "offer"} -> {sdp, type: "answer"} of an echo peer."""
    await services_of(request).limiters.precall.attempt(request.remote or "unknown")  # 429 + Retry-After
    try:
        body = safejson.loads(await request.read())
    except safejson.BadJSON:
        return _error(400, "the body must be a JSON object {sdp, type}")
    if not isinstance(body, dict):
        return _error(400, "the body must be a JSON object {sdp, type}")
    try:
        answer = await services_of(request).precall_peers.answer(body.get("sdp"), body.get("type"))
    except BadOffer as exc:
        return _error(400, f"bad offer: {exc}")
    except PeersBusy as exc:
        return _error(503, "all pre-call test sessions are in use; try again in a minute",
                      headers={"Retry-After": str(exc.retry_after)})
    return web.json_response(answer)


def _i18n(_) -> dict[str, str]:
    """Texts the page script shows, translated here (msgids are English)."""
    return {
        "starting": _("Asking for the camera and microphone…"),
        "mic_heard": _("Microphone: we can hear you."),
        "mic_silent": _("Speak: the bar should move."),
        "camera_default": _("Camera"),
        "mic_default": _("Microphone"),
        "speaker_default": _("Speaker"),
        "not_found": _("No camera or microphone was found. Plug one in, or use another device (a phone works)."),
        "not_readable": _("The camera or microphone is used by another application. Close it, then try again."),
        "media_error": _("The camera or microphone could not be opened. Try again, or use another browser."),
        "unsupported": _("This browser cannot make video calls. Use an up-to-date Chrome, Firefox or Safari."),
        "connecting": _("Connecting to our test server…"),
        "measuring": _("Measuring your connection (about 8 seconds)…"),
        "busy": _("The test server is busy. Try again in a minute."),
        "server_error": _("The test could not start. Try again in a moment."),
        "rtt": _("Response time"),
        "loss": _("Lost packets"),
        "jitter": _("Jitter"),
        "upload": _("Upload speed"),
        "ms": _("ms"),
        "mbps": _("Mbit/s"),
        "verdict_good": _("Your equipment is ready"),
        "verdict_usable": _("The consultation should work"),
        "verdict_poor": _("Not enough for a video consultation"),
        "text_good": _("Camera, microphone and connection are good for a video consultation."),
        "text_usable": _("The picture may be less sharp or freeze now and then. The tips below can improve it."),
        "text_poor": _("With this connection or equipment, the video consultation will probably not work. "
                       "Follow the tips below, then test again."),
        "advice_ready": _("You can go back to your consultation."),
        "advice_allow": _("Allow the camera and the microphone in this browser (see the help above), "
                          "then test again."),
        "advice_no_device": _("Check that a camera and a microphone are connected, or use a phone."),
        "advice_mic_silent": _("We could not hear your microphone: check that it is not muted, "
                               "or choose another one."),
        "advice_blocked": _("Your network seems to block video calls: switch network "
                            "(from Wi-Fi to 4G, or from 4G to Wi-Fi)."),
        "advice_switch": _("Switch network: from Wi-Fi to 4G, or from 4G to Wi-Fi."),
        "advice_closer": _("On Wi-Fi, move closer to your internet box; or switch to 4G."),
        "advice_downloads": _("Pause downloads, other videos and updates on this connection."),
        "advice_browser": _("Try another browser: an up-to-date Chrome, Firefox or Safari."),
        "advice_volume": _("You did not hear the sound: turn up the volume, check the phone is not on silent, "
                           "or choose another speaker."),
        "advice_busy": _("Our test server is busy: try again in a minute."),
    }


async def precall_page(request: web.Request) -> web.Response:
    settings = services_of(request).settings
    back = safe_back(request.query.get("back"))
    page_data = {
        "offer_url": str(request.app.router["precallOffer"].url_for()),
        "ice_servers": settings.precall_ice_server_list,
        "test_seconds": TEST_SECONDS,
        "thresholds": {
            "good": {"loss_percent": settings.precall_good_loss_percent, "rtt_ms": settings.precall_good_rtt_ms,
                     "upload_kbps": settings.precall_good_upload_kbps},
            "usable": {"loss_percent": settings.precall_usable_loss_percent,
                       "rtt_ms": settings.precall_usable_rtt_ms,
                       "upload_kbps": settings.precall_usable_upload_kbps},
        },
        "i18n": _i18n(translator(request).gettext),
    }
    return await render(request, "precall.html", {
        "back": back, "back_to_consultation": bool(back and back.startswith("/j/")), "page_data": page_data,
    }, csrf=False)
