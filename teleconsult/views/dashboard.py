"""The clinician dashboard: list, create, admit/decline, call page, end. Thin views."""

from __future__ import annotations

from aiohttp import web

from .. import consultations as cs
from .. import lifecycle
from ..auth import require_clinician
from ..keys import engine_key, hub_key, settings_key
from ..csrf import csrf_token
from ..sse import stream
from ..templating import render
from .documents import panel_config


async def _own_consultation(request: web.Request):
    clinician = await require_clinician(request)
    consultation = await cs.get_consultation(request.app[engine_key], request.match_info["id"], clinician)
    return clinician, consultation


async def dashboard_state(request: web.Request, clinician) -> dict:
    engine, public_url = request.app[engine_key], request.app[settings_key].public_url
    items = []
    for consultation in await cs.list_consultations(engine, clinician):
        item = consultation.public(public_url)
        knocks = await cs.list_knocks(engine, consultation) if consultation.status != cs.ENDED else []
        item["knocks"] = [k.public() for k in knocks if k.status in (cs.KNOCK_WAITING, cs.KNOCK_ADMITTED)]
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
    return await stream(request, f"clinician:{clinician.id}", {"type": "hello"})


async def create(request: web.Request) -> web.Response:
    clinician = await require_clinician(request)
    consultation = await cs.create_consultation(
        request.app[engine_key], request.app[settings_key], clinician, request.app[hub_key])
    return web.json_response(consultation.public(request.app[settings_key].public_url), status=201)


async def call_page(request: web.Request) -> web.Response:
    clinician, consultation = await _own_consultation(request)
    public = consultation.public(request.app[settings_key].public_url)
    return await render(request, "call.html", {
        "consultation": public,
        "documents_role": "clinician", "documents_can_send": consultation.status != cs.ENDED,
        "documents": panel_config(request, base=f"/consultations/{consultation.id}/documents", role="clinician",
                                  consultation_id=consultation.id, patient_url=public["patient_url"],
                                  csrf=await csrf_token(request)),
    })


async def call_access(request: web.Request) -> web.Response:
    clinician, consultation = await _own_consultation(request)
    access = cs.call_for_clinician(request.app[settings_key], consultation, clinician)
    return web.json_response(access.as_json())


async def end(request: web.Request) -> web.Response:
    _, consultation = await _own_consultation(request)
    ended = await lifecycle.end(request.app, consultation, "clinician")
    return web.json_response(ended.public(request.app[settings_key].public_url))


async def _decide(request: web.Request, admit: bool) -> web.Response:
    _, consultation = await _own_consultation(request)
    knock = await cs.decide(request.app[engine_key], consultation, request.match_info["knock_id"], admit,
                            request.app[hub_key])
    return web.json_response(knock.public())


async def admit(request: web.Request) -> web.Response:
    return await _decide(request, True)


async def decline(request: web.Request) -> web.Response:
    return await _decide(request, False)
