"""Realistic cases at volume (``motcua bench seed``): copies of cases the engine ran.

A few cases of every procedure go through the case service, as the unit's officers, to each stage
of the one-stop lifecycle: waiting at receipt, waiting for the applicant's supplement, at the
procedure's first work step, at the leader's approval, at the hand-back, returned, refused at
receipt, withdrawn. Each stage is a *template*: the workflow state, the task, timer, clock-pause and
audit rows the engine wrote for it. Bulk cases are copies of the templates with their own identity:
a code in the unit's daily sequence, a made-up applicant, the unit's own officers, new task and timer
ids, every moment placed on the case's own timeline, the legal due moment and the deadline warning
from the working-day calendar, and audit events chained after the existing chain (``motcua audit
verify`` holds). A copy is a case like any other: officers open and complete its tasks and its
deadline timers fire.

Run it while nothing else writes: the audit events are chained in one pass.
"""

from __future__ import annotations

import json
import random
import re
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import JSON, Connection, Engine, Table, delete, func, insert, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from engine import catalogue, clock, jobs, services
from engine.audit import GENESIS, HEAD_KEY, event_hash
from engine.calendar import to_vn
from engine.db import transaction
from engine.models import (
    AuditEvent,
    ClockPause,
    Dossier,
    DossierCodeCounter,
    Procedure,
    Setting,
    Task,
    TaskState,
    Timer,
    Unit,
    User,
    UserRole,
    WorkflowState,
    rate_result,
)
from scripts.bench import INBOX_SPAN, INBOX_UNIT, INBOX_UNITS, UNIT_SKEW, _add_units, _applicant, _legal_span, _UnitPlan

OPEN_STAGES = ("receive", "supplement", "work", "approve", "hand_back")
CLOSED_STAGES = ("returned", "not_accepted", "withdrawn")
# Where cases are: 7 % open (as in a province's two years), spread over the open stages like a
# commune's inbox; the rest finished, mostly returned.
STAGE_WEIGHTS = {"receive": 1.4, "supplement": 0.35, "work": 3.15, "approve": 1.05, "hand_back": 1.05,
                 "returned": 88.0, "not_accepted": 4.0, "withdrawn": 1.0}
REFUSAL_LETTER_SHARE = 0.03
CHUNK = 5_000
TEMPLATE_APPLICANT = {"type": "individual", "full_name": "Mẫu Văn Nhân", "id_number": "079000000001",
                      "phone": "0900000001"}
UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# Moments of a template that are deadlines, not events of its timeline (they are recomputed).
DEADLINE_COLUMNS = {"due_at", "appointment_at"}
Deadlines = Callable[[int, datetime, datetime], tuple[datetime, datetime]]
"""(case number, received, computed due) → (due, warning): lets a benchmark place deadlines."""


@dataclass
class Template:
    procedure_id: int
    stage: str
    dossier: dict[str, Any]
    state: str  # the workflow state's JSON
    content_hash: str
    completed: bool
    tasks: list[dict[str, Any]]
    timers: list[dict[str, Any]]
    pauses: list[dict[str, Any]]
    events: list[dict[str, Any]]
    literals: dict[str, str]  # received_at, due_at, warning_at as the workflow data writes them
    moments: list[datetime]  # the timeline's distinct moments, in order


def _row(obj: Any) -> dict[str, Any]:
    return {c.name: getattr(obj, c.key) for c in obj.__table__.columns}


