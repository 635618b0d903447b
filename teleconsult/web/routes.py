"""The route table, flat: (method, path, handler, name). API route names are operationIds."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from .views import account, api, dashboard, documents, jitsi_events, login, metrics, patient, precall, profile, writing

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
    # the drop box: consultation documents and standalone drops
    *documents.ROUTES,
]


def setup_routes(app: web.Application, static_dir: Path) -> None:
    for method, path, handler, name in ROUTES:
        app.router.add_route(method, path, handler, name=name)
    app.router.add_static("/static/", static_dir, name="static", append_version=True)
