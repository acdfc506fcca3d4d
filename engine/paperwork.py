"""The documents of a dossier: what the templates are given (from the database), the one-stop
forms rendered on request, and the signed documents (the result, a refusal) made once by the
signing step of the lifecycle and kept as signed, with their hash in the audit chain."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import clock, documents, signing
from engine.audit import record_event
from engine.calendar import to_vn
from engine.models import AuditEvent, Document, Dossier, Role, Task, Unit, User, UserRole, rate_result

RESULT_WORDS = {"early": "Trước hạn", "on_time": "Đúng hạn", "late": "Quá hạn"}  # the forms' words
LEGAL_UNITS = {"working_days": "ngày làm việc", "calendar_days": "ngày", "hours": "giờ làm việc"}
CHANNELS = {"online": "Trực tuyến", "counter": "Trực tiếp tại Bộ phận Một cửa", "post": "Qua bưu chính công ích"}


def verify_url(public_url: str, code: str) -> str:
    """The public verification page of a dossier's documents (the QR code on each)."""
    return f"{public_url.rstrip('/')}/verify/{code}"


class PaperworkError(ValueError):
    """A document that cannot be made for this dossier now (no signer, no template …)."""


def unit_context(unit: Unit) -> dict[str, Any]:
    """The heading's agency (the commune's People's Committee) and the dateline's place."""
    place = unit.name.removeprefix("UBND ").removeprefix("Ủy ban nhân dân ")
    for prefix in ("xã ", "phường ", "thị trấn ", "đặc khu "):
        place = place.removeprefix(prefix)
    return {"name": unit.name, "place": place, "agency_code": unit.agency_code}


def _legal_time(terms: Mapping[str, Any]) -> str:
    legal = terms.get("legal_time") or {}
    unit, value = legal.get("unit"), legal.get("value")
    if unit == "same_day":
        return "Trong ngày làm việc (nhận sau 15 giờ thì trả trong ngày làm việc tiếp theo)"
    if value is None:
        return "……"
    amount = int(value) if float(value).is_integer() else value
    label = LEGAL_UNITS.get(str(unit), str(unit or ""))
    return f"{amount:02d} {label}" if isinstance(amount, int) else f"{amount} {label}"


def person(user: User | None) -> dict[str, Any]:
    if user is None:
        return {"name": "", "title": ""}
    return {"name": user.full_name, "title": user.title or ""}


def _user(session: Session, user_id: int | None) -> User | None:
    return session.get(User, user_id) if user_id else None


def _completer(session: Session, dossier: Dossier, step: str) -> User | None:
    task = session.scalar(select(Task).where(Task.dossier_id == dossier.id, Task.spec_name == step,
                                             Task.state == "completed").order_by(Task.completed_at.desc()).limit(1))
    return _user(session, task.completed_by_id) if task is not None else None


def leader_of(session: Session, dossier: Dossier) -> User | None:
    """Who signs: the leader who approved, else the unit's first leader."""
    approver = _completer(session, dossier, "approve")
    if approver is not None:
        return approver
    return session.scalar(select(User).join(UserRole, UserRole.user_id == User.id).where(
        UserRole.role == Role.LEADER.value, User.unit_id == dossier.unit_id).order_by(User.id).limit(1))


def dossier_context(session: Session, dossier: Dossier, *, verify_url: str) -> dict[str, Any]:
    """Everything the templates print about a dossier (see engine/document_templates)."""
    terms = dossier.terms or {}
    catalogue = dossier.procedure.catalogue or {}
    applicant = dossier.applicant or {}
    delivery = (dossier.form or {}).get("delivery") or applicant.get("delivery") or {}
    receiver = _completer(session, dossier, "receive") or _user(session, dossier.submitted_by_id)
    return {
        "unit": unit_context(dossier.unit),
        "issued_at": to_vn(clock.now()).isoformat(),
        "verify_url": verify_url,
        "dossier": {
            "code": dossier.code, "procedure_code": dossier.procedure.code,
            "procedure_name": dossier.procedure.name_vi, "national_code": dossier.procedure.national_code,
            "applicant_name": dossier.applicant_name, "applicant_id_number": dossier.applicant_id_number,
            "applicant_address": applicant.get("address") or (dossier.form or {}).get("residence_address"),
            "applicant_phone": dossier.applicant_phone, "applicant_email": applicant.get("email"),
            "received_at": dossier.received_at.isoformat(),
            "due_at": dossier.due_at.isoformat() if dossier.due_at else None,
            "finished_at": dossier.finished_at.isoformat() if dossier.finished_at else None,
            "legal_time": _legal_time(terms or {"legal_time": {"unit": dossier.procedure.legal_time_unit,
                                                             "value": dossier.procedure.legal_time_value}}),
            "documents": [{"name": d if isinstance(d, str) else d.get("name", ""),
                           "form": "" if isinstance(d, str) else d.get("form", "")}
                          for d in catalogue.get("documents", [])],
            "delivery_text": "Qua bưu chính: " + str(delivery.get("address")) if delivery.get("address")
            else "Bộ phận Một cửa",
            "channel": CHANNELS.get(dossier.channel, dossier.channel), "form": dict(dossier.form or {}),
            "status": dossier.status,
        },
        "officer": person(receiver),
        "leader": person(leader_of(session, dossier)),
    }


