"""What the documents panel's script (static/js/documents.js) is given, in the JSON data block
of the clinician's call page and of the patient's pages."""

from __future__ import annotations

from aiohttp import web

from ..appkeys import services_of
from ..templating import translator


def panel_config(request: web.Request, *, base: str, role: str, consultation_id: str, sender: str | None = None,
                 patient_url: str = "", csrf: str = "", sealed_secret: str | None = None,
                 key: dict | None = None) -> dict:
    """What static/js/documents.js needs, passed in the page's JSON data block. `role`: clinician
    or patient; `sender`: the name this device's documents carry (teleconsult/web/views/documents.py:
    "patient-2" for a second device with the same link), the role itself by default."""
    _ = translator(request).gettext
    settings = services_of(request).settings
    return {
        "base": base, "events": base + "/events", "role": role, "sender": sender or role, "csrf": csrf,
        "consultation_id": consultation_id, "patient_url": patient_url,
        "secret_source": "fragment" if role == "patient" else "sealed",
        # the clinician's: S sealed to their key, and that key wrapped (static/js/clinician_keys.js)
        "sealed_secret": sealed_secret, "key": key,
        "max_bytes": settings.documents_max_mib * 1024 * 1024 * 8 // 9,  # padding may add up to 1/8
        # how long an interrupted upload may wait for the network: the server keeps it that long
        "upload_idle_ms": settings.documents_upload_idle_minutes * 60_000,
        "i18n": {
            "sent": _("Sent"), "received": _("Received"), "downloaded": _("Downloaded"),
            "deleted": _("Deleted"), "from_me": _("from you"),
            "from_other": _("from the patient") if role == "clinician" else _("from your clinician"),
            # a document from another device that opened the same patient link
            "from_device": _("from the patient (device no. {n})") if role == "clinician"
            else _("from another device with your link"),
            "save": _("Save"), "saved": _("Saved:"), "sending": _("Encrypting and sending"),
            "sent_ok": _("Sent:"), "decrypting": _("Downloading and decrypting…"),
            "decryption_failed": _("This document could not be decrypted: it was altered or the key is wrong. "
                                   "Nothing was saved."),
            "transfer_failed": _("The transfer failed. Check your connection and try again."),
            "too_large": _("This file is too large for this server."),
            "over_quota": _("This consultation holds as many documents as it may. Nothing was sent."),
            "server_full": _("The server is full: nothing was sent. Tell the person who runs this service."),
            "no_key": _("The key of the documents is missing from this page's address. Open the link "
                        "exactly as you received it."),
            "wrong_link": _("This is not the link of this consultation."),
            "unreadable": _("(unreadable document)"),
            "new_document": _("New document:"),
            "not_sent_reload": _("{name} was not sent: the page was reloaded while sending. Send it again."),
            "waiting_network": _("Connection lost: sending goes on by itself when it returns. Keep this page open."),
        },
    }
