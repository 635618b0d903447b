"""Consultation actions shared by the dashboard (session cookie + CSRF) and the integrators'
API (Bearer token): the same thin handlers, built once per way of authenticating."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from ... import consultations as cs
from ... import ending
from ...accounts import Clinician
from ..appkeys import services_of

Authenticate = Callable[[web.Request], Awaitable[Clinician]]


class ConsultationActions:
    def __init__(self, authenticate: Authenticate):
        self.authenticate = authenticate

    async def own(self, request: web.Request) -> tuple[Clinician, cs.Consultation]:
        """Authorise first: another clinician's consultation is NotFound, like a missing one."""
        clinician = await self.authenticate(request)
        consultation = await cs.get_consultation(services_of(request).engine, request.match_info["id"], clinician)
        return clinician, consultation

    async def create(self, request: web.Request) -> web.Response:
        clinician = await self.authenticate(request)
        consultation = await cs.create_consultation(
            services_of(request).engine, services_of(request).settings, clinician, services_of(request).hub)
        return web.json_response(consultation.public(services_of(request).settings.public_url), status=201)

    async def end(self, request: web.Request) -> web.Response:
        _, consultation = await self.own(request)
        ended = await ending.end(services_of(request), consultation, "clinician")
        return web.json_response(ended.public(services_of(request).settings.public_url))

    async def join(self, request: web.Request) -> web.Response:
        """The clinician's Jitsi domain, room and moderator token."""
        clinician, consultation = await self.own(request)
        return web.json_response(cs.call_for_clinician(services_of(request).settings, consultation, clinician).as_json())

    async def _decide(self, request: web.Request, admit: bool) -> web.Response:
        _, consultation = await self.own(request)
        knock = await cs.decide(services_of(request).engine, consultation, request.match_info["knock_id"], admit,
                                services_of(request).hub)
        return web.json_response(knock.public())

    async def admit(self, request: web.Request) -> web.Response:
        return await self._decide(request, True)

    async def decline(self, request: web.Request) -> web.Response:
        return await self._decide(request, False)
