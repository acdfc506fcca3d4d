"""The OpenAPI 3.1 document of /api/v1 (API.md). A test checks every API route is described here."""

from __future__ import annotations

from typing import Any

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message", "fields"], "properties": {
        "code": {"type": "string"}, "message": {"type": "string"}, "fields": {"type": "object"}}}},
}
TASK = {
    "type": "object",
    "required": ["id", "name", "dossier", "procedure", "role", "due_at", "working_days_left", "state"],
    "properties": {
        "id": {"type": "string"}, "name": {"type": "string"}, "step": {"type": "string"},
        "dossier": {"type": "string"}, "applicant": {"type": "string"}, "procedure": {"type": "string"},
        "procedure_name": {"type": "string"}, "role": {"type": ["string", "null"]},
        "unit_id": {"type": "integer"}, "assignee_id": {"type": ["integer", "null"]},
        "state": {"type": "string", "enum": ["ready", "started"]},
        "due_at": {"type": ["string", "null"], "format": "date-time"},
        "working_days_left": {"type": ["integer", "null"]},
        "urgency": {"type": "string", "enum": ["on_track", "due_soon", "overdue"]},
    },
}
DOSSIER = {
    "type": "object",
    "required": ["code", "status", "status_code", "procedure", "received_at", "due_at"],
    "properties": {
        "code": {"type": "string"}, "procedure": {"type": "string"}, "procedure_name": {"type": "string"},
        "unit_id": {"type": "integer"}, "status": {"type": "string"},
        "status_code": {"type": "integer", "minimum": 1, "maximum": 10}, "channel": {"type": "string"},
        "applicant": {"type": "object"}, "form": {"type": "object"},
        "received_at": {"type": "string", "format": "date-time"},
        "due_at": {"type": ["string", "null"], "format": "date-time"},
        "finished_at": {"type": ["string", "null"], "format": "date-time"},
        "clock_paused": {"type": "boolean"}, "working_days_left": {"type": ["integer", "null"]},
        "fee_due": {"type": "integer"}, "version": {"type": "integer"},
        "history": {"type": "array", "items": {"type": "object"}},
    },
}
ATTACHMENT_UPLOAD = {
    "type": "object",
    "required": ["name", "content_base64", "mime"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 200, "description": "file name, no folders"},
        "content_base64": {"type": "string", "contentEncoding": "base64",
                           "description": "at most 10 MiB per file, 30 MiB per dossier; the first bytes must "
                                          "match the mime type"},
        "mime": {"type": "string", "enum": ["application/pdf", "image/jpeg", "image/png"]},
    },
}
SUBMISSION = {
    "type": "object",
    "required": ["procedure", "unit", "applicant"],
    "properties": {
        "procedure": {"type": "string", "description": "procedure code from GET /procedures"},
        "unit": {"type": "string", "description": "unit code from GET /units"},
        "applicant": {"type": "object", "properties": {
            "type": {"type": "string", "description": "individual or organisation"},
            "full_name": {"type": "string", "description": "required from officers; a citizen's comes from the "
                                                           "account"},
            "id_number": {"type": "string"}, "phone": {"type": "string"}, "email": {"type": "string"}}},
        "form": {"type": "object", "description": "validated by the procedure's form_schema"},
        "delivery": {"type": "object", "required": ["method"], "properties": {
            "method": {"type": "string", "enum": ["counter", "post"]}, "address": {"type": "string"}}},
        "channel": {"type": "string", "enum": ["online", "counter", "post"],
                    "description": "citizens: online; officers: counter (default) or post"},
        "attachments": {"type": "array", "maxItems": 20, "items": ATTACHMENT_UPLOAD},
    },
}
SUBMITTED = {
    "type": "object",
    "required": ["code", "status", "status_code", "due_at"],
    "properties": {"code": {"type": "string"}, "status": {"type": "string"},
                   "status_code": {"type": "integer", "minimum": 1, "maximum": 10},
                   "due_at": {"type": ["string", "null"], "format": "date-time"}},
}
DOCUMENT = {
    "type": "object",
    "required": ["id", "kind", "name", "mime", "size", "sha256", "uploaded_at", "url"],
    "properties": {
        "id": {"type": "integer"}, "kind": {"type": "string", "enum": ["submission", "supplement"]},
        "name": {"type": "string"}, "mime": {"type": "string"}, "size": {"type": "integer"},
        "sha256": {"type": "string"}, "uploaded_at": {"type": "string", "format": "date-time"},
        "url": {"type": "string", "description": "GET it for the content (inline)"},
    },
}
BEARER = [{"bearer": []}]


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(code): _json({"$ref": "#/components/schemas/Error"}, "error") for code in codes}


