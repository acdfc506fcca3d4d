"""Benchmarks. Each returns a dict that the CLI prints as one JSON object."""

from __future__ import annotations

import json
import math
import random
import re
import statistics
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, delete, event, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from engine import catalogue, clock, services, workflow
from engine.calendar import to_vn
from engine.config import Settings
from engine.db import make_engine, make_session_factory, transaction
from engine.models import (
    OPEN_TASK_STATES,
    AuditEvent,
    Base,
    Dossier,
    DossierCodeCounter,
    DossierStatus,
    Procedure,
    ProcessSpec,
    Role,
    Task,
    TaskState,
    Unit,
    User,
    UserRole,
    WorkflowState,
    rate_result,
)

PROCEDURE = "marital_status_confirmation"
FINISHED_PATH: list[tuple[str, dict[str, Any]]] = [
    ("receive", {"decision": "supplement", "note": "Thiếu tờ khai"}), ("message", {}),
    ("receive", {"decision": "accept"}),
    ("appraise", {"decision": "propose_approve"}), ("approve", {"decision": "return", "reason": "Kiểm tra lại"}),
    ("appraise", {"decision": "propose_approve"}), ("approve", {"decision": "approve"}),
    ("hand_back", {"decision": "delivered"}),
]
FORM = {"purpose": "Kết hôn", "residence": "Thôn Bench, xã Bench"}
APPLICANT = {"type": "individual", "full_name": "Nguyễn Văn Bench", "phone": "0900000009"}


@contextmanager
def scratch_database(settings: Settings) -> Iterator[Settings]:
    """A fresh database on the configured server (a temp file for SQLite), dropped afterwards."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as tmp:
            yield settings.with_(database_url=f"sqlite:///{Path(tmp) / 'bench.db'}")
        return
    name = f"motcua_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield settings.with_(database_url=url.set(database=name).render_as_string(hide_password=False))
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


START_DATA = {
    "due_at": "2099-01-01T00:00:00+00:00", "warning_at": "2099-01-01T00:00:00+00:00", "dossier_code": "BENCH",
    "applicant": APPLICANT, "delivery": "counter", "delivery_address": "", "fee_due": 0,
    "payment_method": "counter", "proposal": None, "channel": "counter", "draft_confirmation": False,
}
RETURN = {"decision": "return", "reason": "Kiểm tra lại"}
APPRAISE = {"decision": "propose_approve", "marital_status": "single"}


class _MemoryCase:
    """The procedure's workflow in memory: the raw SpiffWorkflow cost, no database, no JSON."""

    def __init__(self) -> None:
        definition = catalogue.load_definition(catalogue.default_processes_dir() / PROCEDURE)
        parsed = workflow.parse_model(definition.bpmn_xml, library=definition.library)
        self.wf = workflow.new_workflow(parsed.content_hash, parsed.spec_json, dict(START_DATA))
        self.wf.do_engine_steps()

    def step(self, name: str, data: dict[str, Any], *, compact: bool = True) -> None:
        from SpiffWorkflow.util.task import TaskState

        if name == "message":
            workflow.send_message(self.wf, "supplement_received", {"pages": 2})
        else:
            task = next(t for t in self.wf.get_tasks(state=TaskState.READY, manual=True) if t.task_spec.name == name)
            task.set_data(**data)
            task.run()
        self.wf.do_engine_steps()
        while calls := [t for t in self.wf.get_tasks(state=TaskState.STARTED) if workflow.is_service_task(t)]:
            for task in calls:  # what a worker would do
                workflow.finish_service_task(self.wf, task, {"ok": True})
            self.wf.do_engine_steps()
        if compact:
            workflow.compact_history(self.wf)


def _raw_loop(passes: int) -> dict[str, Any]:
    case = _MemoryCase()
    case.step("receive", {"decision": "accept"})
    costs = []
    for _ in range(passes):
        costs.append(_timed(lambda: (case.step("appraise", APPRAISE), case.step("approve", RETURN))) / 2)
    return _summary(costs)


def _summary(costs: list[float]) -> dict[str, Any]:
    first = statistics.mean(costs[:5])
    last = statistics.mean(costs[-5:])
    return {
        "steps": len(costs) * 2,
        "steps_per_s": round(len(costs) * 2 / sum(x * 2 for x in costs), 1),
        "step_ms_first_passes": round(first * 1000, 3),
        "step_ms_last_passes": round(last * 1000, 3),
        "cost_ratio_last_vs_first": round(last / first, 2),
    }


def _setup(factory: Any) -> None:
    with transaction(factory) as session:
        services.seed_calendar(session)
        unit = Unit(code="bench", name="UBND xã Bench", agency_code="000.00.99.H99")
        session.add(unit)
        session.flush()
        # The leader signs the result (a certificate is made on first signing); it never logs in.
        leader = User(username="leader.bench", full_name="Chủ tịch Bench", password_hash="!",  # noqa: S106
                      unit_id=unit.id, title="Chủ tịch")
        leader.role_rows = [UserRole(role=Role.LEADER.value)]
        session.add(leader)
        session.flush()
        catalogue.sync_procedure(
            session, catalogue.load_definition(catalogue.default_processes_dir() / PROCEDURE),
            actor=services.SYSTEM_ACTOR,
        )


class _StoredCase:
    """The procedure's dossier through the case service on the database, with a worker's drain."""

    def __init__(self, factory: Any):
        from connectors import build_registry

        self.factory = factory
        self.registry = build_registry(Settings(env="test"), factory)
        with transaction(factory) as session:
            dossier = services.submit_dossier(session, procedure_code=PROCEDURE, unit_code="bench",
                                              applicant=APPLICANT, form=FORM, channel="counter",
                                              actor=services.SYSTEM_ACTOR)
            self.dossier_id, self.code = dossier.id, dossier.code
        self.drain()

    def drain(self) -> None:
        from engine import jobs

        jobs.drain(self.factory, self.registry, lease=timedelta(seconds=30))

    def step(self, name: str, data: dict[str, Any], *, drain: bool = True) -> None:
        with transaction(self.factory) as session:
            if name == "message":
                services.deliver_message(session, self.code, "supplement_received", {"pages": 2},
                                         actor=services.SYSTEM_ACTOR)
            else:
                task_id = session.scalar(select(Task.id).where(
                    Task.dossier_id == self.dossier_id, Task.spec_name == name, Task.state == "ready"))
                assert task_id is not None, name
                services.complete_task(session, task_id, actor=services.SYSTEM_ACTOR, data=data)
        if drain:
            self.drain()


