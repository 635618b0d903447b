"""The clinician dashboard: list, create, admit/decline, call page, end. Thin views."""

from __future__ import annotations

from aiohttp import web

from ... import consultations as cs
from ..auth import require_clinician, session_still_valid
from ..appkeys import services_of
from ..csrf import csrf_token
from ..sse import stream
from ..templating import render
from .actions import ConsultationActions
from .direct_call_panel import direct_config
from .documents_panel import panel_config
from .writer_panel import writer_config


actions = ConsultationActions(require_clinician)


async def dashboard_state(request: web.Request, clinician) -> dict:
    engine, public_url = services_of(request).engine, services_of(request).settings.public_url
    items = []
    listed = await cs.list_consultations(engine, clinician)
    knocks = await cs.open_knocks(engine, [c.id for c in listed if c.status != cs.ENDED])
    for consultation in listed:
        item = consultation.public(public_url)
        item["knocks"] = [k.public() for k in knocks.get(consultation.id, [])]
        # who is in the call, from Prosody's room events (presence.py)
        item["presence"] = services_of(request).presence.shown(consultation.id, consultation.status == cs.ENDED)
        items.append(item)
    return {"clinician": {"name": clinician.name}, "consultations": items}


async def dashboard(request: web.Request) -> web.Response:
    clinician = await require_clinician(request)
    return await render(request, "dashboard.html", {
        "clinician": clinician, "state": await dashboard_state(request, clinician)})


async def state(request: web.Request) -> web.Response:
    clinician = await require_clinician(request)
    return web.json_response(await dashboard_state(request, clinician))


async def events(request: web.Request) -> web.StreamResponse:
    clinician = await require_clinician(request)
    return await stream(request, f"clinician:{clinician.id}", {"type": "hello"}, session_still_valid(request))




async def call_page(request: web.Request) -> web.Response:
    clinician, consultation = await actions.own(request)
    public = consultation.public(services_of(request).settings.public_url)
    csrf = await csrf_token(request)
    return await render(request, "call.html", {
        "consultation": public,
        "documents_role": "clinician", "documents_can_send": consultation.status != cs.ENDED,
        "documents": panel_config(request, base=f"/consultations/{consultation.id}/documents", role="clinician",
                                  consultation_id=consultation.id, patient_url=public["patient_url"],
                                  csrf=csrf),
        "writer": writer_config(request, consultation_id=consultation.id, csrf=csrf)
        if consultation.status != cs.ENDED else None,
        "direct": await direct_config(request, access_url=f"/consultations/{consultation.id}/call",
                                      signal_url=f"/consultations/{consultation.id}/signal"),
    })