def _op(summary: str, response: dict[str, Any], *errors: int, secured: bool = True, **extra: Any) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {"200": _json(response), **_errors(*errors)}, **extra}
    if secured:
        op["security"] = BEARER
    return op


CODE = {"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}
TASK_ID = {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}}
ATTACHMENT_ID = {"name": "attachment_id", "in": "path", "required": True, "schema": {"type": "integer"}}
TASK_STATE = {"type": "object", "properties": {"id": {"type": "string"}, "assignee_id": {"type": ["integer", "null"]},
                                              "state": {"type": "string"}}}


def openapi_document() -> dict[str, Any]:
    ref = {"Task": {"$ref": "#/components/schemas/Task"}, "Dossier": {"$ref": "#/components/schemas/Dossier"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "motcua API", "version": "1",
                 "description": "Back office of commune one-stop shops. Errors: {error: {code, message, fields}}."},
        "servers": [{"url": "/api/v1"}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR, "Task": TASK, "Dossier": DOSSIER, "Submission": SUBMISSION,
                        "Submitted": SUBMITTED, "Document": DOCUMENT},
        },
        "paths": {
            "/openapi.json": {"get": _op("This document", {"type": "object"}, secured=False)},
            "/health": {"get": _op("Liveness and database check", {"type": "object"}, secured=False)},
            "/auth/login": {"post": {
                "summary": "Log in; answers a bearer token, or otp_required when a second factor is due "
                           "(leaders: the 6-digit TOTP code in otp)",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["username", "password"],
                    "properties": {"username": {"type": "string"}, "password": {"type": "string"},
                                   "otp": {"type": "string"}}}}}},
                "responses": {"200": _json({"type": "object", "properties": {
                    "token": {"type": "string"}, "user": {"type": "object"}, "otp_required": {"type": "boolean"},
                    "method": {"type": "string"}}}), **_errors(400, 401, 403, 422, 423)},
            }},
            "/units": {"get": _op("Communes", {"type": "array", "items": {"type": "object", "properties": {
                "code": {"type": "string"}, "name": {"type": "string"}, "agency_code": {"type": "string"}}}},
                secured=False)},
            "/procedures": {"get": _op("Procedure catalogue", {"type": "array", "items": {"type": "object"}},
                                       secured=False, parameters=[
                {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
                for n in ("q", "field", "online")])},
            "/tasks": {"get": _op("Open user tasks visible to the caller, earliest due first", {
                "type": "object", "required": ["items", "counts"], "properties": {
                    "items": {"type": "array", "items": ref["Task"]}, "counts": {"type": "object"},
                    "limit": {"type": "integer"}, "offset": {"type": "integer"}}}, 401, 403, 422, parameters=[
                {"name": "scope", "in": "query", "schema": {"type": "string", "enum": ["mine", "unit", "all"]}},
                {"name": "procedure", "in": "query", "schema": {"type": "string"}},
                {"name": "step", "in": "query", "schema": {"type": "string"}},
                {"name": "q", "in": "query", "schema": {"type": "string"}},
                {"name": "due_within_days", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 366}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
                {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}}])},
            "/tasks/{task_id}": {"get": _op("A task with its form (JSON Schema) and its dossier's data",
                                            {"allOf": [ref["Task"], {"type": "object", "properties": {
                                                "form": {"type": "object"}, "dossier_data": ref["Dossier"]}}]},
                                            401, 403, 404, parameters=[TASK_ID])},
            "/tasks/{task_id}/claim": {"post": _op("Claim a task", TASK_STATE, 401, 403, 404, 409,
                                                   parameters=[TASK_ID])},
            "/tasks/{task_id}/unclaim": {"post": _op("Release a claimed task", TASK_STATE, 401, 403, 404, 409,
                                                     parameters=[TASK_ID])},
            "/tasks/{task_id}/complete": {"post": {
                **_op("Complete a task with its form data", {"type": "object", "properties": {
                    "dossier": {"type": "string"}, "status": {"type": "string"},
                    "status_code": {"type": "integer"}}}, 400, 401, 403, 404, 409, 422, parameters=[TASK_ID]),
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["data"], "properties": {"data": {"type": "object"}}}}}},
            }},
            "/dossiers": {"post": {
                "summary": "Submit a dossier (citizen: online, for themselves; one-stop officer: for their unit)",
                "security": BEARER,
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/Submission"}}}},
                "responses": {"201": _json({"$ref": "#/components/schemas/Submitted"}, "submitted"),
                              **_errors(401, 403, 413, 422)},
            }},
            "/dossiers/{code}/documents": {"get": _op(
                "The dossier's files (attachments; later generated PDFs) with download URLs",
                {"type": "array", "items": {"$ref": "#/components/schemas/Document"}}, 401, 403, 404,
                parameters=[CODE])},
            "/dossiers/{code}/attachments/{attachment_id}": {"get": {
                "summary": "An attachment's content, served inline with its mime type",
                "security": BEARER,
                "parameters": [CODE, ATTACHMENT_ID],
                "responses": {"200": {"description": "the file", "content": {
                    mime: {"schema": {"type": "string", "format": "binary"}}
                    for mime in ("application/pdf", "image/jpeg", "image/png")}}, **_errors(401, 403, 404)},
            }},
            "/dossiers/{code}": {"get": _op("A dossier: status, national status code, due date, history",
                                            ref["Dossier"], 401, 403, 404, parameters=[CODE])},
            "/cases/{code}/history": {"get": _op("Every audit event of a case", {"type": "array", "items": {
                "type": "object", "properties": {"at": {"type": "string"}, "actor": {"type": "string"},
                                                 "action": {"type": "string"}, "task": {"type": ["string", "null"]},
                                                 "data": {"type": "object"}}}}, 401, 403, 404, parameters=[CODE])},
            **citizen_paths(),
            **designer_paths(),
            **document_paths(),
            **report_paths(),
            "/track/{code}": {"get": _op("Public tracking by dossier code and the last 4 phone digits", {
                "type": "object", "properties": {"code": {"type": "string"}, "status": {"type": "string"},
                                                 "status_code": {"type": "integer"},
                                                 "due_at": {"type": ["string", "null"]}}}, 404, secured=False,
                parameters=[CODE, {"name": "phone_last4", "in": "query", "required": True,
                                   "schema": {"type": "string", "pattern": "^[0-9]{4}$"}}])},
        },
    }


