"""The direct call's signalling routes (teleconsult/direct_call.py has the rules): each party POSTs
its messages and reads the other's on a signal stream. Thin views: authorise on the first line.

- clinician: the session + CSRF (csrf_middleware), their own consultation only;
- patient: the admitted knock kept in this browser's session + CSRF, for the link's consultation only;
- both: refused once the consultation has ended (409), and only when no Jitsi is configured (404).
"""

from __future__ import annotations

from aiohttp import web

from ... import consultations as cs
from ... import direct_call as dc
from ...errors import NotFound
from ...jitsi import room_sync
from ..appkeys import services_of
from ..auth import session_still_valid
from ..sse import stream
from .actions import ConsultationActions
from .patient import patient_consultation_and_knock


def _direct_only(request: web.Request) -> None:
    if services_of(request).settings.call_engine != "direct":
        raise NotFound("no direct call: this server uses Jitsi")


async def _message(request: web.Request) -> dict:
    """The posted message, checked; 413 past MAX_MESSAGE_BYTES (nothing more is read), 400 if malformed."""
    limit = dc.MAX_MESSAGE_BYTES
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    return dc.check_message(bytes(body))


async def _admitted_knock_ids(request: web.Request, consultation: cs.Consultation) -> list[str]:
    knocks = await cs.open_knocks(services_of(request).engine, [consultation.id])
    return [k.id for k in knocks[consultation.id] if k.status == cs.KNOCK_ADMITTED]


def _held(request: web.Request, consultation: cs.Consultation, knock_id: str | None):
    """Held while a signal stream is open (direct_call.SignalPresence); the dashboard shows who is
    in a direct call as it shows a Jitsi room's occupants."""
    services = services_of(request)
    return services.signal_presence.connected(
        consultation.id, knock_id, on_change=lambda: room_sync.publish_presence(services, consultation))


def _hello(request: web.Request, consultation: cs.Consultation, peer: str):
    """The stream's first event, whether `peer` is there: asked once this stream is subscribed and
    counted present, so a peer arriving meanwhile is either seen here or announced after."""
    async def hello() -> dict:
        return {"type": "hello", "peer": await services_of(request).signal_presence.present(consultation.id, peer)}
    return hello


class ClinicianSignal:
    def __init__(self, actions: ConsultationActions):
        self.actions = actions

    async def send(self, request: web.Request) -> web.Response:
        _, consultation = await self.actions.own(request)
        _direct_only(request)
        dc.open_call(consultation)
        message = await _message(request)
        dc.relay(services_of(request).hub, consultation.id, message,
                 to_patients=await _admitted_knock_ids(request, consultation))
        return web.Response(status=204)

    async def events(self, request: web.Request) -> web.StreamResponse:
        _, consultation = await self.actions.own(request)
        _direct_only(request)
        dc.open_call(consultation)
        return await stream(request, dc.clinician_topic(consultation.id), _hello(request, consultation, dc.PATIENT),
                            session_still_valid(request), held=_held(request, consultation, None))


async def _patient(request: web.Request) -> tuple[cs.Consultation, cs.Knock]:
    consultation, knock = await patient_consultation_and_knock(request)
    _direct_only(request)
    dc.open_call(consultation)
    dc.admitted(consultation, knock)
    return consultation, knock


async def patient_send(request: web.Request) -> web.Response:
    consultation, _ = await _patient(request)
    message = await _message(request)
    dc.relay(services_of(request).hub, consultation.id, message)
    return web.Response(status=204)


async def patient_events(request: web.Request) -> web.StreamResponse:
    consultation, knock = await _patient(request)
    return await stream(request, dc.patient_topic(consultation.id, knock.id),
                        _hello(request, consultation, dc.CLINICIAN), held=_held(request, consultation, knock.id))

