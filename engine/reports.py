"""Reports for leaders and auditors: the on-time report, the index scores, the online rate against
each unit's target, the tracking register (Mẫu 06) and the leader's dashboard figures.

Every figure is read from one row per dossier (``Dossier.closed_at``, ``outcome``,
``appointment_at``, ``supplement_count`` are kept by the engine when processing ends), so a
province's month is a handful of indexed aggregate queries, not a replay of case histories.

The report follows the balance the province checks: dossiers carried over from before the period
plus those received in it equal those whose processing ended in it (finished early, on time or
late; refused at receipt; withdrawn; stopped) plus those still being processed at its end (within
the deadline, past it, or waiting for the citizen's supplement).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select
from sqlalchemy.orm import Session

from engine import clock
from engine.calendar import VN_TZ, to_vn
from engine.models import (
    EVALUATED_OUTCOMES,
    ClockPause,
    Dossier,
    Outcome,
    Procedure,
    Role,
    Task,
    Unit,
    UnitTarget,
    User,
)
from engine.paperwork import RESULT_WORDS
from engine.queries import open_user_task
from engine.services import Actor, ForbiddenError, InvalidDataError

COUNTS = (
    "carried_over", "received", "received_online", "received_counter", "received_post",
    "finished", "early", "on_time", "late", "refused", "not_accepted", "withdrawn", "stopped",
    "processing", "processing_within", "processing_overdue", "waiting_citizen", "apologies",
)
GROUPS = ("procedure", "unit")


def _invalid(field_name: str, message: str) -> InvalidDataError:
    return InvalidDataError(message, fields={field_name: [message]})


def _check_grouping(by: str) -> None:
    if by not in GROUPS:
        raise _invalid("by", f"group by {' or '.join(GROUPS)}")


@dataclass(frozen=True)
class Period:
    """Days from ``start`` to ``end`` inclusive, in Vietnam's time."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise _invalid("to", "the period ends before it starts")
        if (self.end - self.start).days > 3 * 366:
            raise _invalid("to", "a report covers at most three years")

    @classmethod
    def month(cls, year: int, month: int) -> Period:
        first = date(year, month, 1)
        following = date(year + month // 12, month % 12 + 1, 1)
        return cls(first, following - timedelta(days=1))

    @classmethod
    def parse(cls, start: str | None, end: str | None, *, today: date) -> Period:
        """From ISO dates; the default is the current month up to today."""
        try:
            first = date.fromisoformat(start) if start else today.replace(day=1)
        except ValueError as exc:
            raise _invalid("from", "not a date (YYYY-MM-DD)") from exc
        try:
            last = date.fromisoformat(end) if end else max(today, first)
        except ValueError as exc:
            raise _invalid("to", "not a date (YYYY-MM-DD)") from exc
        return cls(first, last)

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time.min, VN_TZ)

    @property
    def until(self) -> datetime:
        """The moment after the period (exclusive bound)."""
        return datetime.combine(self.end + timedelta(days=1), time.min, VN_TZ)


@dataclass(frozen=True)
class Scope:
    """Which dossiers a reader may count: ``unit_ids`` None means every unit of the province."""

    unit_ids: tuple[int, ...] | None = None
    procedure_ids: tuple[int, ...] | None = None

    def where(self) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if self.unit_ids is not None:
            conditions.append(Dossier.unit_id.in_(self.unit_ids))
        if self.procedure_ids is not None:
            conditions.append(Dossier.procedure_id.in_(self.procedure_ids))
        return conditions


