"""The case service: the only write path for dossiers, tasks, timers and service calls.

Every function takes the session as first argument and keyword-only options, flushes but does not
commit (the request, job or command owns the transaction), and records audit events. Every engine
step on a case runs under the dossier's row lock (``SELECT … FOR UPDATE``) and bumps its version.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time as _time
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.task import Task as SpiffTask
from SpiffWorkflow.util.task import TaskState as SpiffState
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from engine import clock, forms, workflow
from engine.audit import record_event
from engine.calendar import VN_TZ, CalendarDay, WorkingCalendar, load_seed_days, to_vn
from engine.models import (
    OFFICER_ROLES,
    OPEN_TASK_STATES,
    Attachment,
    AttachmentKind,
    CalendarEntry,
    ClockPause,
    Dossier,
    DossierCodeCounter,
    DossierStatus,
    Procedure,
    ProcessModelVersion,
    ProcessSpec,
    Role,
    ServiceCall,
    Task,
    TaskState,
    Timer,
    Unit,
    User,
    WorkflowState,
)

SYSTEM = "system"
# Lane names used across procedures, and the role each gives; a procedure.yaml may add others.
DEFAULT_LANE_ROLES: dict[str, str] = {
    **{role.value: role.value for role in OFFICER_ROLES},
    "Bộ phận Một cửa": "onestop",
    "Tư pháp – Hộ tịch": "justice",
    "Văn hoá – Xã hội": "culture",
    "Lãnh đạo UBND": "leader",
}
# While the legal clock is stopped, deadline timers wait here (far future) until it restarts.
PAUSED_UNTIL = datetime(9999, 1, 1, tzinfo=VN_TZ)
MAX_SERVICE_ATTEMPTS = 8
MAX_ENGINE_PASSES = 50
# Called with the workflow after each engine step, before history compaction (instrumentation:
# the procedure tests measure which sequence flows were taken).
STEP_OBSERVERS: list[Callable[[Dossier, BpmnWorkflow], None]] = []


# --- errors -----------------------------------------------------------------------------------


class ServiceError(Exception):
    """A business rule refused the command. ``code`` is stable for API clients."""

    code = "invalid"
    http_status = 400

    def __init__(self, message: str, *, fields: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.fields = dict(fields or {})


class NotFoundError(ServiceError):
    code = "not_found"
    http_status = 404


class ConflictError(ServiceError):
    """The state changed under the caller: task already completed, claimed by someone else…"""

    code = "conflict"
    http_status = 409


class ForbiddenError(ServiceError):
    code = "forbidden"
    http_status = 403


class InvalidDataError(ServiceError):
    code = "invalid_data"
    http_status = 422


@dataclass(frozen=True)
class Actor:
    """Who does something: a user, or the system/worker."""

    name: str
    user_id: int | None = None
    roles: frozenset[str] = frozenset()
    unit_id: int | None = None

    @classmethod
    def of(cls, user: User) -> Actor:
        return cls(user.username, user.id, user.roles, user.unit_id)


SYSTEM_ACTOR = Actor(SYSTEM)


def _audit(session: Session, actor: Actor, action: str, dossier: Dossier | None = None, **kw: Any) -> None:
    record_event(
        session,
        action=action,
        actor=actor.name,
        actor_id=actor.user_id,
        dossier_id=dossier.id if dossier else None,
        dossier_code=dossier.code if dossier else None,
        **kw,
    )


# --- calendar ---------------------------------------------------------------------------------

_calendar_cache: dict[str, tuple[float, WorkingCalendar]] = {}
CALENDAR_TTL = 60.0


def calendar_for(session: Session) -> WorkingCalendar:
    """The working-day calendar from the holiday table (cached for a minute per database)."""
    key = str(session.get_bind().engine.url)
    hit = _calendar_cache.get(key)
    if hit and _time.monotonic() - hit[0] < CALENDAR_TTL:
        return hit[1]
    rows = session.scalars(select(CalendarEntry)).all()
    days = [CalendarDay(day=r.day, kind=r.kind, name=r.name, source=r.source or "") for r in rows]
    cal = WorkingCalendar(days)
    _calendar_cache[key] = (_time.monotonic(), cal)
    return cal


def invalidate_calendar() -> None:
    _calendar_cache.clear()


def seed_calendar(session: Session) -> int:
    """Insert the shipped holiday seed for days not in the table yet (admin edits are kept)."""
    existing = set(session.scalars(select(CalendarEntry.day)).all())
    added = 0
    for d in load_seed_days():
        if d.day not in existing:
            session.add(CalendarEntry(day=d.day, kind=d.kind, name=d.name, source=d.source or None))
            added += 1
    session.flush()
    invalidate_calendar()
    return added


def fee_due(fee: Mapping[str, Any], form: Mapping[str, Any]) -> int:
    """The fee in VND from the catalogue's fee rule and the form (pages, copies).

    Kinds: free; fixed (``amount_vnd``, times ``copies`` when ``per_copy``); per_page
    (copy certification, Circular 226/2016: ``first_pages`` pages at ``page_vnd``, then
    ``next_page_vnd`` each, capped at ``max_vnd`` per copy); province (``amount_vnd`` set by the
    province; 0 until an admin sets it). ``conditions`` (``[{"if": {field: value}, kind…}]``): the
    first whose form values all match replaces the rule (a late birth registration pays the
    provincial fee).
    """
    for condition in fee.get("conditions") or []:
        when = condition.get("if") or {}
        if when and all(form.get(name) == value for name, value in when.items()):
            fee = {k: v for k, v in condition.items() if k != "if"}
            break
    kind = fee.get("kind", "free")
    copies = max(1, int(form.get("copies", 1) or 1))
    if kind == "free":
        return 0
    if kind == "per_page":
        pages = max(1, int(form.get("pages", 1) or 1))
        first = int(fee.get("first_pages", 2))
        per_copy = min(pages, first) * int(fee["page_vnd"]) + max(0, pages - first) * int(fee["next_page_vnd"])
        return min(per_copy, int(fee.get("max_vnd", per_copy))) * copies
    amount = int(fee.get("amount_vnd") or 0)
    return amount * copies if fee.get("per_copy") else amount


def procedure_terms(procedure: Procedure, received: datetime) -> dict[str, Any]:
    """The legal time, fee and decider in force for a dossier received at ``received``.

    The law changes (Decree 120/2025 and 147/2025 apply from 1/7/2025 to 1/3/2027): a
    procedure.yaml may list ``rules`` with ``effective_from`` / ``effective_to`` (ISO dates, the
    end exclusive) that override the entry's legal_time, fee and decides. A case keeps the terms
    in force when it was received.
    """
    catalogue = procedure.catalogue or {}
    terms: dict[str, Any] = {
        "legal_time": dict(catalogue.get("legal_time")
                           or {"value": procedure.legal_time_value, "unit": procedure.legal_time_unit}),
        "fee": dict(catalogue.get("fee") or {"kind": "free"}),
        "decides": catalogue.get("decides"),
        "rule": None,
    }
    day = to_vn(received).date().isoformat()
    for rule in catalogue.get("rules") or []:
        start, end = str(rule.get("effective_from") or ""), str(rule.get("effective_to") or "")
        if (not start or start <= day) and (not end or day < end):
            terms.update({k: rule[k] for k in ("legal_time", "fee", "decides") if k in rule})
            terms["rule"] = {"effective_from": start or None, "effective_to": end or None}
    return terms


SAME_DAY_WARNING = timedelta(hours=2)


def warning_for(cal: WorkingCalendar, due: datetime, since: datetime) -> datetime:
    """When to warn that a deadline is near: 1 working day before it (the last moment for an
    apology, Decree 61/2018 art. 19); for a deadline closer than that, 2 hours before it."""
    moment = cal.warning_moment(due)
    if moment <= since:
        moment = max(since, due - SAME_DAY_WARNING)
    return moment


def dossier_terms(dossier: Dossier) -> dict[str, Any]:
    """The terms stored at receipt (older rows without them: recomputed for their receipt date)."""
    return dossier.terms or procedure_terms(dossier.procedure, dossier.received_at)


def legal_due(cal: WorkingCalendar, terms: Mapping[str, Any], received: datetime) -> datetime:
    """The due moment of a dossier with these terms received (or restarted) at ``received``."""
    legal_time = terms["legal_time"]
    value, unit = float(legal_time.get("value") or 0), legal_time["unit"]
    if unit == "same_day" or (unit == "working_days" and value == 0):
        return cal.due(received, same_day=True)
    if unit == "working_days":
        return cal.due(received, working_days=int(value))
    if unit == "calendar_days":
        return cal.due(received, calendar_days=int(value))
    return cal.due(received, hours=float(value))


def task_deadline(cal: WorkingCalendar, spec: str, created: datetime) -> datetime:
    """Due moment of a task from its BPMN ``deadline`` property: ``same_day``,
    ``working_days:N``, ``working_hours:H`` or ``calendar_days:N``."""
    kind, _, amount = spec.partition(":")
    try:
        if kind == "same_day":
            return cal.due(created, same_day=True)
        if kind == "working_days":
            return cal.due(created, working_days=int(amount))
        if kind == "working_hours":
            return cal.due(created, hours=float(amount))
        if kind == "calendar_days":
            return cal.due(created, calendar_days=int(amount))
    except ValueError as exc:
        raise InvalidDataError(f"bad task deadline {spec!r}: {exc}") from exc
    raise InvalidDataError(f"unknown task deadline {spec!r}")


# --- process models ---------------------------------------------------------------------------


def deploy_process_model(
    session: Session,
    procedure: Procedure,
    bpmn_xml: str,
    *,
    actor: Actor,
    library: Sequence[str] = (),
    lane_roles: Mapping[str, str] | None = None,
    comment: str = "",
    task_forms: Mapping[str, Any] | None = None,
    redeploys_version: int | None = None,
) -> ProcessModelVersion:
    """Parse and store a new version of a procedure's process; the BPMN is stored once per hash.
    ``task_forms`` are the forms this version's user tasks are checked against."""
    parsed = workflow.parse_model(bpmn_xml, library=library)
    roles = {**DEFAULT_LANE_ROLES, **(lane_roles or {})}
    roles = {lane: role for lane, role in roles.items() if lane in parsed.lanes}
    unmapped = sorted(lane for lane in parsed.lanes if lane not in roles)
    if unmapped:
        raise InvalidDataError(
            f"lanes without a role: {', '.join(unmapped)}",
            fields={"lane_roles": [f"lane {lane!r} has no role" for lane in unmapped]},
        )
    if session.get(ProcessSpec, parsed.content_hash) is None:
        session.add(
            ProcessSpec(
                content_hash=parsed.content_hash,
                process_id=parsed.process_id,
                bpmn_xml=parsed.bpmn_xml,
                library=list(parsed.library),
                spec_json=parsed.spec_json,
            )
        )
    last = session.scalar(
        select(func.max(ProcessModelVersion.version)).where(ProcessModelVersion.procedure_id == procedure.id)
    )
    version = ProcessModelVersion(
        procedure_id=procedure.id,
        version=(last or 0) + 1,
        content_hash=parsed.content_hash,
        lane_roles=roles,
        deployed_by_id=actor.user_id,
        deployed_at=clock.now(),
        comment=comment,
        task_forms=dict(task_forms) if task_forms is not None else None,
        redeploys_version=redeploys_version,
    )
    session.add(version)
    session.flush()
    record_event(
        session,
        action="process_model_deployed",
        actor=actor.name,
        actor_id=actor.user_id,
        data={"procedure": procedure.code, "version": version.version, "hash": parsed.content_hash,
              "comment": comment, **({"redeploys_version": redeploys_version} if redeploys_version else {})},
    )
    return version


