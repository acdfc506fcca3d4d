"""Online payment (national payment platform style): register a payment, send the citizen to the
provider's page; the provider calls back with a signed message (api_citizens.payment_callback);
a daily reconciliation compares the provider's books with ours and flags every difference.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from connectors import sandbox
from connectors.http import post_signed
from engine import clock
from engine.audit import record_event
from engine.calendar import VN_TZ, to_vn
from engine.config import Settings
from engine.db import transaction
from engine.models import CallbackReceipt, Dossier, Payment


def create(settings: Settings, factory: sessionmaker[Session], *, reference: str, amount: int, currency: str,
           dossier_code: str, return_url: str, sandbox_page: str) -> str:
    """Register the payment with the provider; returns the page the citizen pays on. The provider
    de-duplicates by ``reference``."""
    order = {"reference": reference, "amount": amount, "currency": currency, "dossier_code": dossier_code,
             "description": f"Phí, lệ phí hồ sơ {dossier_code}", "return_url": return_url}
    if settings.payment_url:
        status, body = post_signed(settings.payment_url, order, settings.connector_secret("payment") or "")
        if status >= 300:
            raise RuntimeError(f"payment provider answered HTTP {status}")
        return str(json.loads(body)["payment_url"])
    sandbox.record(factory, provider="payment", key=reference, recipient=dossier_code, payload=order)
    return sandbox_page


def settle_in_sandbox(factory: sessionmaker[Session], *, reference: str, amount: int, currency: str, status: str,
                      transaction_id: str) -> None:
    """The sandbox provider's own books: what it settled (reconciliation reads them)."""
    sandbox.record(factory, provider="payment_settlement", key=f"{reference}:{status}", recipient=reference,
                   payload={"reference": reference, "amount": amount, "currency": currency, "status": status,
                            "transaction": transaction_id, "day": to_vn(clock.now()).date().isoformat()})


def provider_books(settings: Settings, factory: sessionmaker[Session], day: date) -> list[dict[str, Any]]:
    """The provider's settled transactions of ``day`` (Vietnam time)."""
    if settings.payment_url:
        status, body = post_signed(settings.payment_url.rstrip("/") + "/reconciliation", {"date": day.isoformat()},
                                   settings.connector_secret("payment") or "")
        if status >= 300:
            raise RuntimeError(f"payment provider answered HTTP {status}")
        return list(json.loads(body)["transactions"])
    with factory() as session:
        rows = sandbox.records(session, provider="payment_settlement")
    return [dict(r.payload) for r in rows if r.payload.get("day") == day.isoformat() and r.payload["status"] == "paid"]


def reconcile(settings: Settings, factory: sessionmaker[Session], day: date) -> dict[str, Any]:
    """Compare the provider's paid transactions of ``day`` with our payments settled that day.
    Each difference is flagged once (audit ``payment_mismatch`` on the dossier): money the provider
    took that we did not record (a lost callback), a payment we recorded that the provider does
    not know, or a different amount."""
    theirs = {str(t["reference"]): t for t in provider_books(settings, factory, day)}
    start = datetime.combine(day, time.min, VN_TZ)
    end = start + timedelta(days=1)
    mismatches: list[dict[str, Any]] = []
    with transaction(factory) as session:
        ours = {p.reference: p for p in session.scalars(select(Payment).where(or_(
            Payment.reference.in_(list(theirs)),
            (Payment.status == "paid") & (Payment.settled_at >= start) & (Payment.settled_at < end))))}
        for reference in sorted(set(theirs) | set(ours)):
            paid_there, payment = theirs.get(reference), ours.get(reference)
            if payment is None:
                kind = "unknown_reference"
            elif paid_there is None:
                kind = "not_at_provider"
            elif payment.status != "paid":
                kind = "not_recorded"
            elif int(paid_there["amount"]) != payment.amount or paid_there.get("currency", "VND") != payment.currency:
                kind = "amount_mismatch"
            else:
                continue
            mismatch = {"reference": reference, "kind": kind,
                        "provider_amount": paid_there["amount"] if paid_there else None,
                        "our_amount": payment.amount if payment else None,
                        "our_status": payment.status if payment else None}
            mismatches.append(mismatch)
            flag = f"{day.isoformat()}:{reference}:{kind}"
            if session.scalar(select(CallbackReceipt.id).where(CallbackReceipt.provider == "reconciliation",
                                                               CallbackReceipt.event_id == flag)):
                continue  # flagged by an earlier run
            session.add(CallbackReceipt(provider="reconciliation", event_id=flag,
                                        dossier_id=payment.dossier_id if payment else None, received_at=clock.now()))
            dossier = session.get(Dossier, payment.dossier_id) if payment else None
            record_event(session, action="payment_mismatch", actor="reconciliation",
                         dossier_id=dossier.id if dossier else None, dossier_code=dossier.code if dossier else None,
                         data={**mismatch, "day": day.isoformat()})
    return {"date": day.isoformat(), "provider_paid": len(theirs), "checked": len(set(theirs) | set(ours)),
            "mismatches": mismatches}
