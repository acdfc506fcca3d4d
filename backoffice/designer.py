"""Process designer pages: the bpmn-js modeler with the engine's side panel, drafts validated on
every save, deployment, version history with roll-back, and migration of running cases.

The modeler page talks JSON to the routes below with the session's CSRF token (``X-CSRF-Token``).
Thin handlers (STYLE 4): parse, call one engine service, commit, answer.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import func, select

from backoffice.errors import error_response
from backoffice.extensions import db, motcua
from backoffice.security import page_login_required, safe_next, web_actor
from engine import designer, diagram, services
from engine.models import OFFICER_ROLES, Dossier, Procedure, ProcessDraft
from engine.services import ServiceError

bp = Blueprint("designer", __name__)
ROLES = tuple(sorted(designer.DESIGNER_ROLES))
DEADLINE_KINDS = ("same_day", "working_days", "working_hours", "calendar_days")


@bp.errorhandler(ServiceError)
def _service_error(exc: ServiceError) -> ResponseReturnValue:
    """Refused: JSON for the modeler's calls, the page the designer came from otherwise."""
    db().rollback()
    if request.method == "GET" and not request.accept_mimetypes.accept_json:
        return render_template("error.html", status=exc.http_status, message=exc.message), exc.http_status
    if request.is_json or request.accept_mimetypes.best == "application/json":
        return error_response(exc.http_status, exc.code, exc.message, exc.fields)
    flash(exc.message, "error")
    back = request.referrer and "/" + request.referrer.split("/", 3)[-1]
    return redirect(safe_next(back, url_for("designer.index")))


def _operations() -> dict[str, Any]:
    return motcua().registry.describe()


def _problems_json(problems: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**p, "title": _(RULE_TITLES.get(p.get("rule", ""), "Engine"))} for p in problems]


# Rule names shown beside each problem (translated in the page's language).
RULE_TITLES = {
    "xml": "XML", "schema": "BPMN 2.0 schema", "expression": "Expression", "lane": "Lane and role",
    "form": "Task form", "deadline": "Deadline", "operation": "Service operation", "message": "Message",
    "loop": "Loop", "engine": "Engine",
}


@bp.get("/")
@page_login_required(*ROLES)
def index() -> ResponseReturnValue:
    session = db()
    actor = web_actor()
    designer.require_designer(actor)
    drafts = {d.procedure_id: d for d in session.scalars(select(ProcessDraft))}
    running = dict(session.execute(select(Dossier.procedure_id, func.count()).where(Dossier.finished_at.is_(None))
                                   .group_by(Dossier.procedure_id)).all())
    rows = []
    for procedure in session.scalars(select(Procedure).order_by(Procedure.name_vi)):
        try:
            current = services.current_version(session, procedure)
        except ServiceError:
            continue
        draft = drafts.get(procedure.id)
        rows.append({"code": procedure.code, "name": procedure.name_vi, "name_en": procedure.name_en,
                     "version": current.version, "deployed_at": current.deployed_at,
                     "draft": draft is not None, "draft_problems": len(draft.problems) if draft else 0,
                     "running": int(running.get(procedure.id, 0))})
    return render_template("designer/index.html", procedures=rows)


@bp.get("/<code>")
@page_login_required(*ROLES)
def edit(code: str) -> ResponseReturnValue:
    model = designer.open_model(db(), code, actor=web_actor())
    document = diagram.for_designer(model.xml)
    roles = [{"value": r.value, "label": _(ROLE_LABELS[r.value])} for r in sorted(OFFICER_ROLES)]
    operations = [{"name": o.name, "description": _(o.description) if o.description else "",
                   "required": list(o.required), "optional": [p for p in o.optional if p != "*"],
                   "open": "*" in o.optional} for o in _operations().values()]
    data = {
        "procedure": {"code": model.procedure.code, "name": model.procedure.name_vi},
        "xml": document, "lane_roles": model.lane_roles, "task_forms": model.task_forms,
        "version": model.version, "draft": model.draft is not None,
        "problems": _problems_json(model.problems), "roles": roles, "operations": operations,
        "deadline_kinds": list(DEADLINE_KINDS),
        "urls": {"save": url_for("designer.save", code=code), "deploy": url_for("designer.deploy", code=code),
                 "discard": url_for("designer.discard", code=code), "diff": url_for("designer.diff", code=code),
                 "versions": url_for("designer.history", code=code)},
    }
    return render_template("designer/edit.html", model=model, data=data)


ROLE_LABELS = {"onestop": "One-stop office", "justice": "Justice – civil status", "culture": "Culture – society",
               "leader": "Commune leadership"}


def _json_error(exc: ServiceError) -> ResponseReturnValue:
    db().rollback()
    return error_response(exc.http_status, exc.code, exc.message, exc.fields)


