"""What citizens do to their own dossiers: answer a supplement request, withdraw, pay online; and
assisted submission, where an officer or volunteer types a dossier in for a citizen who consents
with the code sent to their phone.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from SpiffWorkflow.util.task import TaskState as SpiffState
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import citizens, clock, forms, workflow
from engine.models import (
    AttachmentKind,
    CallbackReceipt,
    Dossier,
    DossierStatus,
    OtpChallenge,
    Payment,
    Role,
    User,
)
from engine.services import (
    Actor,
    ConflictError,
    ForbiddenError,
    InvalidDataError,
    NotFoundError,
    _audit,
    _data_value,
    _deliver,
    _store_attachments,
    check_submission,
    fee_due,
    get_dossier,
    load_workflow,
    lock_dossier,
    record_payment,
    submit_dossier,
    validate_attachments,
)


def require_owner(session: Session, actor: Actor, code: str) -> Dossier:
    """The dossier when the caller is its applicant (checked before the request's input is read)."""
    return _own_dossier(session, actor, code)


def require_assistant(actor: Actor) -> None:
    if not actor.roles & ASSISTANT_ROLES:
        raise ForbiddenError("one-stop officers and registered volunteers only")


def _own_dossier(session: Session, actor: Actor, code: str) -> Dossier:
    dossier = get_dossier(session, code)
    if actor.user_id is None or dossier.citizen_id != actor.user_id:
        raise ForbiddenError("only the applicant may do this")
    return lock_dossier(session, dossier.id)


def answer_supplement(session: Session, code: str, *, actor: Actor, note: str = "",
                      form: Mapping[str, Any] | None = None,
                      attachments: Sequence[Mapping[str, Any]] | None = None) -> Dossier:
    """The applicant sends what the supplement request (Mẫu 02) asked for: files, corrected form
    fields and a note. The full legal time restarts (Decree 61/2018 art. 19)."""
    dossier = _own_dossier(session, actor, code)
    if dossier.status != DossierStatus.SUPPLEMENT_REQUESTED.value:
        raise ConflictError("no supplement was requested for this dossier", fields={"status": [dossier.status]})
    uploads = validate_attachments(attachments)
    merged = {**dossier.form, **dict(form or {})}
    schema = dossier.procedure.catalogue.get("form_schema")
    if form and schema:
        errors = forms.validate(schema, merged)
        if errors:
            raise InvalidDataError("the form has errors", fields={f"form.{k}": v for k, v in errors.items()})
    if not uploads and not form and len(note.strip()) < 5:
        raise InvalidDataError("send the requested files, fields or an explanation",
                               fields={"attachments": ["send the requested files, fields or an explanation"]})
    _store_attachments(session, dossier, uploads, kind=AttachmentKind.SUPPLEMENT, actor=actor)
    wf = load_workflow(session, dossier)
    if form:
        # Corrected fields may change the fee (a late registration): the case's data follows.
        dossier.form = merged
        fee = fee_due((dossier.terms or {}).get("fee") or {}, merged)
        dossier.terms = {**(dossier.terms or {}), "fee_due": fee}
        for task in wf.get_tasks(state=SpiffState.NOT_FINISHED_MASK):
            task.data.update({"form": dict(merged), "fee_due": fee})
    _audit(session, actor, "supplement_submitted", dossier,
           data={"note": note[:2000], "fields": sorted((form or {}).keys()),
                 "attachments": [u.summary() for u in uploads]})
    return _deliver(session, dossier, "supplement_received",
                    {"note": note[:2000], "form": dict(form or {}), "files": [u.name for u in uploads]},
                    actor=actor, wf=wf)


def awaiting_draft(session: Session, dossier: Dossier) -> bool:
    """Whether the case waits for the applicant to check the draft result."""
    if dossier.finished_at is not None:
        return False
    return "draft_confirmed" in workflow.waiting_messages(load_workflow(session, dossier))


def answer_draft(session: Session, code: str, *, actor: Actor, confirm: bool, note: str = "") -> Dossier:
    """The applicant confirms the draft result, or asks for corrections (what is wrong, at least a
    few words); corrections send the case back to the specialist."""
    dossier = _own_dossier(session, actor, code)
    if not confirm and len(note.strip()) < 5:
        raise InvalidDataError("say what must be corrected", fields={"note": ["say what must be corrected"]})
    if not awaiting_draft(session, dossier):
        raise ConflictError("no draft result waits for your check", fields={"status": [dossier.status]})
    _audit(session, actor, "draft_confirmed" if confirm else "draft_corrections_requested", dossier,
           data={"note": note[:2000]} if note else {})
    if confirm:
        return _deliver(session, dossier, "draft_confirmed", {"confirmed": True, "by": actor.name}, actor=actor)
    return _deliver(session, dossier, "draft_corrections", {"note": note[:2000], "by": actor.name}, actor=actor)


def withdraw(session: Session, code: str, *, actor: Actor, reason: str) -> Dossier:
    """The applicant withdraws their dossier (rút hồ sơ) with a reason."""
    dossier = _own_dossier(session, actor, code)
    if len(reason.strip()) < 5:
        raise InvalidDataError("the reason is required", fields={"reason": ["required"]})
    return _deliver(session, dossier, "withdrawn", {"reason": reason, "by": actor.name}, actor=actor)


# --- payment --------------------------------------------------------------------------------------

def create_payment(session: Session, code: str, *, actor: Actor) -> Payment:
    """A payment of the fee due (the amount is the case's, never the caller's); an unpaid pending
    payment of the same amount is reused, so a double click pays once."""
    dossier = _own_dossier(session, actor, code)
    if dossier.status != DossierStatus.PAYMENT_REQUESTED.value:
        raise ConflictError("no payment is due for this dossier", fields={"status": [dossier.status]})
    amount = int(_data_value(load_workflow(session, dossier), "fee_due") or 0)
    pending = session.scalar(select(Payment).where(Payment.dossier_id == dossier.id, Payment.status == "pending",
                                                   Payment.amount == amount))
    if pending is not None:
        return pending
    payment = Payment(reference=f"MC{secrets.token_hex(8).upper()}", dossier_id=dossier.id, amount=amount,
                      currency="VND", status="pending", created_at=clock.now())
    session.add(payment)
    session.flush()
    _audit(session, actor, "payment_created", dossier, data={"reference": payment.reference, "amount": amount})
    return payment


def settle_payment(session: Session, *, event_id: str, reference: str, amount: int, currency: str,
                   status: str, transaction: str) -> tuple[Payment, bool]:
    """Apply the provider's (already authenticated) callback. Returns (payment, changed): the same
    event twice, or a second success for a settled payment, changes nothing. A failure can be
    followed by a success (the citizen tried again on the provider's page). Money received for a
    dossier that no longer waits for it (withdrawn meanwhile) is kept as paid and flagged for a
    refund, never lost."""
    if not event_id.strip():
        raise InvalidDataError("the callback has no event_id", fields={"event_id": ["required"]})
    if status not in ("paid", "failed"):
        raise InvalidDataError(f"unknown payment status {status!r}", fields={"status": ["paid or failed"]})
    payment = session.scalar(select(Payment).where(Payment.reference == reference).with_for_update())
    if payment is None:
        raise NotFoundError(f"no payment {reference}")
    if session.scalar(select(CallbackReceipt).where(CallbackReceipt.provider == "payment",
                                                    CallbackReceipt.event_id == event_id)) is not None:
        return payment, False
    if currency != payment.currency or amount != payment.amount:
        raise InvalidDataError(f"paid {amount} {currency} but {payment.amount} {payment.currency} is due",
                               fields={"amount": [f"must be {payment.amount} {payment.currency}"]})
    session.add(CallbackReceipt(provider="payment", event_id=event_id, dossier_id=payment.dossier_id,
                                received_at=clock.now()))
    if payment.status == "paid" or (status == "failed" and payment.status == "failed"):
        session.flush()
        return payment, False
    dossier = lock_dossier(session, payment.dossier_id)
    provider = Actor("payment")
    payment.provider_transaction = transaction
    payment.settled_at = clock.now()
    if status == "failed":
        payment.status = "failed"
        _audit(session, provider, "payment_failed", dossier, data={"reference": reference})
        session.flush()
        return payment, True
    payment.status = "paid"
    if dossier.status != DossierStatus.PAYMENT_REQUESTED.value:
        _audit(session, provider, "payment_refund_due", dossier,
               data={"reference": reference, "amount": amount, "status": dossier.status})
        session.flush()
        return payment, True
    record_payment(session, dossier.code, actor=provider, amount=amount, reference=reference)
    return payment, True


def record_postal_callback(session: Session, *, event_id: str, dossier_code: str, event: str,
                           tracking: str) -> bool:
    """Apply the post's (already authenticated) status callback once; picked-up and in-transit
    events are recorded in the audit only; delivered and returned move the case."""
    from engine.services import record_postal_event

    def seen() -> bool:
        return session.scalar(select(CallbackReceipt).where(CallbackReceipt.provider == "postal",
                                                            CallbackReceipt.event_id == event_id)) is not None

    if seen():
        return False
    if event not in ("picked_up", "in_transit", "delivered", "returned"):
        raise InvalidDataError(f"unknown postal event {event!r}",
                               fields={"event": ["picked_up, in_transit, delivered or returned"]})
    # Two copies of one callback at the same moment (the post retrying while the first is still in
    # flight) both get past the check above: the dossier's row lock makes the second wait for the
    # first and then see its receipt, instead of failing on the receipt's unique key (HTTP 500).
    dossier = lock_dossier(session, get_dossier(session, dossier_code).id)
    if seen():
        return False
    session.add(CallbackReceipt(provider="postal", event_id=event_id, dossier_id=dossier.id, received_at=clock.now()))
    if event in ("delivered", "returned"):
        record_postal_event(session, dossier_code, actor=Actor("postal"), event=event, tracking=tracking)
    else:
        _audit(session, Actor("postal"), f"postal_{event}", dossier, data={"tracking": tracking})
    session.flush()
    return True


# --- assisted submission --------------------------------------------------------------------------

ASSISTANT_ROLES = frozenset({Role.ONESTOP.value, Role.VOLUNTEER.value})


def start_assisted(session: Session, *, actor: Actor, citizen_id_number: str,
                   dossier: Mapping[str, Any]) -> tuple[OtpChallenge, User, str]:
    """An officer or volunteer has typed a dossier for a registered citizen: check it as fully as a
    submission, keep it as the draft the citizen consents to, and return the code to send to the
    citizen's phone. The SMS names the procedure and where the result goes."""
    require_assistant(actor)
    citizen = citizens.find_citizen(session, citizen_id_number)
    if citizen is None or not citizen.is_active:
        raise InvalidDataError("no registered citizen has this ID number",
                               fields={"citizen_id_number": ["no registered citizen has this ID number"]})
    applicant = _assisted_applicant(citizen, dossier.get("applicant") or {})
    if errors := citizens.applicant_errors(applicant):
        raise InvalidDataError("the applicant has errors", fields=errors)
    procedure, _unit, delivery, _uploads = check_submission(
        session, procedure_code=str(dossier.get("procedure") or ""), unit_code=str(dossier.get("unit") or ""),
        applicant=applicant, form=dossier.get("form") or {}, channel="online", delivery=dossier.get("delivery"),
        attachments=dossier.get("attachments"))
    context = {"dossier": dict(dossier), "assistant": actor.name, "assistant_id": actor.user_id,
               "procedure_name": procedure.name_vi,
               "delivery": "post: " + str(delivery.get("address")) if delivery["method"] == "post" else "counter"}
    challenge, code = citizens.issue_otp(session, citizen, "consent", context=context)
    _audit(session, actor, "assisted_submission_started", None,
           data={"citizen": citizen.username, "procedure": procedure.code, "challenge": challenge.id})
    return challenge, citizen, code


def _assisted_applicant(citizen: User, given: Mapping[str, Any]) -> dict[str, Any]:
    """The applicant of an assisted dossier: the citizen's identity and contact details, never the
    assistant's (notices and results must reach the citizen)."""
    applicant = {k: v for k, v in dict(given).items() if k not in ("phone", "email", "full_name", "id_number")}
    applicant.update({"full_name": citizen.full_name, "id_number": citizen.id_number, "phone": citizen.phone})
    if citizen.email:
        applicant["email"] = citizen.email
    return applicant


def confirm_assisted(session: Session, *, actor: Actor, challenge_id: int, code: str) -> Dossier:
    """The citizen read the code from their phone to the assistant: the dossier is submitted as the
    citizen's own (online), and the audit records who typed it."""
    challenge = session.get(OtpChallenge, challenge_id)
    if challenge is None or challenge.purpose != "consent" or challenge.context.get("assistant_id") != actor.user_id:
        raise NotFoundError("no consent is waiting with this id")
    citizen = session.get(User, challenge.user_id)
    assert citizen is not None
    checked = citizens.verify_otp(session, citizen, "consent", code)
    if checked.id != challenge.id:
        raise ConflictError("a newer consent request replaced this one", fields={"otp": ["start again"]})
    body = challenge.context["dossier"]
    dossier = submit_dossier(
        session, procedure_code=str(body.get("procedure")), unit_code=str(body.get("unit")),
        applicant=_assisted_applicant(citizen, body.get("applicant") or {}), form=body.get("form") or {},
        channel="online", delivery=body.get("delivery"), actor=actor, citizen_id=citizen.id,
        attachments=body.get("attachments"))
    challenge.context = {**challenge.context, "dossier": {"code": dossier.code}}  # drop the files' copy
    _audit(session, actor, "assisted_submission_confirmed", dossier,
           data={"citizen": citizen.username, "typed_by": actor.name, "consent": "sms_otp"})
    return dossier
