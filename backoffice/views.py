"""Back-office pages: login with second factor, inbox, task page, case page, leader approvals.

Thin handlers (STYLE 4): parse the request, check access, call one engine service or query,
render. The request owns the transaction and commits once.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import qrcode
import qrcode.image.svg
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    send_from_directory,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import select
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from backoffice.errors import error_response, retry_after
from backoffice.extensions import db, motcua
from backoffice.forms import decisions, form_fields, parse_form
from backoffice.i18n import LOCALES
from backoffice.security import (
    end_session,
    page_login_required,
    pending_user,
    safe_next,
    start_pending,
    start_session,
    web_actor,
    web_user,
)
from engine import accounts, clock, queries, services
from engine.calendar import to_vn
from engine.models import OFFICER_ROLES, Procedure, Role, Task, Unit
from engine.services import ServiceError

bp = Blueprint("views", __name__)
OFFICERS = tuple(role.value for role in OFFICER_ROLES)
PAGE_SIZE = 25
APPROVAL_FORMS = ("approve", "apology")


def _home_for(roles: frozenset[str]) -> str:
    if roles & set(OFFICERS):
        return url_for("views.inbox")
    if Role.DESIGNER.value in roles:
        return url_for("designer.index")
    if Role.AUDITOR.value in roles:
        return url_for("audit.search")
    if Role.ADMIN.value in roles:
        return "/admin/"
    return url_for("web.home")


# --- login ------------------------------------------------------------------------------------

@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    next_url = request.values.get("next")
    if request.method == "GET":
        return render_template("login.html", next=next_url)
    session_db = db()
    username = request.form.get("username", "").strip()
    try:
        user = accounts.authenticate(session_db, username, request.form.get("password", ""))
    except accounts.LoginError as exc:
        session_db.commit()  # the failure counter and the audit event are kept
        message = _("Account locked after repeated failures. Try again in 15 minutes.") if exc.locked \
            else _("Wrong username or password.")
        return retry_after((render_template("login.html", next=next_url, error=message, username=username), 401),
                           exc.retry_after)
    session_db.commit()
    if user.roles == {Role.CITIZEN.value}:
        # Citizens log in through the portal, where the SMS code is asked.
        flash(_("Citizens log in to the public services portal."), "info")
        return redirect(url_for("portal.login"))
    if accounts.totp_required(user):
        start_pending(user)
        session["next"] = safe_next(next_url, "")
        return redirect(url_for("views.login_otp" if user.totp_secret else "views.totp_enrol"))
    start_session(user)
    return redirect(safe_next(next_url, _home_for(user.roles)))


@bp.route("/login/otp", methods=["GET", "POST"])
def login_otp() -> ResponseReturnValue:
    user = pending_user()
    if user is None or not user.totp_secret:
        return redirect(url_for("views.login"))
    if request.method == "GET":
        return render_template("otp.html")
    session_db = db()
    try:
        accounts.verify_totp(session_db, user, request.form.get("otp", ""))
    except accounts.LoginError as exc:
        session_db.commit()
        if exc.locked:
            end_session()
            return retry_after((render_template("login.html", error=_("Account locked after repeated failures. "
                                                                      "Try again in 15 minutes.")), 401),
                               exc.retry_after)
        return render_template("otp.html", error=_("Wrong or already used code.")), 401
    session_db.commit()
    next_url = session.get("next")
    start_session(user)
    return redirect(safe_next(next_url, _home_for(user.roles)))


def _qr_svg(data: str) -> Markup:
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = io.BytesIO()
    image.save(buffer)
    return Markup(buffer.getvalue().decode())  # noqa: S704 - SVG generated here from our own URI


@bp.route("/login/totp", methods=["GET", "POST"])
def totp_enrol() -> ResponseReturnValue:
    """First login of a leader: show a new secret as a QR code, store it once a code matches."""
    user = pending_user()
    if user is None:
        return redirect(url_for("views.login"))
    secret = session.get("enrol_secret") or accounts.new_totp_secret()
    session["enrol_secret"] = secret
    uri = accounts.totp_uri(user, secret)
    if request.method == "POST":
        session_db = db()
        try:
            accounts.enrol_totp(session_db, user, secret, request.form.get("otp", ""))
        except accounts.LoginError:
            session_db.commit()
            return render_template("totp_enrol.html", secret=secret, qr=_qr_svg(uri),
                                   error=_("The code does not match. Check your phone's clock and try again.")), 422
        session_db.commit()
        next_url = session.get("next")
        start_session(user)
        flash(_("Two-step login is on for your account."), "ok")
        return redirect(safe_next(next_url, _home_for(user.roles)))
    return render_template("totp_enrol.html", secret=secret, qr=_qr_svg(uri))


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    end_session()
    return redirect(url_for("views.login"))


@bp.post("/lang/<code>")
def set_language(code: str) -> ResponseReturnValue:
    if code not in LOCALES:
        abort(404)
    session["lang"] = code
    return redirect(safe_next(request.form.get("next"), url_for("web.home")))


# --- inbox ------------------------------------------------------------------------------------

def _filters_from_args(tab: str, page: int) -> queries.TaskFilters:
    due = request.args.get("due", "")
    return queries.TaskFilters(
        scope=tab,
        procedure=request.args.get("procedure") or None,
        step=request.args.get("step") or None,
        due_within_days=int(due) if due.isdigit() else None,
        q=(request.args.get("q") or "").strip() or None,
        limit=PAGE_SIZE + 1,  # one more tells whether there is a next page
        offset=(page - 1) * PAGE_SIZE,
    )


@bp.get("/inbox")
@page_login_required(*OFFICERS)
def inbox() -> ResponseReturnValue:
    tab = request.args.get("tab", "mine")
    if tab not in queries.SCOPES:
        tab = "mine"
    page = max(1, request.args.get("page", 1, type=int) or 1)
    actor = web_actor()
    session_db = db()
    result = queries.list_tasks(session_db, actor, _filters_from_args(tab, page))
    items = result["items"]
    procedures = session_db.execute(select(Procedure.code, Procedure.name_vi).where(Procedure.is_active)
                                    .order_by(Procedure.name_vi)).all()
    # Steps that have open work in the unit (the open-task index, not the unit's whole history).
    steps = session_db.execute(select(Task.spec_name, Task.name).where(Task.unit_id == actor.unit_id,
                                                                       queries.open_user_task())
                               .group_by(Task.spec_name, Task.name).order_by(Task.name).limit(100)).all()
    return render_template(
        "inbox.html", tab=tab, page=page, items=items[:PAGE_SIZE], has_next=len(items) > PAGE_SIZE,
        counts=queries.count_tasks(session_db, actor), procedures=procedures, steps=steps, args=request.args,
    )


@bp.post("/inbox/claim")
@page_login_required(*OFFICERS)
def bulk_claim() -> ResponseReturnValue:
    """Claim several tasks at once; each is its own step, so one taken task does not undo the rest."""
    actor = web_actor()
    session_db = db()
    claimed, refused = 0, 0
    for task_id in request.form.getlist("task_id")[:queries.MAX_PAGE]:
        try:
            with session_db.begin_nested():
                services.claim_task(session_db, task_id, actor=actor)
            claimed += 1
        except ServiceError:
            refused += 1
    session_db.commit()
    flash(_("%(n)d task(s) claimed.", n=claimed), "ok")
    if refused:
        flash(_("%(n)d task(s) could not be claimed: already taken or not yours to take.", n=refused), "error")
    return redirect(url_for("views.inbox", tab="mine"))


def _attachments(dossier: Any) -> list[dict[str, Any]]:
    return [{**a, "url": url_for("views.attachment", code=dossier.code, attachment_id=a["id"])}
            for a in queries.attachments_of(db(), dossier)]


@bp.get("/cases/<code>/attachments/<int:attachment_id>")
@page_login_required(*OFFICERS, Role.AUDITOR.value)
def attachment(code: str, attachment_id: int) -> ResponseReturnValue:
    """A dossier's file shown inside the task and case pages (same rules as the API download)."""
    session_db = db()
    row = queries.get_attachment(session_db, web_actor(), code, attachment_id)
    content, mime, name = row.content, row.mime, row.name
    session_db.commit()  # the read is audited
    response = send_file(io.BytesIO(content), mimetype=mime, as_attachment=False, download_name=name, etag=False)
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- reception at the counter ---------------------------------------------------------------

