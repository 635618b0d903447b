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

DOC_PARAM = {"name": "doc", "in": "path", "required": True, "schema": {"type": "string"}}
OFFSET_HEADER = {"name": "Upload-Offset", "in": "header", "required": True,
                 "schema": {"type": "integer", "minimum": 0},
                 "description": "Where this part starts; at most the bytes received so far (a retried part "
                                "replaces itself)."}
OWNER_HEADER = {"name": "X-Owner-Token", "in": "header", "required": True, "schema": {"type": "string"}}
OCTETS = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
DOCUMENT = {"$ref": "#/components/schemas/Document"}
UPLOAD = {"$ref": "#/components/schemas/UploadState"}
CREATE_BODY = {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["size"], "properties": {
        "size": {"type": "integer", "description": "Ciphertext size: a padded RFC 8188 size (docs/encryption.md)"},
        "expires_in": {"type": "number", "description": "Standalone drops: seconds to live"},
        "max_downloads": {"type": "integer", "description": "Standalone drops: downloads before deletion"}}}}}}


def _drop_paths(prefix: str, params: list, ops: dict[str, str], *, owner: bool) -> dict:
    """The upload/download operations of one mount of the drop box (see filedrop/http.py)."""
    doc = [*params, DOC_PARAM]
    gone = ("401", "404") if not owner else ("404",)
    paths = {
        prefix: {"post": {
            "operationId": ops["create"], "summary": "Reserve a document id for an upload of `size` bytes",
            "parameters": params, "requestBody": CREATE_BODY,
            "responses": {**_responses("201", DOCUMENT, "Reserved; upload parts next", errors=("401",)),
                          "413": {"description": "Larger than documents_max_mib"}}}},
        prefix + "/{doc}/upload": {
            "get": {"operationId": ops["upload_state"], "summary": "Bytes received so far (where to resume)",
                    "parameters": doc + ([OWNER_HEADER] if owner else []),
                    "responses": _responses("200", UPLOAD, "Upload state", errors=gone)},
            "patch": {"operationId": ops["upload_part"], "summary": "Upload one part of the ciphertext",
                      "parameters": doc + [OFFSET_HEADER] + ([OWNER_HEADER] if owner else []),
                      "requestBody": {"required": True, "content": OCTETS},
                      "responses": {**_responses("200", UPLOAD, "Part stored", errors=gone),
                                    "409": {"description": "Offset past the bytes received; body says where"},
                                    "413": {"description": "Part goes past the declared size; nothing kept"}}}},
        prefix + "/{doc}/complete": {"post": {
            "operationId": ops["complete"], "summary": "Attach the encrypted metadata and publish",
            "parameters": doc + ([OWNER_HEADER] if owner else []),
            "requestBody": {"required": True, "content": OCTETS},
            "responses": _responses("200", DOCUMENT, "Published", errors=gone)}},
        prefix + "/{doc}/metadata": {"get": {
            "operationId": ops["metadata"], "summary": "The encrypted metadata (AES-256-GCM, IV first)",
            "parameters": doc, "responses": {"200": {"description": "Encrypted metadata", "content": OCTETS},
                                             "404": {"description": "Unknown, expired or deleted"}}}},
        prefix + "/{doc}": {"get": {
            "operationId": ops["download"], "summary": "The document's raw RFC 8188 ciphertext, streamed",
            "parameters": doc, "responses": {"200": {"description": "Ciphertext", "content": OCTETS},
                                             "404": {"description": "Unknown, expired or deleted"}}}},
    }
    if "list" in ops:
        paths[prefix]["get"] = {
            "operationId": ops["list"], "summary": "Documents of the consultation's box",
            "parameters": params, "responses": _responses("200", {"type": "object", "properties": {
                "documents": {"type": "array", "items": DOCUMENT}}}, "Live documents")}
    if "delete" in ops:
        paths[prefix + "/{doc}"]["delete"] = {
            "operationId": ops["delete"], "summary": "The sender deletes a standalone drop",
            "parameters": doc + [OWNER_HEADER],
            "responses": {"200": {"description": "Deleted"}, "403": {"description": "Wrong owner token"},
                          "404": {"description": "Unknown, expired or deleted"}}}
    return paths


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
    "Document": {"type": "object", "properties": {
        "id": {"type": "string"}, "size": {"type": "integer"},
        "uploaded_by": {"type": "string", "enum": ["clinician", "patient", "standalone"]},
        "state": {"type": "string", "enum": ["uploading", "ready"]},
        "metadata": {"type": ["string", "null"], "description": "base64url encrypted metadata"},
        "downloads": {"type": "integer"}, "max_downloads": {"type": ["integer", "null"]},
        "created_at": {"type": "number"}, "expires_at": {"type": "number"},
        "delete_at": {"type": ["number", "null"]},
        "owner_token": {"type": "string", "description": "Standalone drops, on creation only"}}},
    "UploadState": {"type": "object", "properties": {
        "offset": {"type": "integer"}, "size": {"type": "integer"}, "state": {"type": "string"}}},
    "CallAccess": {"type": "object", "required": ["domain", "room", "jwt"], "properties": {
        "domain": {"type": "string"}, "room": {"type": "string"}, "jwt": {"type": "string"},
        "external_api_url": {"type": "string", "format": "uri"}}},
}


def _all_paths() -> dict:
    from .views.documents import API_NAMES, API_STANDALONE_NAMES
    return {**PATHS,
            **_drop_paths("/api/consultations/{id}/documents", [ID_PARAM], API_NAMES, owner=False),
            **_drop_paths("/api/drop/files", [], API_STANDALONE_NAMES, owner=True)}


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
        "paths": _all_paths(),
    }