def _persisted_loop(factory: Any, passes: int) -> dict[str, Any]:
    case = _StoredCase(factory)
    case.step("receive", {"decision": "accept"})
    costs = []
    for _ in range(passes):
        costs.append(_timed(lambda: (case.step("appraise", APPRAISE, drain=False),
                                     case.step("approve", RETURN, drain=False))) / 2)
    return _summary(costs)


def _finished_case(factory: Any) -> dict[str, Any]:
    """A case through every step (one supplement round, one rework) to the end: stored state size."""
    case = _StoredCase(factory)
    for name, data in FINISHED_PATH:
        case.step(name, data)
    with transaction(factory) as session:
        state = session.get(WorkflowState, case.dossier_id)
        assert state is not None, "bench case has no state"
        assert state.completed, "bench case did not finish"
        tasks = session.scalars(select(Task).where(Task.dossier_id == case.dossier_id)).all()
        return {
            "user_and_service_tasks": len(tasks),
            "bpmn_tasks_run": _bpmn_tasks_run(),
            "stored_bytes": len(state.state),
            "json_bytes": state.size,
        }


def _bpmn_tasks_run() -> int:
    """How many BPMN elements the finished-case path runs, counted in memory without compaction."""
    from SpiffWorkflow.util.task import TaskState

    case = _MemoryCase()
    for name, data in FINISHED_PATH:
        case.step(name, data, compact=False)
    assert case.wf.is_completed()
    return sum(1 for t in case.wf.get_tasks(state=TaskState.COMPLETED) if t.task_spec.bpmn_id)


def run_engine_bench(settings: Settings, *, passes: int = 150) -> dict[str, Any]:
    raw = _raw_loop(passes)
    with scratch_database(settings) as scratch:
        engine = make_engine(scratch)
        Base.metadata.create_all(engine)
        factory = make_session_factory(engine)
        _setup(factory)
        persisted = _persisted_loop(factory, passes)
        finished = _finished_case(factory)
        engine.dispose()
    return {
        "benchmark": "engine",
        "database": make_url(settings.database_url).get_backend_name(),
        "rework_passes": passes,
        "raw_in_memory": raw,
        "persisted": persisted,
        "persisted_vs_raw_throughput": round(persisted["steps_per_s"] / raw["steps_per_s"], 3),
        "finished_case_state": finished,
    }


# --- inbox benchmark ----------------------------------------------------------------------------
#
# The officer inbox and the dossier read with a realistic volume of cases. The volume is
# synthetic: running the workflow engine for a million cases would take hours, and the inbox and
# the dossier read never look at the workflow state, only at the ``dossier`` and ``task``
# projections (and ``audit_event`` for the history). So the bulk rows are written directly, in the
# shape the case service writes them, while units, users and procedures come from the demo seed and
# a sample of real cases runs through the case service in the officer's unit on top of them.

INBOX_UNIT = "anhoathinh"  # a demo commune, the largest of the benchmark
# Not a leader: leaders may need a TOTP code to log in to the API.
INBOX_OFFICER = f"{Role.JUSTICE.value}.{INBOX_UNIT}"
INBOX_UNITS = 60
INBOX_SPAN = timedelta(days=730)  # dossiers received over the last two years
FINISHED_SHARE = 0.93  # the older 93 % are finished, the recent ones open
STUCK_SHARE = 0.002  # and a few old ones are still open, long overdue
REFUSED_SHARE = 0.04  # finished as "not accepted" at the one-stop check
CLAIMED_SHARE = 0.35  # open tasks claimed by the unit's officer of the task's role
UNIT_SKEW = 1.6  # unit = floor(60 * random() ** 1.6): the first unit gets ~8 % of the cases
OPEN_STEP_WEIGHTS = (20, 45, 15, 20)  # where open cases wait: receive, work, approve, hand back
STEP_DECISIONS = ("accept", "propose_approve", "approve", "delivered")
OPEN_STATUSES = (DossierStatus.SUBMITTED, DossierStatus.PROCESSING, DossierStatus.PROCESSING,
                 DossierStatus.PROCESSED)
INBOX_GOAL_MS = 50.0
DOSSIER_GOAL_MS = 100.0
SQLITE_MAX_CASES = 100_000
CHUNK = 20_000
SURNAMES = ("Nguyễn", "Nguyễn", "Nguyễn", "Trần", "Trần", "Lê", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ",
            "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý")
MIDDLE_NAMES = ("Văn", "Thị", "Minh", "Đức", "Ngọc", "Thanh", "Hữu", "Quang", "Thu", "Hoài", "Xuân", "Kim")
GIVEN_NAMES = ("An", "Bình", "Châu", "Dung", "Giang", "Hà", "Hải", "Hạnh", "Hùng", "Khang", "Lan", "Linh",
               "Long", "Mai", "Nam", "Ngân", "Phúc", "Quân", "Sơn", "Tâm", "Thảo", "Trang", "Tuấn", "Vy", "Yến")

DOSSIER_COLUMNS = ("id", "code", "procedure_id", "unit_id", "model_version_id", "applicant", "applicant_name",
                   "applicant_id_number", "applicant_phone", "form", "channel", "status", "status_code",
                   "received_at", "due_at", "finished_at", "terms", "version", "appointment_at", "processed_at",
                   "closed_at", "outcome", "refused", "supplement_count", "apology_at", "clock_paused_at")
TASK_COLUMNS = ("id", "dossier_id", "spec_name", "name", "kind", "form_key", "lane", "role", "unit_id",
                "assignee_id", "state", "due_at", "created_at", "claimed_at", "completed_at", "completed_by_id",
                "decision")
