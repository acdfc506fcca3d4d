"""The HTTP API (JSON, API.md). Thin handlers: parse, check the caller, call one service, answer."""

from __future__ import annotations

import io
from typing import Any

from flask import Blueprint, current_app, jsonify, request, send_file, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select, text

from backoffice.auth import current_actor, issue_token, login_required
from backoffice.errors import error_response, retry_after, service_error
from backoffice.extensions import db, motcua
from backoffice.openapi import openapi_document
from engine import accounts, paperwork, queries, services
from engine import documents as pdf_documents
from engine.calendar import to_vn
from engine.models import Procedure
from engine.services import Actor, ServiceError

bp = Blueprint("api", __name__)


@bp.errorhandler(ServiceError)
def _service_error(exc: ServiceError) -> ResponseReturnValue:
    db().rollback()
    return service_error(exc)


@bp.errorhandler(404)
def _not_found(_exc: Exception) -> ResponseReturnValue:
    return error_response(404, "not_found", "no such resource")


@bp.errorhandler(405)
def _not_allowed(_exc: Exception) -> ResponseReturnValue:
    return error_response(405, "method_not_allowed", "method not allowed here")


@bp.errorhandler(413)
def _too_large(_exc: Exception) -> ResponseReturnValue:
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    return error_response(413, "too_large", f"the request body is larger than {limit} bytes",
                          {"body": [f"at most {limit} bytes"]})


def _actor() -> Actor:
    actor = current_actor()
    assert actor is not None  # guarded by login_required
    return actor


def _json_body(*required: str) -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise services.InvalidDataError("a JSON object body is required", fields={"body": ["JSON object"]})
    missing = [name for name in required if name not in body]
    if missing:
        raise services.InvalidDataError("missing fields", fields={name: ["required"] for name in missing})
    return body


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    return jsonify(openapi_document())


@bp.get("/health")
def health() -> ResponseReturnValue:
    db().execute(text("SELECT 1"))
    return jsonify({"ok": True})


@bp.post("/auth/login")
def login() -> ResponseReturnValue:
    body = _json_body("username", "password")
    session = db()
    try:
        user = accounts.authenticate(session, str(body["username"]), str(body["password"]))
    except accounts.LoginError as exc:
        session.commit()  # the failure counter and the audit event are kept
        return retry_after(error_response(423 if exc.locked else 401, "locked" if exc.locked else "unauthorized",
                                          exc.message), exc.retry_after)
    from backoffice.api_citizens import citizen_needs_code, start_login_code

    if citizen_needs_code(user):
        session.commit()
        return jsonify(start_login_code(user))
    if accounts.totp_required(user):
        # Leaders (and users who enrolled) prove a second factor: the code of their authenticator
        # app in "otp". Enrolment itself happens at the first login in the back office.
        if not user.totp_secret:
            session.commit()
            return error_response(403, "totp_enrolment_required",
                                  "set up two-step login in the back office (/login) first")
        otp = body.get("otp")
        if not otp:
            session.commit()
            return jsonify({"otp_required": True, "method": "totp"})
        try:
            accounts.verify_totp(session, user, str(otp))
        except accounts.LoginError as exc:
            session.commit()
            return retry_after(error_response(423 if exc.locked else 401, "locked" if exc.locked else "unauthorized",
                                              exc.message, {"otp": ["wrong or already used code"]}), exc.retry_after)
    session.commit()
    return jsonify({"token": issue_token(user), "user": {"username": user.username, "roles": sorted(user.roles),
                                                         "unit_id": user.unit_id}})


@bp.get("/units")
def units() -> ResponseReturnValue:
    return jsonify([{"code": u.code, "name": u.name, "agency_code": u.agency_code} for u in queries.units(db())])


@bp.get("/procedures")
def procedures() -> ResponseReturnValue:
    query = select(Procedure).where(Procedure.is_active).order_by(Procedure.code)
    q, field, online = request.args.get("q"), request.args.get("field"), request.args.get("online")
    rows = db().scalars(query).all()
    result = []
    for p in rows:
        if q and q.lower() not in f"{p.name_vi} {p.name_en} {p.code}".lower():
            continue
        if field and p.field != field:
            continue
        if online and p.online_level != online:
            continue
        result.append({
            "code": p.code,
            "national_code": p.national_code,
            "name": p.name_vi,
            "name_en": p.name_en,
            "field": p.field,
            "online_level": p.online_level,
            "legal_time": {"value": p.legal_time_value, "unit": p.legal_time_unit},
            "fee": p.catalogue.get("fee"),
            "documents": p.catalogue.get("documents", []),
            "form_schema": p.catalogue.get("form_schema", {}),
            "delivery": p.catalogue.get("delivery", []),
        })
    return jsonify(result)