def _body(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": required, "properties": properties}}}}


def _post(summary: str, status: int, response: dict[str, Any], body: dict[str, Any] | None, *errors: int,
          secured: bool = True, **extra: Any) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {str(status): _json(response), **_errors(*errors)},
                          **extra}
    if body is not None:
        op["requestBody"] = body
    if secured:
        op["security"] = BEARER
    return {"post": op}


STRING = {"type": "string"}
OTP_SENT = {"type": "object", "properties": {"otp_sent": {"type": "boolean"}, "phone": STRING,
                                               "expires_in": {"type": "integer"}, "id_number": STRING}}
CONSENT_ID = {"name": "consent_id", "in": "path", "required": True, "schema": {"type": "integer"}}
CALLBACK_NOTE = ("signed by the provider: X-Signature is the hex HMAC-SHA256 of the raw body; 401 when it does "
                 "not match; the same event_id twice changes the case once")


def citizen_paths() -> dict[str, Any]:
    """The citizen part of the API: registration, codes, own dossiers, payment, provider callbacks."""
    registration = {"id_number": {"type": "string", "pattern": "^[0-9]{12}$"}, "full_name": STRING,
                    "date_of_birth": {"type": "string", "format": "date"}, "phone": STRING,
                    "email": STRING, "password": {"type": "string", "minLength": 8}}
    return {
        "/citizens": _post("Register a citizen (CCCD checked against the date of birth); the code goes by SMS",
                           201, OTP_SENT, _body(["id_number", "full_name", "date_of_birth", "phone", "password"],
                                                registration), 400, 409, 422, 429, secured=False),
        "/citizens/verify": _post("Confirm the registration with the SMS code", 200, {"type": "object"},
                                  _body(["id_number", "otp"], {"id_number": STRING, "otp": STRING}), 400, 422,
                                  secured=False),
        "/citizens/otp/resend": _post("Send the waiting code again (once a minute, 3 sends at most)", 202, OTP_SENT,
                                      _body(["id_number", "purpose"], {"id_number": STRING, "purpose": {
                                          "type": "string", "enum": ["register", "login", "reset"]}}),
                                      400, 409, 422, 429, secured=False),
        "/citizens/password-reset": _post("Ask for a password reset code (same answer for unknown numbers)", 202,
                                          OTP_SENT, _body(["id_number"], {"id_number": STRING}), 400, 429,
                                          secured=False),
        "/citizens/password-reset/confirm": _post(
            "Set a new password with the reset code", 200, {"type": "object"},
            _body(["id_number", "otp", "password"], {"id_number": STRING, "otp": STRING, "password": STRING}),
            400, 422, secured=False),
        "/auth/otp": _post("Finish a citizen's login with the SMS code", 200, {"type": "object", "properties": {
            "token": STRING, "user": {"type": "object"}}}, _body(["username", "otp"], {
                "username": STRING, "otp": STRING}), 400, 401, secured=False),
        "/me/dossiers": {"get": _op("The citizen's own dossiers, newest first",
                                    {"type": "array", "items": {"$ref": "#/components/schemas/Dossier"}}, 401)},
        "/dossiers/{code}/deadline": {"get": _op(
            "How the appointment was computed: start, rule, each day counted or skipped, pauses, changes",
            {"type": "object", "properties": {"start": STRING, "rule": STRING, "days": {"type": "array"},
                                              "pauses": {"type": "array"}, "changes": {"type": "array"},
                                              "due_at": {"type": ["string", "null"]}}},
            401, 403, 404, parameters=[CODE])},
        "/dossiers/{code}/supplements": _post(
            "The applicant answers a supplement request (files, corrected fields, note); the clock restarts",
            200, {"$ref": "#/components/schemas/Submitted"}, _body([], {
                "note": STRING, "form": {"type": "object"},
                "attachments": {"type": "array", "items": ATTACHMENT_UPLOAD}}), 401, 403, 404, 409, 422,
            parameters=[CODE]),
        "/dossiers/{code}/draft": _post(
            "The applicant confirms the draft result (confirm: true) or asks for corrections (confirm: false, "
            "note: what is wrong)", 200, {"$ref": "#/components/schemas/Submitted"},
            _body(["confirm"], {"confirm": {"type": "boolean"}, "note": STRING}), 401, 403, 404, 409, 422,
            parameters=[CODE]),
        "/dossiers/{code}/withdraw": _post("The applicant withdraws the dossier", 200,
                                           {"$ref": "#/components/schemas/Submitted"},
                                           _body(["reason"], {"reason": STRING}), 401, 403, 404, 409, 422,
                                           parameters=[CODE]),
        "/dossiers/{code}/payments": _post("Start the online payment of the fee due; answers the provider's page",
                                           201, {"type": "object", "properties": {
                                               "reference": STRING, "amount": {"type": "integer"},
                                               "currency": STRING, "status": STRING, "payment_url": STRING}},
                                           None, 401, 403, 404, 409, parameters=[CODE]),
        "/connectors/payment/callback": _post(
            "Payment provider callback: " + CALLBACK_NOTE, 200, {"type": "object"},
            _body(["event_id", "reference", "amount", "currency", "status"], {
                "event_id": STRING, "reference": STRING, "amount": {"type": "integer"}, "currency": STRING,
                "status": {"type": "string", "enum": ["paid", "failed"]}, "transaction": STRING}),
            401, 404, 409, 422, secured=False),
        "/connectors/postal/callback": _post(
            "Postal provider callback: " + CALLBACK_NOTE, 200, {"type": "object"},
            _body(["event_id", "dossier_code", "event"], {
                "event_id": STRING, "dossier_code": STRING, "tracking": STRING,
                "event": {"type": "string", "enum": ["picked_up", "in_transit", "delivered", "returned"]}}),
            401, 404, 409, 422, secured=False),
        "/assisted/dossiers": _post(
            "A one-stop officer or volunteer types a dossier for a registered citizen; the citizen's phone gets a "
            "consent code", 202, OTP_SENT, {"required": True, "content": {"application/json": {"schema": {
                "allOf": [{"$ref": "#/components/schemas/Submission"}, {
                    "type": "object", "required": ["citizen_id_number"],
                    "properties": {"citizen_id_number": STRING}}]}}}}, 401, 403, 422, 429),
        "/assisted/dossiers/{consent_id}/confirm": _post(
            "Submit the typed dossier as the citizen's own with the consent code they read out", 201,
            {"$ref": "#/components/schemas/Submitted"}, _body(["otp"], {"otp": STRING}), 401, 404, 409, 422,
            parameters=[CONSENT_ID]),
    }