def current_version(session: Session, procedure: Procedure) -> ProcessModelVersion:
    version = session.scalar(
        select(ProcessModelVersion)
        .where(ProcessModelVersion.procedure_id == procedure.id)
        .order_by(ProcessModelVersion.version.desc())
        .limit(1)
    )
    if version is None:
        raise ServiceError(f"procedure {procedure.code} has no deployed process model")
    return version


# --- dossier codes ----------------------------------------------------------------------------


def next_dossier_code(session: Session, unit: Unit, received: datetime) -> str:
    """``<agency code>-YYMMDD-NNNN``: the sequence is per unit and day, incremented atomically
    with an upsert so that concurrent submissions never share a number."""
    day = to_vn(received).date()
    dialect = session.get_bind().dialect.name
    insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert_fn(DossierCodeCounter).values(unit_id=unit.id, day=day, last=1)
    upsert = stmt.on_conflict_do_update(
        index_elements=[DossierCodeCounter.unit_id, DossierCodeCounter.day],
        set_={"last": DossierCodeCounter.last + 1},
    ).returning(DossierCodeCounter.last)
    number = session.execute(upsert).scalar_one()
    if number > 9999:
        raise ServiceError(f"unit {unit.code} received more than 9999 dossiers on {day}")
    return f"{unit.agency_code}-{day:%y%m%d}-{number:04d}"


# --- loading and saving a case ----------------------------------------------------------------


def lock_dossier(session: Session, dossier_id: int) -> Dossier:
    dossier = session.scalar(
        select(Dossier).where(Dossier.id == dossier_id).with_for_update().execution_options(populate_existing=True)
    )
    if dossier is None:
        raise NotFoundError(f"dossier {dossier_id} not found")
    return dossier


def get_dossier(session: Session, code: str) -> Dossier:
    dossier = session.scalar(select(Dossier).where(Dossier.code == code))
    if dossier is None:
        raise NotFoundError(f"dossier {code} not found", fields={"code": ["unknown dossier code"]})
    return dossier


@dataclass(frozen=True)
class _VersionInfo:
    content_hash: str
    lane_roles: Mapping[str, str]


def _version_info(session: Session, version_id: int) -> _VersionInfo:
    """Hash and lane roles of a deployed version (not cached across sessions: SQLite may reuse
    the id of a rolled-back version)."""
    version = session.get(ProcessModelVersion, version_id)
    if version is None:
        raise NotFoundError(f"process model version {version_id} not found")
    return _VersionInfo(version.content_hash, dict(version.lane_roles))


def _spec_loader(session: Session, content_hash_: str) -> Callable[[], str]:
    def load() -> str:
        spec_json = session.scalar(select(ProcessSpec.spec_json).where(ProcessSpec.content_hash == content_hash_))
        if spec_json is None:
            raise NotFoundError(f"process spec {content_hash_} not found")
        return spec_json

    return load


def specs_of(session: Session, content_hash_: str) -> tuple[Any, dict[str, Any]]:
    """The parsed spec and subprocess specs of a stored model (cached per content hash)."""
    return workflow._specs_for(content_hash_, _spec_loader(session, content_hash_))


def load_workflow(session: Session, dossier: Dossier) -> BpmnWorkflow:
    state = session.get(WorkflowState, dossier.id)
    if state is None:
        raise NotFoundError(f"dossier {dossier.code} has no workflow state")
    workflow.current_calendar.set(calendar_for(session))  # for process functions on working days
    return workflow.load_state(state.state, state.content_hash, _spec_loader(session, state.content_hash))


def _run_engine(wf: BpmnWorkflow) -> list[SpiffTask]:
    """Run engine tasks until only people, workers or events are awaited.

    ``do_engine_steps`` ends by refreshing timers, which leaves a timer that became due (by the
    project clock) READY but not run (DESIGN.md): run again while engine tasks are READY.
    """
    completed: list[SpiffTask] = []
    for _ in range(MAX_ENGINE_PASSES):
        wf.do_engine_steps(did_complete_task=completed.append)
        if any(t.data.get("end_case") is True for t in completed):
            wf.cancel()  # withdrawal or stop: every other branch of the case ends here
            return completed
        if not any(not t.task_spec.manual for t in wf.get_tasks(state=SpiffState.READY)):
            return completed
    raise ServiceError(f"the process did not settle after {MAX_ENGINE_PASSES} engine passes")


