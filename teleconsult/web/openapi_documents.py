"""The OpenAPI operations of the clinician's profile and of documents rendered from templates
(teleconsult/documents/), merged into the API document by openapi.py."""

from __future__ import annotations

ERROR = {"$ref": "#/components/schemas/Error"}
INVALID = {"$ref": "#/components/schemas/FormError"}
PROFILE = {"$ref": "#/components/schemas/Profile"}
KIND_PARAM = {"name": "kind", "in": "path", "required": True, "schema": {"type": "string", "enum": ["logo", "signature"]}}
ID_PARAM = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


UNAUTHENTICATED = _json(ERROR, "Missing or unknown API token")

PATHS = {
    "/api/profile": {
        "get": {"operationId": "getProfile", "summary": "The clinician's profile (what documents print)",
                "responses": {"200": _json(PROFILE, "The profile"), "401": UNAUTHENTICATED}},
        "patch": {
            "operationId": "updateProfile",
            "summary": "Change the profile's text fields (those present; an empty string clears one)",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "$ref": "#/components/schemas/ProfileFields"}}}},
            "responses": {"200": _json(PROFILE, "The saved profile"),
                          "400": _json(INVALID, "Invalid fields, each with its reason; nothing saved"),
                          "401": UNAUTHENTICATED}},
    },
    "/api/profile/images/{kind}": {
        "put": {
            "operationId": "setProfileImage",
            "summary": "Upload the letterhead logo or the signature image",
            "description": "The raw image as the body. Accepted when libmagic and Pillow both find a PNG or a "
                           "JPEG within profile_image_max_kib and profile_image_max_pixels; it is then "
                           "re-encoded from its pixels (no metadata kept) and scaled to 1600 pixels at most.",
            "parameters": [KIND_PARAM],
            "requestBody": {"required": True, "content": {
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}}}},
            "responses": {"200": _json(PROFILE, "Saved"),
                          "400": _json(INVALID, "Not a PNG or JPEG, damaged, too large, or too many pixels"),
                          "401": UNAUTHENTICATED, "404": {"description": "kind is neither logo nor signature"}}},
        "delete": {"operationId": "deleteProfileImage", "summary": "Remove the logo or the signature image",
                   "parameters": [KIND_PARAM],
                   "responses": {"200": _json(PROFILE, "Removed"), "401": UNAUTHENTICATED,
                                 "404": {"description": "kind is neither logo nor signature"}}},
    },
    "/api/consultations/{id}/render": {
        "post": {
            "operationId": "renderDocument",
            "summary": "Render a prescription, report, certificate or receipt as a PDF, in memory",
            "description": "For one of the clinician's open consultations. The server keeps no copy and logs "
                           "nothing of it; encrypt the PDF and drop it into the consultation's box "
                           "(createDocument) like any file. The profile must hold what the template needs "
                           "(a prescription: name, qualification, identifier, address, phone, email, "
                           "signature image): otherwise 400 with `missing`. A4, fonts embedded, French by "
                           "default (`lang`: fr or en).",
            "parameters": [ID_PARAM],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "$ref": "#/components/schemas/DocumentRequest"}}}},
            "responses": {
                "200": {"description": "The PDF", "content": {"application/pdf": {
                    "schema": {"type": "string", "format": "binary"}}}},
                "400": _json(INVALID, "Invalid fields or incomplete profile, each with its reason"),
                "401": UNAUTHENTICATED,
                "404": _json(ERROR, "No such consultation for this clinician"),
                "409": _json(ERROR, "The consultation has ended"),
                "413": {"description": "Body larger than 64 KiB"}}},
    },
}

_TEXT = {"type": "string"}
_DATE = {"type": "string", "format": "date"}
PATIENT = {"type": "object", "required": ["last_name", "first_names"], "additionalProperties": False, "properties": {
    "last_name": _TEXT, "first_names": _TEXT,
    "sex": {"type": "string", "enum": ["F", "M", "X"], "description": "Required on a prescription"},
    "birth_date": {**_DATE, "description": "Required except on a receipt; not in the future"},
    "weight_kg": {"type": ["number", "string"], "description": "When the prescription needs it"},
    "height_cm": {"type": ["integer", "string"]}}}
LINE = {"type": "object", "additionalProperties": False, "description": (
    "A drug line (drug, dosage, directions, and duration or packs) or a free-text line (text) for "
    "non-drug prescriptions: biology, imaging, physiotherapy, nursing"), "properties": {
    "drug": {"type": "string", "description": "Brand name or INN"}, "dosage": _TEXT,
    "form": {"type": "string", "description": "Pharmaceutical form (tablet, syrup...)"},
    "directions": _TEXT, "duration": {"type": "string", "description": "Required unless packs is given"},
    "packs": {"type": "integer", "minimum": 1, "maximum": 99}, "renewals": {"type": "integer", "minimum": 0,
                                                                          "maximum": 12},
    "ald": {"type": "boolean", "description": "Related to the long-term condition (upper zone of the bizone form)"},
    "text": _TEXT}}

SCHEMAS = {
    "FormError": {"type": "object", "required": ["error", "status", "problems"], "properties": {
        "error": _TEXT, "status": {"type": "integer"},
        "problems": {"type": "array", "items": {"type": "object", "properties": {
            "field": {"type": "string", "description": "e.g. lines[2].duration, patient.birth_date, profile.rpps"},
            "message": _TEXT}}},
        "missing": {"type": "array", "items": _TEXT, "description": "Profile fields the template needs"}}},
    "ProfileFields": {"type": "object", "additionalProperties": False, "properties": {
        "name": _TEXT, "qualification": _TEXT,
        "rpps": {"type": "string", "description": "RPPS (11 digits), ADELI (9) or another country's identifier"},
        "address": {"type": "string", "description": "Up to 4 lines"},
        "phone": {"type": "string", "description": "With its country code: +33 1 23 45 67 89"},
        "email": {"type": "string", "format": "email"}}},
    "Profile": {"allOf": [{"$ref": "#/components/schemas/ProfileFields"}, {"type": "object", "properties": {
        "logo": {"type": "boolean"}, "signature": {"type": "boolean"}}}]},
    "DocumentRequest": {"type": "object", "required": ["template", "patient"], "properties": {
        "template": {"type": "string", "enum": ["prescription", "report", "certificate", "receipt"]},
        "lang": {"type": "string", "enum": ["fr", "en"], "default": "fr"},
        "date": {**_DATE, "description": "Date of the document; default today; not in the future"},
        "patient": PATIENT,
        "lines": {"type": "array", "items": LINE, "maxItems": 100, "description": "prescription"},
        "bizone": {"type": "boolean", "description": "prescription: ALD two-zone layout; default: any line "
                                                     "has ald"},
        "held_at": {"type": "string", "description": "report: YYYY-MM-DDTHH:MM of the video consultation"},
        "reason": _TEXT, "findings": _TEXT, "conclusion": _TEXT, "follow_up": _TEXT,
        "text": {"type": "string", "description": "certificate: the free text between the mandatory mentions"},
        "amount": {"type": ["string", "number"], "description": "receipt: 25 or \"25,00\""},
        "currency": {"type": "string", "default": "EUR"}, "act_code": _TEXT, "act_label": _TEXT,
        "payment_mode": {"type": "string", "enum": ["card", "transfer", "cheque", "cash", "other"]},
        "paid_on": _DATE, "number": {"type": "string", "description": "receipt number"}}},
}