def _int_arg(name: str, default: int | None, *, minimum: int = 0, maximum: int = 2**31 - 1) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise services.InvalidDataError(f"{name} must be an integer", fields={name: ["integer"]}) from None
    if not minimum <= value <= maximum:
        raise services.InvalidDataError(f"{name} must be from {minimum} to {maximum}",
                                        fields={name: [f"{minimum}–{maximum}"]})
    return value


@bp.get("/tasks")
@login_required
def tasks() -> ResponseReturnValue:
    scope = request.args.get("scope", "mine")
    if scope not in queries.SCOPES:
        raise services.InvalidDataError("unknown scope", fields={"scope": list(queries.SCOPES)})
    filters = queries.TaskFilters(
        scope=scope,
        procedure=request.args.get("procedure") or None,
        step=request.args.get("step") or None,
        # schemathesis found that a huge value overflowed the calendar
        due_within_days=_int_arg("due_within_days", None, maximum=366),
        q=request.args.get("q") or None,
        limit=_int_arg("limit", 50, minimum=1) or 50,
        offset=_int_arg("offset", 0) or 0,
    )
    session = db()
    result = queries.list_tasks(session, _actor(), filters)
    result["counts"] = queries.count_tasks(session, _actor())
    return jsonify(result)


@bp.get("/tasks/<task_id>")
@login_required
def task(task_id: str) -> ResponseReturnValue:
    return jsonify(queries.get_task(db(), _actor(), task_id))


@bp.post("/tasks/<task_id>/claim")
@login_required
def claim(task_id: str) -> ResponseReturnValue:
    session = db()
    queries.require_officer(_actor())
    row = services.claim_task(session, task_id, actor=_actor())
    session.commit()
    return jsonify({"id": row.id, "assignee_id": row.assignee_id, "state": row.state})


@bp.post("/tasks/<task_id>/unclaim")
@login_required
def unclaim(task_id: str) -> ResponseReturnValue:
    session = db()
    queries.require_officer(_actor())
    queries.get_task(session, _actor(), task_id)  # scope check
    row = services.unclaim_task(session, task_id, actor=_actor())
    session.commit()
    return jsonify({"id": row.id, "assignee_id": row.assignee_id, "state": row.state})


@bp.post("/tasks/<task_id>/complete")
@login_required
def complete(task_id: str) -> ResponseReturnValue:
    session = db()
    queries.require_officer(_actor())
    services.require_task_actor(session, task_id, _actor())
    body = _json_body("data")
    if not isinstance(body["data"], dict):
        raise services.InvalidDataError("data must be an object", fields={"data": ["object"]})
    dossier = services.complete_task(session, task_id, actor=_actor(), data=body["data"])
    session.commit()
    return jsonify({"dossier": dossier.code, "status": dossier.status, "status_code": dossier.status_code})


def _object(body: dict[str, Any], name: str, *, required: bool = False) -> dict[str, Any] | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, dict):
        raise services.InvalidDataError(f"{name} must be an object", fields={name: ["object"]})
    return value


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise services.InvalidDataError(f"{name} is required", fields={name: ["required"]})
    return value.strip()


@bp.post("/dossiers")
@login_required
def submit_dossier() -> ResponseReturnValue:
    services.require_submitter(_actor())  # refused callers are refused before their input is read
    body = _json_body("procedure", "unit", "applicant")
    attachments = body.get("attachments")
    if attachments is not None and not isinstance(attachments, list):
        raise services.InvalidDataError("attachments must be a list", fields={"attachments": ["list"]})
    channel = body.get("channel")
    session = db()
    dossier = services.submit_dossier_as(
        session,
        actor=_actor(),
        procedure_code=_text(body, "procedure"),
        unit_code=_text(body, "unit"),
        applicant=_object(body, "applicant", required=True) or {},
        form=_object(body, "form"),
        delivery=_object(body, "delivery"),
        attachments=attachments,
        channel=str(channel) if channel is not None else None,
    )
    result = {"code": dossier.code, "status": dossier.status, "status_code": dossier.status_code,
              "due_at": to_vn(dossier.due_at).isoformat() if dossier.due_at else None}
    session.commit()
    return jsonify(result), 201, {"Location": url_for(".dossier", code=result["code"])}