PROBLEM = {"type": "object", "properties": {"line": {"type": ["integer", "null"]},
                                            "element": {"type": ["string", "null"]}, "message": STRING,
                                            "rule": STRING}}
CHANGE = {"type": "object", "properties": {"element": STRING, "type": STRING, "name": STRING,
                                           "change": {"enum": ["added", "removed", "changed"]},
                                           "details": {"type": "array", "items": STRING}}}
NUMBER = {"name": "number", "in": "path", "required": True, "schema": {"type": "integer"}}
VERSION = {"type": "object", "properties": {"version": {"type": "integer"},
                                            "redeploys_version": {"type": ["integer", "null"]}}}


def designer_paths() -> dict[str, Any]:
    """The process designer's part: versions, drafts checked on save, deployment, roll-back, migration."""
    return {
        "/process-models": {"get": _op("Procedures with their deployed versions (designers, auditors)",
                                       {"type": "array", "items": {"type": "object"}}, 401, 403)},
        "/process-models/{code}": {"post": {
            "summary": "Deploy a BPMN document as the procedure's new version (the body is the XML); 422 with "
                       "fields.bpmn = every problem (line, element, message), nothing deployed",
            "security": BEARER, "parameters": [CODE],
            "requestBody": {"required": True, "content": {"application/xml": {"schema": STRING}}},
            "responses": {"201": _json(VERSION), **_errors(401, 403, 404, 422)}}},
        "/procedures/{code}/versions": {"get": _op(
            "Deployed versions of a procedure, newest first: who deployed, when, running cases (designers)",
            {"type": "array", "items": {"type": "object"}}, 401, 403, 404, parameters=[CODE])},
        "/procedures/{code}/draft": _post(
            "Save the draft model; answers every problem found (element id, line, rule) and the changes "
            "against the deployed version", 200,
            {"type": "object", "properties": {"problems": {"type": "array", "items": PROBLEM},
                                              "changes": {"type": "array", "items": CHANGE}, "saved_at": STRING}},
            _body(["xml"], {"xml": STRING, "lane_roles": {"type": "object"}, "task_forms": {"type": "object"}}),
            400, 401, 403, 404, parameters=[CODE]),
        "/procedures/{code}/deploy": _post(
            "Deploy the saved draft as a new version (refused with its problems while it has any)", 201, VERSION,
            None, 400, 401, 403, 404, parameters=[CODE]),
        "/procedures/{code}/versions/{number}/redeploy": _post(
            "Roll back: deploy an older version again as the newest", 201, VERSION, None, 400, 401, 403, 404,
            parameters=[CODE, NUMBER]),
        "/dossiers/{code}/migration": {"get": _op(
            "Whether a running case may move to version ?to= of its procedure, and why not",
            {"type": "object", "properties": {"safe": {"type": "boolean"},
                                              "reasons": {"type": "array", "items": STRING}}},
            400, 401, 403, 404, parameters=[CODE, {"name": "to", "in": "query", "required": True,
                                                   "schema": {"type": "integer"}}])},
        "/dossiers/{code}/migrate": _post(
            "Move a running case to another version when safe: every timer keeps its due moment, open tasks "
            "keep their deadlines; audited. 409 migration_refused with the reasons otherwise", 200,
            {"type": "object"}, _body(["to_version"], {"to_version": {"type": "integer"}}),
            400, 401, 403, 404, 409, parameters=[CODE]),
    }