@bp.post("/<code>/draft")
@page_login_required(*ROLES)
def save(code: str) -> ResponseReturnValue:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error_response(400, "invalid", "expected a JSON object", {"body": ["expected a JSON object"]})
    session = db()
    try:
        draft = designer.save_draft(session, code, actor=web_actor(), bpmn_xml=body.get("xml"),
                                    lane_roles=body.get("lane_roles", {}), task_forms=body.get("task_forms", {}),
                                    operations=_operations())
        changes = designer.draft_diff(session, code, actor=web_actor())
    except ServiceError as exc:
        return _json_error(exc)
    problems = _problems_json(list(draft.problems))
    saved_at = draft.updated_at.isoformat()
    session.commit()
    return jsonify({"problems": problems, "saved_at": saved_at, "changes": changes})


@bp.post("/<code>/deploy")
@page_login_required(*ROLES)
def deploy(code: str) -> ResponseReturnValue:
    body = request.get_json(silent=True) or {}
    session = db()
    actor = web_actor()
    try:
        version = designer.deploy_draft(session, code, actor=actor, comment=str(body.get("comment") or ""),
                                        operations=_operations())
    except ServiceError as exc:
        procedure = session.scalar(select(Procedure).where(Procedure.code == code))
        draft = session.get(ProcessDraft, procedure.id) if procedure is not None else None
        problems = _problems_json(list(draft.problems)) if draft else []
        session.commit()  # the problems found now are kept with the draft
        return jsonify({"error": exc.code, "message": exc.message, "problems": problems}), exc.http_status
    number = version.version
    session.commit()
    flash(_("Version %(n)d deployed: new cases start on it; running cases stay on their version.", n=number), "ok")
    return jsonify({"version": number, "url": url_for("designer.history", code=code)})


@bp.post("/<code>/discard")
@page_login_required(*ROLES)
def discard(code: str) -> ResponseReturnValue:
    try:
        designer.discard_draft(db(), code, actor=web_actor())
    except ServiceError as exc:
        return _json_error(exc)
    db().commit()
    return jsonify({"discarded": True})


@bp.get("/<code>/diff")
@page_login_required(*ROLES)
def diff(code: str) -> ResponseReturnValue:
    try:
        changes = designer.draft_diff(db(), code, actor=web_actor())
    except ServiceError as exc:
        return _json_error(exc)
    return jsonify({"changes": changes})


def _versions(code: str) -> tuple[Any, list[dict[str, Any]], Procedure]:
    session = db()
    actor = web_actor()
    return session, designer.versions(session, code, actor=actor), designer.procedure_of(session, code)


@bp.get("/<code>/versions")
@page_login_required(*ROLES)
def history(code: str) -> ResponseReturnValue:
    session, rows, procedure = _versions(code)
    compare = request.args.get("compare", type=int)
    changes = None
    if compare and rows:
        old = designer.version_of(session, procedure, compare)
        new = services.current_version(session, procedure)
        changes = designer.model_diff(old.spec.bpmn_xml, new.spec.bpmn_xml)
    return render_template("designer/versions.html", procedure=procedure, versions=rows, compare=compare,
                           changes=changes)


@bp.post("/<code>/versions/<int:number>/redeploy")
@page_login_required(*ROLES)
def redeploy(code: str, number: int) -> ResponseReturnValue:
    version = designer.redeploy(db(), code, number, actor=web_actor(), comment=request.form.get("comment", ""))
    new_number = version.version
    db().commit()
    flash(_("Version %(old)d deployed again as version %(new)d.", old=number, new=new_number), "ok")
    return redirect(url_for("designer.history", code=code))


@bp.get("/<code>/migrate")
@page_login_required(*ROLES)
def migration(code: str) -> ResponseReturnValue:
    session, rows, procedure = _versions(code)
    actor = web_actor()
    current = rows[0]["version"] if rows else 0
    source = request.args.get("from", type=int) or next((r["version"] for r in rows[1:] if r["running"]), None)
    target = request.args.get("to", type=int) or current
    cases = (designer.migration_candidates(session, code, from_version=source, to_version=target, actor=actor)
             if source and target and source != target else [])
    return render_template("designer/migrate.html", procedure=procedure, versions=rows, source=source,
                           target=target, cases=cases)


@bp.post("/<code>/migrate")
@page_login_required(*ROLES)
def migrate(code: str) -> ResponseReturnValue:
    session = db()
    actor = web_actor()
    target = request.form.get("to", type=int)
    source = request.form.get("from", type=int)
    codes = request.form.getlist("dossier")
    if not target or not codes:
        flash(_("Choose the cases to move and the version to move them to."), "error")
        return redirect(url_for("designer.migration", code=code))
    moved, refused = [], []
    for dossier_code in codes:
        try:
            with session.begin_nested():
                designer.migrate_case(session, dossier_code, to_version=target, actor=actor)
            moved.append(dossier_code)
        except ServiceError as exc:
            refused.append(f"{dossier_code}: {exc.message}")
    session.commit()
    if moved:
        flash(_("%(n)d case(s) moved to version %(v)d: %(codes)s", n=len(moved), v=target, codes=", ".join(moved)),
              "ok")
    for message in refused:
        flash(_("Refused: %(reason)s", reason=message), "error")
    return redirect(url_for("designer.migration", code=code, **{"from": source, "to": target}))