def _save_case(
    session: Session,
    dossier: Dossier,
    wf: BpmnWorkflow,
    *,
    actor: Actor,
    completed: Iterable[SpiffTask] = (),
    cal: WorkingCalendar | None = None,
) -> None:
    """Persist the workflow and bring every projection (status, tasks, timers, calls) up to date."""
    now = clock.now()
    cal = cal or calendar_for(session)
    completed = list(completed)
    for task in completed:
        due = workflow.timer_due(task)
        if due is not None:
            _audit(session, SYSTEM_ACTOR, "timer_fired", dossier, task_id=str(task.id),
                   data={"timer": task.task_spec.bpmn_name or task.task_spec.name,
                         "due_at": due.isoformat(), "late_seconds": round((now - due).total_seconds(), 3)})
    _apply_status(session, dossier, wf, completed, actor=actor, cal=cal)
    _sync_tasks(session, dossier, wf, cal=cal, now=now)  # before compaction drops finished tasks
    for observe in STEP_OBSERVERS:
        observe(dossier, wf)
    workflow.compact_history(wf)
    blob, size = workflow.dump_state(wf)
    state = session.get(WorkflowState, dossier.id)
    spec_hash = _version_info(session, dossier.model_version_id).content_hash
    if state is None:
        state = WorkflowState(dossier_id=dossier.id, content_hash=spec_hash, state=blob, size=size, updated_at=now)
        session.add(state)
    else:
        state.state, state.size, state.updated_at = blob, size, now
    state.completed = wf.is_completed()
    _sync_timers(session, dossier, wf)
    if wf.is_completed() and dossier.finished_at is None:
        dossier.finished_at = now
        _audit(session, actor, "case_finished", dossier, data={"status": dossier.status})
    flag_modified(dossier, "status")  # every engine step bumps the optimistic version column
    session.flush()


def save_migrated_case(session: Session, dossier: Dossier, wf: BpmnWorkflow, *, actor: Actor) -> None:
    """Save a case just moved to another model version: its open tasks keep their ids, deadlines
    and assignees; their label, lane and role follow the new version (an assignee whose task
    moved to another role is released)."""
    lane_roles = _version_info(session, dossier.model_version_id).lane_roles
    open_now = {str(t.id): t for t in workflow.open_tasks(wf)}
    for row in session.scalars(select(Task).where(Task.dossier_id == dossier.id, Task.state.in_(OPEN_TASK_STATES))):
        spiff_task = open_now.get(row.id)
        if spiff_task is None:
            continue
        lane = getattr(spiff_task.task_spec, "lane", None)
        role = lane_roles.get(lane) if lane else None
        if role != row.role:
            row.assignee_id = row.claimed_at = None
        row.name, row.lane, row.role = workflow.task_label(spiff_task), lane, role
        row.form_key = workflow.task_properties(spiff_task).get("form")
    _save_case(session, dossier, wf, actor=actor)


def _apply_status(
    session: Session,
    dossier: Dossier,
    wf: BpmnWorkflow,
    completed: Iterable[SpiffTask],
    *,
    actor: Actor,
    cal: WorkingCalendar,
) -> None:
    """Processes set ``dossier_status`` in a script; the last value set in this step wins.

    Only a task that changed the value counts: task data is inherited, so a task on a parallel
    branch still carries the value from before the split and must not bring it back.
    """
    new_status, setter = None, None
    for task in completed:
        value = task.data.get("dossier_status")
        inherited = task.parent.data.get("dossier_status") if task.parent is not None else None
        if value is not None and value != inherited:
            new_status, setter = value, task
    if new_status is None or new_status == dossier.status:
        return
    try:
        status = DossierStatus(new_status)
    except ValueError as exc:
        raise ServiceError(f"process set unknown dossier_status {new_status!r}") from exc
    old = dossier.status
    dossier.status = status.value
    _audit(session, actor, "status_changed", dossier, data={"from": old, "to": status.value,
                                                             "status_code": status.national_code})
    if status is DossierStatus.SUPPLEMENT_REQUESTED:
        dossier.supplement_count = (dossier.supplement_count or 0) + 1
        _pause_clock(session, dossier, wf, reason="supplement")
    refused = setter is not None and setter.data.get("proposal") == "propose_refuse"
    dossier.close(status, at=clock.now(), refused=refused)
    if status.value in OUTBOX_NOTIFIED_STATUSES:
        notify_applicant(session, dossier)


# The lifecycle process sends its own notice (with the form it issues) for acceptance (Mẫu 01),
# supplement (Mẫu 02), refusal (Mẫu 03), the result and the apology (Mẫu 04); `processing` follows
# acceptance in the same step. The other changes reach the applicant through the outbox.
OUTBOX_NOTIFIED_STATUSES = frozenset({"submitted", "payment_requested", "withdrawal_requested", "stopped",
                                      "returned"})


def queue_outbox(session: Session, dossier: Dossier, operation: str, params: Mapping[str, Any]) -> str:
    """A message to send, committed with the case change (transactional outbox): the worker calls
    the connector operation with the row id as idempotency key and retries with back-off."""
    call_id = str(uuid.uuid4())
    now = clock.now()
    session.add(ServiceCall(id=call_id, dossier_id=dossier.id, operation=operation, params=dict(params),
                            status="pending", created_at=now, next_attempt_at=now))
    session.info.setdefault("motcua_new_service_calls", []).append(call_id)
    return call_id


def notify_applicant(session: Session, dossier: Dossier) -> None:
    """Tell a citizen who follows the dossier in the portal (SMS, and e-mail when known) that its
    status changed. Walk-in applicants without an account get the lifecycle's own notices."""
    email = (dossier.applicant or {}).get("email")
    if dossier.citizen_id is None or (not dossier.applicant_phone and not email):
        return
    queue_outbox(session, dossier, "notify.status_changed",
                 {"dossier_code": dossier.code, "template": dossier.status, "status_code": dossier.status_code,
                  "to": dossier.applicant_phone or "", "email": email or ""})


def _pause_clock(session: Session, dossier: Dossier, wf: BpmnWorkflow, *, reason: str) -> None:
    """Decree 61/2018 art.19: a supplement request stops the legal clock."""
    if dossier.clock_paused_at is not None:
        return
    now = clock.now()
    dossier.clock_paused_at = now
    session.add(ClockPause(dossier_id=dossier.id, reason=reason, started_at=now))
    _set_deadlines(wf, {"due_at": PAUSED_UNTIL, "warning_at": PAUSED_UNTIL})


def _resume_clock(session: Session, dossier: Dossier, wf: BpmnWorkflow, *, cal: WorkingCalendar) -> None:
    """The complete dossier arrived: the full legal time restarts from now (Decree 61/2018 art.19)."""
    if dossier.clock_paused_at is None:
        return
    now = clock.now()
    pause = session.scalar(
        select(ClockPause).where(ClockPause.dossier_id == dossier.id, ClockPause.ended_at.is_(None))
    )
    if pause is not None:
        pause.ended_at = now
    dossier.clock_paused_at = None
    _set_due(session, dossier, wf, legal_due(cal, dossier_terms(dossier), now), cal=cal)


def _set_due(
    session: Session,
    dossier: Dossier,
    wf: BpmnWorkflow,
    new_due: datetime,
    *,
    cal: WorkingCalendar,
    actor: Actor | None = None,
    reason: str | None = None,
) -> None:
    """Give the dossier a new due moment: the process's deadline timers and the open tasks follow
    it; with a ``reason``, the change is audited."""
    old = dossier.due_at
    dossier.due_at = new_due
    if reason != "apology":  # the apology's new date is not the appointment the result is rated by
        dossier.appointment_at = new_due
    _set_deadlines(wf, {"due_at": new_due, "warning_at": warning_for(cal, new_due, clock.now())})
    session.execute(
        update(Task).where(Task.dossier_id == dossier.id, Task.state.in_(OPEN_TASK_STATES)).values(due_at=new_due)
    )
    if reason is not None:
        _audit(session, actor or SYSTEM_ACTOR, "due_date_changed", dossier,
               data={"from": to_vn(old).isoformat() if old else None, "to": to_vn(new_due).isoformat(),
                     "reason": reason})


def _set_deadlines(wf: BpmnWorkflow, values: Mapping[str, datetime]) -> None:
    """Write deadline variables into the live tasks' data and move the waiting timers with them."""
    iso = {k: v.isoformat() for k, v in values.items()}
    for task in wf.get_tasks(state=SpiffState.NOT_FINISHED_MASK):
        task.data.update(iso)
    for task in list(wf.event_manager.tasks.values()):
        definition = task.task_spec.event_definition
        expression = getattr(definition, "expression", None)
        if expression in iso and task._get_internal_data("event_value") is not None:
            task._set_internal_data(event_value=iso[expression])