def _rating(done: datetime | None, due: datetime | None) -> str:
    if done is None or due is None:
        return ""
    return RESULT_WORDS[rate_result(done, due).value]


def control_sheet_rows(session: Session, dossier: Dossier) -> list[dict[str, Any]]:
    """Mẫu 05: one row per hand-over between the people who worked on the dossier."""
    tasks = session.scalars(select(Task).where(Task.dossier_id == dossier.id, Task.kind == "user")
                            .order_by(Task.created_at, Task.id)).all()
    rows, previous = [], "Bộ phận Một cửa"
    for task in tasks:
        worker = _user(session, task.completed_by_id or task.assignee_id)
        to_name = worker.full_name if worker else (task.role or "")
        rows.append({"step": task.name, "from_name": previous, "to_name": to_name,
                     "handed_at": task.created_at.isoformat(),
                     "due_at": task.due_at.isoformat() if task.due_at else None,
                     "result": _rating(task.completed_at, task.due_at), "note": task.decision or ""})
        previous = to_name
    return rows


def _filled_forms(session: Session, dossier: Dossier) -> list[tuple[str, dict[str, Any]]]:
    """(step, form data) of every task the officers completed on the dossier, in order."""
    events = session.scalars(select(AuditEvent).where(AuditEvent.dossier_id == dossier.id,
                                                      AuditEvent.action == "task_completed").order_by(AuditEvent.id))
    return [(str(e.data.get("task")), dict(e.data.get("form") or {})) for e in events]


def filled_fields(session: Session, dossier: Dossier) -> dict[str, Any]:
    """What the officers entered in the task forms (e.g. the personal identification number the
    justice officer obtained), later entries winning; the decisions themselves left out."""
    fields: dict[str, Any] = {}
    for _step, form in _filled_forms(session, dossier):
        fields.update({k: v for k, v in form.items() if k not in ("decision", "note")})
    return fields


def _lines(text: Any) -> list[str]:
    if isinstance(text, list):
        return [str(x) for x in text if str(x).strip()]
    return [line.strip(" -•\t") for line in str(text or "").splitlines() if line.strip(" -•\t")]


def form_context(session: Session, dossier: Dossier, kind: str, *, verify_url: str) -> dict[str, Any]:
    """The context of a one-stop form for this dossier, with what that form adds (from the task
    forms the officers filled in: the receipt's note, the appraisal's reason, the apology)."""
    context = dossier_context(session, dossier, verify_url=verify_url)
    filled = dict(_filled_forms(session, dossier))
    receipt = filled.get("receive", {})
    if kind == "supplement":
        context["items"] = _lines(receipt.get("note"))
        context["reason"] = "Hồ sơ chưa đầy đủ, chưa hợp lệ theo quy định"
    elif kind == "refusal":
        appraisal = next((form for task, form in filled.items() if form.get("decision") == "propose_refuse"), {})
        source = receipt if receipt.get("decision") == "refuse" else appraisal
        context["reasons"] = _lines(source.get("note") or source.get("reason") or source.get("refusal_reason"))
        context["signed_by_leader"] = source is appraisal  # the leader refuses after appraisal, and signs
    elif kind == "apology":
        apology = filled.get("sign_apology", {})
        moved = session.scalar(select(AuditEvent).where(AuditEvent.dossier_id == dossier.id,
                                                        AuditEvent.action == "due_date_changed")
                               .order_by(AuditEvent.id.desc()).limit(1))
        context.update(reason=str(apology.get("reason") or ""),
                       original_due_at=moved.data.get("from") if moved is not None else None,
                       new_due_at=moved.data.get("to") if moved is not None else None)
    elif kind == "control_sheet":
        context["rows"] = control_sheet_rows(session, dossier)
    return context


# --- signed documents -------------------------------------------------------------------------


