"""Read side for officers: inbox, task and dossier views, history — every query scoped by role
and unit. The inbox reads the task projection only (the partial indexes ix_task_open_unit and
ix_task_open_assignee), never the workflow JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, func, or_, select
from sqlalchemy.orm import Session, undefer

from engine import clock, diagram
from engine.calendar import WorkingCalendar, to_vn
from engine.models import (
    OFFICER_ROLES,
    OPEN_TASK_STATES,
    Attachment,
    AuditEvent,
    Dossier,
    Procedure,
    ProcessSpec,
    Role,
    Task,
    Unit,
    User,
    UserRole,
    rate_result,
)
from engine.services import (
    Actor,
    ForbiddenError,
    NotFoundError,
    calendar_for,
    get_dossier,
    task_forms_of,
    view_dossier,
)
from engine.workflow import LIFECYCLE_PROCESS

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


def open_user_task() -> ColumnElement[bool]:
    """Open user tasks, the inbox's rows. The values are rendered into the SQL, not bound, so that
    the planner can prove the predicate of the partial inbox indexes (``OPEN_USER_TASK_SQL``) for
    a prepared statement too."""
    return and_(
        Task.state.in_(bindparam("open_states", OPEN_TASK_STATES, unique=True, expanding=True, literal_execute=True)),
        Task.kind == bindparam("user_kind", "user", unique=True, literal_execute=True),
    )


def _scope(actor: Actor, scope: str) -> list[ColumnElement[bool]]:
    roles = sorted(actor.roles & OFFICER_ROLES)
    if scope == "mine":
        return [Task.assignee_id == actor.user_id]
    if scope == "unit":  # my unit's unclaimed tasks for my roles
        return [Task.unit_id == actor.unit_id, Task.role.in_(roles), Task.assignee_id.is_(None)]
    return [Task.unit_id == actor.unit_id, Task.role.in_(roles)]  # all of my roles in my unit, claimed or not


def _search(term: str) -> ColumnElement[bool]:
    """``q``: a term with digits is a dossier code or an ID number, matched exactly through their
    indexes; other text is a part of the applicant's name (names hold no digits)."""
    if any(ch.isdigit() for ch in term):
        return or_(Dossier.code == term, Dossier.applicant_id_number == term)
    return Dossier.applicant_name.ilike(f"%{term}%")


INBOX_ORDER = (Task.due_at.asc().nulls_last(), Task.created_at, Task.id)


def _page_of_task_ids(actor: Actor, filters: TaskFilters, *, due_by: datetime | None, limit: int) -> Select[str]:
    """The ids of one inbox page, earliest deadline first: from the task projection alone (an
    index range of the partial inbox indexes) unless a filter needs the dossier."""
    query = select(Task.id).where(open_user_task(), *_scope(actor, filters.scope))
    if filters.step:
        query = query.where(Task.spec_name == filters.step)
    if due_by is not None:
        query = query.where(Task.due_at <= due_by)
    if filters.procedure or filters.q:
        query = query.join(Dossier, Dossier.id == Task.dossier_id)
    if filters.procedure:
        query = query.join(Procedure, Procedure.id == Dossier.procedure_id).where(Procedure.code == filters.procedure)
    if filters.q and filters.q.strip():
        query = query.where(_search(filters.q.strip()))
    return query.order_by(*INBOX_ORDER).limit(limit).offset(filters.offset)


def list_tasks(session: Session, actor: Actor, filters: TaskFilters) -> dict[str, Any]:
    """Open user tasks visible to the officer, earliest legal deadline first, with counts per tab."""
    require_officer(actor)
    if filters.scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
    cal = calendar_for(session)
    now = clock.now()
    due_by = _end_of_working_day(cal, now, filters.due_within_days) if filters.due_within_days is not None else None
    limit = max(1, min(filters.limit, MAX_PAGE))
    # Page first, then join: the dossier and procedure are read for the rows shown only.
    page = _page_of_task_ids(actor, filters, due_by=due_by, limit=limit).subquery()
    rows = session.execute(
        select(Task, Dossier.code, Dossier.applicant_name, Procedure.code, Procedure.name_vi)
        .join(page, page.c.id == Task.id)
        .join(Dossier, Dossier.id == Task.dossier_id)
        .join(Procedure, Procedure.id == Dossier.procedure_id)
        .order_by(*INBOX_ORDER)
    ).all()
    return {
        "items": [task_row(task, code, name, proc_code, proc_name, cal=cal, now=now)
                  for task, code, name, proc_code, proc_name in rows],
        "limit": limit,
        "offset": filters.offset,
    }


