"""The clinician dashboard: list, create, admit/decline, call page, end. Thin views."""

from __future__ import annotations

from aiohttp import web

from ... import clinician_keys, sealing
from ... import consultations as cs
from ...errors import Conflict, InvalidInput
from ..auth import require_clinician, session_still_valid
from ..appkeys import services_of
from ..bodies import read_json
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
    key = await clinician_keys.get_key(engine, clinician.id)
    listed = await cs.list_consultations(engine, clinician)
    knocks = await cs.open_knocks(engine, [c.id for c in listed if c.status != cs.ENDED])
    # who is in the call (Prosody's room events, direct calls' streams: jitsi/shared_presence.py)
    presence = await services_of(request).presence.shown_many((c.id, c.status == cs.ENDED) for c in listed)
    for consultation in listed:
        item = consultation.listing(public_url, key.key_id if key else None)
        item["knocks"] = [k.public() for k in knocks.get(consultation.id, [])]
        item["presence"] = presence[consultation.id]
        items.append(item)
    return {"clinician": {"name": clinician.name}, "consultations": items,
            "key": key.for_owner() if key else None}


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


async def reseal(request: web.Request) -> web.Response:
    """{"sealed_secret"}: S sealed to the current key by a browser that still caches it."""
    clinician, consultation = await actions.own(request)
    engine = services_of(request).engine
    body = await read_json(request)
    try:
        sealed = sealing.check_sealed_secret(body["sealed_secret"])
    except (ValueError, TypeError, KeyError):
        raise InvalidInput('the body is {"sealed_secret": "sealed.v1.…"}') from None
    key = await clinician_keys.get_key(engine, clinician.id)
    if key is None:
        raise Conflict("no clinician key yet: log in again")
    settings = services_of(request).settings
    resealed = await cs.reseal(engine, settings, consultation, sealed, key.key_id, services_of(request).hub)
    return web.json_response(resealed.listing(settings.public_url, key.key_id))


async def call_page(request: web.Request) -> web.Response:
    clinician, consultation = await actions.own(request)
    public = consultation.public(services_of(request).settings.public_url)
    key = await clinician_keys.get_key(services_of(request).engine, clinician.id)
    csrf = await csrf_token(request)
    return await render(request, "call.html", {
        "consultation": public,
        "documents_role": "clinician", "documents_can_send": consultation.status != cs.ENDED,
        "documents": panel_config(request, base=f"/consultations/{consultation.id}/documents", role="clinician",
                                  consultation_id=consultation.id, patient_url=public["patient_url"],
                                  csrf=csrf, sealed_secret=consultation.sealed_secret,
                                  key=key.for_owner() if key else None),
        "writer": writer_config(request, consultation_id=consultation.id, csrf=csrf)
        if consultation.status != cs.ENDED else None,
        "direct": await direct_config(request, access_url=f"/consultations/{consultation.id}/call",
                                      signal_url=f"/consultations/{consultation.id}/signal"),
    })
