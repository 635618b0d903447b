"""What the document writer (static/js/writer.js, the clinician's call page) and the patient's
identity form (static/js/identity.js, the patient's page) are given in their page's JSON data
block. Their labels are in templates/_writer.html and templates/_identity.html; here are only the
texts that the scripts write themselves."""

from __future__ import annotations

from aiohttp import web

from ..templating import request_language, translator


def writer_config(request: web.Request, *, consultation_id: str, csrf: str) -> dict:
    """The clinician's writer: where to render, the session's CSRF token, the documents' default
    language (the page's), its texts."""
    _ = translator(request).gettext
    return {
        "render_url": f"/consultations/{consultation_id}/render", "csrf": csrf,
        "profile_url": "/profile", "lang": request_language(request),
        "i18n": {
            "line": _("Line %(n)s"),
            "remove_line": _("Remove line %(n)s"),
            "rendering": _("The server is preparing the document…"),
            "previewed": _("Preview ready. Check it, then send it to the patient."),
            "changed": _("The form has changed: preview it again before sending."),
            "sent": _("Sent to the patient:"),
            "not_sent": _("The document was not sent."),
            "refused": _("The document cannot be made yet:"),
            "problem": _("%(label)s: %(reason)s"),
            "complete_profile": _("Complete my profile (opens in a new tab)"),
            "ended": _("The consultation has ended: no more documents can be written."),
            "signed_out": _("Your session has expired: log in again in another tab, then retry."),
            "failed": _("The server could not be reached. Check your connection and try again."),
            "asked": _("Request sent. The fields will fill in when the patient answers."),
            "ask_failed": _("The request could not be sent."),
            "identity_filled": _("Filled in with what the patient typed: check it before sending."),
            "identity_request_name": _("identity request"),
        },
    }


def identity_config(request: web.Request) -> dict:
    """The patient's identity form: its texts."""
    _ = translator(request).gettext
    return {
        "i18n": {
            "asked": _("Your clinician asks for your identity, to write a document for you."),
            "sent": _("Sent to your clinician, encrypted."),
            "failed": _("Not sent. Check your connection and try again."),
            "required": _("Fill in your surname and first names."),
            "future": _("The date of birth cannot be in the future."),
            "identity_name": _("identity"),
        },
    }
