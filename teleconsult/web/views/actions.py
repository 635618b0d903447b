"""Consultation actions shared by the dashboard (session cookie + CSRF) and the integrators'
API (Bearer token): the same thin handlers, built once per way of authenticating."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from ... import clinician_keys, ending, sealing
from ... import consultations as cs
from ...accounts import Clinician
from ...call_access import call_for_clinician
from ...errors import Conflict, InvalidInput
from ..appkeys import services_of
from ..bodies import read_json

Authenticate = Callable[[web.Request], Awaitable[Clinician]]


async def _sealed_creation(request: web.Request, engine, clinician: Clinician) -> dict:
    if not request.can_read_body:
        return {}
    body = await read_json(request)
    if not isinstance(body, dict) or set(body) - {"id", "sealed_secret"}:
        raise InvalidInput('the body is an object with "id" and "sealed_secret", or empty')
    if not body:
        return {}
    if set(body) != {"id", "sealed_secret"}:
        raise InvalidInput('"id" and "sealed_secret" go together: S is sealed for one consultation id')
    try:
        sealed = sealing.check_sealed_secret(body["sealed_secret"])
    except sealing.SealingError as exc:
        raise InvalidInput(f"sealed_secret: {exc}") from None
    key = await clinician_keys.get_key(engine, clinician.id)
    if key is None:
        raise Conflict("this clinician has no key yet: it is made at their next login in a browser")
    return {"consultation_id": body["id"], "sealed_secret": sealed, "sealed_to": key.key_id}


class ConsultationActions:
    def __init__(self, authenticate: Authenticate):
        self.authenticate = authenticate

    async def own(self, request: web.Request) -> tuple[Clinician, cs.Consultation]:
        """Authorise first: another clinician's consultation is NotFound, like a missing one."""
        clinician = await self.authenticate(request)
        consultation = await cs.get_consultation(services_of(request).engine, request.match_info["id"], clinician)
        return clinician, consultation

    async def create(self, request: web.Request) -> web.Response:
        """An empty body, or {"id", "sealed_secret"}: S sealed to the clinician's key for
        that id (docs/encryption.md section 9), so that the clinician's devices open it."""
        clinician = await self.authenticate(request)
        services = services_of(request)
        chosen = await _sealed_creation(request, services.engine, clinician)
        consultation = await cs.create_consultation(services.engine, services.settings, clinician, services.hub,
                                                    **chosen)
        return web.json_response(consultation.public(services.settings.public_url), status=201)

    async def end(self, request: web.Request) -> web.Response:
        _, consultation = await self.own(request)
        ended = await ending.end(services_of(request), consultation, "clinician")
        return web.json_response(ended.public(services_of(request).settings.public_url))

    async def join(self, request: web.Request) -> web.Response:
        """The clinician's Jitsi domain, room and moderator token."""
        clinician, consultation = await self.own(request)
        return web.json_response(call_for_clinician(services_of(request).settings, consultation, clinician).as_json())

    async def _decide(self, request: web.Request, admit: bool) -> web.Response:
        _, consultation = await self.own(request)
        knock = await cs.decide(services_of(request).engine, consultation, request.match_info["knock_id"], admit,
                                services_of(request).hub)
        return web.json_response(knock.public())

    async def admit(self, request: web.Request) -> web.Response:
        return await self._decide(request, True)

    async def decline(self, request: web.Request) -> web.Response:
        return await self._decide(request, False)
