"""Provider sandboxes mounted under /sandbox (never in production): what they received, and the
pages of the payment provider and the post that send signed callbacks as the real ones do."""

from __future__ import annotations

import secrets
from typing import Any

from flask import Blueprint, abort, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from backoffice.extensions import db, motcua
from connectors import payment, sandbox
from connectors.http import post_signed
from engine.models import SandboxRecord

bp = Blueprint("sandbox", __name__)


@bp.get("/sms/messages")
def sms_messages() -> ResponseReturnValue:
    rows = sandbox.records(db(), provider="sms", recipient=request.args.get("to"))
    return jsonify([{"to": r.recipient, "text": r.payload.get("text"), "at": r.created_at.isoformat(),
                     "attempts": r.attempts} for r in rows])


@bp.get("/national-portal/events")
def national_portal_events() -> ResponseReturnValue:
    """What the national portal received: status changes in order, as batches."""
    rows = sandbox.records(db(), provider="national_portal")
    return jsonify([item for r in rows for item in r.payload.get("items", [])])


@bp.get("/mail/messages")
def mail_messages() -> ResponseReturnValue:
    rows = sandbox.records(db(), provider="mail", recipient=request.args.get("to"))
    return jsonify([{"to": r.recipient, "subject": r.payload.get("subject"), "text": r.payload.get("text"),
                     "at": r.created_at.isoformat(), "attempts": r.attempts} for r in rows])


def _callback(provider: str, path: str, body: dict[str, Any]) -> int:
    """POST a signed callback to the app over HTTP, as the provider's server would. This request's
    transaction ends first: the callback is another request that writes."""
    db().rollback()
    secret = motcua().settings.connector_secret(provider)
    assert secret is not None  # sandboxes never run in production
    status, _body = post_signed(request.host_url.rstrip("/") + path, body, secret, timeout=15)
    return status


def _payment(reference: str) -> SandboxRecord:
    row = next(iter(sandbox.records(db(), provider="payment", key=reference)), None)
    if row is None:
        abort(404)
    return row


@bp.route("/payment/<reference>", methods=["GET", "POST"])
def payment_page(reference: str) -> ResponseReturnValue:
    """The provider's checkout page: the citizen confirms (or cancels) the payment."""
    row = _payment(reference)
    if request.method == "GET":
        return render_template("sandbox_payment.html", reference=reference, payment=row.payload)
    outcome = "paid" if request.form.get("outcome") == "paid" else "failed"
    transaction_id = f"SBX{secrets.token_hex(6).upper()}"
    amount, currency = int(row.payload.get("amount") or 0), str(row.payload.get("currency", "VND"))
    target = str(row.payload.get("return_url") or url_for("sandbox.payment_page", reference=reference))
    db().rollback()  # the provider's books are written in their own transaction
    payment.settle_in_sandbox(motcua().factory, reference=reference, amount=amount, currency=currency,
                              status=outcome, transaction_id=transaction_id)
    status = _callback("payment", "/api/v1/connectors/payment/callback", {
        "event_id": f"pay-{reference}-{outcome}", "reference": reference, "amount": amount, "currency": currency,
        "status": outcome, "transaction": transaction_id})
    sep = "&" if "?" in target else "?"
    return redirect(f"{target}{sep}payment={outcome}&callback={status}")


@bp.get("/postal/")
def postal_orders() -> ResponseReturnValue:
    """The post's view of its orders, with the buttons a postman's device would press."""
    rows = sandbox.records(db(), provider="postal")
    return render_template("sandbox_postal.html", orders=[
        {"tracking": f"BCCI{r.id:09d}", "dossier_code": r.payload.get("dossier_code"), "address": r.recipient,
         "at": r.created_at} for r in reversed(rows)])


@bp.post("/postal/<tracking>/<event>")
def postal_event(tracking: str, event: str) -> ResponseReturnValue:
    if event not in ("picked_up", "in_transit", "delivered", "returned") or not tracking.startswith("BCCI"):
        abort(404)
    row = db().get(SandboxRecord, int(tracking[4:]) if tracking[4:].isdigit() else 0)
    if row is None or row.provider != "postal":
        abort(404)
    status = _callback("postal", "/api/v1/connectors/postal/callback", {
        "event_id": f"{tracking}-{event}", "dossier_code": row.payload.get("dossier_code"), "event": event,
        "tracking": tracking})
    return redirect(url_for("sandbox.postal_orders", sent=event, callback=status))