def _sync_tasks(session: Session, dossier: Dossier, wf: BpmnWorkflow, *, cal: WorkingCalendar, now: datetime) -> None:
    """Insert newly opened tasks, close the ones Spiff finished; the inbox reads only this table."""
    open_now = {str(t.id): t for t in workflow.open_tasks(wf)}
    known = {
        row.id: row
        for row in session.scalars(
            select(Task).where(Task.dossier_id == dossier.id, Task.state.in_(OPEN_TASK_STATES))
        )
    }
    lane_roles = _version_info(session, dossier.model_version_id).lane_roles
    for task_id, row in known.items():
        if task_id in open_now:
            spiff_task = open_now[task_id]
            state = TaskState.STARTED if spiff_task.state == SpiffState.STARTED else TaskState.READY
            row.state = state.value
            continue
        spiff_task = workflow.find_task(wf, task_id)
        if spiff_task is not None and spiff_task.state == SpiffState.COMPLETED:
            row.state = TaskState.COMPLETED.value
        else:
            row.state = TaskState.CANCELLED.value
        row.completed_at = row.completed_at or now
    for task_id, spiff_task in open_now.items():
        if task_id in known:
            continue
        lane = getattr(spiff_task.task_spec, "lane", None)
        props = workflow.task_properties(spiff_task)
        due = dossier.due_at
        deadline = _task_deadline_spec(spiff_task, props)
        if deadline and dossier.clock_paused_at is None:
            task_due = task_deadline(cal, deadline, now)
            due = min(task_due, due) if due else task_due
        if props.get("extends_deadline") and dossier.clock_paused_at is None:
            _extend_deadline(session, dossier, wf, props["extends_deadline"], cal=cal)
            due = dossier.due_at
        kind = "service" if workflow.is_service_task(spiff_task) else "user"
        session.add(
            Task(
                id=task_id,
                dossier_id=dossier.id,
                spec_name=spiff_task.task_spec.name,
                name=workflow.task_label(spiff_task),
                kind=kind,
                form_key=props.get("form"),
                lane=lane,
                role=lane_roles.get(lane) if lane else None,
                unit_id=dossier.unit_id,
                state=(TaskState.STARTED if kind == "service" else TaskState.READY).value,
                due_at=due,
                created_at=now,
            )
        )
        if kind == "service":
            _queue_service_call(session, dossier, spiff_task, now=now)


def _task_deadline_spec(task: SpiffTask, props: Mapping[str, str]) -> str | None:
    """The task's deadline property, or the process variable named by ``deadline_variable`` when
    the case set it to a valid deadline (e.g. ``working_days:5`` chosen at an earlier step)."""
    from engine.validation import deadline_problem

    variable = props.get("deadline_variable")
    override = task.data.get(variable) if variable else None
    if isinstance(override, str) and override and deadline_problem(override) is None:
        return override
    return props.get("deadline")


def _extend_deadline(
    session: Session, dossier: Dossier, wf: BpmnWorkflow, reason: str, *, cal: WorkingCalendar
) -> None:
    """Apply the procedure's extension (e.g. verification) from the catalogue's legal time.

    ``mode: add`` adds the extension to the current due date (paternity: 3 + 5 working days);
    ``mode: total`` caps the whole procedure from receipt (marital status: 23 days in total).
    """
    extension = dossier_terms(dossier)["legal_time"].get("extension")
    if not extension or extension.get("when", reason) != reason:
        raise ServiceError(f"procedure {dossier.procedure.code} has no {reason} extension")
    value, unit = int(extension["value"]), extension["unit"]
    # Computed from where the legal clock last started (receipt, or the complete dossier after a
    # supplement), so a second verification after a leader's return does not extend again.
    clock_start = dossier.received_at
    for pause in dossier.pauses:
        if pause.ended_at is not None and pause.ended_at > clock_start:
            clock_start = pause.ended_at
    if extension.get("mode", "add") == "add":
        start = legal_due(cal, dossier_terms(dossier), clock_start)
    else:
        start = clock_start
    if unit == "working_days":
        day = cal.add_working_days(to_vn(start).date(), value)
        new_due = datetime.combine(day, cal.afternoon[1], VN_TZ)
    elif unit == "calendar_days":
        new_due = cal.due(start, calendar_days=value)
    else:
        raise ServiceError(f"unsupported extension unit {unit!r}")
    if dossier.due_at is not None and new_due <= dossier.due_at:
        return
    _set_due(session, dossier, wf, new_due, cal=cal, reason=reason)


def _queue_service_call(session: Session, dossier: Dossier, task: SpiffTask, *, now: datetime) -> None:
    if session.get(ServiceCall, str(task.id)) is not None:
        return
    spec = task.task_spec
    session.add(
        ServiceCall(
            id=str(task.id),
            dossier_id=dossier.id,
            operation=spec.operation_name,
            params=workflow.service_params(task),
            status="pending",
            created_at=now,
            next_attempt_at=now,
        )
    )
    pending = session.info.setdefault("motcua_new_service_calls", [])
    pending.append(str(task.id))


def _sync_timers(session: Session, dossier: Dossier, wf: BpmnWorkflow) -> None:
    """Refill the dossier's rows of the timer table from Spiff's waiting timer events."""
    waiting = {task_id: (name, due) for task_id, name, due in workflow.waiting_timers(wf)}
    existing = {t.id: t for t in session.scalars(select(Timer).where(Timer.dossier_id == dossier.id))}
    stale = [tid for tid in existing if tid not in waiting]
    if stale:
        session.execute(delete(Timer).where(Timer.id.in_(stale)))
    for task_id, (name, due) in waiting.items():
        row = existing.get(task_id)
        if row is None:
            session.add(Timer(id=task_id, dossier_id=dossier.id, name=name, run_at=due))
        elif row.run_at != due:
            row.run_at = due


# --- attachments ------------------------------------------------------------------------------

# What an applicant may attach: scans and PDFs only, checked by their first bytes as well, so a
# browser shown a file inline never gets HTML or script under an image's name.
ATTACHMENT_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
}
# Limits keep one dossier within what a request, a database row and an officer's screen handle:
# a phone photo or a multi-page scanned PDF fits in 10 MiB; a dossier's usual 3–6 papers in 30 MiB.
# The web app derives its request body limit (MAX_CONTENT_LENGTH) from the total.
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
MAX_ATTACHMENTS_TOTAL_BYTES = 30 * 1024 * 1024
MAX_ATTACHMENTS = 20
MAX_ATTACHMENT_NAME = 200  # characters, the attachment.name column


@dataclass(frozen=True)
class Upload:
    """An attachment that passed validation: decoded content and its fingerprint."""

    name: str
    mime: str
    content: bytes
    sha256: str

    @property
    def size(self) -> int:
        return len(self.content)

    def summary(self) -> dict[str, Any]:
        """What the audit log keeps of a file: never its content."""
        return {"name": self.name, "mime": self.mime, "size": self.size, "sha256": self.sha256}


def _check_attachment_name(value: Any) -> str | None:
    """The problem with a file name, or None; the name is shown and offered as a download name."""
    if not isinstance(value, str) or not value.strip():
        return "required"
    if len(value) > MAX_ATTACHMENT_NAME:
        return f"at most {MAX_ATTACHMENT_NAME} characters"
    if "/" in value or "\\" in value or value.strip() in (".", ".."):
        return "a file name without folders"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return "no control characters"
    return None


