"""Who may use the drop box where teleconsult mounts it (teleconsult/web/routes.py): the
consultation box for the clinician (session), the patient (admitted knock) and integrators (API
token); standalone drops (/d/). filedrop's handlers call these `authorise` callbacks first and
store the role named here; the pages and live events around the box are teleconsult's."""

from __future__ import annotations

from aiohttp import web

from filedrop.http import Access

from ... import consultations as cs
from ..auth import api_clinician, require_clinician, session_still_valid
from ...errors import Conflict, Forbidden
from ..appkeys import services_of
from ..sse import stream
from ..templating import render
from .patient import patient_consultation_and_knock

# teleconsult's names for who sent a document (filedrop stores them as given): the patient's first
# device is "patient", another device that opened the same link "patient-2", "patient-3"…
CLINICIAN, PATIENT = "clinician", "patient"


def patient_sender(device: int) -> str:
    return PATIENT if device <= 1 else f"{PATIENT}-{device}"


async def patient_sender_of(request: web.Request, knock: cs.Knock) -> str:
    return patient_sender(await cs.device_number(services_of(request).engine, knock))
# operations that add to a box: none after the consultation ends
WRITES = ("create", "upload_part", "complete", "delete")


def drop_box(request: web.Request):
    return services_of(request).drops


def _check_open(consultation: cs.Consultation, operation: str) -> None:
    """After the end, documents can still be read until they are deleted; nothing new is sent."""
    if consultation.status == cs.ENDED and operation in WRITES:
        raise Conflict("consultation has ended")


async def clinician_box(request: web.Request, operation: str) -> Access:
    clinician = await require_clinician(request)
    consultation = await cs.get_consultation(services_of(request).engine, request.match_info["id"], clinician)
    _check_open(consultation, operation)
    return Access(box_id=consultation.id, role=CLINICIAN, owner=consultation.clinician_id)


async def api_box(request: web.Request, operation: str) -> Access:
    clinician = await api_clinician(request)
    consultation = await cs.get_consultation(services_of(request).engine, request.match_info["id"], clinician)
    _check_open(consultation, operation)
    return Access(box_id=consultation.id, role=CLINICIAN, owner=consultation.clinician_id)


async def patient_box(request: web.Request, operation: str) -> Access:
    """Only a patient who was admitted (now, or before the end) reaches the box."""
    consultation, knock = await patient_consultation_and_knock(request)
    was_admitted = knock.status == cs.KNOCK_ADMITTED or (
        knock.status == cs.KNOCK_ENDED and knock.decided_at is not None)
    if not was_admitted:
        raise Forbidden("not admitted")
    _check_open(consultation, operation)
    return Access(box_id=consultation.id, role=await patient_sender_of(request, knock), owner=consultation.clinician_id)


async def count_miss(request: web.Request) -> None:
    """filedrop's `on_gone`: an unknown, expired or deleted drop id is one guess for the client
    (429 once used up). Known ids and authenticated creation are never throttled."""
    await services_of(request).limiters.link.attempt(f"drop:{request.remote or 'unknown'}")


async def standalone(request: web.Request, operation: str) -> Access:
    """Creating a standalone drop needs a clinician (no free file hosting for the world);
    uploading its parts and deleting it need its owner token (filedrop checks it); fetching it
    needs only the link."""
    if operation == "create":
        clinician = await (api_clinician(request) if request.path.startswith("/api/") else require_clinician(request))
        return Access(box_id=None, role="standalone", owner=clinician.id)
    return Access(box_id=None, role="standalone")


async def clinician_events(request: web.Request) -> web.StreamResponse:
    access = await clinician_box(request, "events")
    return await stream(request, f"box:{access.box_id}", {"type": "hello"}, session_still_valid(request))


async def patient_events(request: web.Request) -> web.StreamResponse:
    access = await patient_box(request, "events")
    return await stream(request, f"box:{access.box_id}", {"type": "hello"})


async def drop_page(request: web.Request) -> web.Response:
    """The standalone sender's page: pick a file, expiry, downloads; get a /d/ link."""
    await require_clinician(request)
    return await render(request, "drop_send.html")


async def drop_receive_page(request: web.Request) -> web.Response:
    """The recipient's page; unknown and expired ids look the same (decided by the API call)."""
    return await render(request, "drop_receive.html", {"drop_id": request.match_info["doc"]}, csrf=False)
