"""Documents written in the call: the server renders the form into a PDF, in memory, and returns
it to the clinician's browser (which encrypts it and drops it into the consultation's box like
any file) or to an integrator (API token). Nothing is stored; nothing of the document is logged.

Who may: the consultation's own clinician (session + CSRF header, or Bearer API token), while
the consultation is open. A patient, another clinician, or nobody is refused before the body
is read.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from aiohttp import web

from ... import consultations as cs
from ...documents.forms import FormInvalid, parse_document, parse_language
from ...documents.profile import ProfileIncomplete, get_profile
from ...documents.render import render_document
from ...errors import Conflict
from ..appkeys import services_of
from ..auth import api_clinician, require_clinician
from ..bodies import read_json
from ..templating import translator

FILE_NAMES = {"prescription": "ordonnance", "report": "compte-rendu", "certificate": "certificat",
              "receipt": "recu"}


def latest_today() -> date:
    """Today somewhere on Earth (UTC+14): a date is in the future only when it is everywhere,
    whatever the server's time zone and the clinician's."""
    return datetime.now(timezone(timedelta(hours=14))).date()


def invalid_response(request: web.Request, exc: FormInvalid) -> web.Response:
    """400 with every problem, each translated into the page's language."""
    gettext = translator(request).gettext
    body = {"error": "; ".join(exc.messages(gettext)), "status": 400,
            "problems": [{"field": p.field, "message": p.text(gettext)} for p in exc.problems]}
    if isinstance(exc, ProfileIncomplete):
        body["missing"] = list(exc.missing)
    return web.json_response(body, status=400)


async def _render(request: web.Request, clinician) -> web.Response:
    services = services_of(request)
    consultation = await cs.get_consultation(services.engine, request.match_info["id"], clinician)
    if consultation.status == cs.ENDED:
        raise Conflict("consultation has ended")
    data = await read_json(request)
    try:
        if isinstance(data, dict) and not data.get("date"):
            data = {**data, "date": date.today().isoformat()}
        lang = parse_language(data.get("lang") if isinstance(data, dict) else None)
        document = parse_document(data, today=latest_today())
        profile = await get_profile(services.engine, clinician.id)
        pdf = await render_document(document, profile, lang, services.translations[lang])
    except FormInvalid as exc:
        return invalid_response(request, exc)
    name = f"{FILE_NAMES[document.template]}-{document.date.isoformat()}.pdf"
    return web.Response(body=pdf, content_type="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="{name}"'})


async def render_for_clinician(request: web.Request) -> web.Response:
    """The call panel's preview and send (session cookie; CSRF header checked by the middleware)."""
    return await _render(request, await require_clinician(request))


async def render_for_api(request: web.Request) -> web.Response:
    """renderDocument (Bearer API token)."""
    return await _render(request, await api_clinician(request))


ROUTES = [
    ("POST", "/consultations/{id}/render", render_for_clinician, "document_render"),
    ("POST", "/api/consultations/{id}/render", render_for_api, "renderDocument"),
]