class _Driver:
    """One case through the case service as the unit's officers (by the task's role)."""

    def __init__(self, factory: sessionmaker[Session], registry: Any, unit_code: str):
        self.factory, self.registry = factory, registry
        with transaction(factory) as session:
            unit = session.scalar(select(Unit).where(Unit.code == unit_code))
            assert unit is not None, unit_code
            self.unit_code = unit.code
            self.actors = {}
            for user in session.scalars(select(User).where(User.unit_id == unit.id)):
                for role in user.roles:
                    self.actors.setdefault(role, services.Actor.of(user))
        self.dossier_id = 0
        self.code = ""

    def drain(self) -> None:
        jobs.drain(self.factory, self.registry, lease=timedelta(seconds=30))

    def submit(self, procedure: str, form: dict[str, Any], received: datetime) -> None:
        with transaction(self.factory) as session:
            dossier = services.submit_dossier(
                session, procedure_code=procedure, unit_code=self.unit_code, applicant=TEMPLATE_APPLICANT, form=form,
                channel="counter", actor=self.actors["onestop"], received_at=received)
            self.dossier_id, self.code = dossier.id, dossier.code
        self.drain()

    def open_steps(self) -> list[str]:
        with transaction(self.factory) as session:
            return list(session.scalars(select(Task.spec_name).where(
                Task.dossier_id == self.dossier_id, Task.kind == "user", Task.state == TaskState.READY.value)))

    def complete(self, step: str, data: dict[str, Any]) -> None:
        with transaction(self.factory) as session:
            task = session.scalar(select(Task).where(Task.dossier_id == self.dossier_id, Task.spec_name == step,
                                                     Task.state == TaskState.READY.value))
            assert task is not None, (self.code, step, self.open_steps())
            actor = self.actors[task.role or "onestop"]
            services.claim_task(session, task.id, actor=actor)
            services.complete_task(session, task.id, actor=actor, data=data)
        self.drain()

    def message(self, name: str, payload: Any) -> None:
        with transaction(self.factory) as session:
            services.deliver_message(session, self.code, name, payload, actor=services.SYSTEM_ACTOR)
        self.drain()

    def withdraw(self) -> None:
        with transaction(self.factory) as session:
            services.withdraw_dossier(session, self.code, actor=services.SYSTEM_ACTOR, reason="Không còn nhu cầu")
        self.drain()

    def let_timer_fire(self) -> None:
        """Move the process clock past the case's next timer until someone has a task again."""
        for _ in range(5):
            with transaction(self.factory) as session:
                run_at = session.scalar(select(func.min(Timer.run_at)).where(Timer.dossier_id == self.dossier_id))
            assert run_at is not None, f"{self.code} waits for no timer"
            clock.set_offset(clock.offset() + (run_at - clock.now()) + timedelta(seconds=1))
            self.drain()
            if self.open_steps():
                return
        raise AssertionError(f"{self.code}: no task after its timers fired")

    def snapshot(self, stage: str) -> Template:
        with transaction(self.factory) as session:
            dossier = session.get(Dossier, self.dossier_id)
            state = session.get(WorkflowState, self.dossier_id)
            assert dossier is not None
            assert state is not None
            tasks = [_row(t) for t in session.scalars(select(Task).where(Task.dossier_id == dossier.id))]
            timers = [_row(t) for t in session.scalars(select(Timer).where(Timer.dossier_id == dossier.id))]
            pauses = [_row(p) for p in session.scalars(select(ClockPause).where(ClockPause.dossier_id == dossier.id))]
            events = [_row(e) for e in session.scalars(select(AuditEvent).where(AuditEvent.dossier_id == dossier.id)
                                                       .order_by(AuditEvent.id))]
            data = json.loads(zlib.decompress(state.state))
            literals = {key: value for key in ("received_at", "due_at", "warning_at")
                        if (value := _find_key(data, key)) is not None}
            row = _row(dossier)
            moments = {m for m in (row["received_at"], row["finished_at"], row["processed_at"], row["closed_at"],
                                   row["clock_paused_at"], row["apology_at"]) if m is not None}
            for t in tasks:
                moments |= {m for m in (t["created_at"], t["claimed_at"], t["completed_at"]) if m is not None}
            for p in pauses:
                moments |= {m for m in (p["started_at"], p["ended_at"]) if m is not None}
            moments |= {e["at"] for e in events}
            return Template(dossier.procedure_id, stage, row, zlib.decompress(state.state).decode(),
                            state.content_hash, state.completed, tasks, timers, pauses, events,
                            literals, sorted(moments))