def count_tasks(session: Session, actor: Actor) -> dict[str, int]:
    """How many open tasks each inbox tab holds: index-only scans of the task projection (every
    task has its dossier and procedure, so the counts need no join)."""
    require_officer(actor)
    return {
        scope: int(session.scalar(select(func.count()).select_from(Task)
                                  .where(open_user_task(), *_scope(actor, scope))) or 0)
        for scope in SCOPES
    }


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
    result["form"] = task_forms_of(dossier).get(task.form_key or "", {})
    result["dossier_data"] = dossier_view(dossier, procedure, cal=cal)
    return result


def can_read_dossier(actor: Actor, dossier: Dossier) -> bool:
    if Role.AUDITOR.value in actor.roles:  # the province, or the one unit the account is bound to
        return actor.unit_id is None or actor.unit_id == dossier.unit_id
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
    dossier = readable_dossier(session, actor, code, purpose="view")
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


def readable_dossier(session: Session, actor: Actor, code: str, *, purpose: str) -> Dossier:
    """The dossier when the caller may read it (as :func:`get_dossier_for`); officers' and
    auditors' reads are audited with ``purpose``."""
    dossier = get_dossier(session, code)
    if not can_read_dossier(actor, dossier):
        raise ForbiddenError("this dossier belongs to another unit")
    if is_officer(actor) or Role.AUDITOR.value in actor.roles:
        view_dossier(session, code, actor=actor, purpose=purpose)
    return dossier


def attachment_row(attachment: Attachment) -> dict[str, Any]:
    return {
        "id": attachment.id,
        "kind": attachment.kind,
        "name": attachment.name,
        "mime": attachment.mime,
        "size": attachment.size,
        "sha256": attachment.sha256,
        "uploaded_at": to_vn(attachment.uploaded_at).isoformat(),
    }


def list_documents(session: Session, actor: Actor, code: str) -> list[dict[str, Any]]:
    """A dossier's files (the applicant's attachments; later the generated PDFs), oldest first,
    for the owner, officers of its unit and auditors. Contents are not loaded."""
    return attachments_of(session, readable_dossier(session, actor, code, purpose="documents"))


def get_attachment(session: Session, actor: Actor, code: str, attachment_id: int) -> Attachment:
    """One file of a dossier with its content, under the dossier's read rules; audited for
    officers and auditors (a scanned ID card is personal data)."""
    dossier = get_dossier(session, code)
    if not can_read_dossier(actor, dossier):
        raise ForbiddenError("this dossier belongs to another unit")
    attachment = session.scalar(
        select(Attachment).where(Attachment.id == attachment_id, Attachment.dossier_id == dossier.id)
        .options(undefer(Attachment.content))
    )
    if attachment is None:
        raise NotFoundError(f"dossier {code} has no attachment {attachment_id}")
    if is_officer(actor) or Role.AUDITOR.value in actor.roles:
        view_dossier(session, code, actor=actor, purpose=f"attachment {attachment_id}")
    return attachment