def validate_attachments(attachments: Sequence[Mapping[str, Any]] | None) -> list[Upload]:
    """Decode and check attachments ``[{"name", "content_base64", "mime"}]``; every problem is
    reported at once with its field (``attachments[0].mime``…), and nothing is stored on error."""
    if attachments is None:
        return []
    if isinstance(attachments, (str, bytes)) or not isinstance(attachments, Sequence):
        raise InvalidDataError("attachments must be a list", fields={"attachments": ["list"]})
    if len(attachments) > MAX_ATTACHMENTS:
        raise InvalidDataError(f"at most {MAX_ATTACHMENTS} files may be attached",
                               fields={"attachments": [f"at most {MAX_ATTACHMENTS} files"]})
    errors: dict[str, list[str]] = {}
    uploads: list[Upload] = []
    total = 0
    for index, item in enumerate(attachments):
        field = f"attachments[{index}]"
        if not isinstance(item, Mapping):
            errors[field] = ["object with name, content_base64 and mime"]
            continue
        problem = _check_attachment_name(item.get("name"))
        if problem:
            errors[f"{field}.name"] = [problem]
        mime = item.get("mime")
        if mime not in ATTACHMENT_SIGNATURES:
            errors[f"{field}.mime"] = [f"one of {', '.join(ATTACHMENT_SIGNATURES)}"]
        encoded = item.get("content_base64")
        if not isinstance(encoded, str) or not encoded.strip():
            errors[f"{field}.content_base64"] = ["required"]
            continue
        encoded = "".join(encoded.split())  # line-wrapped base64 (MIME style) is accepted
        if len(encoded) // 4 * 3 > MAX_ATTACHMENT_BYTES + 2:  # too big: refused before decoding
            errors[f"{field}.content_base64"] = [f"at most {MAX_ATTACHMENT_BYTES} bytes"]
            continue
        try:
            content = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            errors[f"{field}.content_base64"] = ["not valid base64"]
            continue
        if not content:
            errors[f"{field}.content_base64"] = ["empty file"]
            continue
        if len(content) > MAX_ATTACHMENT_BYTES:
            errors[f"{field}.content_base64"] = [f"at most {MAX_ATTACHMENT_BYTES} bytes"]
            continue
        total += len(content)
        if mime in ATTACHMENT_SIGNATURES and not content.startswith(ATTACHMENT_SIGNATURES[mime]):
            errors[f"{field}.content_base64"] = [f"the content is not {mime}"]
            continue
        if field + ".name" not in errors and field + ".mime" not in errors:
            uploads.append(Upload(name=str(item["name"]).strip(), mime=str(mime), content=content,
                                  sha256=hashlib.sha256(content).hexdigest()))
    if total > MAX_ATTACHMENTS_TOTAL_BYTES:
        errors.setdefault("attachments", []).append(f"at most {MAX_ATTACHMENTS_TOTAL_BYTES} bytes in total")
    if errors:
        raise InvalidDataError("the attachments have errors", fields=errors)
    return uploads


def _store_attachments(session: Session, dossier: Dossier, uploads: Sequence[Upload], *, kind: AttachmentKind,
                       actor: Actor) -> list[Attachment]:
    now = clock.now()
    rows = [Attachment(dossier_id=dossier.id, name=u.name, mime=u.mime, size=u.size, sha256=u.sha256,
                       content=u.content, kind=kind.value, uploaded_at=now, uploaded_by_id=actor.user_id)
            for u in uploads]
    session.add_all(rows)
    return rows


# --- commands ---------------------------------------------------------------------------------


def check_submission(
    session: Session,
    *,
    procedure_code: str,
    unit_code: str,
    applicant: Mapping[str, Any],
    form: Mapping[str, Any] | None,
    channel: str,
    delivery: Mapping[str, Any] | None,
    attachments: Sequence[Mapping[str, Any]] | None,
) -> tuple[Procedure, Unit, dict[str, Any], list[Upload]]:
    """Every check of a submission, before anything is written: (procedure, unit, delivery, files)."""
    procedure = session.scalar(select(Procedure).where(Procedure.code == procedure_code))
    if procedure is None or not procedure.is_active:
        raise InvalidDataError(f"unknown procedure {procedure_code!r}", fields={"procedure": ["unknown procedure"]})
    unit = session.scalar(select(Unit).where(Unit.code == unit_code))
    if unit is None:
        raise InvalidDataError(f"unknown unit {unit_code!r}", fields={"unit": ["unknown unit"]})
    if channel not in ("online", "counter", "post"):
        raise InvalidDataError(f"unknown channel {channel!r}", fields={"channel": ["online, counter or post"]})
    name = str(applicant.get("full_name") or applicant.get("name") or "").strip()
    if not name:
        raise InvalidDataError("applicant name is required", fields={"applicant.full_name": ["required"]})
    form_schema = procedure.catalogue.get("form_schema")
    if form_schema:
        errors = forms.validate(form_schema, form or {})
        if errors:
            raise InvalidDataError("the form has errors", fields={f"form.{k}": v for k, v in errors.items()})
    delivery_ = dict(delivery or {"method": "counter"})
    options = procedure.catalogue.get("delivery") or ["counter"]
    if delivery_.get("method") not in options:
        raise InvalidDataError("unknown delivery method", fields={"delivery.method": [f"one of {options}"]})
    if delivery_["method"] == "post" and not str(delivery_.get("address") or "").strip():
        raise InvalidDataError("a postal address is required", fields={"delivery.address": ["required"]})
    return procedure, unit, delivery_, validate_attachments(attachments)


def submit_dossier(
    session: Session,
    *,
    procedure_code: str,
    unit_code: str,
    applicant: Mapping[str, Any],
    form: Mapping[str, Any] | None = None,
    channel: str = "online",
    delivery: Mapping[str, Any] | None = None,
    actor: Actor,
    citizen_id: int | None = None,
    received_at: datetime | None = None,
    attachments: Sequence[Mapping[str, Any]] | None = None,
) -> Dossier:
    """Receive a dossier: give it a code and a legal due moment, start its process.

    ``attachments`` (``[{"name", "content_base64", "mime"}]``, see :func:`validate_attachments`)
    are stored with the dossier in the same transaction. Every check runs before anything is
    written. The catalogue's ``documents`` are not enforced: they are free text with conditions
    ("if previously married", "shown, not attached"), so the one-stop officer checks completeness
    at receipt (Decree 61/2018 art. 15) and asks for a supplement when something is missing.
    """
    procedure, unit, delivery, uploads = check_submission(
        session, procedure_code=procedure_code, unit_code=unit_code, applicant=applicant, form=form,
        channel=channel, delivery=delivery, attachments=attachments)
    name = str(applicant.get("full_name") or applicant.get("name") or "").strip()
    version = current_version(session, procedure)
    cal = calendar_for(session)
    received = received_at or clock.now()
    terms = procedure_terms(procedure, received)
    due = legal_due(cal, terms, received)
    terms["fee_due"] = fee_due(terms["fee"], form or {})
    code = next_dossier_code(session, unit, received)
    dossier = Dossier(
        code=code,
        procedure_id=procedure.id,
        unit_id=unit.id,
        model_version_id=version.id,
        applicant=dict(applicant),
        applicant_name=name,
        applicant_id_number=applicant.get("id_number"),
        applicant_phone=applicant.get("phone"),
        form=dict(form or {}),
        channel=channel,
        status=DossierStatus.SUBMITTED.value,
        received_at=received,
        due_at=due,
        appointment_at=due,
        terms=terms,
        submitted_by_id=actor.user_id,
        citizen_id=citizen_id,
    )
    session.add(dossier)
    session.flush()
    _store_attachments(session, dossier, uploads, kind=AttachmentKind.SUBMISSION, actor=actor)
    notify_applicant(session, dossier)  # the code and the appointment, by SMS and e-mail
    data = {
        "dossier_code": code,
        "procedure": procedure.code,
        "unit": unit.code,
        "channel": channel,
        "applicant": dict(applicant),
        "form": dict(form or {}),
        "received_at": received.isoformat(),
        "due_at": due.isoformat(),
        "warning_at": warning_for(cal, due, received).isoformat(),
        # The applicant checks the draft result before signing (online civil-status procedures).
        "draft_confirmation": bool(procedure.catalogue.get("draft_confirmation")),
        "delivery": delivery["method"],
        "delivery_address": delivery.get("address", ""),
        "fee_due": terms["fee_due"],
        # Full online service (toàn trình) is paid online; otherwise at the counter.
        "payment_method": "online" if channel == "online" and procedure.online_level == "full" else "counter",
        "proposal": None,
    }
    workflow.current_calendar.set(cal)
    wf = workflow.new_workflow(version.content_hash, _spec_loader(session, version.content_hash), data)
    _audit(session, actor, "dossier_submitted", dossier,
           data={"procedure": procedure.code, "unit": unit.code, "channel": channel, "due_at": due.isoformat(),
                 "attachments": [u.summary() for u in uploads]})
    completed = _run_engine(wf)
    _save_case(session, dossier, wf, actor=actor, completed=completed, cal=cal)
    return dossier


def require_submitter(actor: Actor) -> None:
    """Citizens (for themselves) and one-stop officers (for their unit) submit; nobody else."""
    if actor.user_id is None or not actor.roles & {Role.ONESTOP.value, Role.CITIZEN.value}:
        raise ForbiddenError("citizens and one-stop officers only")


