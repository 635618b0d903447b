"""The OpenAPI 3.1 document of the integrators' API, written as data.

Hand-written: the aiohttp OpenAPI generators on PyPI are unmaintained or need their own
schema layer; a dict that tests check against the route table is smaller and exact.
"""

from __future__ import annotations

ERROR = {"$ref": "#/components/schemas/Error"}
CONSULTATION = {"$ref": "#/components/schemas/Consultation"}


def _responses(ok_status: str, ok_schema: dict, description: str, errors=("401", "404")) -> dict:
    responses = {ok_status: {"description": description,
                             "content": {"application/json": {"schema": ok_schema}}}}
    texts = {"401": "Missing or unknown API token", "404": "No such consultation for this clinician",
             "409": "The consultation has ended"}
    for code in errors:
        responses[code] = {"description": texts[code], "content": {"application/json": {"schema": ERROR}}}
    return responses


ID_PARAM = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
KNOCK_PARAM = {"name": "knock_id", "in": "path", "required": True, "schema": {"type": "string"}}

PATHS = {
    "/api/consultations": {
        "post": {
            "operationId": "createConsultation",
            "summary": "Create a consultation",
            "description": "Answers the consultation's id and its patient link without the fragment "
                           "(`patient_url`). The caller generates a 32-byte consultation secret S and "
                           "gives the patient `patient_url + '#' + base64url(S)`; S never reaches the server.",
            "responses": _responses("201", CONSULTATION, "The new consultation", errors=("401",)),
        },
        "get": {
            "operationId": "listConsultations",
            "summary": "The clinician's recent consultations",
            "responses": _responses("200", {"type": "object", "properties": {
                "consultations": {"type": "array", "items": CONSULTATION}}}, "Newest first", errors=("401",)),
        },
    },
    "/api/consultations/{id}": {
        "get": {
            "operationId": "getConsultation",
            "summary": "A consultation with its knocks",
            "parameters": [ID_PARAM],
            "responses": _responses("200", CONSULTATION, "The consultation"),
        },
    },
    "/api/consultations/{id}/end": {
        "post": {
            "operationId": "endConsultation",
            "summary": "End a consultation (idempotent); its room is never used again",
            "parameters": [ID_PARAM],
            "responses": _responses("200", CONSULTATION, "The ended consultation"),
        },
    },
    "/api/consultations/{id}/join": {
        "post": {
            "operationId": "joinConsultation",
            "summary": "The clinician's Jitsi domain, room and short-lived JWT, to embed the call",
            "parameters": [ID_PARAM],
            "responses": _responses("200", {"$ref": "#/components/schemas/CallAccess"}, "Call access",
                                    errors=("401", "404", "409")),
        },
    },
    "/api/consultations/{id}/knocks/{knock_id}/admit": {
        "post": {
            "operationId": "admitKnock",
            "summary": "Let a waiting patient in",
            "parameters": [ID_PARAM, KNOCK_PARAM],
            "responses": _responses("200", {"$ref": "#/components/schemas/Knock"}, "The admitted knock",
                                    errors=("401", "404", "409")),
        },
    },
    "/api/consultations/{id}/knocks/{knock_id}/decline": {
        "post": {
            "operationId": "declineKnock",
            "summary": "Turn a waiting patient away, or stop an admitted one from coming back",
            "parameters": [ID_PARAM, KNOCK_PARAM],
            "responses": _responses("200", {"$ref": "#/components/schemas/Knock"}, "The declined knock",
                                    errors=("401", "404", "409")),
        },
    },
}

SCHEMAS = {
    "Error": {"type": "object", "required": ["error", "status"],
              "properties": {"error": {"type": "string"}, "status": {"type": "integer"}}},
    "Knock": {"type": "object", "properties": {
        "id": {"type": "string"}, "consultation_id": {"type": "string"},
        "display_name": {"type": "string"},
        "status": {"type": "string", "enum": ["waiting", "admitted", "declined", "ended"]},
        "created_at": {"type": "number"}, "decided_at": {"type": ["number", "null"]}}},
    "Consultation": {"type": "object", "required": ["id", "status", "patient_url"], "properties": {
        "id": {"type": "string"},
        "status": {"type": "string", "enum": ["waiting", "in_call", "ended"]},
        "patient_url": {"type": "string", "format": "uri",
                        "description": "Patient link without the '#secret' fragment"},
        "created_at": {"type": "number"}, "deadline_at": {"type": "number"},
        "ended_at": {"type": ["number", "null"]}, "end_reason": {"type": ["string", "null"]},
        "knocks": {"type": "array", "items": {"$ref": "#/components/schemas/Knock"}}}},
    "CallAccess": {"type": "object", "required": ["domain", "room", "jwt"], "properties": {
        "domain": {"type": "string"}, "room": {"type": "string"}, "jwt": {"type": "string"},
        "external_api_url": {"type": "string", "format": "uri"}}},
}


def openapi_document(public_url: str) -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": "teleconsult API", "version": "1"},
        "servers": [{"url": public_url}],
        "security": [{"apiToken": []}],
        "components": {
            "securitySchemes": {"apiToken": {
                "type": "http", "scheme": "bearer",
                "description": "A clinician's API token, from `teleconsult clinician token EMAIL`."}},
            "schemas": SCHEMAS,
        },
        "paths": PATHS,
    }
