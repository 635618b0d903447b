"""What the direct call's script (static/js/direct_call.js) is given, in the JSON data block of the
clinician's call page and of the patient's waiting page: nothing with Jitsi."""

from __future__ import annotations

from aiohttp import web

from ..appkeys import services_of
from ..csrf import csrf_token
from ..templating import translator


async def direct_config(request: web.Request, *, access_url: str, signal_url: str) -> dict | None:
    """What static/js/direct_call.js needs, in the page's JSON data block; None with Jitsi.
    The ICE servers are not in it: they come with the call access, after admission."""
    if services_of(request).settings.call_engine != "direct":
        return None
    _ = translator(request).gettext
    return {
        "access_url": access_url, "signal_url": signal_url, "events_url": signal_url + "/events",
        "csrf": await csrf_token(request),
        "i18n": {
            "self_view": _("You"), "remote_view": _("The other person"),
            "mic_off": _("Turn the microphone off"), "mic_on": _("Turn the microphone on"),
            "cam_off": _("Turn the camera off"), "cam_on": _("Turn the camera on"),
            "camera": _("Camera"), "microphone": _("Microphone"), "hang_up": _("Hang up"),
            "rejoin": _("Join the call again"), "sound_on": _("Turn the sound on"), "left": _("You left the call."),
            "waiting_peer": _("Waiting for the other person to join the call…"),
            "connecting": _("Connecting…"), "connected": _("Connected."),
            "reconnecting": _("The connection dropped. Reconnecting…"),
            "no_media": _("Your camera or microphone could not be used. Allow them in your browser, then "
                          "reload the page."),
            "ice_failed": _("The call cannot connect between your two networks. The person who runs this "
                            "service must configure a TURN server (setting direct_ice_servers)."),
        },
    }
