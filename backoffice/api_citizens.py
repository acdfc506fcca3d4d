"""The citizen part of the HTTP API (API.md): registration with an SMS code, login codes, password
reset, the citizen's own dossiers, supplements, withdrawal, payment, the appointment explained,
assisted submission, and the signed provider callbacks (payment, post).

Routes join the ``api`` blueprint (its JSON error handlers apply).
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from flask import jsonify, request, url_for
from flask.typing import ResponseReturnValue

from backoffice.api import _actor, _json_body, _object, _text, bp
from backoffice.auth import issue_token, login_required
from backoffice.errors import error_response
from backoffice.extensions import db, motcua
from backoffice.security import safe_next
from connectors import notify
from connectors import payment as payment_connector
from connectors.http import sign
from engine import citizens, deadline, portal, queries
from engine.calendar import to_vn
from engine.models import OtpChallenge, Role, User
from engine.services import InvalidDataError, ServiceError


def send_code(challenge: OtpChallenge, code: str) -> None:
    """Send a one-time code by SMS (after the challenge is committed)."""
    ext = motcua()
    notify.send_sms(ext.settings, ext.factory, to=challenge.phone,
                    text=citizens.otp_text(challenge.purpose, code, challenge.context),
                    key=f"otp-{challenge.id}-{challenge.sends}")


def phone_hint(phone: str) -> str:
    return "*" * max(0, len(phone) - 4) + phone[-4:]


def _commit_then_raise(exc: ServiceError) -> ServiceError:
    db().commit()  # a wrong code counts even though the request fails (only the code was touched)
    return exc


@bp.post("/citizens")
def register_citizen() -> ResponseReturnValue:
    session = db()
    user, code = citizens.register(session, _json_body(), client_ip=request.remote_addr)
    challenge = citizens.open_challenge(session, user, "register")
    assert challenge is not None
    session.commit()
    send_code(challenge, code)
    return jsonify({"id_number": user.username, "otp_sent": True, "phone": phone_hint(challenge.phone),
                    "expires_in": int(citizens.OTP_TTL.total_seconds())}), 201


@bp.post("/citizens/verify")
def verify_citizen() -> ResponseReturnValue:
    body = _json_body("id_number", "otp")
    session = db()
    try:
        user = citizens.confirm_registration(session, str(body["id_number"]), str(body["otp"]))
    except citizens.OtpError as exc:
        raise _commit_then_raise(exc) from None
    session.commit()
    return jsonify({"id_number": user.username, "verified": True})


@bp.post("/citizens/otp/resend")
def resend_code() -> ResponseReturnValue:
    body = _json_body("id_number", "purpose")
    purpose = str(body["purpose"])
    if purpose not in ("register", "login", "reset"):
        raise InvalidDataError("unknown purpose", fields={"purpose": ["register, login or reset"]})
    session = db()
    user = citizens.find_citizen(session, str(body["id_number"]))
    if user is None:
        raise InvalidDataError("no code is waiting; start again", fields={"otp": ["no code is waiting; start again"]})
    challenge, code = citizens.resend_otp(session, user, purpose)
    session.commit()
    send_code(challenge, code)
    return jsonify({"otp_sent": True, "phone": phone_hint(challenge.phone)}), 202


@bp.post("/citizens/password-reset")
def password_reset() -> ResponseReturnValue:
    body = _json_body("id_number")
    session = db()
    try:
        started = citizens.request_password_reset(session, str(body["id_number"]), client_ip=request.remote_addr)
    except citizens.RateLimitedError:
        session.rollback()
        started = None  # answered like an unknown number: a 429 would tell that the account exists
    challenge = citizens.open_challenge(session, started[0], "reset") if started else None
    session.commit()
    if started is not None and challenge is not None:
        send_code(challenge, started[1])
    # The same answer whether or not the number is registered: no probing for accounts.
    return jsonify({"otp_sent": True}), 202


@bp.post("/citizens/password-reset/confirm")
def password_reset_confirm() -> ResponseReturnValue:
    body = _json_body("id_number", "otp", "password")
    session = db()
    try:
        citizens.reset_password(session, str(body["id_number"]), str(body["otp"]), str(body["password"]))
    except citizens.OtpError as exc:
        raise _commit_then_raise(exc) from None
    session.commit()
    return jsonify({"reset": True})


def start_login_code(user: User) -> dict[str, Any]:
    """The citizen's password was right: send the login code."""
    session = db()
    challenge, code = citizens.issue_otp(session, user, "login")
    session.commit()
    send_code(challenge, code)
    return {"otp_required": True, "method": "sms", "phone": phone_hint(challenge.phone)}


