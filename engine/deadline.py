"""The appointment explained: how a dossier's due moment was computed, day by day.

Citizens see the appointment on every page; one click shows which days were counted, which
weekend days and holidays were skipped, the pauses while a supplement was awaited, and every
later move of the date (verification extension, apology) with its reason.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.calendar import WorkingCalendar, to_vn
from engine.models import AuditEvent, ClockPause, Dossier
from engine.services import calendar_for, dossier_terms, legal_due

MAX_LISTED_DAYS = 120


def _day_row(cal: WorkingCalendar, d: date, *, every_day: bool = False) -> dict[str, Any]:
    """One day of the count; ``every_day`` for limits in calendar days (only the last day must be
    a working day)."""
    entry = cal.entry(d)
    working = every_day or cal.is_working_day(d)
    if entry is not None:
        reason = "make_up_day" if working else entry.kind
    else:
        reason = "working_day" if working else "weekend"
    return {"date": d.isoformat(), "weekday": d.isoweekday(), "counted": working, "reason": reason,
            "name": entry.name if entry is not None else None}


def explain(session: Session, dossier: Dossier) -> dict[str, Any]:
    """The computation behind ``dossier.due_at``: the start moment (receipt, or the moment the
    supplemented dossier arrived), the rule, the days from the start day to the due day, the pauses
    and the audited changes. ``matches`` says whether the rule reproduces the stored due moment
    before any audited change (it always should)."""
    cal = calendar_for(session)
    terms = dossier_terms(dossier)
    legal_time = terms["legal_time"]
    pauses = list(session.scalars(select(ClockPause).where(ClockPause.dossier_id == dossier.id)
                                  .order_by(ClockPause.started_at)))
    ended = [p for p in pauses if p.ended_at is not None]
    start, start_reason = dossier.received_at, "received"
    if ended:
        last_end = ended[-1].ended_at
        assert last_end is not None
        start, start_reason = last_end, "supplement_received"
    start_local = to_vn(start)
    computed = legal_due(cal, terms, start)
    unit = legal_time["unit"]
    value = float(legal_time.get("value") or 0)
    rule = "same_day" if unit == "same_day" or (unit == "working_days" and value == 0) else unit
    result: dict[str, Any] = {
        "received_at": to_vn(dossier.received_at).isoformat(),
        "start": start_local.isoformat(),
        "start_reason": start_reason,
        "rule": rule,
        "value": value,
        "counting_from": None,
        "after_cutoff": None,
        "cutoff": cal.cutoff.strftime("%H:%M"),
        "days": [],
        "computed_due_at": to_vn(computed).isoformat(),
        "due_at": to_vn(dossier.due_at).isoformat() if dossier.due_at else None,
        "paused": dossier.clock_paused_at is not None,
        "pauses": [{"reason": p.reason, "started_at": to_vn(p.started_at).isoformat(),
                    "ended_at": to_vn(p.ended_at).isoformat() if p.ended_at else None} for p in pauses],
        "changes": [],
    }
    due_day = to_vn(computed).date()
    if rule == "working_days":
        # Decree 61/2018: the day of receipt is not counted; outside office hours it is the next working day.
        first = cal.receipt_day(start)
        result["counting_from"] = first.isoformat()
        day = first + timedelta(days=1)
    elif rule == "same_day":
        result["after_cutoff"] = start_local.time() > cal.cutoff
        day = start_local.date()
    else:
        day = start_local.date() + timedelta(days=1) if rule == "calendar_days" else start_local.date()
    while day <= due_day and len(result["days"]) < MAX_LISTED_DAYS:
        result["days"].append(_day_row(cal, day, every_day=rule == "calendar_days"))
        day += timedelta(days=1)
    for event in session.scalars(select(AuditEvent).where(
            AuditEvent.dossier_id == dossier.id, AuditEvent.action == "due_date_changed").order_by(AuditEvent.id)):
        data = event.data or {}
        result["changes"].append({"at": to_vn(event.at).isoformat(), "from": data.get("from"), "to": data.get("to"),
                                  "reason": data.get("reason")})
    # The stored due moment is the rule's, or the last audited change's.
    expected = computed if not result["changes"] else datetime.fromisoformat(result["changes"][-1]["to"])
    result["matches"] = dossier.due_at is None or result["paused"] \
        or abs((dossier.due_at - expected).total_seconds()) < 1
    return result
