"""Where the drop box is mounted: the consultation box for the clinician (session), the
patient (admitted knock) and integrators (API token); standalone drops (/d/). The handlers
are filedrop's; this module only says who may use which box, and as whom."""

from __future__ import annotations

from aiohttp import web

from filedrop.http import Access, DropHandlers, drop_routes

from ... import consultations as cs
from ..auth import api_clinician, require_clinician
from ...errors import Conflict, Forbidden
from ..appkeys import services_of
from ..sse import stream
from ..templating import render
from .patient import patient_consultation_and_knock

WRITE_METHODS = ("POST", "PATCH", "DELETE")


def _box(request: web.Request):
    return services_of(request).drops


def _check_open(consultation: cs.Consultation, request: web.Request) -> None:
    """After the end, documents can still be read until they are deleted; nothing new is sent."""
    if consultation.status == cs.ENDED and request.method in WRITE_METHODS:
        raise Conflict("consultation has ended")


async def clinician_box(request: web.Request) -> Access:
    clinician = await require_clinician(request)
    consultation = await cs.get_consultation(services_of(request).engine, request.match_info["id"], clinician)
    _check_open(consultation, request)
    return Access(box_id=consultation.id, role="clinician")


async def api_box(request: web.Request) -> Access:
    clinician = await api_clinician(request)
    consultation = await cs.get_consultation(services_of(request).engine, request.match_info["id"], clinician)
    _check_open(consultation, request)
    return Access(box_id=consultation.id, role="clinician")


async def patient_box(request: web.Request) -> Access:
    """Only a patient who was admitted (now, or before the end) reaches the box."""
    consultation, knock = await patient_consultation_and_knock(request)
    was_admitted = knock.status == cs.KNOCK_ADMITTED or (
        knock.status == cs.KNOCK_ENDED and knock.decided_at is not None)
    if not was_admitted:
        raise Forbidden("not admitted")
    _check_open(consultation, request)
    return Access(box_id=consultation.id, role="patient")


def _count_miss(request: web.Request) -> None:
    """An unknown, expired or deleted drop id: one guess for the client (429 once used up).
    Known ids and authenticated creation are never throttled."""
    services_of(request).limiters.link.attempt(f"drop:{request.remote or 'unknown'}")


async def standalone(request: web.Request) -> Access:
    """Creating a standalone drop needs a clinician (no free file hosting for the world);
    uploading its parts needs its owner token; fetching it needs only the link."""
    if request.method == "POST" and request.match_info.route.name in ("drop_create", "createDrop"):
        if request.path.startswith("/api/"):
            await api_clinician(request)
        else:
            await require_clinician(request)
    return Access(box_id=None, role="standalone")


clinician_handlers = DropHandlers(_box, clinician_box)
patient_handlers = DropHandlers(_box, patient_box)
api_handlers = DropHandlers(_box, api_box)
standalone_handlers = DropHandlers(_box, standalone, standalone=True, on_gone=_count_miss)

BOX_NAMES = {op: f"{{who}}_documents_{op}" for op in
             ("list", "create", "upload_state", "upload_part", "complete", "metadata", "download")}
API_NAMES = {"list": "listDocuments", "create": "createDocument", "upload_state": "getDocumentUpload",
             "upload_part": "uploadDocumentPart", "complete": "completeDocument",
             "metadata": "getDocumentMetadata", "download": "downloadDocument"}
STANDALONE_NAMES = {"create": "drop_create", "upload_state": "drop_upload_state",
                    "upload_part": "drop_upload_part", "complete": "drop_complete",
                    "metadata": "drop_metadata", "download": "drop_download"}
API_STANDALONE_NAMES = {"create": "createDrop", "upload_state": "getDropUpload", "upload_part": "uploadDropPart",
                        "complete": "completeDrop", "metadata": "getDropMetadata", "download": "downloadDrop",
                        "delete": "deleteDrop"}


def _named(who: str) -> dict[str, str]:
    return {op: name.format(who=who) for op, name in BOX_NAMES.items()}


async def clinician_events(request: web.Request) -> web.StreamResponse:
    access = await clinician_box(request)
    return await stream(request, f"box:{access.box_id}", {"type": "hello"})


async def patient_events(request: web.Request) -> web.StreamResponse:
    access = await patient_box(request)
    return await stream(request, f"box:{access.box_id}", {"type": "hello"})


async def drop_page(request: web.Request) -> web.Response:
    """The standalone sender's page: pick a file, expiry, downloads; get a /d/ link."""
    await require_clinician(request)
    return await render(request, "drop_send.html")


async def drop_receive_page(request: web.Request) -> web.Response:
    """The recipient's page; unknown and expired ids look the same (decided by the API call)."""
    return await render(request, "drop_receive.html", {"drop_id": request.match_info["doc"]}, csrf=False)


ROUTES = [
    # the two event streams come first: "/events" would otherwise match "{doc}"
    ("GET", "/consultations/{id}/documents/events", clinician_events, "clinician_documents_events"),
    ("GET", "/j/{token}/documents/events", patient_events, "patient_documents_events"),
    *drop_routes("/consultations/{id}/documents", clinician_handlers, _named("clinician")),
    *drop_routes("/j/{token}/documents", patient_handlers, _named("patient")),
    *drop_routes("/api/consultations/{id}/documents", api_handlers, API_NAMES),
    ("GET", "/d/", drop_page, "drop_page"),
    *drop_routes("/d/files", standalone_handlers, STANDALONE_NAMES),
    *drop_routes("/api/drop/files", standalone_handlers, API_STANDALONE_NAMES),
    ("GET", "/d/{doc}", drop_receive_page, "drop_receive"),
]
