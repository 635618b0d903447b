"""The integrators' HTTP API (Bearer API token per clinician), described in openapi.py."""

from __future__ import annotations

import sqlalchemy as sa
from aiohttp import web

from ... import clinician_keys
from ... import consultations as cs
from ...errors import NotFound
from ..auth import api_clinician
from ..appkeys import services_of
from ..openapi import openapi_document
from .actions import ConsultationActions


actions = ConsultationActions(api_clinician)


def _public(request: web.Request, consultation: cs.Consultation, presence: dict) -> dict:
    body = consultation.public(services_of(request).settings.public_url)
    body["presence"] = presence[consultation.id]  # who is in the call (jitsi/shared_presence.py)
    return body


async def _presence(request: web.Request, consultations: list[cs.Consultation]) -> dict:
    return await services_of(request).presence.shown_many((c.id, c.status == cs.ENDED) for c in consultations)


async def list_consultations(request: web.Request) -> web.Response:
    clinician = await api_clinician(request)
    items = await cs.list_consultations(services_of(request).engine, clinician)
    presence = await _presence(request, items)
    return web.json_response({"consultations": [_public(request, c, presence) for c in items]})


async def get_consultation(request: web.Request) -> web.Response:
    _, consultation = await actions.own(request)
    body = _public(request, consultation, await _presence(request, [consultation]))
    body["knocks"] = [k.public() for k in await cs.list_knocks(services_of(request).engine, consultation)]
    return web.json_response(body)


async def get_clinician_key(request: web.Request) -> web.Response:
    """The public key to seal consultation secrets to (docs/encryption.md section 9)."""
    clinician = await api_clinician(request)
    key = await clinician_keys.get_key(services_of(request).engine, clinician.id)
    if key is None:
        raise NotFound("this clinician has no key yet: it is made at their next login in a browser")
    return web.json_response(key.public())


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(services_of(request).settings.public_url))


async def healthz(request: web.Request) -> web.Response:
    try:
        async with services_of(request).engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except Exception:
        return web.json_response({"status": "error", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ok", "database": "ok"})
