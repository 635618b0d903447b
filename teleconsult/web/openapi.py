"""The OpenAPI 3.1 document of the integrators' API, written as data.

Hand-written: the aiohttp OpenAPI generators on PyPI are unmaintained or need their own
schema layer; a dict that tests check against the route table is smaller and exact.
"""

from __future__ import annotations

from ..drop_links import CONSULTATION_API, STANDALONE_API
from . import openapi_documents

ERROR = {"$ref": "#/components/schemas/Error"}
CONSULTATION = {"$ref": "#/components/schemas/Consultation"}


def _responses(ok_status: str, ok_schema: dict, description: str, errors=("401", "404")) -> dict:
    responses = {ok_status: {"description": description,
                             "content": {"application/json": {"schema": ok_schema}}}}
    texts = {"400": "Not valid (the error says why)", "401": "Missing or unknown API token",
             "404": "No such consultation for this clinician", "409": "The consultation has ended"}
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
                           "gives the patient `patient_url + '#' + base64url(S)`; S never reaches the server. "
                           "So that the clinician's devices can open S too, draw the consultation's `id`, "
                           "seal S for it to the key of getClinicianKey (docs/encryption.md section 9) and "
                           "send both; without a body the server draws the id and S stays with the caller.",
            "requestBody": {"required": False, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/SealedCreation"}}}},
            "responses": {**_responses("201", CONSULTATION, "The new consultation", errors=("400", "401")),
                          "409": {"description": "The id is taken, or the clinician has no key yet",
                                  "content": {"application/json": {"schema": ERROR}}}},
        },
        "get": {
            "operationId": "listConsultations",
            "summary": "The clinician's recent consultations",
            "responses": _responses("200", {"type": "object", "properties": {
                "consultations": {"type": "array", "items": CONSULTATION}}}, "Newest first", errors=("401",)),
        },
    },
    "/api/clinician/key": {
        "get": {
            "operationId": "getClinicianKey",
            "summary": "The clinician's public key, to seal consultation secrets to",
            "responses": {**_responses("200", {"$ref": "#/components/schemas/ClinicianKey"}, "The public key",
                                       errors=("401",)),
                          "404": {"description": "No key yet: it is made at the clinician's next login",
                                  "content": {"application/json": {"schema": ERROR}}}},
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
            "summary": "The clinician's Jitsi domain, room and JWT (valid until the maximum duration), to embed the call",
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
    "/api/precall/offer": {
        "post": {
            "operationId": "precallOffer",
            "summary": "Start a pre-call test: an echo peer answers the caller's WebRTC offer",
            "description": "No authentication (patients have no account); rate-limited per address. "
                           "The offer carries all its ICE candidates (no trickle); so does the answer. "
                           "The peer sends every received audio and video track back (re-encoded) and "
                           "echoes every data-channel message. Send something (a data-channel ping) at "
                           "least once a second, or the session is closed as idle; it is closed anyway "
                           "after precall_max_seconds. ICE servers: precall_ice_servers.",
            "security": [],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/PrecallOffer"}}}},
            "responses": {
                "200": {"description": "The echo peer's answer",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PrecallAnswer"}}}},
                "400": {"description": "Not JSON, not an SDP offer, or nothing to echo",
                        "content": {"application/json": {"schema": ERROR}}},
                "429": {"description": "Too many offers from this address; see Retry-After",
                        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                        "content": {"application/json": {"schema": ERROR}}},
                "503": {"description": "Every test session is in use; see Retry-After (seconds)",
                        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                        "content": {"application/json": {"schema": ERROR}}},
            },
        },
    },
    "/api/jitsi/events": {
        "post": {
            "operationId": "jitsiEvent",
            "summary": "Room events from the Jitsi host's Prosody (mod_teleconsult_events)",
            "description": "Called by Prosody, not by integrators (jitsi_plugin/README.md). Not the Bearer "
                           "API token: each request is signed with jitsi_events_secret. "
                           "`X-Teleconsult-Timestamp` is Unix seconds, `X-Teleconsult-Signature` is "
                           "`sha256=` + hex HMAC-SHA256(secret, timestamp + '.' + raw body); the timestamp "
                           "must be within jitsi_events_window_seconds and a signature is accepted once. "
                           "With jitsi_events_bearer, `Authorization: Bearer <jitsi_events_secret>` "
                           "instead (for jitsi-contrib's event_sync). Events are idempotent by `event_id`: "
                           "a duplicate, or an event for a room that is not a consultation's, is answered "
                           "200 and changes nothing. Room destroyed ends the consultation.",
            "security": [],
            "parameters": [
                {"name": "X-Teleconsult-Timestamp", "in": "header", "required": False,
                 "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"},
                 "description": "Unix seconds when signed (required unless jitsi_events_bearer)"},
                {"name": "X-Teleconsult-Signature", "in": "header", "required": False,
                 "schema": {"type": "string", "pattern": "^sha256=[0-9a-fA-F]{64}$"},
                 "description": "HMAC-SHA256 of timestamp + '.' + body (required unless jitsi_events_bearer)"},
            ],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/RoomEvent"}}}},
            "responses": {
                "200": {"description": "Applied, duplicate, or not one of our rooms (ignored)",
                        "content": {"application/json": {"schema": {"type": "object", "properties": {
                            "status": {"type": "integer"}, "result": {"type": "string"}}}}}},
                "400": {"description": "Authenticated, but not a valid room event",
                        "content": {"application/json": {"schema": ERROR}}},
                "401": {"description": "Missing or wrong signature (or bearer token)",
                        "content": {"application/json": {"schema": ERROR}}},
                "403": {"description": "Timestamp outside the window, or a request already seen",
                        "content": {"application/json": {"schema": ERROR}}},
                "413": {"description": "Body larger than 1 MiB"},
                "503": {"description": "jitsi_events_secret is not set on this server",
                        "content": {"application/json": {"schema": ERROR}}},
            },
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
        "sealed_name": {"type": ["string", "null"], "description":
                        "the patient's display name sealed to the consultation secret (docs/encryption.md "
                        "section 10); null once purged"},
        "status": {"type": "string", "enum": ["waiting", "admitted", "declined", "ended"]},
        "created_at": {"type": "number"}, "decided_at": {"type": ["number", "null"]}}},
    "Consultation": {"type": "object", "required": ["id", "status", "patient_url"], "properties": {
        "id": {"type": "string"},
        "status": {"type": "string", "enum": ["waiting", "in_call", "ended"]},
        "patient_url": {"type": "string", "format": "uri",
                        "description": "Patient link without the '#secret' fragment"},
        "created_at": {"type": "number"}, "deadline_at": {"type": "number"},
        "ended_at": {"type": ["number", "null"]}, "end_reason": {"type": ["string", "null"]},
        "sealed_secret": {"type": ["string", "null"],
                          "description": "S sealed to the clinician's key (sealed.v1.…), for their devices"},
        "presence": {"type": "object", "required": ["patient", "clinician"],
                     "description": "Who is in the Jitsi call now, from the Jitsi host's room events "
                                    "(a live hint: empty after an app restart until the next event)",
                     "properties": {"patient": {"type": "boolean"}, "clinician": {"type": "boolean"}}},
        "knocks": {"type": "array", "items": {"$ref": "#/components/schemas/Knock"}}}},
    "ClinicianKey": {"type": "object", "required": ["public_key", "key_id"], "properties": {
        "public_key": {"type": "string", "description": "pk.v1. + base64url of the P-256 point"},
        "key_id": {"type": "string", "description": "Changes when a password reset replaces the key"}}},
    "SealedCreation": {"type": "object", "required": ["id", "sealed_secret"], "properties": {
        "id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,64}$",
               "description": "The new consultation's id, drawn by the caller (16 random bytes, base64url)"},
        "sealed_secret": {"type": "string", "description": "sealed.v1.…: HPKE of S to the clinician's key, "
                                                           "info bound to this id"}}},
    "Document": {"type": "object", "properties": {
        "id": {"type": "string"}, "size": {"type": "integer"},
        "uploaded_by": {"type": "string", "pattern": "^(clinician|patient(-[0-9]+)?|standalone)$",
                        "description": "patient-2, patient-3…: another device that opened the same patient link"},
        "state": {"type": "string", "enum": ["uploading", "ready"]},
        "metadata": {"type": ["string", "null"], "description": "base64url encrypted metadata"},
        "downloads": {"type": "integer", "description": "transfers started"},
        "completed_downloads": {"type": "integer", "description": "transfers whose last byte was sent"},
        "max_downloads": {"type": ["integer", "null"]},
        "created_at": {"type": "number"}, "expires_at": {"type": "number"},
        "delete_at": {"type": ["number", "null"]},
        "owner_token": {"type": "string", "description": "Standalone drops, on creation only"}}},
    "UploadState": {"type": "object", "properties": {
        "offset": {"type": "integer"}, "size": {"type": "integer"}, "state": {"type": "string"}}},
    "PrecallOffer": {"type": "object", "required": ["sdp", "type"], "properties": {
        "sdp": {"type": "string", "maxLength": 65536, "description": "SDP offer with its ICE candidates"},
        "type": {"type": "string", "const": "offer"}}},
    "PrecallAnswer": {"type": "object", "required": ["sdp", "type"], "properties": {
        "sdp": {"type": "string"}, "type": {"type": "string", "const": "answer"}}},
    "RoomEvent": {"type": "object", "required": ["event_id", "event_name", "room_name", "room_jid"],
                  "description": "jitsi-contrib event_sync field names (jitsi_plugin/README.md)",
                  "properties": {
        "event_id": {"type": "string"}, "delivery_attempt": {"type": "integer"},
        "event_name": {"type": "string", "enum": ["muc-room-created", "muc-room-destroyed",
                                                  "muc-occupant-joined", "muc-occupant-left"]},
        "room_name": {"type": "string"}, "room_jid": {"type": "string"}, "is_breakout": {"type": "boolean"},
        "created_at": {"type": "integer"}, "destroyed_at": {"type": "integer"},
        "active_occupants_count": {"type": "integer"},
        "occupant": {"$ref": "#/components/schemas/RoomOccupant"},
        "all_occupants": {"type": "array", "items": {"$ref": "#/components/schemas/RoomOccupant"}}}},
    "RoomOccupant": {"type": "object", "required": ["occupant_jid"], "properties": {
        "id": {"type": "string", "description": "The Jitsi token's context.user.id"},
        "name": {"type": "string"}, "occupant_jid": {"type": "string"},
        "joined_at": {"type": "integer"}, "left_at": {"type": "integer"}}},
    "CallAccess": {"type": "object", "required": ["domain", "room", "jwt"], "properties": {
        "domain": {"type": "string"}, "room": {"type": "string"}, "jwt": {"type": "string"},
        "external_api_url": {"type": "string", "format": "uri"}}},
}


def _all_paths() -> dict:
    from .routes import API_NAMES, API_STANDALONE_NAMES  # the route table imports the views, which import this
    return {**PATHS, **openapi_documents.PATHS,
            **_drop_paths(CONSULTATION_API, [ID_PARAM], API_NAMES, owner=False),
            **_drop_paths(STANDALONE_API, [], API_STANDALONE_NAMES, owner=True)}


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
            "schemas": {**SCHEMAS, **openapi_documents.SCHEMAS},
        },
        "paths": _all_paths(),
    }