@dataclass(frozen=True)
class Signed:
    document_id: int
    sha256: str
    new: bool


def issue_signed(session: Session, dossier: Dossier, *, kind: str, key: str, secret_key: str, verify_url: str,
                 issue_missing_certificate: bool) -> Signed:
    """Make, sign and keep the ``kind`` document of the dossier once per ``key`` (the signing
    step's id): the result document of its procedure, or the refusal letter; signed by the leader
    who approved, with the certificate in their name."""
    existing = session.scalar(select(Document).where(Document.key == key))
    if existing is not None:
        return Signed(existing.id, existing.sha256, False)
    leader = leader_of(session, dossier)
    if leader is None:
        raise PaperworkError(f"unit {dossier.unit.code} has no leader to sign {dossier.code}")
    credential = signing.credential_of(session, leader.id)
    if credential is None:
        if not issue_missing_certificate:
            raise PaperworkError(f"{leader.username} has no valid signing certificate")
        credential = signing.issue_certificate(session, leader, secret_key)
    if kind == "result":
        context = dossier_context(session, dossier, verify_url=verify_url)
    else:  # the refusal letter: the reasons given at appraisal
        context = form_context(session, dossier, "refusal", verify_url=verify_url)
    context["leader"] = person(leader)
    context["result"] = {"number": dossier.code.rsplit("-", 1)[-1], "decided_at": to_vn(clock.now()).isoformat(),
                         "fields": {**dict(dossier.form or {}), **filled_fields(session, dossier)}}
    if kind == "result":
        pdf, slot = documents.render_pdf_with_slot("result", context, procedure=dossier.procedure.code)
        name = f"Kết quả — {dossier.procedure.name_vi}"
    else:
        pdf, slot = documents.render_pdf_with_slot("refusal", context)
        name = "Văn bản từ chối giải quyết hồ sơ"
    signed = signing.sign_pdf(pdf, credential, secret_key, signer_name=leader.full_name,
                              signer_title=leader.title or "Chủ tịch UBND", place=slot or DEFAULT_BOX)
    digest = hashlib.sha256(signed).hexdigest()
    document = Document(dossier_id=dossier.id, key=key, kind=kind, form_set=documents.DEFAULT_FORM_SET, name=name,
                        content=signed, size=len(signed), sha256=digest, signed_by_id=leader.id,
                        signer_name=leader.full_name, signer_title=leader.title or "",
                        certificate_fingerprint=credential.fingerprint, signed_at=clock.now())
    session.add(document)
    session.flush()
    record_event(session, action="document_signed", actor=leader.username, actor_id=leader.id,
                 dossier_id=dossier.id, dossier_code=dossier.code,
                 data={"document": document.id, "kind": kind, "sha256": digest, "size": len(signed),
                       "certificate": credential.fingerprint, "signer": leader.full_name})
    return Signed(document.id, digest, True)


# A signature box when a template has no signature slot: bottom right of the last page.
DEFAULT_BOX = signing.SignatureBox(-1, (330, 60, 560, 140))


def trust_roots(session: Session) -> list[str]:
    authority = signing.authority(session)
    return [authority.certificate] if authority is not None else []


def verify_document(session: Session, document: Document) -> signing.Validation:
    return signing.validate_pdf(document.content, trust_roots(session))


def verify_upload(session: Session, dossier: Dossier, pdf: bytes) -> tuple[signing.Validation, Document | None]:
    """A copy someone holds: is its signature valid, and is it one of the dossier's signed documents?"""
    digest = hashlib.sha256(pdf).hexdigest()
    match = session.scalar(select(Document).where(Document.dossier_id == dossier.id, Document.sha256 == digest))
    return signing.validate_pdf(pdf, trust_roots(session)), match


def signed_documents(session: Session, dossier: Dossier) -> list[Document]:
    return list(session.scalars(select(Document).where(Document.dossier_id == dossier.id).order_by(Document.id)))


def available_forms(session: Session, dossier: Dossier) -> list[str]:
    """The one-stop forms this dossier has reached: the receipt once accepted, the supplement
    request or refusal when the receipt decided so, the apology letter when one was signed, and
    the processing control sheet once a step was done."""
    completed = _filled_forms(session, dossier)
    decisions = {str(form.get("decision")) for step, form in completed if step == "receive"}
    forms = [kind for kind, decision in (("receipt", "accept"), ("supplement", "supplement"), ("refusal", "refuse"))
             if decision in decisions]
    if dossier.apology_at is not None:
        forms.append("apology")
    return [*forms, "control_sheet"] if completed else forms