AUDIT_COLUMNS = ("at", "actor_id", "actor", "action", "dossier_id", "dossier_code", "task_id", "data",
                 "prev_hash", "hash")
PAUSE_COLUMNS = ("dossier_id", "reason", "started_at", "ended_at")
JSON_COLUMNS = {"dossier": ("applicant", "form", "terms"), "task": (), "audit_event": ("data",), "clock_pause": ()}
BULK_TABLES = (("dossier", DOSSIER_COLUMNS), ("task", TASK_COLUMNS), ("audit_event", AUDIT_COLUMNS),
               ("clock_pause", PAUSE_COLUMNS))
SUPPLEMENT_SHARE = 0.08  # one supplement request (the clock restarted)
TWO_SUPPLEMENTS_SHARE = 0.004  # two (data from before the rule was enforced): late whatever the dates
WITHDRAWN_SHARE = 0.01
REFUSAL_LETTER_SHARE = 0.03  # the result is a refusal letter
WAITING_SHARE = 0.05  # open dossiers waiting for the applicant's supplement
APOLOGY_SHARE = 0.3  # of the late dossiers


@dataclass(frozen=True)
class _Step:
    """A user task of a procedure's path, as the case service projects it into ``task``."""

    spec_name: str
    name: str
    form_key: str | None
    lane: str | None
    role: str
    decision: str


@dataclass(frozen=True)
class _ProcedurePlan:
    id: int
    code: str
    version_id: int
    steps: tuple[_Step, ...]  # receive, the procedure's first work step, approve, hand back
    legal: timedelta  # the legal time in calendar time (about 1.4 days per working day)
    form_json: str
    terms_json: str


@dataclass(frozen=True)
class _UnitPlan:
    id: int
    agency_code: str
    users: dict[str, int]  # officer role → user id


def _legal_span(procedure: Procedure) -> timedelta:
    value, unit = procedure.legal_time_value, procedure.legal_time_unit
    if unit == "working_days":
        return timedelta(days=value * 1.4)
    if unit == "calendar_days":
        return timedelta(days=value)
    if unit == "hours":
        return timedelta(hours=value)
    return timedelta(hours=8)  # same_day


def _procedure_plans(session: Session, now: datetime) -> list[_ProcedurePlan]:
    """Each procedure's user-task path, read from its deployed BPMN and lane roles."""
    from SpiffWorkflow.spiff.specs.defaults import UserTask

    examples = {d.code: (d.data.get("example") or {}).get("form") or {} for d in catalogue.load_definitions()}
    plans = []
    for procedure in session.scalars(select(Procedure).where(Procedure.is_active).order_by(Procedure.code)):
        version = services.current_version(session, procedure)
        spec = session.get(ProcessSpec, version.content_hash)
        assert spec is not None, procedure.code
        wf = workflow.new_workflow(version.content_hash, spec.spec_json, {})
        found: dict[str, _Step] = {}
        for process in (wf.spec, *wf.subprocess_specs.values()):
            for task_spec in process.task_specs.values():
                if not isinstance(task_spec, UserTask):
                    continue
                props = (getattr(task_spec, "extensions", None) or {}).get("properties") or {}
                lane = getattr(task_spec, "lane", None)
                role = version.lane_roles.get(lane, "") if lane else ""
                name = task_spec.name
                if name in ("receive", "approve", "hand_back"):
                    key = name
                elif role in (Role.JUSTICE, Role.CULTURE) and "extends_deadline" not in props:
                    key = "work"  # the first work step; verification rounds are the rare path
                else:
                    continue
                found.setdefault(key, _Step(name, task_spec.bpmn_name or name, props.get("form"), lane, role, ""))
        keys = ("receive", "work", "approve", "hand_back")
        missing = [k for k in keys if k not in found]
        assert not missing, f"{procedure.code}: no {missing} user task"
        steps = tuple(replace(found[k], decision=d) for k, d in zip(keys, STEP_DECISIONS, strict=True))
        form = examples.get(procedure.code, {})
        terms = services.procedure_terms(procedure, now)
        terms["fee_due"] = services.fee_due(terms["fee"], form)
        plans.append(_ProcedurePlan(procedure.id, procedure.code, version.id, steps, _legal_span(procedure),
                                    json.dumps(form, ensure_ascii=False), json.dumps(terms, ensure_ascii=False)))
    return plans


def _add_units(session: Session, total: int) -> list[_UnitPlan]:
    """Communes beyond the demo ones, each with its four officers; the inbox unit comes first."""
    from scripts.seed import UNIT_ROLES

    template = session.scalar(select(User).where(User.username == INBOX_OFFICER))
    assert template is not None, "run the demo seed first"
    existing = session.scalar(select(func.count()).select_from(Unit)) or 0
    for n in range(1, total - existing + 1):
        unit = Unit(code=f"bench{n:02d}", name=f"UBND xã Bench {n:02d}", agency_code=f"000.{n:02d}.77.H77")
        session.add(unit)
        session.flush()
        for role, title in UNIT_ROLES:
            user = User(username=f"{role.value}.{unit.code}", full_name=f"{title} Bench {n:02d}",
                        password_hash=template.password_hash, unit_id=unit.id, title=title)
            user.role_rows = [UserRole(role=role.value)]
            session.add(user)
    session.flush()
    users: dict[int, dict[str, int]] = {}
    for user_id, unit_id, role_name in session.execute(
            select(User.id, User.unit_id, UserRole.role).join(UserRole, UserRole.user_id == User.id)
            .where(User.unit_id.is_not(None))):
        if unit_id is not None:
            users.setdefault(unit_id, {})[role_name] = user_id
    units = session.scalars(select(Unit).order_by((Unit.code != INBOX_UNIT), Unit.id)).all()
    return [_UnitPlan(u.id, u.agency_code, users.get(u.id, {})) for u in units]


def _applicant(rng: random.Random) -> tuple[str, str, str, str]:
    """Name, CCCD number, phone and the applicant JSON of a made-up person."""
    name = f"{rng.choice(SURNAMES)} {rng.choice(MIDDLE_NAMES)} {rng.choice(GIVEN_NAMES)}"
    id_number = f"0{rng.randrange(10**11):011d}"
    phone = f"09{rng.randrange(10**8):08d}"
    applicant = json.dumps({"type": "individual", "full_name": name, "id_number": id_number, "phone": phone},
                           ensure_ascii=False)
    return name, id_number, phone, applicant