def citizen_needs_code(user: User) -> bool:
    return motcua().settings.citizen_otp and Role.CITIZEN.value in user.roles


@bp.post("/auth/otp")
def login_code() -> ResponseReturnValue:
    body = _json_body("username", "otp")
    session = db()
    user = citizens.find_citizen(session, str(body["username"]))
    if user is None or not user.is_active:
        return error_response(401, "unauthorized", "wrong or expired code", {"otp": ["wrong or expired code"]})
    try:
        citizens.verify_otp(session, user, "login", str(body["otp"]))
    except citizens.OtpError as exc:
        session.commit()
        return error_response(401, "unauthorized", exc.message, exc.fields)
    session.commit()
    return jsonify({"token": issue_token(user), "user": {"username": user.username, "roles": sorted(user.roles),
                                                         "unit_id": None}})


# --- the citizen's dossiers -----------------------------------------------------------------------

@bp.get("/me/dossiers")
@login_required
def my_dossiers() -> ResponseReturnValue:
    return jsonify(queries.citizen_dossiers(db(), _actor()))


@bp.get("/dossiers/<code>/deadline")
@login_required
def explain_deadline(code: str) -> ResponseReturnValue:
    session = db()
    dossier = queries.readable_dossier(session, _actor(), code, purpose="deadline")
    result = deadline.explain(session, dossier)
    session.commit()
    return jsonify(result)


def _attachments(body: dict[str, Any]) -> list[Any] | None:
    attachments = body.get("attachments")
    if attachments is not None and not isinstance(attachments, list):
        raise InvalidDataError("attachments must be a list", fields={"attachments": ["list"]})
    return attachments


def _dossier_state(code: str) -> dict[str, Any]:
    dossier = queries.get_dossier(db(), code)
    return {"code": dossier.code, "status": dossier.status, "status_code": dossier.status_code,
            "due_at": to_vn(dossier.due_at).isoformat() if dossier.due_at else None}


@bp.post("/dossiers/<code>/supplements")
@login_required
def supplement(code: str) -> ResponseReturnValue:
    body = _json_body()
    session = db()
    portal.answer_supplement(session, code, actor=_actor(), note=str(body.get("note") or ""),
                             form=_object(body, "form"), attachments=_attachments(body))
    result = _dossier_state(code)
    session.commit()
    return jsonify(result)


@bp.post("/dossiers/<code>/draft")
@login_required
def answer_draft(code: str) -> ResponseReturnValue:
    portal.require_owner(db(), _actor(), code)
    body = _json_body("confirm")
    if not isinstance(body["confirm"], bool):
        raise InvalidDataError("confirm must be true or false", fields={"confirm": ["true or false"]})
    session = db()
    portal.answer_draft(session, code, actor=_actor(), confirm=body["confirm"], note=str(body.get("note") or ""))
    result = _dossier_state(code)
    session.commit()
    return jsonify(result)


@bp.post("/dossiers/<code>/withdraw")
@login_required
def withdraw(code: str) -> ResponseReturnValue:
    portal.require_owner(db(), _actor(), code)
    body = _json_body("reason")
    session = db()
    portal.withdraw(session, code, actor=_actor(), reason=str(body["reason"]))
    result = _dossier_state(code)
    session.commit()
    return jsonify(result)