APPLICANT_FIELDS = ("full_name", "id_number", "phone", "email", "address")


@bp.route("/reception", methods=["GET", "POST"])
@page_login_required(Role.ONESTOP.value)
def reception() -> ResponseReturnValue:
    """A walk-in (or posted) dossier typed in by the one-stop officer, with its scanned papers."""
    session_db = db()
    actor = web_actor()
    procedures = session_db.scalars(select(Procedure).where(Procedure.is_active).order_by(Procedure.name_vi)).all()
    chosen = next((p for p in procedures if p.code == request.values.get("procedure")), None)
    schema = chosen.catalogue.get("form_schema") or {} if chosen else {}
    context = {"procedures": procedures, "chosen": chosen, "fields": form_fields(schema),
               "values": request.form if request.method == "POST" else MultiDict(), "errors": {}}
    if request.method == "GET" or chosen is None:
        return render_template("reception.html", **context)
    form_data, errors = parse_form(schema, request.form)
    applicant = {"type": "individual", **{k: request.form.get(f"applicant_{k}", "").strip()
                                           for k in APPLICANT_FIELDS if request.form.get(f"applicant_{k}", "").strip()}}
    files = [{"name": f.filename or "", "mime": f.mimetype or "",
              "content_base64": base64.b64encode(f.read()).decode()}
             for f in request.files.getlist("attachments") if f.filename]
    delivery = {"method": request.form.get("delivery", "counter"), "address": request.form.get("delivery_address", "")}
    if not errors:
        try:
            dossier = services.submit_dossier_as(
                session_db, actor=actor, procedure_code=chosen.code, unit_code=actor_unit_code(session_db, actor),
                applicant=applicant, form=form_data, delivery=delivery, attachments=files,
                channel=request.form.get("channel") or "counter")
        except services.InvalidDataError as exc:
            session_db.rollback()
            errors = {str(k).removeprefix("form."): [str(m) for m in v] for k, v in (exc.fields or {}).items()}
        else:
            session_db.commit()
            flash(_("Dossier %(code)s received; appointment %(due)s.", code=dossier.code,
                    due=vn_datetime(dossier.due_at)), "ok")
            return redirect(url_for("views.case_page", code=dossier.code))
    context["errors"] = errors
    return render_template("reception.html", **context), 422


