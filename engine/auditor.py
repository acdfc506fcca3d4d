"""The auditor's reads: dossier search across the units in scope, a case's full timeline with the
data each step changed, and its signed documents checked again.

Auditors read everything in their scope and change nothing; opening a case is itself an audit
event (``dossier_viewed``), so the timeline shows who looked at the case, too.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlalchemy.orm import Session

from engine import clock, paperwork, queries
from engine.calendar import VN_TZ, WorkingCalendar, to_vn
from engine.models import (
    Dossier,
    DossierStatus,
    Outcome,
    Procedure,
    Role,
    Unit,
)
from engine.reports import narrow_scope
from engine.services import Actor, ForbiddenError, InvalidDataError, calendar_for, get_dossier

CODE_PATTERN = re.compile(r"^[0-9A-Za-z.]+-\d{0,6}(-\d{0,4})?$")
MAX_PAGE = 200


def auditor_units(actor: Actor) -> tuple[int, ...] | None:
    """The units an auditor reads: the one the account is bound to, or the whole province (None).
    Anyone else is refused."""
    if Role.AUDITOR.value not in actor.roles:
        raise ForbiddenError("auditors only")
    return (actor.unit_id,) if actor.unit_id is not None else None


@dataclass(frozen=True)
class DossierSearch:
    """What an auditor looks for. ``q`` is a dossier code (or its beginning), a 12-digit ID number,
    a phone number, or the beginning of the applicant's name."""

    q: str = ""
    unit: str = ""
    procedure: str = ""
    status: str = ""
    outcome: str = ""
    received_from: date | None = None
    received_to: date | None = None
    overdue: bool = False
    apology: bool = False
    after_id: int | None = None  # keyset paging: the last id of the previous page
    limit: int = 50

    @classmethod
    def parse(cls, args: Any) -> DossierSearch:
        """From query parameters; a bad value is an error naming the parameter."""
        fields: dict[str, list[str]] = {}

        def day(name: str) -> date | None:
            value = (args.get(name) or "").strip()
            if not value:
                return None
            try:
                return date.fromisoformat(value)
            except ValueError:
                fields[name] = ["YYYY-MM-DD"]
                return None

        def number(name: str, default: int | None, low: int, high: int) -> int | None:
            value = (args.get(name) or "").strip()
            if not value:
                return default
            if not value.isdigit() or not low <= int(value) <= high:
                fields[name] = [f"a whole number from {low} to {high}"]
                return default
            return int(value)

        status = (args.get("status") or "").strip()
        if status and status not in {s.value for s in DossierStatus}:
            fields["status"] = [", ".join(s.value for s in DossierStatus)]
        outcome = (args.get("outcome") or "").strip()
        if outcome and outcome not in {o.value for o in Outcome} | {"open"}:
            fields["outcome"] = [", ".join([*(o.value for o in Outcome), "open"])]
        search = cls(
            q=(args.get("q") or "").strip()[:200], unit=(args.get("unit") or "").strip(),
            procedure=(args.get("procedure") or "").strip(), status=status, outcome=outcome,
            received_from=day("from"), received_to=day("to"),
            overdue=(args.get("overdue") or "") in ("1", "true", "on"),
            apology=(args.get("apology") or "") in ("1", "true", "on"),
            after_id=number("after", None, 1, 2**62), limit=number("limit", 50, 1, MAX_PAGE) or 50,
        )
        if search.received_from and search.received_to and search.received_to < search.received_from:
            fields["to"] = ["on or after 'from'"]
        if fields:
            raise InvalidDataError("the search has invalid parameters", fields=fields)
        return search

    def conditions(self, session: Session, units: tuple[int, ...] | None, *,
                   now: datetime) -> list[ColumnElement[bool]]:
        where = narrow_scope(session, units, unit_code=self.unit or None,
                             procedure_code=self.procedure or None).where()
        if self.q:
            where.append(_text_match(session, self.q))
        if self.status:
            where.append(Dossier.status == self.status)
        if self.outcome == "open":
            where.append(Dossier.closed_at.is_(None))
        elif self.outcome:
            where.append(Dossier.outcome == self.outcome)
        if self.received_from:
            where.append(Dossier.received_at >= datetime.combine(self.received_from, time.min, VN_TZ))
        if self.received_to:
            where.append(Dossier.received_at < datetime.combine(self.received_to + timedelta(days=1), time.min, VN_TZ))
        if self.overdue:
            # past the appointment the result is judged by (as the reports count it), clock running
            where += [Dossier.closed_at.is_(None), Dossier.clock_paused_at.is_(None), Dossier.appointment_at < now]
        if self.apology:
            where.append(Dossier.apology_at.is_not(None))
        if self.after_id is not None:
            # Newest received first; the page after dossier ``after_id`` continues below its
            # (received_at, id). The plain bound lets the received_at index start there.
            received = session.scalar(select(Dossier.received_at).where(Dossier.id == self.after_id))
            if received is None:
                raise InvalidDataError("no such page", fields={"after": ["the `next` of a previous page"]})
            where += [Dossier.received_at <= received,
                      or_(Dossier.received_at < received, Dossier.id < self.after_id)]
        return where