def _due_end_of_day(moment: datetime) -> datetime:
    """17:00 Vietnam time (10:00 UTC) of the day, as legal due moments are."""
    return moment.replace(hour=10, minute=0, second=0, microsecond=0)


def _synthetic_chunks(
    units: list[_UnitPlan], procedures: list[_ProcedurePlan], *, cases: int, first_id: int, now: datetime,
    rng: random.Random, counters: dict[tuple[int, date], int],
) -> Iterator[tuple[list[tuple[Any, ...]], ...]]:
    """Rows of ``dossier``, ``task``, ``audit_event`` and ``clock_pause`` for ``cases`` dossiers,
    CHUNK at a time.

    Dossier ids grow with the receipt time; codes follow the real per unit and day sequence
    (``counters`` is updated). Finished dossiers have their four user tasks completed; open ones
    wait at one step with one READY task, some claimed, due dates spread around now; the result
    evaluation (appointment, end of processing, outcome, supplements, apology) is filled as the
    engine would. Audit rows are marked ``actor="bench"`` with empty hashes: they are not part of the hash chain.
    """
    start = now - INBOX_SPAN
    open_from = int(cases * FINISHED_SHARE)
    dossiers: list[tuple[Any, ...]] = []
    tasks: list[tuple[Any, ...]] = []
    audit: list[tuple[Any, ...]] = []
    pauses: list[tuple[Any, ...]] = []
    uuid4 = uuid.UUID
    for k in range(cases):
        dossier_id = first_id + k
        unit = units[min(int(len(units) * rng.random() ** UNIT_SKEW), len(units) - 1)]
        proc = procedures[rng.randrange(len(procedures))]
        received = start + INBOX_SPAN * ((k + rng.random()) / cases)
        day = to_vn(received).date()
        number = counters.get((unit.id, day), 0) + 1
        counters[(unit.id, day)] = number
        code = f"{unit.agency_code}-{day:%y%m%d}-{number:04d}"
        name, id_number, phone, applicant = _applicant(rng)
        roll = rng.random()
        channel = "online" if roll < 0.45 else "counter" if roll < 0.95 else "post"
        is_open = k >= open_from or rng.random() < STUCK_SHARE
        roll = rng.random()
        supplements = 2 if roll < TWO_SUPPLEMENTS_SHARE else 1 if roll < SUPPLEMENT_SHARE else 0
        processed = closed = outcome = apology = paused = None
        refusal_letter = False
        if is_open:
            open_step = rng.choices(range(4), weights=OPEN_STEP_WEIGHTS)[0]
            task_due = _due_end_of_day(max(received + timedelta(hours=4),
                                           now + timedelta(days=rng.uniform(-3, 12))))
            due = max(task_due, _due_end_of_day(received + proc.legal))
            finished = None
            status = OPEN_STATUSES[open_step]
            last = now - timedelta(minutes=rng.uniform(1, 600))
            end = max(received + timedelta(minutes=5), last)
            done_steps = open_step
            if open_step == 1 and rng.random() < WAITING_SHARE:
                status, paused, supplements = DossierStatus.SUPPLEMENT_REQUESTED, end, max(supplements, 1)
            elif open_step == 3:
                processed = closed = end
                outcome = rate_result(end, due, supplements=supplements).value
        else:
            due = _due_end_of_day(received + proc.legal)
            finished = min(received + proc.legal * rng.uniform(0.3, 1.15), now - timedelta(minutes=1))
            refused = rng.random() < REFUSED_SHARE
            withdrawn = not refused and rng.random() < WITHDRAWN_SHARE
            status = DossierStatus.NOT_ACCEPTED if refused else \
                DossierStatus.WITHDRAWAL_REQUESTED if withdrawn else DossierStatus.RETURNED
            end = finished
            done_steps = 1 if refused or withdrawn else 4
            closed = finished
            if refused:
                outcome, supplements = "not_accepted", 0
            elif withdrawn:
                outcome = "withdrawn"
            else:
                processed = closed = received + (finished - received) * 0.85  # the hand-back comes after
                outcome = rate_result(processed, due, supplements=supplements).value
                refusal_letter = rng.random() < REFUSAL_LETTER_SHARE
                if outcome == "late" and rng.random() < APOLOGY_SHARE:
                    apology = due - timedelta(days=1)
        dossiers.append((dossier_id, code, proc.id, unit.id, proc.version_id, applicant, name, id_number, phone,
                         proc.form_json, channel, status.value, status.national_code, received, due, finished,
                         proc.terms_json, 1, due, processed, closed, outcome, refusal_letter, supplements, apology,
                         paused))
        for n in range(supplements):
            started = received + timedelta(hours=2 + n)
            pauses.append((dossier_id, "supplement", paused if paused and n == supplements - 1 else started,
                           None if paused and n == supplements - 1 else started + timedelta(hours=1)))
        audit.append((received, None, "bench", "dossier_submitted", dossier_id, code, None,
                       f'{{"procedure": "{proc.code}", "channel": "{channel}"}}', "", ""))
        steps = done_steps + (1 if is_open else 0)
        for j in range(steps):
            step = proc.steps[j]
            created = received + (end - received) * (j / max(steps, 1))
            user = unit.users.get(step.role)
            if j < done_steps:
                completed = received + (end - received) * ((j + 1) / max(steps, 1))
                decision = "refuse" if j == 0 and status is DossierStatus.NOT_ACCEPTED else step.decision
                tasks.append((str(uuid4(int=rng.getrandbits(128), version=4)), dossier_id, step.spec_name,
                              step.name, "user", step.form_key, step.lane, step.role, unit.id, user, "completed",
                              min(due, _due_end_of_day(created + timedelta(days=1))), created, created, completed,
                              user, decision))
            else:
                claimed = rng.random() < CLAIMED_SHARE
                tasks.append((str(uuid4(int=rng.getrandbits(128), version=4)), dossier_id, step.spec_name,
                              step.name, "user", step.form_key, step.lane, step.role, unit.id,
                              user if claimed else None, "ready", task_due, created, created if claimed else None,
                              None, None, None))
        if steps > 1:
            audit.append((received + (end - received) / steps, None, "bench", "status_changed", dossier_id, code,
                          None, f'{{"from": "submitted", "to": "{status.value}"}}', "", ""))
        if finished is not None:
            audit.append((finished, None, "bench", "case_finished", dossier_id, code, None,
                           f'{{"status": "{status.value}"}}', "", ""))
        if len(dossiers) >= CHUNK:
            yield dossiers, tasks, audit, pauses
            dossiers, tasks, audit, pauses = [], [], [], []
    if dossiers:
        yield dossiers, tasks, audit, pauses