def submit_dossier_as(
    session: Session,
    *,
    actor: Actor,
    procedure_code: str,
    unit_code: str,
    applicant: Mapping[str, Any],
    form: Mapping[str, Any] | None = None,
    delivery: Mapping[str, Any] | None = None,
    attachments: Sequence[Mapping[str, Any]] | None = None,
    channel: str | None = None,
) -> Dossier:
    """A dossier submitted by a person through the API or portal: who may submit, and for whom.

    A citizen submits online for themselves: the dossier is theirs (``citizen_id``) and the
    applicant's name and ID number are the account's, verified at registration. A one-stop officer
    receives walk-in (``counter``, the default) or posted (``post``) dossiers for their own unit
    only. Nobody else submits.
    """
    require_submitter(actor)
    if Role.ONESTOP.value in actor.roles:
        channel = channel or "counter"
        if channel not in ("counter", "post"):
            raise InvalidDataError("an officer receives at the counter or by post",
                                   fields={"channel": ["counter or post"]})
        unit = session.scalar(select(Unit).where(Unit.code == unit_code))
        if unit is not None and unit.id != actor.unit_id:
            raise ForbiddenError("one-stop officers receive dossiers for their own unit only")
        citizen_id = None
    elif Role.CITIZEN.value in actor.roles:
        if channel not in (None, "online"):
            raise InvalidDataError("citizens submit online", fields={"channel": ["online"]})
        channel = "online"
        user = session.get(User, actor.user_id)
        assert user is not None  # the actor was loaded from it
        applicant = _citizen_applicant(user, applicant)
        citizen_id = user.id
    else:
        raise ForbiddenError("citizens and one-stop officers only")
    return submit_dossier(session, procedure_code=procedure_code, unit_code=unit_code, applicant=applicant,
                          form=form, channel=channel, delivery=delivery, actor=actor, citizen_id=citizen_id,
                          attachments=attachments)


def _citizen_applicant(user: User, applicant: Mapping[str, Any]) -> dict[str, Any]:
    """The applicant of a citizen's own dossier: their account's identity, their contact details."""
    given = str(applicant.get("id_number") or "").strip()
    if given and user.id_number and given != user.id_number:
        raise InvalidDataError("citizens submit for themselves: the ID number is the account's",
                               fields={"applicant.id_number": ["must be your own ID number"]})
    merged = dict(applicant)
    merged["full_name"] = user.full_name
    merged["id_number"] = user.id_number
    merged["phone"] = str(applicant.get("phone") or "").strip() or user.phone
    if user.email and not applicant.get("email"):
        merged["email"] = user.email
    merged.pop("name", None)
    return merged


def view_dossier(session: Session, code: str, *, actor: Actor, purpose: str = "view") -> Dossier:
    """Read a dossier on behalf of an officer or auditor: every such read is an audit event."""
    dossier = get_dossier(session, code)
    if actor.user_id is not None and actor.unit_id is not None and "auditor" not in actor.roles \
            and dossier.unit_id != actor.unit_id and dossier.citizen_id != actor.user_id:
        raise ForbiddenError("dossier belongs to another unit")
    _audit(session, actor, "dossier_viewed", dossier, data={"purpose": purpose})
    session.flush()
    return dossier


def _lock_task(session: Session, task_id: str) -> tuple[Task, Dossier]:
    """Lock the task's dossier (one engine step per case at a time), then read the task under it."""
    dossier = session.scalar(
        select(Dossier)
        .join(Task, Task.dossier_id == Dossier.id)
        .where(Task.id == task_id)
        .with_for_update(of=Dossier)
        .execution_options(populate_existing=True)
    )
    if dossier is None:
        raise NotFoundError(f"task {task_id} not found")
    row = session.scalar(select(Task).where(Task.id == task_id).execution_options(populate_existing=True))
    assert row is not None
    return row, dossier


def _check_can_act(row: Task, actor: Actor) -> None:
    if actor.user_id is None:
        return  # the system acts on behalf of the process
    if row.role and row.role not in actor.roles:
        raise ForbiddenError(f"task needs role {row.role}")
    if row.unit_id != actor.unit_id:
        raise ForbiddenError("task belongs to another unit")


def require_task_actor(session: Session, task_id: str, actor: Actor) -> None:
    """The caller may act on the task (its unit and role), checked before its input is read; the
    service checks again under the lock."""
    row = session.get(Task, task_id)
    if row is None:
        raise NotFoundError(f"task {task_id} not found")
    _check_can_act(row, actor)


def claim_task(session: Session, task_id: str, *, actor: Actor) -> Task:
    row, dossier = _lock_task(session, task_id)
    _check_can_act(row, actor)
    if row.state != TaskState.READY.value or row.kind != "user":
        raise ConflictError("task is not open", fields={"state": row.state})
    if row.assignee_id is not None and row.assignee_id != actor.user_id:
        raise ConflictError("task is claimed by another officer", fields={"assignee_id": row.assignee_id})
    if row.assignee_id != actor.user_id:
        row.assignee_id = actor.user_id
        row.claimed_at = clock.now()
        _audit(session, actor, "task_claimed", dossier, task_id=row.id, data={"task": row.spec_name})
    session.flush()
    return row


def unclaim_task(session: Session, task_id: str, *, actor: Actor) -> Task:
    row, dossier = _lock_task(session, task_id)
    if row.state != TaskState.READY.value:
        raise ConflictError("task is not open", fields={"state": row.state})
    if row.assignee_id is None:
        return row
    if row.assignee_id != actor.user_id and "leader" not in actor.roles and actor.user_id is not None:
        raise ForbiddenError("only the assignee or a leader can release this task")
    _audit(session, actor, "task_unclaimed", dossier, task_id=row.id, data={"previous": row.assignee_id})
    row.assignee_id = None
    row.claimed_at = None
    session.flush()
    return row


def reassign_task(session: Session, task_id: str, *, actor: Actor, assignee_id: int) -> Task:
    """A head of the unit (its leader) gives an open task to another officer of the unit who
    holds the task's role; the change is audited with the previous assignee."""
    row, dossier = _lock_task(session, task_id)
    if actor.user_id is not None and ("leader" not in actor.roles or actor.unit_id != row.unit_id):
        raise ForbiddenError("only a leader of the task's unit reassigns tasks")
    if row.state != TaskState.READY.value or row.kind != "user":
        raise ConflictError("task is not open", fields={"state": row.state})
    target = session.get(User, assignee_id)
    if target is None or not target.is_active or target.unit_id != row.unit_id:
        raise InvalidDataError("no such officer in this unit", fields={"assignee": ["officer of the task's unit"]})
    if row.role and row.role not in target.roles:
        raise InvalidDataError(f"the officer does not hold the role {row.role}",
                               fields={"assignee": [f"needs role {row.role}"]})
    if row.assignee_id == target.id:
        return row
    _audit(session, actor, "task_reassigned", dossier, task_id=row.id,
           data={"task": row.spec_name, "previous": row.assignee_id, "assignee": target.id,
                 "assignee_username": target.username})
    row.assignee_id = target.id
    row.claimed_at = clock.now()
    session.flush()
    return row


def complete_task(
    session: Session,
    task_id: str,
    *,
    actor: Actor,
    data: Mapping[str, Any],
    validate: Callable[[Task, Mapping[str, Any]], Mapping[str, list[str]]] | None = None,
) -> Dossier:
    """Complete a READY user task with the officer's form data and run the engine on.

    Row lock on the dossier + READY check on the Spiff task: a second completion of the same task
    gets :class:`ConflictError`, whatever the timing.
    """
    row, dossier = _lock_task(session, task_id)
    _check_can_act(row, actor)
    if row.kind != "user":
        raise ConflictError("only user tasks are completed by people")
    if row.state != TaskState.READY.value:
        raise ConflictError("task was already completed", fields={"state": row.state})
    if row.assignee_id is not None and actor.user_id is not None and row.assignee_id != actor.user_id:
        raise ConflictError("task is claimed by another officer", fields={"assignee_id": row.assignee_id})
    wf = load_workflow(session, dossier)
    spiff_task = workflow.find_task(wf, task_id)
    if spiff_task is None or spiff_task.state != SpiffState.READY:
        raise ConflictError("task is no longer ready")
    props = workflow.task_properties(spiff_task)
    errors = dict(validate(row, data)) if validate is not None else _validate_task_form(dossier, props, data)
    if errors:
        raise InvalidDataError("the form has errors", fields=errors)
    clean = {k: v for k, v in data.items() if not str(k).startswith("_")}
    cal = calendar_for(session)
    _check_law_rules(session, dossier, props, clean, spiff_task.data)
    spiff_task.set_data(**clean)
    spiff_task.run()
    if "sets_due_at" in props:
        _move_due_date(session, dossier, wf, clean[props["sets_due_at"]], actor=actor, cal=cal)
    completed = [spiff_task, *_run_engine(wf)]
    now = clock.now()
    row.state = TaskState.COMPLETED.value
    row.completed_at = now
    row.completed_by_id = actor.user_id
    row.assignee_id = row.assignee_id or actor.user_id
    row.decision = str(clean.get("decision")) if clean.get("decision") is not None else None
    _audit(session, actor, "task_completed", dossier, task_id=row.id,
           data={"task": row.spec_name, "name": row.name, "role": row.role, "form": clean,
                 "due_at": row.due_at.isoformat() if row.due_at else None})
    _save_case(session, dossier, wf, actor=actor, completed=completed)
    return dossier