PDF = {"description": "PDF", "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}


def document_paths() -> dict[str, Any]:
    """Generated forms (rendered on request) and signed documents (kept as signed)."""
    kind = {"name": "kind", "in": "path", "required": True,
            "schema": {"enum": ["receipt", "supplement", "refusal", "apology", "control_sheet"]}}
    form_set = {"name": "set", "in": "query", "required": False, "schema": {"enum": ["2018", "2025"]}}
    document_id = {"name": "document_id", "in": "path", "required": True, "schema": {"type": "integer"}}
    return {
        "/dossiers/{code}/forms/{kind}.pdf": {"get": {
            "summary": "A one-stop form of the dossier (Mẫu 01–05 of the 2018 set, or the 2025 set) as PDF, with "
                       "a QR code to /verify/{code}; 404 when the dossier has not reached it",
            "security": BEARER, "parameters": [CODE, kind, form_set],
            "responses": {"200": PDF, **_errors(401, 403, 404, 422)}}},
        "/dossiers/{code}/signed/{document_id}.pdf": {"get": {
            "summary": "A signed document of the dossier (PAdES), byte for byte as signed",
            "security": BEARER, "parameters": [CODE, document_id],
            "responses": {"200": PDF, **_errors(401, 403, 404)}}},
    }


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


REPORT_COUNTS = ("carried_over", "received", "received_online", "received_counter", "received_post", "finished",
                 "early", "on_time", "late", "refused", "not_accepted", "withdrawn", "stopped", "processing",
                 "processing_within", "processing_overdue", "waiting_citizen", "apologies")
REPORT_ROW = {"type": "object", "required": ["received", "finished", "early", "on_time", "late", "ontime_rate"],
              "properties": {**{name: {"type": "integer", "minimum": 0} for name in REPORT_COUNTS},
                             "ontime_rate": {"type": ["number", "null"], "minimum": 0, "maximum": 1,
                                             "description": "(early + on_time) / finished; null when none finished"},
                             "procedure": {"type": "string"}, "procedure_name": {"type": "string"},
                             "field": {"type": "string"}, "unit": {"type": "string"}, "unit_name": {"type": "string"}}}
SEARCH_ROW = {"type": "object", "required": ["code", "status", "received_at"], "properties": {
    "code": {"type": "string"}, "procedure": {"type": "string"}, "unit": {"type": "string"},
    "applicant": {"type": "string"}, "channel": {"type": "string"}, "status": {"type": "string"},
    "received_at": {"type": "string", "format": "date-time"},
    "due_at": {"type": ["string", "null"], "format": "date-time"},
    "appointment_at": {"type": ["string", "null"], "format": "date-time"},
    "closed_at": {"type": ["string", "null"], "format": "date-time"},
    "outcome": {"type": ["string", "null"]}, "supplements": {"type": "integer"}, "apology": {"type": "boolean"},
    "working_days_left": {"type": ["integer", "null"]}}}


def report_paths() -> dict[str, Any]:
    """Reports (leaders: their unit; auditors: the province or their unit) and the auditor's reads."""
    period = [_query("from", {"type": "string", "format": "date"}, "first day (default: the month's first)"),
              _query("to", {"type": "string", "format": "date"}, "last day, inclusive (default: today)"),
              _query("unit", {"type": "string"}, "unit code (default: every unit in the caller's scope)"),
              _query("procedure", {"type": "string"}, "procedure code")]
    by = _query("by", {"type": "string", "enum": ["procedure", "unit"]}, "one row per procedure (default) or unit")
    report = {"type": "object", "required": ["from", "to", "by", "rows", "total"], "properties": {
        "from": {"type": "string", "format": "date"}, "to": {"type": "string", "format": "date"},
        "by": {"type": "string"}, "rows": {"type": "array", "items": REPORT_ROW}, "total": REPORT_ROW}}
    search = [_query("q", {"type": "string", "maxLength": 200}, "dossier code (or its beginning), 12-digit ID "
                     "number, phone, or the beginning of the applicant's name"),
              _query("unit", {"type": "string"}, "unit code"),
              _query("procedure", {"type": "string"}, "procedure code"),
              _query("status", {"type": "string"}, "dossier status"),
              _query("outcome", {"type": "string", "enum": ["early", "on_time", "late", "not_accepted", "withdrawn",
                                                            "stopped", "open"]}, "how processing ended, or open"),
              _query("from", {"type": "string", "format": "date"}, "received on or after"),
              _query("to", {"type": "string", "format": "date"}, "received on or before"),
              _query("overdue", {"type": "string", "enum": ["1", "true"]}, "only dossiers past their due moment now"),
              _query("apology", {"type": "string", "enum": ["1", "true"]}, "only dossiers with an apology"),
              _query("after", {"type": "integer", "minimum": 1}, "the `next` of the previous page"),
              _query("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "page size (default 50)")]
    return {
        "/reports/ontime": {"get": _op(
            "On-time report of a period: carried over, received (online, counter, post), finished early, on time "
            "or late, ended otherwise, still processing within or past the deadline, apologies",
            report, 401, 403, 422, parameters=[*period, by])},
        "/reports/index-scores": {"get": _op(
            "Index scores (0–2 points) of the dossiers finished in the period, per unit or procedure",
            {"type": "object", "required": ["rows", "total"], "properties": {
                "rows": {"type": "array", "items": {"type": "object"}}, "total": {"type": "object"},
                "indicators": {"type": "object"}, "not_scored": {"type": "array", "items": {"type": "string"}}}},
            401, 403, 422, parameters=[*period, by])},
        "/reports/online": {"get": _op(
            "Share of dossiers submitted online per unit against the unit's yearly target (chỉ tiêu)",
            {"type": "object", "required": ["units"], "properties": {"units": {"type": "array", "items": {
                "type": "object", "properties": {"unit": {"type": "string"}, "received": {"type": "integer"},
                                                 "online": {"type": "integer"},
                                                 "rate": {"type": ["number", "null"]},
                                                 "target": {"type": ["number", "null"]},
                                                 "met": {"type": ["boolean", "null"]}}}}}},
            401, 403, 422, parameters=period[:3])},
        "/audit/verify": {"get": _op(
            "Check the audit hash chain (auditors)",
            {"type": "object", "required": ["ok", "events"], "properties": {
                "ok": {"type": "boolean"}, "events": {"type": "integer"},
                "first_broken_id": {"type": ["integer", "null"]}, "reason": {"type": ["string", "null"]}}},
            401, 403)},
        "/audit/dossiers": {"get": _op(
            "Auditor's dossier search across the units in scope, newest first, paged by `after`",
            {"type": "object", "required": ["rows", "next"], "properties": {
                "rows": {"type": "array", "items": SEARCH_ROW}, "next": {"type": ["integer", "null"]}}},
            401, 403, 422, parameters=search)},
        "/audit/dossiers/{code}/timeline": {"get": _op(
            "A case's full timeline for auditors: every event with the data each step changed, and who read it",
            {"type": "object", "required": ["code", "events"], "properties": {
                "code": {"type": "string"}, "viewers": {"type": "object"},
                "events": {"type": "array", "items": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "at": {"type": "string"}, "actor": {"type": "string"},
                    "action": {"type": "string"}, "task": {"type": ["string", "null"]}, "data": {"type": "object"},
                    "changes": {"type": "array"}, "hash": {"type": "string"}}}}}},
            401, 403, 404, parameters=[CODE])},
    }