def _find_key(value: Any, key: str) -> Any:
    """The first value of ``key`` anywhere in a JSON document."""
    if isinstance(value, dict):
        if isinstance(value.get(key), str):
            return value[key]
        children: Any = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return None
    for child in children:
        found = _find_key(child, key)
        if found is not None:
            return found
    return None


def build_templates(factory: sessionmaker[Session], registry: Any, *, unit_code: str = INBOX_UNIT
                    ) -> list[Template]:
    """Every active procedure at every stage, run through the case service in ``unit_code``."""
    definitions = {d.code: d.data for d in catalogue.load_definitions()}
    with transaction(factory) as session:
        codes = list(session.scalars(select(Procedure.code).where(Procedure.is_active).order_by(Procedure.code)))
    start = clock.now().replace(microsecond=0)  # deadlines ahead: the templates wait for their timers
    templates = []
    saved = clock.offset()
    try:
        for code in codes:
            example = definitions[code].get("example") or {}
            form = example.get("form") or {}
            case = _Driver(factory, registry, unit_code)
            case.submit(code, form, start)
            templates.append(case.snapshot("receive"))
            case.complete("receive", {"decision": "accept"})
            templates.append(case.snapshot("work"))
            for step in example.get("work", []):
                if "task" in step:
                    case.complete(step["task"], step["data"])
                elif "message" in step:
                    case.message(step["message"], step.get("payload"))
                else:
                    case.let_timer_fire()
            templates.append(case.snapshot("approve"))
            case.complete("approve", {"decision": "approve"})
            templates.append(case.snapshot("hand_back"))
            with transaction(factory) as session:
                fee = int((session.get(Dossier, case.dossier_id) or Dossier()).terms.get("fee_due") or 0)
            case.complete("hand_back", {"decision": "delivered", "fee_collected": fee,
                                        "receiver_name": "Mẫu Văn Nhân"})
            templates.append(case.snapshot("returned"))
            clock.set_offset(saved)

            case = _Driver(factory, registry, unit_code)
            case.submit(code, form, start)
            case.complete("receive", {"decision": "supplement", "note": "Thiếu bản chụp giấy tờ tùy thân"})
            templates.append(case.snapshot("supplement"))

            case = _Driver(factory, registry, unit_code)
            case.submit(code, form, start)
            case.complete("receive", {"decision": "refuse", "note": "Không thuộc thẩm quyền giải quyết của xã"})
            templates.append(case.snapshot("not_accepted"))

            case = _Driver(factory, registry, unit_code)
            case.submit(code, form, start)
            case.complete("receive", {"decision": "accept"})
            case.withdraw()
            templates.append(case.snapshot("withdrawn"))
    finally:
        clock.set_offset(saved)
    return templates


# --- copies -------------------------------------------------------------------------------------

@dataclass
class _Chain:
    prev: str
    count: int
    next_id: int


def _literal(value: str) -> str:
    """How a string appears inside the workflow state's JSON (``json.dumps`` escapes non-ASCII)."""
    return json.dumps(value)[1:-1]