def actor_unit_code(session_db: Any, actor: Any) -> str:
    unit = session_db.get(Unit, actor.unit_id)
    return unit.code if unit else ""


# --- task page --------------------------------------------------------------------------------

def _task_context(task_id: str) -> dict[str, Any]:
    session_db = db()
    actor = web_actor()
    task = queries.get_task(session_db, actor, task_id)
    dossier = services.get_dossier(session_db, task["dossier"])
    schema = task["form"] or {}
    return {
        "task": task,
        "dossier": task["dossier_data"],
        "schema": schema,
        "fields": form_fields(schema),
        "decisions": decisions(schema),
        "history": queries.history(session_db, actor, dossier.code)[-12:][::-1],
        "proposal": queries.latest_proposal(session_db, dossier),
        "attachments": _attachments(dossier),
        "officers": queries.unit_officers(session_db, task["unit_id"], task["role"])
        if Role.LEADER.value in actor.roles else [],
        "is_mine": task["assignee_id"] == actor.user_id,
    }


@bp.get("/tasks/<task_id>")
@page_login_required(*OFFICERS)
def task_page(task_id: str) -> ResponseReturnValue:
    context = _task_context(task_id)
    db().commit()  # reading the case is an audit event
    return render_template("task.html", values=MultiDict(), errors={}, **context)


