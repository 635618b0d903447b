"""The route table, flat: (method, path, handler, name). API route names are operationIds.

The drop box's rows are filedrop's (filedrop/http.py `routes`), mounted at the paths of
teleconsult/drop_links.py with the `authorise` callbacks of views/documents.py."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from filedrop.http import routes as drop_routes

from ..drop_links import CONSULTATION_API, CONSULTATION_FILES, PATIENT_FILES, STANDALONE_API, STANDALONE_FILES
from .views import account, api, dashboard, direct_call, documents, jitsi_events, login, metrics, patient, precall, profile, writing
from .views.documents import api_box, clinician_box, drop_box, patient_box, standalone

BOX_OPERATIONS = ("list", "create", "upload_state", "upload_part", "complete", "metadata", "download")
API_NAMES = {"list": "listDocuments", "create": "createDocument", "upload_state": "getDocumentUpload",
             "upload_part": "uploadDocumentPart", "complete": "completeDocument",
             "metadata": "getDocumentMetadata", "download": "downloadDocument"}
STANDALONE_NAMES = {"create": "drop_create", "upload_state": "drop_upload_state",
                    "upload_part": "drop_upload_part", "complete": "drop_complete",
                    "metadata": "drop_metadata", "download": "drop_download"}
API_STANDALONE_NAMES = {"create": "createDrop", "upload_state": "getDropUpload", "upload_part": "uploadDropPart",
                        "complete": "completeDrop", "metadata": "getDropMetadata", "download": "downloadDrop",
                        "delete": "deleteDrop"}


CLINICIAN_SIGNAL = direct_call.ClinicianSignal(dashboard.actions)


def _box_names(who: str) -> dict[str, str]:
    return {op: f"{who}_documents_{op}" for op in BOX_OPERATIONS}


ROUTES = [
    ("GET", "/healthz", api.healthz, "healthz"),
    ("GET", "/metrics", metrics.metrics, "metrics"),  # the host's Prometheus (Bearer metrics_token)
    # clinician: login
    ("GET", "/login", login.login_page, "login"),
    ("POST", "/login", login.login_submit, "login_submit"),
    ("POST", "/login/key", login.key_parameters, "login_key_parameters"),
    ("GET", "/login/totp/enrol", login.enrol_page, "totp_enrol"),
    ("POST", "/login/totp/enrol", login.enrol_submit, "totp_enrol_submit"),
    ("GET", "/login/totp", login.totp_page, "totp"),
    ("POST", "/login/totp", login.totp_submit, "totp_submit"),
    ("POST", "/logout", login.logout, "logout"),
    # clinician: own account
    ("GET", "/account", account.account_page, "account"),
    ("POST", "/account/password", account.password_submit, "account_password"),
    # clinician: dashboard
    ("GET", "/", dashboard.dashboard, "dashboard"),
    ("GET", "/dashboard/state", dashboard.state, "dashboard_state"),
    ("GET", "/dashboard/events", dashboard.events, "dashboard_events"),
    ("POST", "/consultations", dashboard.actions.create, "consultation_create"),
    ("GET", "/consultations/{id}", dashboard.call_page, "consultation_call"),
    ("GET", "/consultations/{id}/call", dashboard.actions.join, "consultation_call_access"),
    ("POST", "/consultations/{id}/end", dashboard.actions.end, "consultation_end"),
    ("POST", "/consultations/{id}/sealed-secret", dashboard.reseal, "consultation_reseal"),
    ("POST", "/consultations/{id}/knocks/{knock_id}/admit", dashboard.actions.admit, "knock_admit"),
    # the direct call's signalling (no Jitsi configured): clinician, then patient
    ("POST", "/consultations/{id}/signal", CLINICIAN_SIGNAL.send, "consultation_signal"),
    ("GET", "/consultations/{id}/signal/events", CLINICIAN_SIGNAL.events, "consultation_signal_events"),
    ("POST", "/j/{token}/signal", direct_call.patient_send, "patient_signal"),
    ("GET", "/j/{token}/signal/events", direct_call.patient_events, "patient_signal_events"),
    ("POST", "/consultations/{id}/knocks/{knock_id}/decline", dashboard.actions.decline, "knock_decline"),
    # patient
    ("GET", "/j/{token}", patient.join_page, "patient_join"),
    ("POST", "/j/{token}/knock", patient.knock, "patient_knock"),
    ("GET", "/j/{token}/status", patient.status, "patient_status"),
    ("GET", "/j/{token}/events", patient.events, "patient_events"),
    ("GET", "/j/{token}/call", patient.call_access, "patient_call_access"),
    # pre-call test: anyone (a patient has no account); its signalling is an API operation
    ("GET", "/precall", precall.precall_page, "precall"),
    # integrators' API (names = OpenAPI operationIds)
    ("GET", "/api/openapi.json", api.openapi, "openapi"),
    ("GET", "/api/clinician/key", api.get_clinician_key, "getClinicianKey"),
    ("POST", "/api/consultations", api.actions.create, "createConsultation"),
    ("GET", "/api/consultations", api.list_consultations, "listConsultations"),
    ("GET", "/api/consultations/{id}", api.get_consultation, "getConsultation"),
    ("POST", "/api/consultations/{id}/end", api.actions.end, "endConsultation"),
    ("POST", "/api/consultations/{id}/join", api.actions.join, "joinConsultation"),
    ("POST", "/api/consultations/{id}/knocks/{knock_id}/admit", api.actions.admit, "admitKnock"),
    ("POST", "/api/consultations/{id}/knocks/{knock_id}/decline", api.actions.decline, "declineKnock"),
    ("POST", "/api/precall/offer", precall.precall_offer, "precallOffer"),
    # Prosody's mod_teleconsult_events (HMAC-signed, not the Bearer API token)
    ("POST", "/api/jitsi/events", jitsi_events.jitsi_event, "jitsiEvent"),
    # the clinician's profile (page and API) and documents written in the call (rendered PDFs)
    *profile.ROUTES,
    *writing.ROUTES,
    # the drop box: consultation documents and standalone drops. The two event streams come
    # first: "/events" would otherwise match filedrop's "{doc}"
    ("GET", CONSULTATION_FILES + "/events", documents.clinician_events, "clinician_documents_events"),
    ("GET", PATIENT_FILES + "/events", documents.patient_events, "patient_documents_events"),
    *drop_routes(CONSULTATION_FILES, clinician_box, drop_box, names=_box_names("clinician")),
    *drop_routes(PATIENT_FILES, patient_box, drop_box, names=_box_names("patient")),
    *drop_routes(CONSULTATION_API, api_box, drop_box, names=API_NAMES),
    ("GET", "/d/", documents.drop_page, "drop_page"),
    *drop_routes(STANDALONE_FILES, standalone, drop_box, standalone=True, names=STANDALONE_NAMES,
                 on_gone=documents.count_miss),
    *drop_routes(STANDALONE_API, standalone, drop_box, standalone=True, names=API_STANDALONE_NAMES,
                 on_gone=documents.count_miss),
    ("GET", "/d/{doc}", documents.drop_receive_page, "drop_receive"),
]


def setup_routes(app: web.Application, static_dir: Path) -> None:
    for method, path, handler, name in ROUTES:
        app.router.add_route(method, path, handler, name=name)
    app.router.add_static("/static/", static_dir, name="static", append_version=True)