class _Copier:
    """Rows of one copy of a template."""

    def __init__(self, template: Template, role_of: dict[int, str], cal: Any):
        self.t = template
        self.role_of = role_of
        self.cal = cal
        d = template.dossier
        applicant = d["applicant"]
        self.keys = {
            _literal(d["code"]): "code",
            _literal(applicant["full_name"]): "name",
            _literal(applicant["id_number"]): "id_number",
            _literal(applicant["phone"]): "phone",
            **{_literal(value): key for key, value in template.literals.items()},
        }
        # The deadline moments the template's timers wait for (a paused clock's far future is kept).
        self.deadlines = {datetime.fromisoformat(value): key for key, value in template.literals.items()
                          if key != "received_at"}
        self.pattern = re.compile("|".join([UUID_RE, *map(re.escape, sorted(self.keys, key=len, reverse=True))]))

    def copy(self, *, dossier_id: int, code: str, unit: _UnitPlan, usernames: dict[int, str], received: datetime,
             end: datetime, due: datetime, warning: datetime, rng: random.Random, ids: random.Random,
             chain: _Chain) -> tuple[dict[str, Any], ...]:
        t = self.t
        name, id_number, phone, _ = _applicant(rng)
        values = {"code": code, "received_at": received.isoformat(), "name": name, "id_number": id_number,
                  "phone": phone, "due_at": to_vn(due).isoformat(), "warning_at": to_vn(warning).isoformat()}
        moved = {"due_at": due, "warning_at": warning}
        new_ids: dict[str, str] = {}

        def new_id(old: str) -> str:
            if old not in new_ids:
                new_ids[old] = str(uuid.UUID(int=ids.getrandbits(128), version=4))
            return new_ids[old]

        def swap(match: re.Match[str]) -> str:
            found = match.group(0)
            key = self.keys.get(found)
            return _literal(values[key]) if key else new_id(found)

        state = self.pattern.sub(swap, t.state)
        span = end - received
        last = max(len(t.moments) - 1, 1)
        place = {m: received + span * (i / last) for i, m in enumerate(t.moments)}
        shift = due - t.dossier["due_at"] if t.dossier["due_at"] is not None else timedelta(0)

        def when(moment: datetime | None) -> datetime | None:
            return None if moment is None else place[moment]

        def user(user_id: int | None) -> int | None:
            role = self.role_of.get(user_id) if user_id is not None else None
            return unit.users.get(role) if role else None

        d = dict(t.dossier)
        applicant = {**d["applicant"], "full_name": name, "id_number": id_number, "phone": phone}
        d.update(id=dossier_id, code=code, unit_id=unit.id, applicant=applicant, applicant_name=name,
                 applicant_id_number=id_number, applicant_phone=phone, received_at=received, submitted_by_id=None,
                 citizen_id=None, channel=rng.choices(("online", "counter", "post"), (45, 50, 5))[0])
        for column in ("finished_at", "processed_at", "closed_at", "clock_paused_at", "apology_at"):
            d[column] = when(d[column])
        for column in DEADLINE_COLUMNS:
            if d[column] is not None and d[column] < services.PAUSED_UNTIL:
                d[column] = d[column] + shift
        if t.stage == "returned":
            d["outcome"] = rate_result(d["processed_at"], d["appointment_at"],
                                       supplements=d["supplement_count"]).value
            d["refused"] = rng.random() < REFUSAL_LETTER_SHARE
        tasks = []
        for row in t.tasks:
            task = dict(row)
            task.update(id=new_id(row["id"]), dossier_id=dossier_id, unit_id=unit.id,
                        assignee_id=user(row["assignee_id"]), completed_by_id=user(row["completed_by_id"]),
                        created_at=when(row["created_at"]), claimed_at=when(row["claimed_at"]),
                        completed_at=when(row["completed_at"]))
            if task["due_at"] is not None and task["due_at"] < services.PAUSED_UNTIL:
                task["due_at"] = task["due_at"] + shift
            if task["state"] == TaskState.READY.value and rng.random() < 0.65:  # not everything is claimed yet
                task.update(assignee_id=None, claimed_at=None)
            tasks.append(task)
        timers = []
        for row in t.timers:
            key = self.deadlines.get(row["run_at"])
            run_at = moved[key] if key else row["run_at"]
            timers.append({**row, "id": new_id(row["id"]), "dossier_id": dossier_id, "run_at": run_at})
        pauses = [{**p, "id": None, "dossier_id": dossier_id, "started_at": when(p["started_at"]),
                   "ended_at": when(p["ended_at"])} for p in t.pauses]
        events = []
        for row in t.events:
            data = json.loads(self.pattern.sub(swap, json.dumps(row["data"])))
            actor_id = user(row["actor_id"])
            event = {"at": place[row["at"]], "actor_id": actor_id,
                     "actor": usernames.get(actor_id, row["actor"]) if actor_id else row["actor"],
                     "action": row["action"], "dossier_id": dossier_id, "dossier_code": code,
                     "task_id": new_id(row["task_id"]) if row["task_id"] else None,
                     "data": data}
            digest = event_hash(chain.prev, event)
            events.append({**event, "id": chain.next_id, "prev_hash": chain.prev, "hash": digest})
            chain.prev, chain.count, chain.next_id = digest, chain.count + 1, chain.next_id + 1
        raw = state.encode()
        states = [{"dossier_id": dossier_id, "content_hash": t.content_hash, "state": zlib.compress(raw, 6),
                   "size": len(raw), "completed": t.completed, "updated_at": end}]
        return [d], states, tasks, timers, pauses, events