def _is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def _secondary_indexes(conn: Connection) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of the bulk tables' indexes that back no constraint."""
    rows = conn.execute(text(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() "
        "AND i.tablename IN ('dossier', 'task', 'audit_event', 'clock_pause') "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname) ORDER BY i.indexname"))
    return [(name, definition) for name, definition in rows]


def _bulk_load(engine: Engine, chunks: Iterable[tuple[list[tuple[Any, ...]], ...]]) -> None:
    """COPY on PostgreSQL (one transaction per chunk), executemany elsewhere."""
    if _is_postgres(engine):
        for chunk in chunks:
            with engine.begin() as conn:
                conn.execute(text("SET LOCAL synchronous_commit = off"))
                cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
                for (table, columns), rows in zip(BULK_TABLES, chunk, strict=True):
                    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
        return
    tables = {t.name: t for t in Base.metadata.sorted_tables}
    for chunk in chunks:
        with engine.begin() as conn:
            for (table, columns), rows in zip(BULK_TABLES, chunk, strict=True):
                json_at = [columns.index(c) for c in JSON_COLUMNS[table]]
                values = []
                for row in rows:
                    item = dict(zip(columns, row, strict=True))
                    for i in json_at:
                        item[columns[i]] = json.loads(row[i])
                    values.append(item)
                conn.execute(tables[table].insert(), values)


def _load_synthetic(engine: Engine, factory: sessionmaker[Session], *, cases: int, seed: int) -> dict[str, float]:
    """Write ``cases`` synthetic dossiers with their tasks and audit rows; returns timings.

    On PostgreSQL the secondary indexes of the bulk tables are dropped first and built again from
    their own definitions afterwards, as a restore does: building an index once is much faster
    than updating it row by row.
    """
    now = clock.now()
    with transaction(factory) as session:
        units = _add_units(session, INBOX_UNITS)
        procedures = _procedure_plans(session, now)
        counters = {(u, d): n for u, d, n in session.execute(
            select(DossierCodeCounter.unit_id, DossierCodeCounter.day, DossierCodeCounter.last))}
        first_id = (session.scalar(select(func.max(Dossier.id))) or 0) + 1
    started = time.perf_counter()
    indexes: list[tuple[str, str]] = []
    if _is_postgres(engine):
        with engine.begin() as conn:
            indexes = _secondary_indexes(conn)
            for name, _definition in indexes:
                conn.execute(text(f'DROP INDEX "{name}"'))
    _bulk_load(engine, _synthetic_chunks(units, procedures, cases=cases, first_id=first_id, now=now,
                                         rng=random.Random(seed), counters=counters))  # noqa: S311 - made-up data
    loaded = time.perf_counter()
    with engine.begin() as conn:
        if _is_postgres(engine):
            conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
            for _name, definition in indexes:
                conn.execute(text(definition))
            conn.execute(text("SELECT setval(pg_get_serial_sequence('dossier', 'id'), "
                              "(SELECT max(id) FROM dossier))"))
        # The codes the real cases get next continue the per unit and day sequences.
        conn.execute(delete(DossierCodeCounter))
        conn.execute(insert(DossierCodeCounter), [{"unit_id": u, "day": d, "last": n}
                                                  for (u, d), n in counters.items()])
    return {"rows_s": round(loaded - started, 1), "indexes_s": round(time.perf_counter() - loaded, 1)}


def _real_cases(factory: sessionmaker[Session], registry: Any, *, count: int) -> int:
    """Cases through the case service in the inbox unit: every procedure in turn, most accepted
    at the one-stop check, half of the officer's resulting tasks claimed by the officer."""
    from engine import jobs

    lease = timedelta(seconds=30)
    examples = {d.code: (d.data.get("example") or {}).get("form") or {} for d in catalogue.load_definitions()}
    with transaction(factory) as session:
        officer = session.scalar(select(User).where(User.username == INBOX_OFFICER))
        onestop = session.scalar(select(User).where(User.username == f"{Role.ONESTOP.value}.{INBOX_UNIT}"))
        assert officer is not None, "run the demo seed first"
        assert onestop is not None, "run the demo seed first"
        officer_actor, onestop_actor = services.Actor.of(officer), services.Actor.of(onestop)
        codes = list(session.scalars(select(Procedure.code).where(Procedure.is_active).order_by(Procedure.code)))
    rng = random.Random(count)  # noqa: S311 - made-up applicants
    for i in range(count):
        name, id_number, phone, _json = _applicant(rng)
        applicant = {"type": "individual", "full_name": name, "id_number": id_number, "phone": phone}
        with transaction(factory) as session:
            dossier_id = services.submit_dossier(
                session, procedure_code=codes[i % len(codes)], unit_code=INBOX_UNIT, applicant=applicant,
                form=examples.get(codes[i % len(codes)], {}), channel="counter", actor=services.SYSTEM_ACTOR).id
        jobs.drain(factory, registry, lease=lease)
        if i % 4 == 0:
            continue  # waits at the one-stop check
        with transaction(factory) as session:
            receive = session.scalar(select(Task.id).where(Task.dossier_id == dossier_id, Task.spec_name == "receive",
                                                           Task.state == TaskState.READY.value))
            assert receive is not None
            services.complete_task(session, receive, actor=onestop_actor, data={"decision": "accept"})
        jobs.drain(factory, registry, lease=lease)
        if i % 2 == 0:
            with transaction(factory) as session:
                for task_id in session.scalars(select(Task.id).where(
                        Task.dossier_id == dossier_id, Task.state == TaskState.READY.value,
                        Task.role.in_(officer_actor.roles))):
                    services.claim_task(session, task_id, actor=officer_actor)
    return count


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def rank(q: float) -> float:
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000

    return {"p50": round(rank(0.50), 2), "p95": round(rank(0.95), 2), "p99": round(rank(0.99), 2),
            "max": round(ordered[-1] * 1000, 2), "mean": round(statistics.mean(ordered) * 1000, 2)}


def _plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


def _explain(conn: Connection, statement: str, parameters: Any) -> tuple[set[str], set[str]]:
    """(indexes used, tables read by a full scan) of one SELECT, from the planner (not run)."""
    indexes: set[str] = set()
    scans: set[str] = set()
    if conn.dialect.name == "postgresql":
        raw = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).scalar_one()
        document = json.loads(raw) if isinstance(raw, str) else raw
        for node in _plan_nodes(document[0]["Plan"]):
            if "Index Name" in node:
                indexes.add(node["Index Name"])
            if node.get("Node Type") == "Seq Scan":
                scans.add(node["Relation Name"])
        return indexes, scans
    for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters):
        detail = str(row[-1])
        found = re.search(r"USING (?:COVERING )?INDEX (\w+)", detail)
        if found:
            indexes.add(found.group(1))
        elif "PRIMARY KEY" in detail:
            indexes.add(f"{detail.split()[1]} primary key")
        elif detail.startswith("SCAN "):
            scans.add(detail.split()[1])
    return indexes, scans