@bp.get("/dossiers/<code>/documents")
@login_required
def documents(code: str) -> ResponseReturnValue:
    session = db()
    rows = queries.list_documents(session, _actor(), code)
    session.commit()  # the officer's read is an audit event
    for row in rows:
        row["url"] = url_for(".attachment", code=code, attachment_id=row["id"])
    dossier = services.get_dossier(session, code)
    for kind in paperwork.available_forms(session, dossier):
        form = pdf_documents.FORMS[kind]
        rows.append({"kind": f"form:{kind}", "name": form.title, "mime": "application/pdf",
                     "url": url_for(".form_pdf", code=code, kind=kind)})
    for signed in paperwork.signed_documents(session, dossier):
        rows.append({"id": signed.id, "kind": f"signed:{signed.kind}", "name": signed.name, "mime": "application/pdf",
                     "size": signed.size, "sha256": signed.sha256, "signer": signed.signer_name,
                     "signed_at": to_vn(signed.signed_at).isoformat(),
                     "url": url_for(".signed_pdf", code=code, document_id=signed.id),
                     "verify_url": url_for("verify.verify", code=code)})
    return jsonify(rows)


def _pdf(content: bytes, name: str) -> ResponseReturnValue:
    response = send_file(io.BytesIO(content), mimetype="application/pdf", as_attachment=False,
                         download_name=name, etag=False)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/dossiers/<code>/forms/<kind>.pdf")
@login_required
def form_pdf(code: str, kind: str) -> ResponseReturnValue:
    """A one-stop form of the dossier (Mẫu 01–05) rendered now; ``?set=2025`` for the 2025 set."""
    session = db()
    dossier = queries.readable_dossier(session, _actor(), code, purpose=f"form {kind}")
    form_set = request.args.get("set", pdf_documents.DEFAULT_FORM_SET)
    if kind not in paperwork.available_forms(session, dossier):
        raise services.NotFoundError(f"{code} has no form {kind!r}", fields={"kind": ["not issued for this dossier"]})
    try:
        pdf_documents.template_for(kind, form_set=form_set)
    except pdf_documents.DocumentError as exc:
        raise services.InvalidDataError(str(exc), fields={"set": [str(exc)]}) from exc
    settings = motcua().settings
    context = paperwork.form_context(session, dossier, kind,
                                     verify_url=paperwork.verify_url(settings.public_url, code))
    pdf = pdf_documents.render_pdf(kind, context, form_set=form_set)
    session.commit()  # the officer's read is an audit event
    return _pdf(pdf, f"{code}-{kind}.pdf")


@bp.get("/dossiers/<code>/signed/<int:document_id>.pdf")
@login_required
def signed_pdf(code: str, document_id: int) -> ResponseReturnValue:
    """A signed document of the dossier, byte for byte as signed."""
    session = db()
    dossier = queries.readable_dossier(session, _actor(), code, purpose=f"signed document {document_id}")
    signed = next((d for d in paperwork.signed_documents(session, dossier) if d.id == document_id), None)
    if signed is None:
        raise services.NotFoundError(f"{code} has no signed document {document_id}")
    content, name = signed.content, f"{code}-{signed.kind}.pdf"
    session.commit()
    return _pdf(content, name)


@bp.get("/dossiers/<code>/attachments/<int:attachment_id>")
@login_required
def attachment(code: str, attachment_id: int) -> ResponseReturnValue:
    session = db()
    row = queries.get_attachment(session, _actor(), code, attachment_id)
    content, mime, name = row.content, row.mime, row.name
    session.commit()  # the officer's read is an audit event
    # Shown inline in the task page; the type was checked against the content at upload, and
    # nosniff keeps browsers from guessing another one.
    response = send_file(io.BytesIO(content), mimetype=mime, as_attachment=False, download_name=name, etag=False)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"  # scans of ID papers: not kept on shared PCs
    return response


@bp.get("/dossiers/<code>")
@login_required
def dossier(code: str) -> ResponseReturnValue:
    session = db()
    result = queries.get_dossier_for(session, _actor(), code)
    session.commit()  # the officer's read is an audit event
    return jsonify(result)


@bp.get("/cases/<code>/history")
@login_required
def case_history(code: str) -> ResponseReturnValue:
    session = db()
    result = queries.history(session, _actor(), code)
    session.commit()
    return jsonify(result)


@bp.get("/track/<code>")
def track(code: str) -> ResponseReturnValue:
    return jsonify(queries.track(db(), code, request.args.get("phone_last4", "")))