@bp.post("/dossiers/<code>/payments")
@login_required
def create_payment(code: str) -> ResponseReturnValue:
    session = db()
    payment = portal.create_payment(session, code, actor=_actor())
    session.commit()
    ext = motcua()
    return_url = str(_json_body_or_empty().get("return_url") or "")
    url = payment_connector.create(
        ext.settings, ext.factory, reference=payment.reference, amount=payment.amount, currency=payment.currency,
        dossier_code=code, return_url=safe_next(return_url, ""),
        sandbox_page=url_for("sandbox.payment_page", reference=payment.reference, _external=True)
        if ext.settings.sandbox else "")
    return jsonify({"reference": payment.reference, "amount": payment.amount, "currency": payment.currency,
                    "status": payment.status, "payment_url": url}), 201


def _json_body_or_empty() -> dict[str, Any]:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


# --- provider callbacks (signed) ------------------------------------------------------------------

def _signed_body(provider: str) -> dict[str, Any] | None:
    """The callback's JSON when ``X-Signature`` is the HMAC-SHA256 of the raw body under the
    provider's key; else None."""
    secret = motcua().settings.connector_secret(provider)
    raw = request.get_data(cache=True)
    given = request.headers.get("X-Signature", "")
    if not secret or not given or not hmac.compare_digest(given, sign(secret, raw)):
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


@bp.post("/connectors/payment/callback")
def payment_callback() -> ResponseReturnValue:
    body = _signed_body("payment")
    if body is None:
        return error_response(401, "bad_signature", "the X-Signature header does not match the body")
    session = db()
    try:
        payment, changed = portal.settle_payment(
            session, event_id=str(body.get("event_id") or ""), reference=str(body.get("reference") or ""),
            amount=int(body.get("amount") or 0), currency=str(body.get("currency") or ""),
            status=str(body.get("status") or ""), transaction=str(body.get("transaction") or ""))
    except (TypeError, ValueError):
        raise InvalidDataError("malformed callback", fields={"body": ["malformed"]}) from None
    session.commit()
    return jsonify({"reference": payment.reference, "status": payment.status, "duplicate": not changed})


@bp.post("/connectors/postal/callback")
def postal_callback() -> ResponseReturnValue:
    body = _signed_body("postal")
    if body is None:
        return error_response(401, "bad_signature", "the X-Signature header does not match the body")
    session = db()
    changed = portal.record_postal_callback(
        session, event_id=str(body.get("event_id") or ""), dossier_code=str(body.get("dossier_code") or ""),
        event=str(body.get("event") or ""), tracking=str(body.get("tracking") or ""))
    session.commit()
    return jsonify({"duplicate": not changed})


# --- assisted submission --------------------------------------------------------------------------

@bp.post("/assisted/dossiers")
@login_required
def assisted_start() -> ResponseReturnValue:
    actor = _actor()
    portal.require_assistant(actor)
    body = _json_body("citizen_id_number", "procedure", "unit")
    session = db()
    draft = {k: body.get(k) for k in ("procedure", "unit", "applicant", "form", "delivery", "attachments")}
    draft["applicant"] = _object(body, "applicant") or {}
    _text(body, "unit")
    challenge, _citizen, code = portal.start_assisted(session, actor=actor, citizen_id_number=str(
        body["citizen_id_number"]), dossier=draft)
    session.commit()
    send_code(challenge, code)
    return jsonify({"consent_id": challenge.id, "otp_sent": True, "phone": phone_hint(challenge.phone),
                    "expires_in": int(citizens.OTP_TTL.total_seconds())}), 202


@bp.post("/assisted/dossiers/<int:consent_id>/confirm")
@login_required
def assisted_confirm(consent_id: int) -> ResponseReturnValue:
    portal.require_assistant(_actor())
    body = _json_body("otp")
    session = db()
    try:
        dossier = portal.confirm_assisted(session, actor=_actor(), challenge_id=consent_id, code=str(body["otp"]))
    except citizens.OtpError as exc:
        raise _commit_then_raise(exc) from None
    result = {"code": dossier.code, "status": dossier.status, "status_code": dossier.status_code,
              "due_at": to_vn(dossier.due_at).isoformat() if dossier.due_at else None}
    session.commit()
    return jsonify(result), 201
