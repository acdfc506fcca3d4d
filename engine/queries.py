"""Read side for officers: inbox, task and dossier views, history — every query scoped by role
and unit. The inbox reads the task projection only (indexes ix_task_inbox_unit and
ix_task_inbox_assignee), never the workflow JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from engine import clock
from engine.calendar import WorkingCalendar, to_vn
from engine.models import (
    OFFICER_ROLES,
    OPEN_TASK_STATES,
    AuditEvent,
    Dossier,
    Procedure,
    Role,
    Task,
    Unit,
)
from engine.services import Actor, ForbiddenError, NotFoundError, calendar_for, get_dossier, view_dossier

SCOPES = ("mine", "unit", "all")
MAX_PAGE = 200


def is_officer(actor: Actor) -> bool:
    return bool(actor.roles & OFFICER_ROLES)


def require_officer(actor: Actor) -> None:
    if not is_officer(actor) or actor.unit_id is None:
        raise ForbiddenError("officers of a unit only")


@dataclass(frozen=True)
class TaskFilters:
    scope: str = "mine"
    procedure: str | None = None
    step: str | None = None
    due_within_days: int | None = None  # working days; 0 = due today or overdue
    q: str | None = None  # dossier code, applicant name or ID number
    limit: int = 50
    offset: int = 0


def _task_query(actor: Actor, filters: TaskFilters) -> Select[Task, str, str, str, str]:
    query = (
        select(Task, Dossier.code, Dossier.applicant_name, Procedure.code, Procedure.name_vi)
        .join(Dossier, Dossier.id == Task.dossier_id)
        .join(Procedure, Procedure.id == Dossier.procedure_id)
        .where(Task.state.in_(OPEN_TASK_STATES), Task.kind == "user")
    )
    roles = sorted(actor.roles & OFFICER_ROLES)
    if filters.scope == "mine":
        query = query.where(Task.assignee_id == actor.user_id)
    elif filters.scope == "unit":  # my unit's unclaimed tasks for my roles
        query = query.where(Task.unit_id == actor.unit_id, Task.role.in_(roles), Task.assignee_id.is_(None))
    else:  # all tasks of my roles in my unit, claimed or not
        query = query.where(Task.unit_id == actor.unit_id, Task.role.in_(roles))
    if filters.procedure:
        query = query.where(Procedure.code == filters.procedure)
    if filters.step:
        query = query.where(Task.spec_name == filters.step)
    if filters.q:
        term = filters.q.strip()
        query = query.where(or_(Dossier.code == term, Dossier.applicant_id_number == term,
                                Dossier.applicant_name.ilike(f"%{term}%")))
    return query


def list_tasks(session: Session, actor: Actor, filters: TaskFilters) -> dict[str, Any]:
    """Open user tasks visible to the officer, earliest legal deadline first, with counts per tab."""
    require_officer(actor)
    if filters.scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
    cal = calendar_for(session)
    now = clock.now()
    query = _task_query(actor, filters)
    if filters.due_within_days is not None:
        query = query.where(Task.due_at <= _end_of_working_day(cal, now, filters.due_within_days))
    limit = max(1, min(filters.limit, MAX_PAGE))
    rows = session.execute(
        query.order_by(Task.due_at.asc().nulls_last(), Task.created_at, Task.id).limit(limit).offset(filters.offset)
    ).all()
    return {
        "items": [task_row(task, code, name, proc_code, proc_name, cal=cal, now=now)
                  for task, code, name, proc_code, proc_name in rows],
        "limit": limit,
        "offset": filters.offset,
    }


def count_tasks(session: Session, actor: Actor) -> dict[str, int]:
    """How many open tasks each inbox tab holds."""
    require_officer(actor)
    counts = {}
    for scope in SCOPES:
        query = _task_query(actor, TaskFilters(scope=scope)).with_only_columns(func.count(Task.id))
        counts[scope] = int(session.scalar(query) or 0)
    return counts


def _end_of_working_day(cal: WorkingCalendar, now: datetime, days: int) -> datetime:
    day = to_vn(now).date()
    if not cal.is_working_day(day):
        day = cal.next_working_day(day)
    day = cal.add_working_days(day, days)
    return datetime.combine(day, cal.afternoon[1], to_vn(now).tzinfo)


def urgency(days_left: int | None) -> str:
    """Inbox colour: on track / due within 1 working day / overdue."""
    if days_left is None:
        return "on_track"
    if days_left < 0:
        return "overdue"
    return "due_soon" if days_left <= 1 else "on_track"


def task_row(task: Task, dossier_code: str, applicant: str, procedure_code: str, procedure_name: str, *,
             cal: WorkingCalendar, now: datetime) -> dict[str, Any]:
    left = cal.working_days_left(now, task.due_at) if task.due_at else None
    return {
        "id": task.id,
        "name": task.name,
        "step": task.spec_name,
        "dossier": dossier_code,
        "applicant": applicant,
        "procedure": procedure_code,
        "procedure_name": procedure_name,
        "role": task.role,
        "unit_id": task.unit_id,
        "assignee_id": task.assignee_id,
        "state": task.state,
        "due_at": to_vn(task.due_at).isoformat() if task.due_at else None,
        "working_days_left": left,
        "urgency": urgency(left),
    }


def get_task(session: Session, actor: Actor, task_id: str) -> dict[str, Any]:
    """A task with its form (JSON Schema) and its dossier's data, for an officer who may act on it."""
    require_officer(actor)
    row = session.execute(
        select(Task, Dossier, Procedure)
        .join(Dossier, Dossier.id == Task.dossier_id)
        .join(Procedure, Procedure.id == Dossier.procedure_id)
        .where(Task.id == task_id)
    ).first()
    if row is None:
        raise NotFoundError(f"task {task_id} not found")
    task, dossier, procedure = row
    if task.unit_id != actor.unit_id or (task.role not in actor.roles and task.assignee_id != actor.user_id):
        raise ForbiddenError("this task belongs to another unit or role")
    cal = calendar_for(session)
    result = task_row(task, dossier.code, dossier.applicant_name, procedure.code, procedure.name_vi,
                      cal=cal, now=clock.now())
    result["form"] = (procedure.catalogue.get("task_forms") or {}).get(task.form_key or "", {})
    result["dossier_data"] = dossier_view(dossier, procedure, cal=cal)
    return result


