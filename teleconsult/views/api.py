"""The integrators' HTTP API (Bearer API token per clinician), described in openapi.py."""

from __future__ import annotations

import sqlalchemy as sa
from aiohttp import web

from .. import consultations as cs
from .. import lifecycle
from ..auth import api_clinician
from ..keys import engine_key, hub_key, settings_key
from ..openapi import openapi_document


async def _own_consultation(request: web.Request):
    clinician = await api_clinician(request)
    consultation = await cs.get_consultation(request.app[engine_key], request.match_info["id"], clinician)
    return clinician, consultation


async def _with_knocks(request: web.Request, consultation: cs.Consultation) -> dict:
    body = consultation.public(request.app[settings_key].public_url)
    body["knocks"] = [k.public() for k in await cs.list_knocks(request.app[engine_key], consultation)]
    return body


async def create_consultation(request: web.Request) -> web.Response:
    clinician = await api_clinician(request)
    consultation = await cs.create_consultation(
        request.app[engine_key], request.app[settings_key], clinician, request.app[hub_key])
    return web.json_response(consultation.public(request.app[settings_key].public_url), status=201)


async def list_consultations(request: web.Request) -> web.Response:
    clinician = await api_clinician(request)
    items = await cs.list_consultations(request.app[engine_key], clinician)
    public_url = request.app[settings_key].public_url
    return web.json_response({"consultations": [c.public(public_url) for c in items]})


async def get_consultation(request: web.Request) -> web.Response:
    _, consultation = await _own_consultation(request)
    return web.json_response(await _with_knocks(request, consultation))


async def end_consultation(request: web.Request) -> web.Response:
    _, consultation = await _own_consultation(request)
    ended = await lifecycle.end(request.app, consultation, "clinician")
    return web.json_response(ended.public(request.app[settings_key].public_url))


async def join_consultation(request: web.Request) -> web.Response:
    clinician, consultation = await _own_consultation(request)
    return web.json_response(cs.call_for_clinician(request.app[settings_key], consultation, clinician).as_json())


async def _decide(request: web.Request, admit: bool) -> web.Response:
    _, consultation = await _own_consultation(request)
    knock = await cs.decide(request.app[engine_key], consultation, request.match_info["knock_id"], admit,
                            request.app[hub_key])
    return web.json_response(knock.public())


async def admit_knock(request: web.Request) -> web.Response:
    return await _decide(request, True)


async def decline_knock(request: web.Request) -> web.Response:
    return await _decide(request, False)


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(request.app[settings_key].public_url))


async def healthz(request: web.Request) -> web.Response:
    try:
        async with request.app[engine_key].connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except Exception:
        return web.json_response({"status": "error", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ok", "database": "ok"})
