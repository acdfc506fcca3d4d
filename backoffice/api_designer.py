"""The designer part of the HTTP API (API.md): versions, drafts, deployment, roll-back and the
migration of running cases, for process designers' tools. Bearer tokens of designer (or admin)
accounts; thin handlers around engine.designer."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from backoffice.auth import current_actor, login_required
from backoffice.errors import error_response, service_error
from backoffice.extensions import db, motcua
from engine import designer, services
from engine.models import Procedure
from engine.services import Actor, ServiceError

bp = Blueprint("api_designer", __name__)


@bp.errorhandler(ServiceError)
def _service_error(exc: ServiceError) -> ResponseReturnValue:
    db().rollback()
    return service_error(exc)


def _actor() -> Actor:
    actor = current_actor()
    assert actor is not None  # guarded by login_required
    return actor


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise services.InvalidDataError("a JSON object body is required", fields={"body": ["JSON object"]})
    return body


def _version_json(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "deployed_at": row["deployed_at"].isoformat()}


@bp.get("/process-models")
@login_required
def process_models() -> ResponseReturnValue:
    """Every procedure with its deployed versions (designers and auditors)."""
    actor = _actor()
    if not actor.roles & designer.READER_ROLES:
        raise services.ForbiddenError("designers and auditors only")
    session = db()
    procedures = session.scalars(select(Procedure).order_by(Procedure.code)).all()
    return jsonify([{"procedure": p.code, "name": p.name_vi, "name_en": p.name_en,
                     "versions": [_version_json(v) for v in designer.versions(session, p.code, actor=actor)]}
                    for p in procedures])


@bp.post("/process-models/<code>")
@login_required
def deploy_model(code: str) -> ResponseReturnValue:
    """The request body is the BPMN document; 201 with the new version, 422 with every problem."""
    body = request.get_data(as_text=True)
    version = designer.deploy_model(db(), code, body, actor=_actor(), comment=request.args.get("comment", ""),
                                    operations=motcua().registry.describe())
    number = version.version
    db().commit()
    return jsonify({"version": number}), 201


@bp.get("/procedures/<code>/versions")
@login_required
def versions(code: str) -> ResponseReturnValue:
    return jsonify([_version_json(v) for v in designer.versions(db(), code, actor=_actor())])


@bp.post("/procedures/<code>/draft")
@login_required
def save_draft(code: str) -> ResponseReturnValue:
    body = _body()
    session = db()
    draft = designer.save_draft(session, code, actor=_actor(), bpmn_xml=body.get("xml"),
                                lane_roles=body.get("lane_roles", {}), task_forms=body.get("task_forms", {}),
                                operations=motcua().registry.describe())
    result = {"problems": list(draft.problems), "changes": designer.draft_diff(session, code, actor=_actor()),
              "saved_at": draft.updated_at.isoformat()}
    session.commit()
    return jsonify(result)


@bp.post("/procedures/<code>/deploy")
@login_required
def deploy(code: str) -> ResponseReturnValue:
    body = request.get_json(silent=True) or {}
    session = db()
    try:
        version = designer.deploy_draft(session, code, actor=_actor(), comment=str(body.get("comment") or ""),
                                        operations=motcua().registry.describe())
    except services.InvalidDataError as exc:
        session.commit()  # the problems found now stay with the draft
        return error_response(exc.http_status, exc.code, exc.message, exc.fields)
    number = version.version
    session.commit()
    return jsonify({"version": number}), 201


@bp.post("/procedures/<code>/versions/<int:number>/redeploy")
@login_required
def redeploy(code: str, number: int) -> ResponseReturnValue:
    body = request.get_json(silent=True) or {}
    version = designer.redeploy(db(), code, number, actor=_actor(), comment=str(body.get("comment") or ""))
    result = {"version": version.version, "redeploys_version": number}
    db().commit()
    return jsonify(result), 201


@bp.get("/dossiers/<code>/migration")
@login_required
def migration_check(code: str) -> ResponseReturnValue:
    actor = _actor()
    designer.require_designer(actor)
    target = request.args.get("to", type=int)
    if not target:
        raise services.InvalidDataError("the target version is required", fields={"to": ["a version number"]})
    session = db()
    dossier = services.get_dossier(session, code)
    version = designer.version_of(session, dossier.procedure, target)
    reasons = designer.migration_check(session, dossier, version)
    return jsonify({"dossier": code, "from_version": dossier.model_version.version, "to_version": target,
                    "safe": not reasons, "reasons": reasons})


@bp.post("/dossiers/<code>/migrate")
@login_required
def migrate(code: str) -> ResponseReturnValue:
    designer.require_designer(_actor())
    body = _body()
    target = body.get("to_version")
    if not isinstance(target, int) or isinstance(target, bool):
        raise services.InvalidDataError("to_version must be a version number", fields={"to_version": ["integer"]})
    result = designer.migrate_case(db(), code, to_version=target, actor=_actor())
    db().commit()
    return jsonify(result)