def _validate_task_form(dossier: Dossier, props: Mapping[str, str], data: Mapping[str, Any]) -> dict[str, list[str]]:
    """Validate against the task's form (BPMN property ``form``) from the procedure catalogue."""
    form = props.get("form")
    if not form:
        return {}
    schema = task_forms_of(dossier).get(form)
    if schema is None:
        raise ServiceError(f"procedure {dossier.procedure.code} has no task form {form!r}")
    return forms.validate(schema, data)


def version_task_forms(version: ProcessModelVersion) -> dict[str, Any]:
    """The task forms of a model version (the procedure's catalogue for versions deployed before
    forms were versioned)."""
    forms_ = version.task_forms
    return dict(forms_ if forms_ is not None else version.procedure.catalogue.get("task_forms") or {})


def task_forms_of(dossier: Dossier) -> dict[str, Any]:
    """The task forms of the dossier's model version: a newer version's forms never change a
    running case."""
    return version_task_forms(dossier.model_version)


def _check_law_rules(
    session: Session, dossier: Dossier, props: Mapping[str, str], data: Mapping[str, Any], task_data: Mapping[str, Any]
) -> None:
    """Rules of law checked on top of the form schema."""
    if props.get("form") == "hand_back" and data.get("fee_collected") is not None:
        # Paid online already, or a refusal: nothing to collect. A fee the catalogue does not
        # compute (e.g. a provincial late-registration fee, fee_due 0) is left to the officer.
        fee = int(dossier_terms(dossier).get("fee_due") or 0)
        refused = task_data.get("proposal") == "propose_refuse"
        expected = 0 if task_data.get("payment") or refused else fee
        if (expected or refused or task_data.get("payment")) and int(data["fee_collected"]) != expected:
            raise InvalidDataError(
                f"the fee due at the counter is {expected} VND",
                fields={"fee_collected": [f"must be {expected}"]},
            )
    if props.get("form") == "receive" and data.get("decision") == "supplement":
        asked = session.scalar(
            select(func.count()).select_from(ClockPause)
            .where(ClockPause.dossier_id == dossier.id, ClockPause.reason == "supplement")
        )
        if asked:
            # Decree 61/2018 art. 15: the supplement is requested once, listing everything needed.
            raise InvalidDataError(
                "a supplement was already requested for this dossier; it can be asked only once",
                fields={"decision": ["supplement already requested once (Decree 61/2018 art. 15)"]},
            )


def _move_due_date(
    session: Session, dossier: Dossier, wf: BpmnWorkflow, value: Any, *, actor: Actor, cal: WorkingCalendar
) -> None:
    """The apology (Mẫu 04) sets a new appointment: end of that working day; timers follow it."""
    from datetime import date as date_type

    try:
        day = date_type.fromisoformat(str(value))
    except ValueError as exc:
        raise InvalidDataError("the new date is not a date", fields={"new_due_date": ["YYYY-MM-DD"]}) from exc
    if not cal.is_working_day(day):
        raise InvalidDataError("the new date is not a working day", fields={"new_due_date": ["not a working day"]})
    new_due = datetime.combine(day, cal.afternoon[1], VN_TZ)
    if dossier.due_at is not None and new_due <= dossier.due_at:
        raise InvalidDataError("the new date must be after the current appointment",
                               fields={"new_due_date": [f"after {to_vn(dossier.due_at).date().isoformat()}"]})
    _set_due(session, dossier, wf, new_due, cal=cal, actor=actor, reason="apology")


def request_apology(session: Session, code: str, *, actor: Actor, reason: str) -> Dossier:
    """Start the apology (Mẫu 04) for a dossier that will be late: allowed once per dossier.

    Decree 61/2018 art. 19: no later than 1 working day before the deadline; a later request is
    still accepted (the applicant must be told) and the audit records that it was late.
    """
    dossier = lock_dossier(session, get_dossier(session, code).id)
    if dossier.apology_at is not None:
        raise ConflictError("an apology was already issued for this dossier; it is allowed once",
                            fields={"apology": ["already issued on " + dossier.apology_at.isoformat()]})
    if not reason or len(reason.strip()) < 5:
        raise InvalidDataError("the reason is required", fields={"reason": ["required"]})
    cal = calendar_for(session)
    now = clock.now()
    in_time = dossier.due_at is None or now <= cal.warning_moment(dossier.due_at)
    dossier.apology_at = now
    _audit(session, actor, "apology_requested", dossier, data={"reason": reason, "within_legal_window": in_time})
    return _deliver(session, dossier, "apology_requested", {"reason": reason, "by": actor.name}, actor=actor)


def withdraw_dossier(session: Session, code: str, *, actor: Actor, reason: str = "") -> Dossier:
    """The applicant withdraws the dossier (rút hồ sơ): the case ends at whatever point it waits."""
    dossier = lock_dossier(session, get_dossier(session, code).id)
    return _deliver(session, dossier, "withdrawn", {"reason": reason, "by": actor.name}, actor=actor)


def stop_processing(session: Session, code: str, *, actor: Actor, reason: str) -> Dossier:
    """Stop processing (dừng xử lý) with a reason; the case ends at whatever point it waits."""
    if not reason or len(reason.strip()) < 5:
        raise InvalidDataError("the reason is required", fields={"reason": ["required"]})
    dossier = lock_dossier(session, get_dossier(session, code).id)
    return _deliver(session, dossier, "stop_processing", {"reason": reason, "by": actor.name}, actor=actor)


def record_payment(session: Session, code: str, *, actor: Actor, amount: int, reference: str) -> Dossier:
    """The fee was paid online; the amount must be the fee due."""
    dossier = lock_dossier(session, get_dossier(session, code).id)
    wf = load_workflow(session, dossier)
    due = _data_value(wf, "fee_due")
    if amount != due:
        raise InvalidDataError(f"paid {amount} VND but {due} VND is due", fields={"amount": [f"must be {due}"]})
    return _deliver(session, dossier, "payment_received", {"amount": amount, "reference": reference},
                    actor=actor, wf=wf)


def record_postal_event(session: Session, code: str, *, actor: Actor, event: str, tracking: str = "") -> Dossier:
    """The post delivered the result, or returned it undelivered."""
    if event not in ("delivered", "returned"):
        raise InvalidDataError(f"unknown postal event {event!r}", fields={"event": ["delivered or returned"]})
    dossier = lock_dossier(session, get_dossier(session, code).id)
    return _deliver(session, dossier, f"postal_{event}", {"tracking": tracking}, actor=actor)


def _data_value(wf: BpmnWorkflow, name: str) -> Any:
    """A process variable as the live tasks see it."""
    for task in wf.get_tasks(state=SpiffState.NOT_FINISHED_MASK):
        if name in task.data:
            return task.data[name]
    return None


def deliver_message(
    session: Session, dossier_code: str, name: str, payload: Any = None, *, actor: Actor
) -> Dossier:
    """Deliver a message event (supplement received, agency answer…) to the waiting case."""
    dossier = lock_dossier(session, get_dossier(session, dossier_code).id)
    return _deliver(session, dossier, name, payload, actor=actor)


def _deliver(
    session: Session, dossier: Dossier, name: str, payload: Any, *, actor: Actor, wf: BpmnWorkflow | None = None
) -> Dossier:
    if dossier.finished_at is not None:
        raise ConflictError(f"dossier {dossier.code} is closed")
    wf = wf or load_workflow(session, dossier)
    if name not in workflow.waiting_messages(wf):
        raise ConflictError(f"dossier {dossier.code} is not waiting for message {name!r}")
    cal = calendar_for(session)
    if name == "supplement_received":
        _resume_clock(session, dossier, wf, cal=cal)
    try:
        workflow.send_message(wf, name, payload)
    except WorkflowException as exc:
        raise ConflictError(str(exc)) from exc
    completed = _run_engine(wf)
    _audit(session, actor, "message_received", dossier, data={"message": name})
    _save_case(session, dossier, wf, actor=actor, completed=completed, cal=cal)
    return dossier