# Tables in the order rows are written (foreign keys first).
TABLES = ("dossier", "workflow_state", "task", "timer", "clock_pause", "audit_event")


def _head(chain: _Chain) -> dict[str, Any]:
    return {"hash": chain.prev, "count": chain.count, "id": chain.next_id - 1}


def _advance(conn: Connection, *, before: dict[str, Any], chain: _Chain, counters: dict[tuple[int, Any], int]
             ) -> None:
    """After a chunk: the audit chain's head (refused if another writer moved it since ``before``),
    the touched code counters and (PostgreSQL) the id sequences."""
    current = conn.execute(select(Setting.value).where(Setting.key == HEAD_KEY).with_for_update()).scalar()
    if (json.loads(current) if current else {"hash": GENESIS, "count": 0, "id": 0}) != before:
        raise RuntimeError("the audit chain moved while the seed ran: it must run on a quiet database")
    head = json.dumps(_head(chain))
    if conn.execute(update(Setting).where(Setting.key == HEAD_KEY).values(value=head)).rowcount == 0:
        conn.execute(insert(Setting).values(key=HEAD_KEY, value=head))
    for unit_id, day in counters:
        conn.execute(delete(DossierCodeCounter).where(DossierCodeCounter.unit_id == unit_id,
                                                      DossierCodeCounter.day == day))
    if counters:
        conn.execute(insert(DossierCodeCounter), [{"unit_id": u, "day": d, "last": n}
                                                  for (u, d), n in counters.items()])
    if conn.dialect.name == "postgresql":
        for sequence in ("SELECT setval(pg_get_serial_sequence('dossier', 'id'), (SELECT max(id) FROM dossier))",
                         "SELECT setval(pg_get_serial_sequence('audit_event', 'id'), "
                         "(SELECT max(id) FROM audit_event))"):
            conn.execute(text(sequence))


def _write(engine: Engine, tables: dict[str, Table], rows: dict[str, list[dict[str, Any]]],
           *, after: Callable[[Connection], None]) -> None:
    """COPY on PostgreSQL, executemany elsewhere; then ``after``; one transaction."""
    with engine.begin() as conn:
        if engine.dialect.name != "postgresql":
            for name in TABLES:
                if rows[name]:
                    conn.execute(insert(tables[name]), [{k: v for k, v in r.items() if v is not None or k != "id"}
                                                        for r in rows[name]])
            after(conn)
            return
        conn.execute(text("SET LOCAL synchronous_commit = off"))
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        for name in TABLES:
            table = tables[name]
            columns = [c.name for c in table.columns if not (c.name == "id" and name == "clock_pause")]
            as_json = {c.name for c in table.columns if isinstance(c.type, JSON)}
            with cursor.copy(f"COPY {name} ({', '.join(columns)}) FROM STDIN") as copy:
                for r in rows[name]:
                    copy.write_row([json.dumps(r[c], ensure_ascii=False) if c in as_json else r[c] for c in columns])
        after(conn)


