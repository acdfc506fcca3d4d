"""Benchmarks. Each returns a dict that the CLI prints as one JSON object."""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from engine import catalogue, services, workflow
from engine.config import Settings
from engine.db import make_engine, make_session_factory, transaction
from engine.models import Base, Task, Unit, WorkflowState

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
    "payment_method": "counter", "proposal": None,
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
        session.add(Unit(code="bench", name="UBND xã Bench", agency_code="000.00.99.H99"))
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