def narrow_scope(session: Session, units: tuple[int, ...] | None, *, unit_code: str | None = None,
                 procedure_code: str | None = None) -> Scope:
    """``units`` (None: the province) narrowed to one unit and one procedure by code. An unknown
    code is an error (422) and a unit outside ``units`` is refused (403), so that a report or a
    search never silently shows nothing."""
    unit_ids = units
    if unit_code:
        unit_id = session.scalar(select(Unit.id).where(Unit.code == unit_code))
        if unit_id is None:
            raise _invalid("unit", f"no unit {unit_code!r}")
        if units is not None and unit_id not in units:
            raise ForbiddenError("this unit is outside your scope")
        unit_ids = (unit_id,)
    procedure_ids = None
    if procedure_code:
        procedure_id = session.scalar(select(Procedure.id).where(Procedure.code == procedure_code))
        if procedure_id is None:
            raise _invalid("procedure", f"no procedure {procedure_code!r}")
        procedure_ids = (procedure_id,)
    return Scope(unit_ids, procedure_ids)


def reader_scope(session: Session, actor: Actor, *, unit_code: str | None = None,
                 procedure_code: str | None = None) -> Scope:
    """What a leader (own unit) or an auditor (the province, or the unit the account is bound to)
    may count, narrowed as asked."""
    if not actor.roles & {Role.AUDITOR.value, Role.LEADER.value}:
        raise ForbiddenError("leaders and auditors only")
    if actor.unit_id is None and Role.AUDITOR.value not in actor.roles:
        raise ForbiddenError("a leader account must belong to a unit")
    units = (actor.unit_id,) if actor.unit_id is not None else None
    return narrow_scope(session, units, unit_code=unit_code, procedure_code=procedure_code)


# --- the on-time report ---------------------------------------------------------------------------

def _open_at(moment: datetime) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """Received before ``moment`` and not ended by then, as two disjoint conditions that each
    read one range of the closed_at index (ended at or after it; not ended yet): a planner given
    the OR of the two walks every dossier received before the moment instead."""
    before = Dossier.received_at < moment
    return and_(before, Dossier.closed_at >= moment), and_(before, Dossier.closed_at.is_(None))


def _count(condition: ColumnElement[bool]) -> Any:
    return func.count().filter(condition)


def _grouped(query: Any, scope: Scope) -> Any:
    return query.where(*scope.where()).group_by(Dossier.unit_id, Dossier.procedure_id)


def ontime_counts(session: Session, period: Period, scope: Scope, *,
                  now: datetime | None = None) -> dict[tuple[int, int], dict[str, int]]:
    """The report's counts per (unit id, procedure id) that has any."""
    now = now or clock.now()
    since, until = period.since, period.until
    end = min(until, now)  # a period not over yet is read as of now
    rows: dict[tuple[int, int], dict[str, int]] = {}

    def add(query: Any, names: Sequence[str]) -> None:
        for unit_id, procedure_id, *values in session.execute(_grouped(query, scope)):
            counts = rows.setdefault((unit_id, procedure_id), dict.fromkeys(COUNTS, 0))
            for name, value in zip(names, values, strict=True):
                counts[name] += int(value or 0)

    key = (Dossier.unit_id, Dossier.procedure_id)
    in_period = and_(Dossier.received_at >= since, Dossier.received_at < until)
    add(select(*key, func.count(), _count(Dossier.channel == "online"), _count(Dossier.channel == "counter"),
               _count(Dossier.channel == "post")).where(in_period),
        ("received", "received_online", "received_counter", "received_post"))
    for part in _open_at(since):
        add(select(*key, func.count()).where(part), ("carried_over",))
    ended = [Outcome.EARLY, Outcome.ON_TIME, Outcome.LATE, Outcome.NOT_ACCEPTED, Outcome.WITHDRAWN, Outcome.STOPPED]
    add(select(*key, *(_count(Dossier.outcome == o.value) for o in ended),
               _count(Dossier.refused.is_(True)))
        .where(Dossier.closed_at >= since, Dossier.closed_at < end),
        (*(o.value for o in ended), "refused"))
    # Waiting for the applicant at the end: a supplement pause running then (few rows, joined once).
    paused = (select(ClockPause.dossier_id).where(ClockPause.started_at < end,
                                                  or_(ClockPause.ended_at.is_(None), ClockPause.ended_at >= end))
              .distinct().subquery())
    waiting = paused.c.dossier_id.is_not(None)
    overdue = and_(paused.c.dossier_id.is_(None), Dossier.appointment_at.is_not(None), Dossier.appointment_at < end)
    for part in _open_at(end):
        add(select(*key, func.count(), _count(waiting), _count(overdue))
            .outerjoin(paused, paused.c.dossier_id == Dossier.id).where(part),
            ("processing", "waiting_citizen", "processing_overdue"))
    add(select(*key, func.count()).where(Dossier.apology_at >= since, Dossier.apology_at < end), ("apologies",))
    for counts in rows.values():
        counts["finished"] = counts["early"] + counts["on_time"] + counts["late"]
        counts["processing_within"] = counts["processing"] - counts["waiting_citizen"] - counts["processing_overdue"]
    return rows