def can_read_dossier(actor: Actor, dossier: Dossier) -> bool:
    if Role.AUDITOR.value in actor.roles:
        return True
    if is_officer(actor) and actor.unit_id == dossier.unit_id:
        return True
    return actor.user_id is not None and dossier.citizen_id == actor.user_id


def dossier_view(dossier: Dossier, procedure: Procedure, *, cal: WorkingCalendar) -> dict[str, Any]:
    now = clock.now()
    running = dossier.finished_at is None and dossier.clock_paused_at is None and dossier.due_at is not None
    return {
        "code": dossier.code,
        "procedure": procedure.code,
        "procedure_name": procedure.name_vi,
        "unit_id": dossier.unit_id,
        "status": dossier.status,
        "status_code": dossier.status_code,
        "channel": dossier.channel,
        "applicant": dossier.applicant,
        "form": dossier.form,
        "received_at": to_vn(dossier.received_at).isoformat(),
        "due_at": to_vn(dossier.due_at).isoformat() if dossier.due_at else None,
        "finished_at": to_vn(dossier.finished_at).isoformat() if dossier.finished_at else None,
        "clock_paused": dossier.clock_paused_at is not None,
        "working_days_left": cal.working_days_left(now, dossier.due_at) if running and dossier.due_at else None,
        "fee_due": int((dossier.terms or {}).get("fee_due") or 0),
        "version": dossier.version,
    }


def get_dossier_for(session: Session, actor: Actor, code: str) -> dict[str, Any]:
    """A dossier for the owner, officers of its unit, or an auditor; officers' reads are audited."""
    dossier = get_dossier(session, code)
    if not can_read_dossier(actor, dossier):
        raise ForbiddenError("this dossier belongs to another unit")
    if is_officer(actor) or Role.AUDITOR.value in actor.roles:
        view_dossier(session, code, actor=actor)
    cal = calendar_for(session)
    result = dossier_view(dossier, dossier.procedure, cal=cal)
    result["history"] = [
        {"at": to_vn(e.at).isoformat(), "action": e.action}
        for e in session.scalars(select(AuditEvent).where(
            AuditEvent.dossier_id == dossier.id,
            AuditEvent.action.in_(("dossier_submitted", "status_changed", "case_finished")),
        ).order_by(AuditEvent.id))
    ]
    return result


def history(session: Session, actor: Actor, code: str) -> list[dict[str, Any]]:
    """Every audit event of a case, for officers of its unit and auditors."""
    dossier = get_dossier(session, code)
    if Role.AUDITOR.value not in actor.roles and not (is_officer(actor) and actor.unit_id == dossier.unit_id):
        raise ForbiddenError("officers of the dossier's unit and auditors only")
    view_dossier(session, code, actor=actor, purpose="history")
    return [
        {"at": to_vn(e.at).isoformat(), "actor": e.actor, "action": e.action, "task": e.task_id, "data": e.data}
        for e in session.scalars(select(AuditEvent).where(AuditEvent.dossier_id == dossier.id)
                                 .order_by(AuditEvent.id))
    ]


def track(session: Session, code: str, phone_last4: str) -> dict[str, Any]:
    """Public tracking: the status only, when the last 4 digits of the applicant's phone match."""
    dossier = session.scalar(select(Dossier).where(Dossier.code == code))
    if dossier is None or not phone_last4 or not (dossier.applicant_phone or "").endswith(phone_last4) \
            or len(phone_last4) != 4:
        raise NotFoundError("no dossier with this code and phone")  # same answer: no probing
    return {"code": dossier.code, "status": dossier.status, "status_code": dossier.status_code,
            "due_at": to_vn(dossier.due_at).isoformat() if dossier.due_at else None}


def units(session: Session) -> list[Unit]:
    return list(session.scalars(select(Unit).order_by(Unit.code)))