@bp.post("/tasks/<task_id>/complete")
@page_login_required(*OFFICERS)
def complete(task_id: str) -> ResponseReturnValue:
    session_db = db()
    actor = web_actor()
    task = queries.get_task(session_db, actor, task_id)
    schema = task["form"] or {}
    data, errors = parse_form(schema, request.form)
    decision = request.form.get("decision")
    if decision:
        data["decision"] = decision
    if not errors:
        try:
            dossier = services.complete_task(session_db, task_id, actor=actor, data=data)
        except services.InvalidDataError as exc:
            session_db.rollback()
            errors = {str(k): [str(m) for m in v] for k, v in (exc.fields or {}).items()}
        else:
            session_db.commit()
            flash(_("Done: %(task)s for dossier %(code)s.", task=task["name"], code=dossier.code), "ok")
            return redirect(url_for("views.inbox", tab="mine"))
    context = _task_context(task_id)
    session_db.rollback()
    return render_template("task.html", values=request.form, errors=errors, **context), 422


@bp.post("/tasks/<task_id>/claim")
@page_login_required(*OFFICERS)
def claim(task_id: str) -> ResponseReturnValue:
    session_db = db()
    queries.get_task(session_db, web_actor(), task_id)  # scope check
    services.claim_task(session_db, task_id, actor=web_actor())
    session_db.commit()
    return redirect(url_for("views.task_page", task_id=task_id))


@bp.post("/tasks/<task_id>/unclaim")
@page_login_required(*OFFICERS)
def unclaim(task_id: str) -> ResponseReturnValue:
    session_db = db()
    queries.get_task(session_db, web_actor(), task_id)
    services.unclaim_task(session_db, task_id, actor=web_actor())
    session_db.commit()
    return redirect(url_for("views.inbox", tab="unit"))


@bp.post("/tasks/<task_id>/reassign")
@page_login_required(Role.LEADER.value)
def reassign(task_id: str) -> ResponseReturnValue:
    session_db = db()
    assignee = request.form.get("assignee", type=int)
    if assignee is None:
        raise services.InvalidDataError("choose an officer", fields={"assignee": ["required"]})
    row = services.reassign_task(session_db, task_id, actor=web_actor(), assignee_id=assignee)
    session_db.commit()
    flash(_("Task reassigned."), "ok")
    return redirect(url_for("views.case_page", code=row.dossier.code))


# --- case page --------------------------------------------------------------------------------

@bp.get("/cases/<code>")
@page_login_required(*OFFICERS, Role.AUDITOR.value)
def case_page(code: str) -> ResponseReturnValue:
    session_db = db()
    actor = web_actor()
    dossier = services.get_dossier(session_db, code)
    if not queries.can_read_dossier(actor, dossier):
        abort(403)
    events = queries.history(session_db, actor, code)
    cal = services.calendar_for(session_db)
    view = queries.dossier_view(dossier, dossier.procedure, cal=cal)
    open_tasks = session_db.scalars(select(Task).where(Task.dossier_id == dossier.id, Task.kind == "user",
                                                       Task.state == "ready")).all()
    context = {
        "dossier": view,
        "events": events,
        "sheet": queries.control_sheet(session_db, dossier),
        "diagrams": queries.case_diagrams(session_db, dossier),
        "attachments": _attachments(dossier),
        "open_tasks": open_tasks,
        "officers": {t.id: queries.unit_officers(session_db, t.unit_id, t.role) for t in open_tasks}
        if Role.LEADER.value in actor.roles and actor.unit_id == dossier.unit_id else {},
    }
    session_db.commit()  # the read is audited
    return render_template("case.html", **context)


# --- leader -----------------------------------------------------------------------------------

@bp.get("/approvals")
@page_login_required(Role.LEADER.value)
def approvals() -> ResponseReturnValue:
    session_db = db()
    actor = web_actor()
    rows = queries.approval_queue(session_db, actor, form_keys=APPROVAL_FORMS)
    return render_template("approvals.html", rows=rows)