def fire_due_timers(session: Session, *, now: datetime | None = None, limit: int = 200) -> int:
    """Fire the timers due by the project clock, up to ``limit`` dossiers, in this transaction.

    Workers use :func:`fire_next_due_timers` instead: one dossier per transaction.
    """
    now = now or clock.now()
    query = select(Timer.dossier_id).where(Timer.run_at < now).order_by(Timer.run_at).limit(limit)
    return sum(fire_dossier_timers(session, dossier_id, now=now)
               for dossier_id in dict.fromkeys(session.scalars(query).all()))


# How many of the earliest due timers a worker looks at to find a dossier no other worker holds.
TIMER_CLAIM_WINDOW = 32


def fire_next_due_timers(
    session: Session, *, now: datetime | None = None, exclude: Collection[int] = ()
) -> tuple[int, int] | None:
    """Fire the timers of the dossier with the earliest due timer that no other transaction holds
    (dossiers in ``exclude`` are passed over: this pass already had them).

    Returns (dossier id, timers fired), or None when nothing is due (or every due dossier is busy).
    Several workers run this at once, each committing after every dossier: on PostgreSQL the
    dossier row is claimed with SKIP LOCKED, so a burst of deadlines (they fall at the same 17:00)
    is shared. A timer is due once its moment has passed, as Spiff sees it.
    """
    now = now or clock.now()
    due = select(Timer.dossier_id).where(Timer.run_at < now)
    if exclude:
        due = due.where(Timer.dossier_id.not_in(list(exclude)))
    due = due.order_by(Timer.run_at).limit(TIMER_CLAIM_WINDOW)
    if session.get_bind().dialect.name != "postgresql":  # SQLite: one writer at a time anyway
        dossier_id = session.scalar(due.limit(1))
    else:
        dossier_id = session.scalar(
            select(Dossier.id).where(Dossier.id.in_(due.scalar_subquery())).order_by(Dossier.id).limit(1)
            .with_for_update(skip_locked=True))
    if dossier_id is None:
        return None
    try:
        return dossier_id, fire_dossier_timers(session, dossier_id, now=now)
    except Exception as exc:
        raise TimerError(dossier_id) from exc


class TimerError(ServiceError):
    """A dossier's due timers could not fire (the cause is chained); its transaction is rolled back."""

    def __init__(self, dossier_id: int):
        super().__init__(f"the timers of dossier {dossier_id} did not fire")
        self.dossier_id = dossier_id


def next_timer_due(session: Session, *, exclude: Collection[int] = ()) -> datetime | None:
    """The earliest moment a waiting timer is due (the far future of a paused clock included)."""
    query = select(func.min(Timer.run_at))
    if exclude:
        query = query.where(Timer.dossier_id.not_in(list(exclude)))
    return session.scalar(query)


def fire_dossier_timers(session: Session, dossier_id: int, *, now: datetime) -> int:
    """Fire one dossier's due timers under its row lock; returns how many fired (0 when another
    worker already did)."""
    skip_locked = session.get_bind().dialect.name == "postgresql"
    # Only the dossier row is locked (the same lock order as every other step); a dossier busy in
    # another transaction is skipped and picked up by the next pass.
    dossier = session.scalar(
        select(Dossier).where(Dossier.id == dossier_id)
        .with_for_update(skip_locked=skip_locked)
        .execution_options(populate_existing=True)
    )
    if dossier is None:
        return 0
    if session.scalar(select(Timer.id).where(Timer.dossier_id == dossier_id, Timer.run_at < now).limit(1)) is None:
        return 0
    wf = load_workflow(session, dossier)
    completed = _run_engine(wf)  # each timer that fires is audited by _save_case
    _save_case(session, dossier, wf, actor=SYSTEM_ACTOR, completed=completed)
    return sum(1 for task in completed if workflow.timer_due(task) is not None)


# --- service calls ----------------------------------------------------------------------------

ServiceHandler = Callable[[str, Mapping[str, Any], str], Any]
"""(operation, params, idempotency key) → JSON-able result. Raise to retry later."""


class PermanentServiceError(Exception):
    """The provider refused the call for good: no retry, the call is marked failed."""


def take_service_call(session: Session, call_id: str, *, lease: timedelta) -> ServiceCall | None:
    """Mark a call as running for ``lease``; None when it is done, failed, leased by another worker,
    or not due yet."""
    now = clock.now()
    query = select(ServiceCall).where(ServiceCall.id == call_id).with_for_update()
    call = session.scalar(query.execution_options(populate_existing=True))
    if call is None or call.status in ("done", "failed"):
        return None
    if call.next_attempt_at > now:
        return None  # another worker holds the lease, or the call is backing off after a failure
    call.status = "running"
    call.attempts += 1
    call.next_attempt_at = now + lease  # lease: a crashed worker's call is taken again after it
    session.flush()
    return call


def finish_service_call(session: Session, call_id: str, result: Any) -> bool:
    """Complete the Spiff service task with the call's result; idempotent by task id."""
    call = session.get(ServiceCall, call_id)
    if call is None:
        raise NotFoundError(f"service call {call_id} not found")
    dossier = lock_dossier(session, call.dossier_id)
    session.refresh(call)
    if call.status == "done":
        return False
    wf = load_workflow(session, dossier)
    task = workflow.find_task(wf, call_id)
    now = clock.now()
    call.status, call.result, call.finished_at, call.error = "done", {"value": result}, now, None
    if task is None or task.state != SpiffState.STARTED:
        session.flush()  # the case moved on (cancelled branch): nothing to complete
        return False
    workflow.finish_service_task(wf, task, result)
    completed = [task, *_run_engine(wf)]
    _audit(session, SYSTEM_ACTOR, "service_task_completed", dossier, task_id=call_id,
           data={"operation": call.operation, "attempts": call.attempts})
    row = session.get(Task, call_id)
    if row is not None:
        row.state, row.completed_at = TaskState.COMPLETED.value, now
    _save_case(session, dossier, wf, actor=SYSTEM_ACTOR, completed=completed)
    return True


def fail_service_call(session: Session, call_id: str, error: str, *, permanent: bool = False) -> None:
    """Record a failed attempt; retry later with exponential back-off, or give up."""
    call = session.get(ServiceCall, call_id, with_for_update=True)
    if call is None or call.status == "done":
        return
    now = clock.now()
    call.error = error[:2000]
    if permanent or call.attempts >= MAX_SERVICE_ATTEMPTS:
        call.status = "failed"
        call.finished_at = now
        dossier = session.get(Dossier, call.dossier_id)
        _audit(session, SYSTEM_ACTOR, "service_call_failed", dossier, task_id=call_id,
               data={"operation": call.operation, "error": call.error, "attempts": call.attempts})
    else:
        call.status = "pending"
        call.next_attempt_at = now + timedelta(seconds=min(3600, 2 ** call.attempts))
    session.flush()


def retry_service_call(session: Session, call_id: str, *, actor: Actor) -> bool:
    """Send a failed call again (an admin's decision after fixing the cause): it is due now with a
    fresh attempt count; the receiver still de-duplicates by the same key. False when not failed."""
    call = session.get(ServiceCall, call_id, with_for_update=True)
    if call is None or call.status != "failed":
        return False
    now = clock.now()
    call.status, call.attempts, call.next_attempt_at, call.finished_at = "pending", 0, now, None
    _audit(session, actor, "service_call_retried", session.get(Dossier, call.dossier_id), task_id=call_id,
           data={"operation": call.operation, "last_error": call.error})
    session.info.setdefault("motcua_new_service_calls", []).append(call_id)
    session.flush()
    return True


def due_service_calls(session: Session, *, limit: int = 100) -> list[str]:
    """Ids of calls to (re)try now: pending ones, and running ones whose lease ran out."""
    now = clock.now()
    return list(
        session.scalars(
            select(ServiceCall.id)
            .where(ServiceCall.status.in_(("pending", "running")), ServiceCall.next_attempt_at <= now)
            .order_by(ServiceCall.next_attempt_at)
            .limit(limit)
        ).all()
    )


def pop_new_service_calls(session: Session) -> list[str]:
    """Ids of service calls created in this session (dispatched by the caller after commit)."""
    return list(session.info.pop("motcua_new_service_calls", []))