def ontime_rate(counts: dict[str, int]) -> float | None:
    """Share of finished dossiers returned early or on time (0–1), None when none finished."""
    return round((counts["early"] + counts["on_time"]) / counts["finished"], 4) if counts["finished"] else None


def _labels(session: Session, model: Any, ids: Iterable[int]) -> dict[int, Any]:
    ids = set(ids)
    return {row.id: row for row in session.scalars(select(model).where(model.id.in_(ids)))} if ids else {}


def _summed(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    total = dict.fromkeys(COUNTS, 0)
    for values in counts:
        for name, value in values.items():
            total[name] += value
    return total


def _head(by: str, label: Any) -> dict[str, Any]:
    """The columns that name a row: the procedure or the unit."""
    if by == "procedure":
        return {"procedure": label.code, "procedure_name": label.name_vi, "field": label.field}
    return {"unit": label.code, "unit_name": label.name}


def ontime_report(session: Session, period: Period, scope: Scope, *, by: str = "procedure",
                  now: datetime | None = None) -> dict[str, Any]:
    """The on-time report per procedure or per unit, with the total. Each row has every count of
    :data:`COUNTS` and ``ontime_rate``."""
    _check_grouping(by)
    counts = ontime_counts(session, period, scope, now=now)
    parts: dict[int, list[dict[str, int]]] = {}
    for (unit_id, procedure_id), values in counts.items():
        parts.setdefault(procedure_id if by == "procedure" else unit_id, []).append(values)
    labels = _labels(session, Procedure if by == "procedure" else Unit, parts)
    rows = []
    for key_id, group in parts.items():
        summed = _summed(group)
        rows.append({**_head(by, labels[key_id]), **summed, "ontime_rate": ontime_rate(summed)})
    rows.sort(key=lambda r: (-r["received"] - r["carried_over"], r.get("procedure") or r.get("unit")))
    total = _summed(counts.values())
    return {"from": period.start.isoformat(), "to": period.end.isoformat(), "by": by, "rows": rows,
            "total": {**total, "ontime_rate": ontime_rate(total)}}


# --- index scores (Circular 01/2018/TT-VPCP, the set of indicators of handling procedures) ------

INDICATORS = {
    "total_time": "Tổng thời gian giải quyết so với thời gian quy định",
    "step_time": "Thời gian thực hiện của từng bộ phận tham gia giải quyết",
    "supplements": "Số lần phải liên hệ nơi tiếp nhận để hoàn thiện hồ sơ",
    "online": "Tiến độ và chất lượng cung cấp dịch vụ công trực tuyến",
}
# Scored from the case data, 0–2 points per dossier finished in the period:
#   total_time  early 2, on time 1, late 0;
#   step_time   every step done by its own deadline 2, any step late 0;
#   supplements none 2, one 1, more than one 0;
#   online      submitted online through a full online service 2, partial 1, not online 0.
# The other indicators (satisfaction, publicity, feedback handling) come from citizens' surveys and
# the unit's own records, which motcua does not hold: the report names them as not scored here.
NOT_SCORED = ("Mức độ hài lòng của tổ chức, cá nhân", "Mức độ công khai thủ tục hành chính",
              "Tiếp thu, giải trình phản ánh, kiến nghị")


def index_scores(session: Session, period: Period, scope: Scope, *, by: str = "unit") -> dict[str, Any]:
    """Average points (0–2) per indicator for the dossiers finished in the period, per unit or
    procedure, with the province-wide average."""
    _check_grouping(by)
    late_step = exists().where(Task.dossier_id == Dossier.id, Task.kind == "user", Task.completed_at.is_not(None),
                               Task.due_at.is_not(None), Task.completed_at > Task.due_at)
    points = (
        case((Dossier.outcome == Outcome.EARLY.value, 2), (Dossier.outcome == Outcome.ON_TIME.value, 1), else_=0),
        case((late_step, 0), else_=2),
        case((Dossier.supplement_count == 0, 2), (Dossier.supplement_count == 1, 1), else_=0),
        case((and_(Dossier.channel == "online", Procedure.online_level == "full"), 2),
             (Dossier.channel == "online", 1), else_=0),
    )
    group = Dossier.procedure_id if by == "procedure" else Dossier.unit_id
    query = (
        select(group, func.count(), *(func.sum(p) for p in points))
        .join(Procedure, Procedure.id == Dossier.procedure_id)
        .where(Dossier.closed_at >= period.since, Dossier.closed_at < period.until,
               Dossier.outcome.in_([o.value for o in EVALUATED_OUTCOMES]),
               *scope.where())
        .group_by(group)
    )
    labels_model = Procedure if by == "procedure" else Unit
    results = session.execute(query).all()
    labels = _labels(session, labels_model, (r[0] for r in results))
    rows = []
    sums = [0] * len(INDICATORS)
    total = 0
    for key_id, count, *values in results:
        scores = {name: round(int(v or 0) / count, 2) for name, v in zip(INDICATORS, values, strict=True)}
        rows.append({**_head(by, labels[key_id]), "dossiers": count, **scores,
                     "average": round(sum(scores.values()) / len(scores), 2)})
        total += count
        sums = [s + int(v or 0) for s, v in zip(sums, values, strict=True)]
    rows.sort(key=lambda r: (-r["average"], r.get("procedure") or r.get("unit")))
    overall = {name: round(s / total, 2) if total else None for name, s in zip(INDICATORS, sums, strict=True)}
    return {"from": period.start.isoformat(), "to": period.end.isoformat(), "by": by, "indicators": INDICATORS,
            "not_scored": list(NOT_SCORED), "rows": rows,
            "total": {"dossiers": total, **overall,
                      "average": round(sum(sums) / total / len(sums), 2) if total else None}}


# --- online submissions against each unit's target (chỉ tiêu) ----------------------------------

def online_rates(session: Session, period: Period, scope: Scope) -> list[dict[str, Any]]:
    """Per unit: dossiers received in the period, how many online, the rate (percent) and the
    unit's target for the period's year; ``met`` is None where no target is set."""
    query = (
        select(Dossier.unit_id, func.count(), _count(Dossier.channel == "online"))
        .where(Dossier.received_at >= period.since, Dossier.received_at < period.until, *scope.where())
        .group_by(Dossier.unit_id)
    )
    counts = {unit_id: (total, online) for unit_id, total, online in session.execute(query)}
    units = session.scalars(select(Unit).where(*([Unit.id.in_(scope.unit_ids)] if scope.unit_ids else []))
                            .order_by(Unit.code)).all()
    targets = {t.unit_id: t.online_rate for t in session.scalars(
        select(UnitTarget).where(UnitTarget.year == period.end.year))}
    rows = []
    for unit in units:
        total, online = counts.get(unit.id, (0, 0))
        rate = round(100 * online / total, 1) if total else None
        target = targets.get(unit.id)
        rows.append({"unit": unit.code, "unit_name": unit.name, "received": total, "online": online, "rate": rate,
                     "target": target, "met": None if target is None or rate is None else rate >= target})
    return rows


# --- the tracking register (Mẫu 06) ---------------------------------------------------------------

HANDED_TO = {"justice": "Công chức Tư pháp – Hộ tịch", "culture": "Công chức Văn hoá – Xã hội",
             "leader": "Lãnh đạo UBND"}
END_WORDS = {"not_accepted": "Từ chối tiếp nhận", "withdrawn": "Rút hồ sơ", "stopped": "Dừng xử lý"}


def register_rows(session: Session, unit_id: int, year: int, *, month: int | None = None,
                  limit: int | None = None) -> list[dict[str, Any]]:
    """Circular 01/2018 Mẫu 06: one line per dossier the unit received in ``year`` (or in one
    ``month`` of it), in order of receipt: who, which procedure, received, appointment, the
    processing side it went to, when the result was ready and handed back, early / on time / late.
    Lines are numbered from the start of the year, as in the book."""
    since = datetime.combine(date(year, 1, 1), time.min, VN_TZ)
    until = datetime.combine(date(year + 1, 1, 1), time.min, VN_TZ)
    first = 1
    if month is not None:
        period = Period.month(year, month)
        first += session.scalar(select(func.count()).select_from(Dossier).where(
            Dossier.unit_id == unit_id, Dossier.received_at >= since, Dossier.received_at < period.since)) or 0
        since, until = period.since, period.until
    query = (
        select(Dossier, Procedure.name_vi)
        .join(Procedure, Procedure.id == Dossier.procedure_id)
        .where(Dossier.unit_id == unit_id, Dossier.received_at >= since, Dossier.received_at < until)
        .order_by(Dossier.received_at, Dossier.id)
    )
    if limit is not None:
        query = query.limit(limit)
    found = session.execute(query).all()
    ids = [d.id for d, _ in found]
    handed: dict[int, str] = {}
    returned: dict[int, datetime] = {}
    if ids:
        # The processing side a dossier went to: the role of its first step after the one-stop's.
        for dossier_id, role in session.execute(
            select(Task.dossier_id, Task.role).where(Task.dossier_id.in_(ids), Task.kind == "user",
                                                     Task.role.is_not(None), Task.role != Role.ONESTOP.value)
            .order_by(Task.dossier_id, Task.created_at, Task.id)
        ):
            handed.setdefault(dossier_id, role or "")
        for dossier_id, done in session.execute(
            select(Task.dossier_id, func.max(Task.completed_at)).where(
                Task.dossier_id.in_(ids), Task.spec_name.in_(("hand_back", "hand_back_returned")),
                Task.state == "completed").group_by(Task.dossier_id)
        ):
            if done is not None:
                returned[dossier_id] = done
    rows = []
    for sequence, (dossier, procedure_name) in enumerate(found, start=first):
        note = END_WORDS.get(dossier.outcome or "", "")
        if dossier.apology_at is not None:
            note = (note + "; " if note else "") + "Có phiếu xin lỗi, hẹn lại"
        appointment = dossier.appointment_at or dossier.due_at
        rows.append({
            "sequence": sequence, "code": dossier.code, "applicant_name": dossier.applicant_name,
            "procedure_name": procedure_name, "received_at": to_vn(dossier.received_at),
            "due_at": to_vn(appointment) if appointment else None,
            "handed_to": HANDED_TO.get(handed.get(dossier.id, ""), ""),
            "finished_at": to_vn(dossier.processed_at) if dossier.processed_at else None,
            "returned_at": to_vn(returned[dossier.id]) if dossier.id in returned else None,
            "result": RESULT_WORDS.get(dossier.outcome or "", ""), "note": note,
        })
    return rows


# --- the leader's dashboard -----------------------------------------------------------------------

def monthly_trend(session: Session, scope: Scope, *, months: int = 12,
                  now: datetime | None = None) -> list[dict[str, Any]]:
    """On-time rate of the dossiers finished in each of the last ``months`` months (oldest first)."""
    today = to_vn(now or clock.now()).date()
    year, month = today.year, today.month
    periods = []
    for _ in range(months):
        periods.append(Period.month(year, month))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    periods.reverse()
    # One pass over the months' closed dossiers, one pair of counts per month (VN month bounds).
    evaluated = Dossier.outcome.in_([o.value for o in EVALUATED_OUTCOMES])
    good = Dossier.outcome.in_((Outcome.EARLY.value, Outcome.ON_TIME.value))
    columns = []
    for period in periods:
        within = and_(Dossier.closed_at >= period.since, Dossier.closed_at < period.until)
        columns += [_count(and_(within, good)), _count(within)]
    counts = session.execute(
        select(*columns).where(Dossier.closed_at >= periods[0].since, Dossier.closed_at < periods[-1].until,
                               evaluated, *scope.where())
    ).one()
    result = []
    for index, period in enumerate(periods):
        ontime, finished = int(counts[2 * index] or 0), int(counts[2 * index + 1] or 0)
        result.append({"month": period.start.strftime("%Y-%m"), "finished": finished, "ontime": ontime,
                       "rate": round(ontime / finished, 4) if finished else None})
    return result


def overdue_by_step(session: Session, scope: Scope, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Open user tasks past their deadline, by step name (where the dossiers are stuck)."""
    now = now or clock.now()
    conditions = [open_user_task(), Task.due_at < now]
    if scope.unit_ids is not None:
        conditions.append(Task.unit_id.in_(scope.unit_ids))
    query = select(Task.name, func.count()).where(*conditions).group_by(Task.name).order_by(func.count().desc())
    if scope.procedure_ids is not None:
        query = query.join(Dossier, Dossier.id == Task.dossier_id).where(Dossier.procedure_id.in_(scope.procedure_ids))
    return [{"step": name, "overdue": int(count)} for name, count in session.execute(query.limit(12))]


def workload(session: Session, scope: Scope, *, now: datetime | None = None, days: int = 30) -> list[dict[str, Any]]:
    """Per officer: open tasks assigned (and how many overdue) and tasks completed in the last
    ``days`` days."""
    now = now or clock.now()
    unit_filter = [Task.unit_id.in_(scope.unit_ids)] if scope.unit_ids is not None else []
    open_rows = session.execute(
        select(Task.assignee_id, func.count(), _count(Task.due_at < now))
        .where(open_user_task(), Task.assignee_id.is_not(None), *unit_filter)
        .group_by(Task.assignee_id)
    ).all()
    done_rows = session.execute(
        select(Task.completed_by_id, func.count())
        .where(Task.kind == "user", Task.completed_by_id.is_not(None), Task.completed_at >= now - timedelta(days=days),
               *unit_filter)
        .group_by(Task.completed_by_id)
    ).all()
    people: dict[int, dict[str, Any]] = {}
    for user_id, count, late in open_rows:
        if user_id is None:
            continue
        people.setdefault(user_id, {"open": 0, "overdue": 0, "done": 0}).update(open=int(count), overdue=int(late))
    for user_id, count in done_rows:
        if user_id is None:
            continue
        people.setdefault(user_id, {"open": 0, "overdue": 0, "done": 0})["done"] = int(count)
    users = _labels(session, User, people)
    rows = [{"officer": users[uid].full_name if uid in users else str(uid),
             "username": users[uid].username if uid in users else "", **values}
            for uid, values in people.items()]
    rows.sort(key=lambda r: (-r["open"], -r["done"], r["officer"]))
    return rows


@dataclass(frozen=True)
class Dashboard:
    trend: list[dict[str, Any]]
    overdue: list[dict[str, Any]]
    workload: list[dict[str, Any]]
    month: dict[str, Any]  # this month's counts for the whole scope, with the on-time rate


def dashboard(session: Session, scope: Scope, *, now: datetime | None = None) -> Dashboard:
    now = now or clock.now()
    today = to_vn(now).date()
    month = _summed(ontime_counts(session, Period.month(today.year, today.month), scope, now=now).values())
    return Dashboard(
        trend=monthly_trend(session, scope, now=now),
        overdue=overdue_by_step(session, scope, now=now),
        workload=workload(session, scope, now=now),
        month={**month, "ontime_rate": ontime_rate(month)},
    )