@bp.post("/approvals")
@page_login_required(Role.LEADER.value)
def batch_approve() -> ResponseReturnValue:
    """Approve the selected results; each one is its own step (one failure leaves the rest)."""
    session_db = db()
    actor = web_actor()
    done: list[str] = []
    failed: list[str] = []
    for task_id in request.form.getlist("task_id")[:queries.MAX_PAGE]:
        task = session_db.get(Task, task_id)
        if task is None or task.form_key != "approve":
            failed.append(task_id)
            continue
        try:
            with session_db.begin_nested():
                dossier = services.complete_task(session_db, task_id, actor=actor, data={"decision": "approve"})
            done.append(dossier.code)
        except ServiceError:
            failed.append(task_id)
    session_db.commit()
    if done:
        flash(_("Approved and sent for signing: %(codes)s.", codes=", ".join(done)), "ok")
    if failed:
        flash(_("%(n)d result(s) could not be approved; open them one by one.", n=len(failed)), "error")
    return redirect(url_for("views.approvals"))


# --- assets -----------------------------------------------------------------------------------

VENDOR_FILES = {
    "bpmn-navigated-viewer.js": "bpmn-js/dist/bpmn-navigated-viewer.production.min.js",
    "bpmn-modeler.js": "bpmn-js/dist/bpmn-modeler.production.min.js",
    "bpmn-js.css": "bpmn-js/dist/assets/bpmn-js.css",
    "diagram-js.css": "bpmn-js/dist/assets/diagram-js.css",
    "bpmn-font/css/bpmn-embedded.css": "bpmn-js/dist/assets/bpmn-font/css/bpmn-embedded.css",
    # The modeler's icon font, as files (the CSP allows fonts from 'self' only, not data: URLs).
    "bpmn-font/css/bpmn.css": "bpmn-js/dist/assets/bpmn-font/css/bpmn.css",
    **{f"bpmn-font/font/bpmn.{ext}": f"bpmn-js/dist/assets/bpmn-font/font/bpmn.{ext}"
       for ext in ("woff2", "woff", "ttf", "eot", "svg")},
}


@bp.get("/vendor/<path:name>")
def vendor(name: str) -> ResponseReturnValue:
    """Front-end libraries installed by npm (package.json), served from node_modules."""
    relative = VENDOR_FILES.get(name)
    if relative is None:
        abort(404)
    root = motcua().settings.node_modules or str(current_app.root_path + "/../node_modules")
    return send_from_directory(root, relative, max_age=86400)


@bp.app_template_filter("vn_datetime")
def vn_datetime(value: Any) -> str:
    if not value:
        return "—"
    from datetime import datetime

    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return to_vn(moment).strftime("%d/%m/%Y %H:%M")


@bp.app_template_filter("vn_date")
def vn_date(value: Any) -> str:
    """An ISO date (or date) as dd/mm/yyyy."""
    if not value:
        return "—"
    from datetime import date

    day = date.fromisoformat(value) if isinstance(value, str) else value
    return day.strftime("%d/%m/%Y")


@bp.app_context_processor
def _inject() -> dict[str, Any]:
    user = web_user()
    return {"now": clock.now(), "user": user, "is_officer": bool(user and user.roles & set(OFFICERS))}


@bp.errorhandler(ServiceError)
def service_error_page(exc: ServiceError) -> ResponseReturnValue:
    """A refused action: say why on the page the officer came from (nothing was changed). A caller
    without the right to act gets the 403 page itself, as for a page they may not open."""
    db().rollback()
    if request.method == "GET" or exc.http_status in (401, 403):
        return render_template("error.html", status=exc.http_status, message=exc.message), exc.http_status
    flash(exc.message, "error")
    back = safe_next(request.referrer and "/" + request.referrer.split("/", 3)[-1], url_for("views.inbox"))
    return redirect(back)


def page_error(exc: HTTPException) -> ResponseReturnValue:
    """Errors of pages (not of the JSON API) as a page in the user's language."""
    if request.path.startswith("/api/"):
        return error_response(exc.code or 500, (exc.name or "error").lower().replace(" ", "_"),
                              exc.description or "")
    messages = {400: _("The request could not be understood (the form may have expired: reload the page)."),
                403: _("You do not have access to this page."), 404: _("This page does not exist."),
                405: _("This action is not allowed here."), 413: _("The upload is too large.")}
    status = exc.code or 500
    return render_template("error.html", status=status, message=messages.get(status, exc.description)), status