def _stage_plan(rng: random.Random) -> Callable[[], str]:
    stages, weights = list(STAGE_WEIGHTS), list(STAGE_WEIGHTS.values())
    return lambda: rng.choices(stages, weights)[0]


def generate(engine: Engine, factory: sessionmaker[Session], templates: list[Template], *, cases: int, seed: int,
             stage: Callable[[int], str] | None = None, deadlines: Deadlines | None = None,
             units: int = INBOX_UNITS) -> dict[str, Any]:
    """Write ``cases`` copies of the templates (procedure and unit at random, units skewed like a
    province's communes, stages as ``stage(k)`` says or by ``STAGE_WEIGHTS``)."""
    rng = random.Random(seed)  # noqa: S311 - made-up data
    now = clock.now()
    by_key = {(t.procedure_id, t.stage): t for t in templates}
    procedures = sorted({t.procedure_id for t in templates})
    with transaction(factory) as session:
        plans = _add_units(session, units)
        usernames: dict[int, str] = {i: n for i, n in session.execute(select(User.id, User.username))}
        role_of = {user_id: role for user_id, role in session.execute(
            select(UserRole.user_id, UserRole.role).join(User, User.id == UserRole.user_id)
            .where(User.unit_id.is_not(None)))}
        cal = services.calendar_for(session)
        counters = {(u, d): n for u, d, n in session.execute(
            select(DossierCodeCounter.unit_id, DossierCodeCounter.day, DossierCodeCounter.last))}
        next_dossier = (session.scalar(select(func.max(Dossier.id))) or 0) + 1
        head = session.get(Setting, HEAD_KEY)
        state = json.loads(head.value) if head else {"hash": GENESIS, "count": 0, "id": 0}
        last_event = session.scalar(select(func.max(AuditEvent.id))) or 0
        legal = {p.id: p for p in session.scalars(select(Procedure))}
        terms = {t.procedure_id: t.dossier["terms"] for t in templates}
        spans = {p: _legal_span(legal[p]) for p in procedures}
    if state["id"] != last_event:
        raise RuntimeError("the audit chain's head is not its last event: the seed must run on a quiet database")
    missing = sorted({(p, s) for p in procedures for s in STAGE_WEIGHTS} - set(by_key))
    if missing:
        raise ValueError(f"no template for {missing[:5]}")
    chain = _Chain(state["hash"], state["count"], last_event + 1)
    first_id = next_dossier
    copiers = {key: _Copier(t, role_of, cal) for key, t in by_key.items()}
    pick = _stage_plan(rng)
    # Task and timer ids are unique across runs (the made-up data repeats with the seed).
    ids = random.Random(seed * 1_000_003 + first_id)  # noqa: S311 - not secrets
    tables = {t.name: t for t in AuditEvent.metadata.sorted_tables if t.name in TABLES}
    counts = dict.fromkeys(TABLES, 0)
    stages: dict[str, int] = {}
    touched: set[tuple[int, Any]] = set()
    started = time.perf_counter()
    for chunk in _chunks(cases):
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
        before = _head(chain)
        for k in chunk:
            where = stage(k) if stage else pick()
            procedure = procedures[rng.randrange(len(procedures))]
            unit = plans[min(int(len(plans) * rng.random() ** UNIT_SKEW), len(plans) - 1)]
            span = spans[procedure]
            if where in CLOSED_STAGES:
                received = now - INBOX_SPAN * rng.random() - span * 1.2
                end = min(received + span * rng.uniform(0.3, 1.15), now - timedelta(minutes=1))
            else:
                received = now - span * rng.uniform(0.0, 1.3) - timedelta(minutes=10)
                end = max(received + timedelta(minutes=5), now - timedelta(minutes=rng.uniform(1, 600)))
            received = received.replace(microsecond=0)
            due = services.legal_due(cal, terms[procedure], received)
            warning = services.warning_for(cal, due, received)
            if deadlines is not None:
                due, warning = deadlines(k, received, due)
            day = to_vn(received).date()
            number = counters.get((unit.id, day), 0) + 1
            counters[(unit.id, day)] = number
            code = f"{unit.agency_code}-{day:%y%m%d}-{number:04d}"
            copied = copiers[(procedure, where)].copy(
                dossier_id=next_dossier, code=code, unit=unit, usernames=usernames, received=received, end=end,
                due=due, warning=warning, rng=rng, ids=ids, chain=chain)
            for name, part in zip(TABLES, copied, strict=True):
                rows[name] += part
            stages[where] = stages.get(where, 0) + 1
            touched.add((unit.id, day))
            next_dossier += 1
        # The chain's head, the code counters and the id sequences move with each chunk, in its
        # transaction: a run stopped half-way leaves a consistent database.
        _write(engine, tables, rows, after=partial(_advance, before=before, chain=chain,
                                                   counters={k: counters[k] for k in touched}))
        touched.clear()
        for name in TABLES:
            counts[name] += len(rows[name])
    return {"cases": cases, "first_dossier_id": first_id, "seconds": round(time.perf_counter() - started, 1),
            "cases_per_s": round(cases / max(time.perf_counter() - started, 1e-9), 1),
            "stages": dict(sorted(stages.items())), "rows": counts}


