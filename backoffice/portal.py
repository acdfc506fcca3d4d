"""The citizen portal (/portal), phone first: find a procedure, register with an SMS code, log in,
submit a dossier with its scans, follow it, answer a supplement request, pay, withdraw; public
tracking by code; assisted submission by an officer or volunteer with the citizen's SMS consent.

Thin handlers over engine.citizens, engine.portal, engine.services and engine.queries; every error
is shown beside its field in the page's language (the engine's messages are the msgids).
"""

from __future__ import annotations

import base64
import re
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from backoffice.api_citizens import citizen_needs_code, phone_hint, send_code
from backoffice.errors import retry_after
from backoffice.extensions import db, motcua
from backoffice.forms import form_fields, parse_form
from backoffice.security import page_login_required, start_pending, start_session, web_actor
from connectors import payment as payment_connector
from engine import accounts, citizens, deadline, portal, queries, services
from engine.calendar import to_vn
from engine.models import Procedure, Role, Unit, User
from engine.services import InvalidDataError, ServiceError

bp = Blueprint("portal", __name__)
CITIZEN = Role.CITIZEN.value
ONLINE_LEVELS = ("full", "partial")
APPLICANT_TYPES = ("individual", "organisation", "budget_unit")
APPLICANT_FIELDS = ("organisation_name", "business_number", "budget_code", "address", "phone", "email")
PARAMETRISED = [  # engine messages with numbers in them: (pattern, msgid with %(n)s)
    (re.compile(r"^at most (\d+) bytes in total$"), "at most %(n)s MB in total"),
    (re.compile(r"^at most (\d+) bytes$"), "at most %(n)s MB"),
    (re.compile(r"^at most (\d+) files$"), "at most %(n)s files"),
    (re.compile(r"^at most (\d+) characters$"), "at most %(n)s characters"),
    (re.compile(r"^the content is not (.+)$"), "the file content is not %(n)s"),
    (re.compile(r"^one of (.+)$"), "choose one of the options"),
    (re.compile(r"^must be (\d+)(?: VND)?$"), "must be %(n)s VND"),
]


@bp.errorhandler(ServiceError)
def _refused(exc: ServiceError) -> ResponseReturnValue:
    """A refused read or action (another citizen's dossier, nothing due …): nothing changed."""
    db().rollback()
    return retry_after((render_template("error.html", status=exc.http_status, message=say(exc.message)),
                        exc.http_status), getattr(exc, "retry_after", None))