def _code_match(session: Session, q: str) -> ColumnElement[bool]:
    """A dossier code or its beginning. ``<agency code>-YYMMDD-NNNN`` says the unit and the day of
    receipt: they become conditions the (unit, received) index answers whatever the database's
    collation, and the LIKE keeps the match exact."""
    agency, _, rest = q.partition("-")
    day, _, number = rest.partition("-")
    if len(number) == 4:
        return Dossier.code == q
    conditions = [_starts_with(Dossier.code, q)]
    unit_id = session.scalar(select(Unit.id).where(Unit.agency_code == agency))
    if unit_id is None:
        return false()
    conditions.append(Dossier.unit_id == unit_id)
    if len(day) == 6:
        try:
            received = datetime.strptime(day, "%y%m%d").date()
        except ValueError:
            return false()
        since = datetime.combine(received, time.min, VN_TZ)
        conditions += [Dossier.received_at >= since, Dossier.received_at < since + timedelta(days=1)]
    return and_(*conditions)


def _text_match(session: Session, q: str) -> ColumnElement[bool]:
    digits = q.replace(" ", "")
    if digits.isdigit() and len(digits) == 12:
        return Dossier.applicant_id_number == digits
    if digits.isdigit() and len(digits) in (10, 11) and digits.startswith("0"):
        return Dossier.applicant_phone == digits
    if CODE_PATTERN.match(q):
        return _code_match(session, q)
    # Names are stored as written ("Nguyễn Văn An"): match the beginning as typed or capitalised.
    return or_(*(_starts_with(Dossier.applicant_name, v) for v in sorted({q, q.title()})))