def _chunks(total: int) -> Iterator[range]:
    for first in range(0, total, CHUNK):
        yield range(first, min(first + CHUNK, total))


def _state_sizes(factory: sessionmaker[Session]) -> dict[str, Any]:
    """Stored (compressed) and JSON bytes of the workflow states, finished cases and open ones."""
    sizes: dict[str, Any] = {}
    with transaction(factory) as session:
        for completed in (True, False):
            stored, raw, rows = session.execute(select(
                func.avg(func.length(WorkflowState.state)), func.avg(WorkflowState.size),
                func.count()).where(WorkflowState.completed.is_(completed))).one()
            sizes["finished" if completed else "open"] = {
                "cases": rows, "stored_bytes_avg": round(float(stored or 0)), "json_bytes_avg": round(float(raw or 0))}
    return sizes


def run_seed(settings: Any, *, cases: int, seed: int = 20261202) -> dict[str, Any]:
    """``motcua bench seed``: the configured database, migrated and (if empty) demo-seeded, gets
    ``cases`` more cases; prints what was written and how fast."""
    from connectors import build_registry
    from engine.audit import verify_chain
    from engine.db import make_engine, make_session_factory
    from engine.migrate import upgrade
    from scripts.seed import seed_demo

    if settings.env == "production":
        raise ValueError("bench seed writes made-up cases: refused with MOTCUA_ENV=production")
    upgrade(settings)
    engine = make_engine(settings)
    factory = make_session_factory(engine)
    registry = build_registry(settings.with_(sandbox=True), factory)
    try:
        with transaction(factory) as session:
            empty = session.scalar(select(func.count()).select_from(Unit)) == 0
        if empty:
            seed_demo(factory, registry, lease=timedelta(seconds=30))
        started = time.perf_counter()
        templates = build_templates(factory, registry)
        built = time.perf_counter() - started
        written = generate(engine, factory, templates, cases=cases, seed=seed)
        mark = time.perf_counter()
        with transaction(factory) as session:
            report = verify_chain(session)
        return {"benchmark": "seed", "database": engine.dialect.name, "templates": len(templates),
                "templates_s": round(built, 1), **written,
                "audit_verify": {"ok": report.ok, "events": report.events,
                                 "seconds": round(time.perf_counter() - mark, 1)},
                "workflow_state": _state_sizes(factory)}
    finally:
        engine.dispose()