def _plans(app: Any, get: Callable[[str], Any], urls: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The SELECTs one request of each endpoint runs, with the indexes and full scans of each plan."""
    engine = app.extensions["motcua"].engine
    result = {}
    for name, url in urls.items():
        captured: list[tuple[str, Any]] = []

        def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
                    _executemany: bool, into: list[tuple[str, Any]] = captured) -> None:
            if statement.lstrip().upper().startswith("SELECT") and "pg_advisory" not in statement:
                into.append((statement, parameters))

        event.listen(engine, "before_cursor_execute", capture)
        try:
            get(url)
        finally:
            event.remove(engine, "before_cursor_execute", capture)
        indexes: set[str] = set()
        scans: set[str] = set()
        with engine.connect() as conn:
            for statement, parameters in captured:
                used, full = _explain(conn, statement, parameters)
                indexes |= used
                scans |= full
        result[name] = {"statements": len(captured), "indexes": sorted(indexes), "seq_scans": sorted(scans)}
    return result


def _api_get(app: Any, username: str) -> Callable[[str], Any]:
    """GET through the Flask app as a demo user (bearer token); anything but 200 stops the run."""
    from scripts.seed import DEMO_PASSWORD

    client = app.test_client()
    login = client.post("/api/v1/auth/login", json={"username": username, "password": DEMO_PASSWORD})
    assert login.status_code == 200, login.get_json()
    headers = {"Authorization": f"Bearer {login.get_json()['token']}"}

    def get(url: str) -> Any:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, (url, response.status_code, response.get_data(as_text=True)[:300])
        return response.get_json()

    return get


def _samples(get: Callable[[str], Any], url_of: Callable[[int], str], *, requests: int,
             warmup: int = 25) -> list[float]:
    """Seconds of ``requests`` GETs of ``url_of(0), url_of(1) …`` after up to ``warmup`` untimed ones."""
    for i in range(min(requests, warmup)):
        get(url_of(i))
    return [_timed(lambda i=i: get(url_of(i))) for i in range(requests)]


def _measure_api(app: Any, factory: sessionmaker[Session], *, requests: int, seed: int) -> dict[str, Any]:
    """Time each endpoint through the Flask app as the officer; warm-up requests are not counted."""
    get = _api_get(app, INBOX_OFFICER)
    rng = random.Random(seed)  # noqa: S311 - which names to search for
    inbox = get("/api/v1/tasks?scope=all&limit=200")
    with transaction(factory) as session:
        unit_id = session.scalar(select(Unit.id).where(Unit.code == INBOX_UNIT))
        dossiers = list(session.scalars(select(Dossier.code).where(Dossier.unit_id == unit_id)
                                        .order_by(func.random()).limit(min(requests, 1000))))
    open_codes = [item["dossier"] for item in inbox["items"]] or dossiers
    task_ids = [item["id"] for item in inbox["items"]]
    names = [f"{rng.choice(MIDDLE_NAMES)} {rng.choice(GIVEN_NAMES)}" for _ in range(50)]
    endpoints: dict[str, list[str]] = {
        "inbox_mine": ["/api/v1/tasks?scope=mine"],
        "inbox_unit": ["/api/v1/tasks?scope=unit"],
        "inbox_all": ["/api/v1/tasks?scope=all"],
        "inbox_all_page2": ["/api/v1/tasks?scope=all&offset=50"],
        "inbox_search_code": [f"/api/v1/tasks?scope=all&q={code}" for code in open_codes],
        "inbox_search_name": [f"/api/v1/tasks?scope=all&q={name}" for name in names],
        "task": [f"/api/v1/tasks/{task_id}" for task_id in task_ids],
        "dossier": [f"/api/v1/dossiers/{code}" for code in dossiers],
        "case_history": [f"/api/v1/cases/{code}/history" for code in dossiers],
    }
    endpoints = {name: urls for name, urls in endpoints.items() if urls}
    latency = {name: _percentiles(_samples(get, lambda i, urls=urls: urls[i % len(urls)], requests=requests))
               for name, urls in endpoints.items()}
    plans = _plans(app, get, {name: urls[0] for name, urls in endpoints.items()})
    return {"counts": inbox["counts"], "latency_ms": latency, "plans": plans}


def _row_counts(factory: sessionmaker[Session]) -> dict[str, int]:
    with transaction(factory) as session:
        counts = {model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
                  for model in (Unit, User, Procedure, Dossier, Task, AuditEvent, WorkflowState)}
        counts["open_user_tasks"] = session.scalar(select(func.count()).select_from(Task).where(
            Task.state.in_(OPEN_TASK_STATES), Task.kind == "user")) or 0
        # Demo and real cases have a workflow state; the synthetic ones do not.
        counts["synthetic_dossiers"] = counts["dossier"] - counts["workflow_state"]
        counts["inbox_unit_dossiers"] = session.scalar(select(func.count()).select_from(Dossier).join(Unit).where(
            Unit.code == INBOX_UNIT)) or 0
    return counts


def _analyze(engine: Engine) -> None:
    """Fresh statistics, and on PostgreSQL a vacuumed visibility map, as a settled database has."""
    if _is_postgres(engine):
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("dossier", "task", "audit_event", "clock_pause", "timer", "workflow_state"):
                conn.execute(text(f"VACUUM (ANALYZE) {table}"))
            conn.execute(text("ANALYZE"))
        return
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))


def _on_synthetic_province(
    settings: Settings, *, cases: int, seed: int, measure: Callable[[Any, sessionmaker[Session]], dict[str, Any]],
    before_analyze: Callable[[sessionmaker[Session], Any], Any] | None = None,
) -> tuple[str, dict[str, int], dict[str, float], dict[str, Any]]:
    """A scratch database (dropped afterwards) with the demo seed and ``cases`` synthetic dossiers,
    settled (vacuumed, analysed), then ``measure(app, factory)`` through the Flask app. Returns the
    backend name, row counts, the phases' timings and what ``measure`` returned."""
    from backoffice.app import create_app
    from connectors import build_registry
    from engine.migrate import upgrade
    from scripts.seed import seed_demo

    backend = make_url(settings.database_url).get_backend_name()
    if backend == "sqlite" and cases > SQLITE_MAX_CASES:
        raise ValueError(f"SQLite is for small runs (at most {SQLITE_MAX_CASES:,} cases); use PostgreSQL")
    started = time.perf_counter()
    with scratch_database(settings.with_(env="test", sandbox=True, worker="embedded")) as scratch:
        upgrade(scratch)
        engine = make_engine(scratch)
        factory = make_session_factory(engine)
        registry = build_registry(scratch, factory)
        try:
            timings: dict[str, float] = {}
            mark = time.perf_counter()
            seed_demo(factory, registry, lease=timedelta(seconds=30))
            timings["seed_s"] = round(time.perf_counter() - mark, 1)
            timings.update(_load_synthetic(engine, factory, cases=cases, seed=seed))
            if before_analyze is not None:
                mark = time.perf_counter()
                before_analyze(factory, registry)
                timings["real_cases_s"] = round(time.perf_counter() - mark, 1)
            mark = time.perf_counter()
            _analyze(engine)
            timings["analyze_s"] = round(time.perf_counter() - mark, 1)
            rows = _row_counts(factory)
            app = create_app(scratch)
            try:
                mark = time.perf_counter()
                measured = measure(app, factory)
                timings["measure_s"] = round(time.perf_counter() - mark, 1)
            finally:
                app.extensions["motcua"].engine.dispose()
            timings["total_s"] = round(time.perf_counter() - started, 1)
        finally:
            engine.dispose()
    return backend, rows, timings, measured


def run_inbox_bench(settings: Settings, *, cases: int = 1_000_000, requests: int = 500, real_cases: int = 100,
                    seed: int = 20261122) -> dict[str, Any]:
    """``cases`` dossiers in 60 communes, then the inbox, task, dossier and history API latencies of
    one officer, measured through the Flask app on a scratch database (dropped afterwards)."""
    backend, rows, timings, measured = _on_synthetic_province(
        settings, cases=cases, seed=seed,
        before_analyze=lambda factory, registry: _real_cases(factory, registry, count=real_cases),
        measure=lambda app, factory: _measure_api(app, factory, requests=requests, seed=seed))
    latency = measured["latency_ms"]
    inbox_p95 = max(v["p95"] for k, v in latency.items() if k.startswith("inbox_"))
    read_p95 = max(v["p95"] for k, v in latency.items() if not k.startswith("inbox_"))
    scanned = sorted({table for plan in measured["plans"].values() for table in plan["seq_scans"]})
    return {
        "benchmark": "inbox",
        "database": backend,
        "cases": cases,
        "real_cases": real_cases,
        "requests_per_endpoint": requests,
        "officer": INBOX_OFFICER,
        "officer_inbox_counts": measured["counts"],
        "rows": rows,
        "load": timings,
        "latency_ms": latency,
        "goals": {
            "inbox_p95_ms": INBOX_GOAL_MS, "inbox_worst_p95_ms": inbox_p95, "inbox_ok": inbox_p95 <= INBOX_GOAL_MS,
            "read_p95_ms": DOSSIER_GOAL_MS, "read_worst_p95_ms": read_p95, "read_ok": read_p95 <= DOSSIER_GOAL_MS,
        },
        "plans": measured["plans"],
        "seq_scans": scanned,
        "uses_indexes": not {"task", "dossier", "audit_event"} & set(scanned),
        "note": "bulk rows are synthetic projections (dossier, task, audit_event) written directly, "
                "not run through the engine; real_cases went through the case service",
    }


# --- reports and auditor search on a province's worth of dossiers ----------------------------------

REPORT_GOAL_S = 2.0
SEARCH_GOAL_MS = 100.0
REPORT_REPEATS = 7


def _settled_month(now: datetime) -> Any:
    """The month three months back: the synthetic data keeps the last 7 % of dossiers (about 50
    days) open, so a settled month is the one with a full month of results to count."""
    from engine.reports import Period

    today = to_vn(now - timedelta(days=90)).date()
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return Period.month(year, month)


def _time_calls(fn: Callable[[], Any], repeats: int) -> dict[str, float]:
    fn()  # warm-up: the first call pays for cold pages, not the query
    samples = [_timed(fn) for _ in range(repeats)]
    return {"median_s": round(statistics.median(samples), 3), "max_s": round(max(samples), 3)}


def _measure_reports(app: Any, factory: sessionmaker[Session], *, requests: int) -> dict[str, Any]:
    """The province's monthly reports (engine call and API), then the auditor's searches."""
    from engine import reports

    now = clock.now()
    period = _settled_month(now)
    province = reports.Scope()

    def with_session(fn: Callable[[Session], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with transaction(factory) as session:
                return fn(session)
        return run

    get = _api_get(app, "auditor")
    month = f"from={period.start.isoformat()}&to={period.end.isoformat()}"
    with transaction(factory) as session:
        largest = session.execute(select(Dossier.unit_id, func.count()).group_by(Dossier.unit_id)
                                  .order_by(func.count().desc()).limit(1)).one()[0]
    report = get(f"/api/v1/reports/ontime?{month}")
    timings = {
        "ontime_by_procedure": _time_calls(with_session(
            lambda s: reports.ontime_report(s, period, province, by="procedure")), REPORT_REPEATS),
        "ontime_by_unit": _time_calls(with_session(
            lambda s: reports.ontime_report(s, period, province, by="unit")), REPORT_REPEATS),
        "ontime_api": _time_calls(lambda: get(f"/api/v1/reports/ontime?{month}"), REPORT_REPEATS),
        "index_scores": _time_calls(with_session(lambda s: reports.index_scores(s, period, province)), REPORT_REPEATS),
        "online_rates": _time_calls(with_session(lambda s: reports.online_rates(s, period, province)), REPORT_REPEATS),
        "register_month_largest_unit": _time_calls(with_session(
            lambda s: reports.register_rows(s, largest, period.start.year, month=period.start.month)), REPORT_REPEATS),
        "dashboard": _time_calls(with_session(lambda s: reports.dashboard(s, province)), REPORT_REPEATS),
    }

    with transaction(factory) as session:
        sample = session.execute(select(Dossier.code, Dossier.applicant_id_number, Dossier.applicant_phone,
                                        Dossier.applicant_name, Unit.code, Procedure.code)
                                 .join(Unit, Unit.id == Dossier.unit_id)
                                 .join(Procedure, Procedure.id == Dossier.procedure_id)
                                 .order_by(func.random()).limit(min(requests, 1000))).all()
    months = [(period.start - timedelta(days=31 * i)).replace(day=1) for i in range(6)]

    def month_range(i: int) -> str:
        first = months[i % len(months)]
        return f"from={first.isoformat()}&to={reports.Period.month(first.year, first.month).end.isoformat()}"

    first_page = get("/api/v1/audit/dossiers?limit=50")
    searches: dict[str, Callable[[int], str]] = {
        "code": lambda i: f"q={sample[i % len(sample)][0]}",
        "code_prefix_unit_day": lambda i: f"q={sample[i % len(sample)][0].rsplit('-', 1)[0]}-",
        "id_number": lambda i: f"q={sample[i % len(sample)][1]}",
        "phone": lambda i: f"q={sample[i % len(sample)][2]}",
        "name_prefix": lambda i: "q=" + " ".join(sample[i % len(sample)][3].split()[:2]),
        "unit_procedure_month": lambda i: f"unit={sample[i % len(sample)][4]}&procedure={sample[i % len(sample)][5]}"
                                          f"&{month_range(i)}",
        "late_in_month": lambda i: f"outcome=late&{month_range(i)}",
        "unit_overdue_now": lambda i: f"unit={sample[i % len(sample)][4]}&overdue=1",
        "with_apology": lambda i: f"apology=1&{month_range(i)}",
        "newest_page": lambda i: "limit=50",
        "next_page": lambda i: f"limit=50&after={first_page['next']}",
    }
    latency: dict[str, dict[str, float]] = {}
    everything: list[float] = []
    for name, query in searches.items():
        samples = _samples(get, lambda i, query=query: f"/api/v1/audit/dossiers?{query(i)}", requests=requests)
        latency[name] = _percentiles(samples)
        everything += samples
    plans = _plans(app, get, {"report": f"/api/v1/reports/ontime?{month}",
                              **{f"search_{name}": f"/api/v1/audit/dossiers?{query(0)}"
                                 for name, query in searches.items()}})
    return {"period": {"from": period.start.isoformat(), "to": period.end.isoformat()},
            "province_total": report["total"], "report_s": timings, "search_latency_ms": latency,
            "search_all_ms": _percentiles(everything), "plans": plans}


def run_reports_bench(settings: Settings, *, cases: int = 1_000_000, requests: int = 300,
                      seed: int = 20261202) -> dict[str, Any]:
    """``cases`` dossiers in 60 communes over two years; the province's monthly on-time report and
    the other reports timed, and the auditor's searches (p50/p95/p99) through the API."""
    backend, rows, timings, measured = _on_synthetic_province(
        settings, cases=cases, seed=seed, measure=lambda app, factory: _measure_reports(app, factory,
                                                                                       requests=requests))
    monthly = max(measured["report_s"][name]["max_s"] for name in ("ontime_by_procedure", "ontime_by_unit"))
    monthly_api = measured["report_s"]["ontime_api"]["max_s"]
    search_p95 = measured["search_all_ms"]["p95"]
    worst_search = max(v["p95"] for v in measured["search_latency_ms"].values())
    scanned = sorted({table for plan in measured["plans"].values() for table in plan["seq_scans"]})
    return {
        "benchmark": "reports",
        "database": backend,
        "cases": cases,
        "requests_per_search": requests,
        "rows": rows,
        "load": timings,
        **measured,
        "goals": {
            "monthly_report_s": REPORT_GOAL_S, "monthly_report_worst_s": max(monthly, monthly_api),
            "monthly_report_ok": max(monthly, monthly_api) <= REPORT_GOAL_S,
            "search_p95_ms": SEARCH_GOAL_MS, "search_all_p95_ms": search_p95,
            "search_worst_kind_p95_ms": worst_search, "search_ok": search_p95 <= SEARCH_GOAL_MS,
        },
        "seq_scans": scanned,
        "note": "bulk rows are synthetic projections written directly (see run_inbox_bench); report and search "
                "figures are the worst of the repeats (report) and per kind of search (search)",
    }