def _starts_with(column: Any, prefix: str) -> ColumnElement[bool]:
    """``column LIKE prefix%`` with the prefix's own % and _ taken literally."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(escaped + "%", escape="\\")


def search_row(dossier: Dossier, procedure_name: str, unit_name: str, *, cal: WorkingCalendar,
               now: datetime) -> dict[str, Any]:
    running = dossier.closed_at is None and dossier.clock_paused_at is None and dossier.due_at is not None
    return {
        "code": dossier.code, "procedure": procedure_name, "unit": unit_name,
        "applicant": dossier.applicant_name, "channel": dossier.channel, "status": dossier.status,
        "received_at": to_vn(dossier.received_at).isoformat(),
        "due_at": to_vn(dossier.due_at).isoformat() if dossier.due_at else None,
        "appointment_at": to_vn(dossier.appointment_at).isoformat() if dossier.appointment_at else None,
        "closed_at": to_vn(dossier.closed_at).isoformat() if dossier.closed_at else None,
        "outcome": dossier.outcome, "supplements": dossier.supplement_count or 0,
        "apology": dossier.apology_at is not None,
        "working_days_left": cal.working_days_left(now, dossier.due_at) if running and dossier.due_at else None,
    }


def search_dossiers(session: Session, actor: Actor, search: DossierSearch) -> dict[str, Any]:
    """A page of dossiers, the most recently received first, and the id to ask for the next page
    (None at the end)."""
    units = auditor_units(actor)
    now = clock.now()
    query = (
        select(Dossier, Procedure.name_vi, Unit.name)
        .join(Procedure, Procedure.id == Dossier.procedure_id)
        .join(Unit, Unit.id == Dossier.unit_id)
        .where(*search.conditions(session, units, now=now))
        .order_by(Dossier.received_at.desc(), Dossier.id.desc())
        .limit(search.limit + 1)
    )
    found = session.execute(query).all()
    cal = calendar_for(session)
    page = found[: search.limit]
    return {
        "rows": [search_row(d, p, u, cal=cal, now=now) for d, p, u in page],
        "next": page[-1][0].id if len(found) > search.limit else None,
    }


def export_rows(session: Session, actor: Actor, search: DossierSearch, *, cap: int = 100_000) -> list[dict[str, Any]]:
    """Every dossier the search finds (up to ``cap``), for a CSV or XLSX export."""
    rows: list[dict[str, Any]] = []
    after = search.after_id
    while len(rows) < cap:
        page = search_dossiers(session, actor, replace(search, after_id=after, limit=MAX_PAGE))
        rows += page["rows"]
        if page["next"] is None:
            break
        after = page["next"]
    return rows[:cap]


# --- one case ---------------------------------------------------------------------------------------

# Each step's own answer, not a case field that the next step changes.
STEP_FIELDS = frozenset({"decision", "note", "reason"})


def _changes(before: dict[str, Any], form: dict[str, Any]) -> list[dict[str, Any]]:
    """Fields a step set or changed, against what the case held before it."""
    changed = []
    for name, value in form.items():
        if name in STEP_FIELDS:
            changed.append({"field": name, "before": None, "after": value})
        elif name not in before or before[name] != value:
            changed.append({"field": name, "before": before.get(name), "after": value})
    return changed


def timeline(session: Session, actor: Actor, code: str) -> dict[str, Any]:
    """The case's history (:func:`queries.history`, the read recorded) for an auditor in scope,
    each step with the data it set or changed, and who read the case how many times."""
    auditor_units(actor)
    events = queries.history(session, actor, code, purpose="audit timeline")
    dossier = get_dossier(session, code)
    known: dict[str, Any] = dict(dossier.form or {})
    viewers: dict[str, int] = {}
    for event in events:
        form = event["data"].get("form") if event["action"] == "task_completed" else None
        event["changes"] = _changes(known, form) if isinstance(form, dict) else []
        if isinstance(form, dict):
            known.update(form)
        if event["action"] == "dossier_viewed":
            viewers[event["actor"]] = viewers.get(event["actor"], 0) + 1
    return {"dossier": dossier, "events": events, "viewers": viewers}


def documents_checked(session: Session, dossier: Dossier, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The dossier's signed documents, each validated again and its bytes compared with the hash
    the audit chain recorded when it was signed (``events``: the case's :func:`timeline`)."""
    recorded = {int(e["data"]["document"]): e["data"].get("sha256") for e in events
                if e["action"] == "document_signed" and e["data"].get("document") is not None}
    rows = []
    for document in paperwork.signed_documents(session, dossier):
        validation = paperwork.verify_document(session, document)
        digest = hashlib.sha256(document.content).hexdigest()
        rows.append({
            "id": document.id, "kind": document.kind, "name": document.name, "signer": document.signer_name,
            "signed_at": to_vn(document.signed_at).isoformat(), "sha256": digest,
            "matches_audit": recorded.get(document.id) == digest,
            "signature_ok": validation.ok, "intact": validation.intact, "trusted": validation.trusted,
            "details": validation.details,
        })
    return rows