def history(session: Session, actor: Actor, code: str, *, purpose: str = "history") -> list[dict[str, Any]]:
    """Every audit event of a case, oldest first, for officers of its unit and auditors; the read
    is recorded with ``purpose``."""
    dossier = get_dossier(session, code)
    if not can_read_dossier(actor, dossier) or not (is_officer(actor) or Role.AUDITOR.value in actor.roles):
        raise ForbiddenError("officers of the dossier's unit and auditors only")
    view_dossier(session, code, actor=actor, purpose=purpose)
    return [
        {"id": e.id, "at": to_vn(e.at).isoformat(), "actor": e.actor, "action": e.action, "task": e.task_id,
         "data": e.data, "hash": e.hash}
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


# --- case page ------------------------------------------------------------------------------------

def handover_result(completed_at: datetime, due_at: datetime | None) -> str:
    """Mẫu 05 result of one step: the dossier's rule applied to the step's own deadline."""
    return rate_result(completed_at, due_at).value


def control_sheet(session: Session, dossier: Dossier) -> list[dict[str, Any]]:
    """Circular 01/2018 Mẫu 05 (processing control sheet): one row per hand-over between steps —
    who handed the dossier to whom and when, and whether the step was early, on time or late."""
    tasks = session.scalars(
        select(Task).where(Task.dossier_id == dossier.id, Task.kind == "user").order_by(Task.created_at, Task.id)
    ).all()
    names = {u.id: u for u in session.scalars(select(User).where(User.id.in_(
        {t.completed_by_id for t in tasks if t.completed_by_id} | {t.assignee_id for t in tasks if t.assignee_id})))}
    rows = []
    for task in tasks:
        officer = names.get(task.completed_by_id or task.assignee_id or -1)
        rows.append({
            "task": task.name,
            "step": task.spec_name,
            "role": task.role,
            "received_at": to_vn(task.created_at).isoformat(),
            "due_at": to_vn(task.due_at).isoformat() if task.due_at else None,
            "completed_at": to_vn(task.completed_at).isoformat() if task.completed_at else None,
            "officer": officer.full_name if officer else None,
            "decision": task.decision,
            "result": handover_result(task.completed_at, task.due_at) if task.completed_at else None,
            "state": task.state,
        })
    return rows


def diagram_markers(session: Session, dossier: Dossier) -> dict[str, str]:
    """BPMN element id → completed | active | overdue, from the case's task projection."""
    now = clock.now()
    markers: dict[str, str] = {}
    for task in session.scalars(select(Task).where(Task.dossier_id == dossier.id).order_by(Task.created_at)):
        if task.state in OPEN_TASK_STATES:
            overdue = task.due_at is not None and task.due_at < now
            markers[task.spec_name] = "overdue" if overdue else "active"
        elif markers.get(task.spec_name) not in ("active", "overdue"):
            markers[task.spec_name] = "completed"
    return markers


MARKER_RANK = {"completed": 0, "active": 1, "overdue": 2}


def case_diagrams(session: Session, dossier: Dossier) -> list[dict[str, Any]]:
    """The processes the case ran through, each drawable by bpmn-js (layout added where the
    model has none), with its elements marked completed / active / overdue. A step inside an
    event subprocess marks the (collapsed) subprocess."""
    spec = session.get(ProcessSpec, dossier.model_version.content_hash)
    if spec is None:
        return []
    markers = diagram_markers(session, dossier)
    result = []
    for xml in [*(spec.library or []), spec.bpmn_xml]:
        document = diagram.with_layout(xml)
        for view in document.views:
            marked: dict[str, str] = {}
            for element_id, state in markers.items():
                shown = view.shown_as.get(element_id)
                if shown and MARKER_RANK[state] >= MARKER_RANK.get(marked.get(shown, ""), -1):
                    marked[shown] = state
            if marked or view.process_id == LIFECYCLE_PROCESS:
                result.append({"name": view.name, "process": view.process_id, "diagram_id": view.diagram_id,
                               "xml": document.xml, "markers": marked})
    return result


def latest_proposals(session: Session, dossier_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The specialist's last proposal (the draft result the leader decides on) of each dossier,
    read in one query."""
    proposals: dict[int, dict[str, Any]] = {}
    if not dossier_ids:
        return proposals
    for event in session.scalars(select(AuditEvent).where(
            AuditEvent.dossier_id.in_(dossier_ids), AuditEvent.action == "task_completed")
            .order_by(AuditEvent.id.desc())):
        form = (event.data or {}).get("form") or {}
        dossier_id = event.dossier_id
        if dossier_id is not None and dossier_id not in proposals \
                and str(form.get("decision", "")).startswith("propose_"):
            proposals[dossier_id] = {"at": to_vn(event.at).isoformat(), "actor": event.actor, "form": form}
    return proposals


def latest_proposal(session: Session, dossier: Dossier) -> dict[str, Any] | None:
    return latest_proposals(session, [dossier.id]).get(dossier.id)


def unit_officers(session: Session, unit_id: int, role: str | None) -> list[User]:
    """Active officers of a unit holding ``role`` (candidates for a reassignment)."""
    query = select(User).where(User.unit_id == unit_id, User.is_active).order_by(User.full_name)
    if role:
        query = query.join(UserRole, UserRole.user_id == User.id).where(UserRole.role == role)
    return list(session.scalars(query))


def approval_queue(session: Session, actor: Actor, *, form_keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """The leader's open approvals (results and apology letters to sign), earliest deadline first,
    each with the specialist's proposal."""
    require_officer(actor)
    if Role.LEADER.value not in actor.roles:
        raise ForbiddenError("leaders only")
    cal = calendar_for(session)
    now = clock.now()
    rows = session.execute(
        select(Task, Dossier, Procedure.code, Procedure.name_vi)
        .join(Dossier, Dossier.id == Task.dossier_id)
        .join(Procedure, Procedure.id == Dossier.procedure_id)
        .where(open_user_task(), Task.unit_id == actor.unit_id, Task.role == Role.LEADER.value,
               Task.form_key.in_(form_keys),
               or_(Task.assignee_id.is_(None), Task.assignee_id == actor.user_id))
        .order_by(Task.due_at.asc().nulls_last(), Task.id)
        .limit(MAX_PAGE)
    ).all()
    proposals = latest_proposals(session, [dossier.id for _task, dossier, _code, _name in rows])
    result = []
    for task, dossier, proc_code, proc_name in rows:
        item = task_row(task, dossier.code, dossier.applicant_name, proc_code, proc_name, cal=cal, now=now)
        item["form_key"] = task.form_key
        item["proposal"] = proposals.get(dossier.id)
        item["form"] = dossier.form
        result.append(item)
    return result


def attachments_of(session: Session, dossier: Dossier) -> list[dict[str, Any]]:
    """The dossier's attachments, metadata only (the caller has checked access)."""
    rows = session.scalars(select(Attachment).where(Attachment.dossier_id == dossier.id).order_by(Attachment.id))
    return [attachment_row(a) for a in rows]


# --- citizen portal -------------------------------------------------------------------------------

CITIZEN_EVENTS = ("dossier_submitted", "status_changed", "supplement_submitted", "due_date_changed",
                  "payment_created", "payment_failed", "postal_picked_up", "postal_in_transit",
                  "assisted_submission_confirmed", "draft_confirmed", "draft_corrections_requested",
                  "message_received", "case_finished")
CITIZEN_MESSAGES = ("payment_received", "postal_delivered", "postal_returned")


def citizen_dossiers(session: Session, actor: Actor) -> list[dict[str, Any]]:
    """The citizen's own dossiers, newest first, with working days left."""
    if actor.user_id is None:
        return []
    cal = calendar_for(session)
    rows = session.execute(
        select(Dossier, Procedure).join(Procedure, Procedure.id == Dossier.procedure_id)
        .where(Dossier.citizen_id == actor.user_id).order_by(Dossier.id.desc()).limit(MAX_PAGE)
    ).all()
    return [dossier_view(dossier, procedure, cal=cal) for dossier, procedure in rows]


def citizen_history(session: Session, dossier: Dossier) -> list[dict[str, Any]]:
    """What the applicant sees of a case's history: submissions, status changes, moves of the date."""
    return [
        {"at": to_vn(e.at).isoformat(), "action": e.action, "data": {
            k: v for k, v in (e.data or {}).items() if k in ("from", "to", "reason", "status_code", "amount",
                                                              "tracking", "typed_by", "message", "note")}}
        for e in session.scalars(select(AuditEvent).where(
            AuditEvent.dossier_id == dossier.id, AuditEvent.action.in_(CITIZEN_EVENTS)).order_by(AuditEvent.id))
        if e.action != "message_received" or (e.data or {}).get("message") in CITIZEN_MESSAGES
    ]

