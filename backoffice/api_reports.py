"""Reports and audit in the HTTP API (API.md): the on-time report, index scores, online rates
against targets, the audit chain check, and the auditor's dossier search and case timeline.

Routes join the ``api`` blueprint (its JSON error handlers apply).
"""

from __future__ import annotations

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from backoffice.api import _actor, bp
from backoffice.auth import login_required
from backoffice.extensions import db
from backoffice.reports import period_for, scope_for
from engine import auditor, reports
from engine.audit import verify_chain


@bp.get("/reports/ontime")
@login_required
def ontime_report() -> ResponseReturnValue:
    """Per procedure (or unit with ``by=unit``): the counts of the period and the on-time rate."""
    scope, period, by = scope_for(_actor(), request.args), period_for(request.args), request.args.get("by", "procedure")
    return jsonify(reports.ontime_report(db(), period, scope, by=by))


@bp.get("/reports/index-scores")
@login_required
def index_scores() -> ResponseReturnValue:
    scope, period = scope_for(_actor(), request.args), period_for(request.args)
    return jsonify(reports.index_scores(db(), period, scope, by=request.args.get("by", "unit")))


@bp.get("/reports/online")
@login_required
def online_rates() -> ResponseReturnValue:
    scope, period = scope_for(_actor(), request.args), period_for(request.args)
    return jsonify({"from": period.start.isoformat(), "to": period.end.isoformat(),
                    "units": reports.online_rates(db(), period, scope)})


@bp.get("/audit/verify")
@login_required
def audit_verify() -> ResponseReturnValue:
    auditor.auditor_units(_actor())  # auditors only
    report = verify_chain(db())
    return jsonify({"ok": report.ok, "events": report.events, "first_broken_id": report.first_broken_id,
                    "reason": report.reason or None})


@bp.get("/audit/dossiers")
@login_required
def audit_search() -> ResponseReturnValue:
    return jsonify(auditor.search_dossiers(db(), _actor(), auditor.DossierSearch.parse(request.args)))


@bp.get("/audit/dossiers/<code>/timeline")
@login_required
def audit_timeline(code: str) -> ResponseReturnValue:
    session = db()
    found = auditor.timeline(session, _actor(), code)
    session.commit()  # the auditor's read is an audit event
    return jsonify({"code": code, "events": found["events"], "viewers": found["viewers"]})