def say(message: str) -> str:
    """An engine message in the page's language."""
    for pattern, msgid in PARAMETRISED:
        if m := pattern.match(message):
            value = m.group(1)
            if "MB" in msgid and value.isdigit():
                value = str(int(value) // (1024 * 1024))
            return _(msgid, n=value)
    if message.startswith("the password needs "):
        parts = [_(p.strip()) for p in message.removeprefix("the password needs ").split(",")]
        return _("the password needs %(parts)s", parts=", ".join(parts))
    return _(message)


def field_errors(exc: ServiceError) -> dict[str, list[str]]:
    fields = exc.fields or {}
    if not fields:
        return {"_": [say(exc.message)]}
    return {str(k).removeprefix("form."): [say(str(m)) for m in (v if isinstance(v, list) else [v])]
            for k, v in fields.items()}


def _files(name: str = "attachments") -> list[dict[str, str]]:
    """Uploaded files as the engine takes them; large uploads were spooled to temporary files,
    closed here once read."""
    files = []
    for upload in request.files.getlist(name):
        try:
            if upload.filename:
                files.append({"name": upload.filename, "mime": upload.mimetype or "",
                              "content_base64": base64.b64encode(upload.read()).decode()})
        finally:
            upload.close()
    return files


def _procedure(code: str) -> Procedure:
    procedure = db().scalar(select(Procedure).where(Procedure.code == code, Procedure.is_active))
    if procedure is None:
        abort(404)
    return procedure


# --- catalogue ------------------------------------------------------------------------------------

@bp.get("/")
def catalogue() -> ResponseReturnValue:
    session_db = db()
    q = request.args.get("q", "").strip()
    field = request.args.get("field", "")
    online_only = request.args.get("online") == "1"
    procedures = session_db.scalars(select(Procedure).where(Procedure.is_active).order_by(Procedure.name_vi)).all()
    fields = sorted({p.field for p in procedures if p.field})
    needle = q.lower()
    shown = [p for p in procedures
             if (not needle or needle in f"{p.name_vi} {p.name_en} {p.field} {p.national_code or ''}".lower())
             and (not field or p.field == field) and (not online_only or p.online_level == "full")]
    units = session_db.scalars(select(Unit).order_by(Unit.name)).all()
    return render_template("portal/catalogue.html", procedures=shown, fields=fields, q=q, field=field,
                           online_only=online_only, units=units, unit=request.args.get("unit", ""))


@bp.get("/procedures/<code>")
def procedure_page(code: str) -> ResponseReturnValue:
    procedure = _procedure(code)
    units = db().scalars(select(Unit).order_by(Unit.name)).all()
    return render_template("portal/procedure.html", p=procedure, units=units,
                           fields=form_fields(procedure.catalogue.get("form_schema") or {}))


@bp.get("/procedures/<code>/blank")
def blank_form(code: str) -> ResponseReturnValue:
    """The declaration form (tờ khai) to print and fill in by hand."""
    procedure = _procedure(code)
    return render_template("portal/blank.html", p=procedure,
                           fields=form_fields(procedure.catalogue.get("form_schema") or {}))


# --- registration and login -----------------------------------------------------------------------

@bp.route("/register", methods=["GET", "POST"])
def register() -> ResponseReturnValue:
    if request.method == "GET":
        return render_template("portal/register.html", values=MultiDict(), errors={})
    session_db = db()
    try:
        user, code = citizens.register(session_db, request.form, client_ip=request.remote_addr)
    except ServiceError as exc:
        session_db.rollback()
        return render_template("portal/register.html", values=request.form, errors=field_errors(exc)), exc.http_status
    challenge = citizens.open_challenge(session_db, user, "register")
    session_db.commit()
    assert challenge is not None
    send_code(challenge, code)
    session["portal_code"] = {"purpose": "register", "id_number": user.username}
    flash(_("A code was sent by SMS to %(phone)s.", phone=phone_hint(challenge.phone)), "ok")
    return redirect(url_for("portal.enter_code"))


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    next_url = request.values.get("next") or ""
    if request.method == "GET":
        return render_template("portal/login.html", next=next_url, errors={})
    session_db = db()
    id_number = request.form.get("id_number", "").strip()
    try:
        user = accounts.authenticate(session_db, id_number, request.form.get("password", ""))
    except accounts.LoginError as exc:
        session_db.commit()  # the failure counter and the audit event are kept
        return retry_after((render_template("portal/login.html", next=next_url, errors={"_": [say(exc.message)]},
                                            id_number=id_number), 401), exc.retry_after)
    if CITIZEN not in user.roles:
        session_db.commit()
        return render_template("portal/login.html", next=next_url, id_number=id_number,
                               errors={"_": [_("Officers log in to the back office.")]}), 403
    if not citizen_needs_code(user):
        session_db.commit()
        start_session(user)
        return redirect(next_url if next_url.startswith("/portal/") else url_for("portal.my_dossiers"))
    challenge, code = citizens.issue_otp(session_db, user, "login")
    session_db.commit()
    send_code(challenge, code)
    start_pending(user)
    session["portal_code"] = {"purpose": "login", "id_number": user.username, "next": next_url}
    flash(_("A code was sent by SMS to %(phone)s.", phone=phone_hint(challenge.phone)), "ok")
    return redirect(url_for("portal.enter_code"))


@bp.route("/reset", methods=["GET", "POST"])
def reset() -> ResponseReturnValue:
    if request.method == "GET":
        return render_template("portal/reset.html", errors={})
    session_db = db()
    id_number = request.form.get("id_number", "").strip()
    try:
        started = citizens.request_password_reset(session_db, id_number, client_ip=request.remote_addr)
    except citizens.RateLimitedError:
        session_db.rollback()
        started = None  # answered like an unknown number: the limit would tell that the account exists
    challenge = citizens.open_challenge(session_db, started[0], "reset") if started else None
    session_db.commit()
    if started is not None and challenge is not None:
        send_code(challenge, started[1])
    session["portal_code"] = {"purpose": "reset", "id_number": id_number}
    flash(_("If this ID number is registered, a code was sent by SMS to its phone."), "ok")
    return redirect(url_for("portal.enter_code"))


@bp.route("/code", methods=["GET", "POST"])
def enter_code() -> ResponseReturnValue:
    """The SMS code of a registration, a login or a password reset."""
    waiting = session.get("portal_code")
    if not waiting:
        return redirect(url_for("portal.login"))
    purpose = waiting["purpose"]
    if request.method == "GET":
        return render_template("portal/code.html", purpose=purpose, errors={})
    session_db = db()
    code = request.form.get("otp", "").strip()
    try:
        if purpose == "register":
            user = citizens.confirm_registration(session_db, waiting["id_number"], code)
        elif purpose == "reset":
            user = citizens.reset_password(session_db, waiting["id_number"], code, request.form.get("password", ""))
        else:
            found = citizens.find_citizen(session_db, waiting["id_number"])
            if found is None:
                abort(400)
            citizens.verify_otp(session_db, found, "login", code)
            user = found
    except citizens.OtpError as exc:
        session_db.commit()  # a wrong code counts
        return render_template("portal/code.html", purpose=purpose, errors=field_errors(exc)), 422
    session_db.commit()
    session.pop("portal_code", None)
    if purpose == "reset":
        flash(_("Your password was changed. Log in with the new one."), "ok")
        return redirect(url_for("portal.login"))
    start_session(user)
    next_url = str(waiting.get("next") or "")
    flash(_("Welcome, %(name)s.", name=user.full_name), "ok")
    return redirect(next_url if next_url.startswith("/portal/") else url_for("portal.my_dossiers"))


@bp.post("/code/resend")
def resend_code() -> ResponseReturnValue:
    waiting = session.get("portal_code")
    if not waiting:
        return redirect(url_for("portal.login"))
    session_db = db()
    user = citizens.find_citizen(session_db, waiting["id_number"])
    try:
        if user is None:
            raise InvalidDataError("no code is waiting; start again")
        challenge, code = citizens.resend_otp(session_db, user, waiting["purpose"])
    except ServiceError as exc:
        session_db.rollback()
        flash(say(exc.message), "error")
        return redirect(url_for("portal.enter_code"))
    session_db.commit()
    send_code(challenge, code)
    flash(_("A new code was sent by SMS to %(phone)s.", phone=phone_hint(challenge.phone)), "ok")
    return redirect(url_for("portal.enter_code"))


# --- submission -----------------------------------------------------------------------------------

def _applicant_from_form() -> dict[str, Any]:
    kind = request.form.get("applicant_type", "individual")
    applicant: dict[str, Any] = {"type": kind}
    for name in APPLICANT_FIELDS:
        value = request.form.get(f"applicant_{name}", "").strip()
        if value:
            applicant[name] = value
    return applicant


def _submission_context(procedure: Procedure, values: Any, errors: dict[str, list[str]],
                        user: User | None) -> dict[str, Any]:
    units = db().scalars(select(Unit).order_by(Unit.name)).all()
    return {"p": procedure, "fields": form_fields(procedure.catalogue.get("form_schema") or {}), "values": values,
            "errors": errors, "units": units, "profile": (user.profile if user else {}) or {},
            "delivery_options": procedure.catalogue.get("delivery") or ["counter"],
            "applicant_types": APPLICANT_TYPES}


def _parse_submission(procedure: Procedure) -> tuple[dict[str, Any], dict[str, list[str]]]:
    schema = procedure.catalogue.get("form_schema") or {}
    form_data, errors = parse_form(schema, request.form)
    errors = {k: [say(m) for m in v] for k, v in errors.items()}
    applicant = _applicant_from_form()
    errors.update({k: [say(m) for m in v] for k, v in citizens.applicant_errors(applicant).items()})
    if not request.form.get("declaration"):
        errors["declaration"] = [_("Tick the declaration to submit.")]
    body = {"procedure": procedure.code, "unit": request.form.get("unit", ""), "applicant": applicant,
            "form": form_data, "attachments": _files(),
            "delivery": {"method": request.form.get("delivery", "counter"),
                         "address": request.form.get("delivery_address", "").strip()}}
    return body, errors


@bp.route("/procedures/<code>/submit", methods=["GET", "POST"])
@page_login_required(CITIZEN, login="portal.login")
def submit(code: str) -> ResponseReturnValue:
    procedure = _procedure(code)
    user = db().get(User, web_actor().user_id)
    if request.method == "GET":
        values = MultiDict({"unit": request.args.get("unit", "")})
        return render_template("portal/submit.html", **_submission_context(procedure, values, {}, user))
    body, errors = _parse_submission(procedure)
    session_db = db()
    if not errors:
        try:
            dossier = services.submit_dossier_as(
                session_db, actor=web_actor(), procedure_code=procedure.code, unit_code=body["unit"],
                applicant=body["applicant"], form=body["form"], delivery=body["delivery"],
                attachments=body["attachments"], channel="online")
        except ServiceError as exc:
            session_db.rollback()
            errors = field_errors(exc)
        else:
            if request.form.get("save_profile") and user is not None:
                user.profile = {k: v for k, v in body["applicant"].items() if k != "email" or v}
            session_db.commit()
            flash(_("Dossier %(code)s submitted.", code=dossier.code), "ok")
            return redirect(url_for("portal.dossier_page", code=dossier.code, submitted=1))
    return render_template("portal/submit.html", **_submission_context(procedure, request.form, errors, user)), 422


# --- the citizen's dossiers -----------------------------------------------------------------------

@bp.get("/dossiers")
@page_login_required(CITIZEN, login="portal.login")
def my_dossiers() -> ResponseReturnValue:
    return render_template("portal/dossiers.html", dossiers=queries.citizen_dossiers(db(), web_actor()))


def _dossier_context(code: str) -> dict[str, Any]:
    session_db = db()
    dossier = queries.readable_dossier(session_db, web_actor(), code, purpose="portal")
    cal = services.calendar_for(session_db)
    view = queries.dossier_view(dossier, dossier.procedure, cal=cal)
    draft = portal.awaiting_draft(session_db, dossier)
    return {"d": view, "dossier": dossier, "explained": deadline.explain(session_db, dossier),
            "draft": draft, "form_fields": form_fields(dossier.procedure.catalogue.get("form_schema") or {}),
            "history": queries.citizen_history(session_db, dossier),
            "documents": queries.attachments_of(session_db, dossier), "errors": {}}


@bp.get("/dossiers/<code>")
@page_login_required(CITIZEN, login="portal.login")
def dossier_page(code: str) -> ResponseReturnValue:
    return render_template("portal/dossier.html", **_dossier_context(code))


@bp.get("/dossiers/<code>/receipt")
@page_login_required(CITIZEN, login="portal.login")
def receipt(code: str) -> ResponseReturnValue:
    """The online submission receipt (biên nhận) to print or save as PDF from the browser, with a
    QR code of the public tracking page. Mẫu 01 itself is issued by the one-stop office on receipt."""
    from backoffice.views import _qr_svg

    context = _dossier_context(code)
    dossier = context["dossier"]
    phone = dossier.applicant_phone or ""
    track_url = url_for("portal.track", code=dossier.code, phone_last4=phone[-4:] if phone else None, _external=True)
    return render_template("portal/receipt.html", qr=_qr_svg(track_url), track_url=track_url,
                           unit=dossier.unit, **context)


@bp.post("/dossiers/<code>/supplement")
@page_login_required(CITIZEN, login="portal.login")
def supplement(code: str) -> ResponseReturnValue:
    session_db = db()
    try:
        portal.answer_supplement(session_db, code, actor=web_actor(), note=request.form.get("note", ""),
                                 attachments=_files())
    except ServiceError as exc:
        session_db.rollback()
        context = _dossier_context(code)
        context["errors"] = field_errors(exc)
        return render_template("portal/dossier.html", **context), exc.http_status
    session_db.commit()
    flash(_("Your supplement was sent; the processing time starts again today."), "ok")
    return redirect(url_for("portal.dossier_page", code=code))


@bp.post("/dossiers/<code>/draft")
@page_login_required(CITIZEN, login="portal.login")
def answer_draft(code: str) -> ResponseReturnValue:
    session_db = db()
    confirm = request.form.get("answer") == "confirm"
    try:
        portal.answer_draft(session_db, code, actor=web_actor(), confirm=confirm, note=request.form.get("note", ""))
    except ServiceError as exc:
        session_db.rollback()
        context = _dossier_context(code)
        context["errors"] = field_errors(exc)
        return render_template("portal/dossier.html", **context), exc.http_status
    session_db.commit()
    flash(_("Thank you: the draft was confirmed and goes to the leader for signing.") if confirm
          else _("Your corrections were sent to the officer."), "ok")
    return redirect(url_for("portal.dossier_page", code=code))


@bp.post("/dossiers/<code>/withdraw")
@page_login_required(CITIZEN, login="portal.login")
def withdraw(code: str) -> ResponseReturnValue:
    session_db = db()
    try:
        portal.withdraw(session_db, code, actor=web_actor(), reason=request.form.get("reason", ""))
    except ServiceError as exc:
        session_db.rollback()
        context = _dossier_context(code)
        context["errors"] = field_errors(exc)
        return render_template("portal/dossier.html", **context), exc.http_status
    session_db.commit()
    flash(_("The dossier was withdrawn."), "ok")
    return redirect(url_for("portal.dossier_page", code=code))


@bp.post("/dossiers/<code>/pay")
@page_login_required(CITIZEN, login="portal.login")
def pay(code: str) -> ResponseReturnValue:
    session_db = db()
    payment = portal.create_payment(session_db, code, actor=web_actor())
    session_db.commit()
    ext = motcua()
    url = payment_connector.create(
        ext.settings, ext.factory, reference=payment.reference, amount=payment.amount, currency=payment.currency,
        dossier_code=code, return_url=url_for("portal.dossier_page", code=code),
        sandbox_page=url_for("sandbox.payment_page", reference=payment.reference) if ext.settings.sandbox else "")
    return redirect(url)


# --- public tracking ------------------------------------------------------------------------------

@bp.get("/track")
def track() -> ResponseReturnValue:
    code = request.args.get("code", "").strip()
    last4 = request.args.get("phone_last4", "").strip()
    result, error = None, None
    if code or last4:
        try:
            result = queries.track(db(), code, last4)
        except ServiceError:
            error = _("No dossier has this code and phone number.")
    return render_template("portal/track.html", code=code, last4=last4, result=result, error=error), \
        404 if error else 200


# --- assisted submission --------------------------------------------------------------------------

ASSISTANTS = tuple(portal.ASSISTANT_ROLES)


@bp.route("/assist", methods=["GET", "POST"])
@page_login_required(*ASSISTANTS, login="views.login")
def assist() -> ResponseReturnValue:
    """An officer or volunteer types a dossier for a registered citizen."""
    session_db = db()
    procedures = session_db.scalars(select(Procedure).where(Procedure.is_active).order_by(Procedure.name_vi)).all()
    chosen = next((p for p in procedures if p.code == request.values.get("procedure")), None)
    if chosen is None or request.method == "GET":
        context = _submission_context(chosen, MultiDict(request.args), {}, None) if chosen else {}
        return render_template("portal/assist.html", procedures=procedures, chosen=chosen, **context)
    body, errors = _parse_submission(chosen)
    citizen_number = request.form.get("citizen_id_number", "").strip()
    if not errors:
        try:
            challenge, citizen, code = portal.start_assisted(session_db, actor=web_actor(),
                                                             citizen_id_number=citizen_number, dossier=body)
        except ServiceError as exc:
            session_db.rollback()
            errors = field_errors(exc)
        else:
            session_db.commit()
            send_code(challenge, code)
            flash(_("A consent code was sent by SMS to %(name)s (%(phone)s).", name=citizen.full_name,
                    phone=phone_hint(challenge.phone)), "ok")
            return redirect(url_for("portal.assist_confirm", consent_id=challenge.id))
    context = _submission_context(chosen, request.form, errors, None)
    return render_template("portal/assist.html", procedures=procedures, chosen=chosen, **context), 422


@bp.route("/assist/<int:consent_id>", methods=["GET", "POST"])
@page_login_required(*ASSISTANTS, login="views.login")
def assist_confirm(consent_id: int) -> ResponseReturnValue:
    if request.method == "GET":
        return render_template("portal/code.html", purpose="consent", consent_id=consent_id, errors={})
    session_db = db()
    try:
        dossier = portal.confirm_assisted(session_db, actor=web_actor(), challenge_id=consent_id,
                                          code=request.form.get("otp", ""))
    except citizens.OtpError as exc:
        session_db.commit()  # a wrong code counts
        return render_template("portal/code.html", purpose="consent", consent_id=consent_id,
                               errors=field_errors(exc)), 422
    due = to_vn(dossier.due_at).strftime("%H:%M %d/%m/%Y") if dossier.due_at else ""
    session_db.commit()
    flash(_("Dossier %(code)s submitted for the citizen; appointment %(due)s.", code=dossier.code, due=due), "ok")
    return redirect(url_for("portal.assist"))
