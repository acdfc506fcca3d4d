"""The auditor's workspace (read-only): dossier search across the units in scope with CSV/XLSX
export, a case's full timeline with the diagram of the path taken and its signed documents checked
again, the case history export, and the audit chain check."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from backoffice.exports import FORMATS, table_file
from backoffice.extensions import db
from backoffice.reports import scope_choices
from backoffice.security import page_login_required, web_actor
from backoffice.views import service_error_page
from engine import auditor, paperwork, queries
from engine.audit import verify_chain
from engine.models import AuditEvent, DossierStatus, Outcome, Role
from engine.services import ServiceError, calendar_for

bp = Blueprint("audit", __name__)
bp.register_error_handler(ServiceError, service_error_page)
AUDITOR = Role.AUDITOR.value


def search_columns() -> list[tuple[str, str]]:
    return [("code", _("Dossier code")), ("procedure", _("Procedure")), ("unit", _("Unit")),
            ("applicant", _("Applicant")), ("channel", _("Channel")), ("status", _("Status")),
            ("received_at", _("Received")), ("appointment_at", _("Appointment")), ("due_at", _("Due")),
            ("closed_at", _("End of processing")), ("outcome", _("Result")), ("supplements", _("Supplements")),
            ("apology", _("Apology")), ("working_days_left", _("Working days left"))]


def history_columns() -> list[tuple[str, str]]:
    return [("id", _("Event")), ("at", _("Time")), ("actor", _("By")), ("action", _("Action")),
            ("task", _("Task")), ("changes", _("Data changes")), ("data", _("Details")), ("hash", _("Hash"))]


def _choices() -> dict[str, Any]:
    return {**scope_choices(), "statuses": [s.value for s in DossierStatus], "outcomes": [o.value for o in Outcome]}


@bp.get("/")
@page_login_required(AUDITOR)
def search() -> ResponseReturnValue:
    criteria = auditor.DossierSearch.parse(request.args)
    result = auditor.search_dossiers(db(), web_actor(), criteria)
    args = {k: v for k, v in request.args.items() if k != "after"}
    return render_template("audit/search.html", rows=result["rows"], next=result["next"], args=args,
                           searched=bool(args), **_choices())


@bp.get("/export.<fmt>")
@page_login_required(AUDITOR)
def export_search(fmt: str) -> ResponseReturnValue:
    if fmt not in FORMATS:
        abort(404)
    criteria = auditor.DossierSearch.parse(request.args)
    rows = auditor.export_rows(db(), web_actor(), criteria)
    return table_file(rows, search_columns(), fmt=fmt, name="ho-so", title=_("Dossiers"))


@bp.get("/cases/<code>")
@page_login_required(AUDITOR)
def case(code: str) -> ResponseReturnValue:
    session = db()
    actor = web_actor()
    found = auditor.timeline(session, actor, code)
    dossier = found["dossier"]
    context = {
        "dossier": queries.dossier_view(dossier, dossier.procedure, cal=calendar_for(session)),
        "unit": dossier.unit, "record": dossier,
        "events": found["events"], "viewers": found["viewers"],
        "diagrams": queries.case_diagrams(session, dossier),
        "sheet": queries.control_sheet(session, dossier),
        "documents": auditor.documents_checked(session, dossier, found["events"]),
        "attachments": queries.attachments_of(session, dossier),
    }
    session.commit()  # the auditor's read is an audit event
    return render_template("audit/case.html", **context)


@bp.get("/cases/<code>/history.<fmt>")
@page_login_required(AUDITOR)
def export_history(code: str, fmt: str) -> ResponseReturnValue:
    if fmt not in FORMATS:
        abort(404)
    session = db()
    found = auditor.timeline(session, web_actor(), code)
    session.commit()
    rows = [{**e, "changes": "; ".join(f"{c['field']}: {c['before']} → {c['after']}" for c in e["changes"])}
            for e in found["events"]]
    return table_file(rows, history_columns(), fmt=fmt, name=f"lich-su-{code}", title=code)


@bp.get("/cases/<code>/signed/<int:document_id>.pdf")
@page_login_required(AUDITOR)
def signed_document(code: str, document_id: int) -> ResponseReturnValue:
    """A signed document byte for byte as signed, so that the auditor can check it elsewhere."""
    session = db()
    auditor.auditor_units(web_actor())
    dossier = queries.readable_dossier(session, web_actor(), code, purpose=f"signed document {document_id}")
    found = next((d for d in paperwork.signed_documents(session, dossier) if d.id == document_id), None)
    if found is None:
        abort(404)
    content, name = found.content, f"{code}-{found.kind}.pdf"
    session.commit()
    return Response(content, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{name}"', "Cache-Control": "private, no-store"})


@bp.get("/chain")
@page_login_required(AUDITOR)
def chain() -> ResponseReturnValue:
    session = db()
    report = verify_chain(session)
    broken = session.get(AuditEvent, report.first_broken_id) if report.first_broken_id else None
    return render_template("audit/chain.html", report=report, broken=broken)
