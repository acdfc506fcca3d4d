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
    ("receive", {"decision": "supplement"}), ("message", {}), ("receive", {"decision": "accept"}),
    ("appraise", {"decision": "propose_approve"}), ("approve", {"decision": "return"}),
    ("appraise", {"decision": "propose_approve"}), ("approve", {"decision": "approve"}),
    ("service", {}), ("hand_back", {"decision": "delivered"}),
]
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


def _raw_loop(passes: int) -> dict[str, Any]:
    """The same rework loop in memory: no database, no serialization."""
    from SpiffWorkflow.util.task import TaskState

    definition = catalogue.load_definition(catalogue.default_processes_dir() / PROCEDURE)
    parsed = workflow.parse_model(definition.bpmn_xml)
    far = "2099-01-01T00:00:00+00:00"
    wf = workflow.new_workflow(parsed.content_hash, parsed.spec_json, {"due_at": far, "warning_at": far})
    wf.do_engine_steps()

    def step(name: str, data: dict[str, Any]) -> None:
        task = next(t for t in wf.get_tasks(state=TaskState.READY, manual=True) if t.task_spec.name == name)
        task.set_data(**data)
        task.run()
        wf.do_engine_steps()
        workflow.compact_history(wf)

    step("receive", {"decision": "accept"})
    costs = []
    for _ in range(passes):
        costs.append(_timed(lambda: (step("appraise", {"decision": "propose_approve"}),
                                     step("approve", {"decision": "return"}))) / 2)
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


def _persisted_loop(factory: Any, passes: int) -> tuple[dict[str, Any], int]:
    with transaction(factory) as session:
        dossier = services.submit_dossier(session, procedure_code=PROCEDURE, unit_code="bench",
                                          applicant=APPLICANT, actor=services.SYSTEM_ACTOR)
        dossier_id = dossier.id

    def complete(step: str, data: dict[str, Any]) -> None:
        with transaction(factory) as session:
            task_id = session.scalar(select(Task.id).where(Task.dossier_id == dossier_id, Task.spec_name == step,
                                                          Task.state == "ready"))
            assert task_id is not None, step
            services.complete_task(session, task_id, actor=services.SYSTEM_ACTOR, data=data)

    complete("receive", {"decision": "accept"})
    costs = []
    for _ in range(passes):
        costs.append(_timed(lambda: (complete("appraise", {"decision": "propose_approve"}),
                                     complete("approve", {"decision": "return"}))) / 2)
    return _summary(costs), dossier_id


def _finished_case(factory: Any) -> dict[str, Any]:
    """A case through every step (one supplement round, one rework) to the end: stored state size."""
    from engine import jobs

    with transaction(factory) as session:
        dossier = services.submit_dossier(session, procedure_code=PROCEDURE, unit_code="bench",
                                          applicant=APPLICANT, actor=services.SYSTEM_ACTOR)
        dossier_id, code = dossier.id, dossier.code
    for step, data in FINISHED_PATH:
        with transaction(factory) as session:
            if step == "message":
                services.deliver_message(session, code, "supplement_received", {"pages": 2},
                                         actor=services.SYSTEM_ACTOR)
                continue
            if step == "service":
                continue
            task_id = session.scalar(select(Task.id).where(Task.dossier_id == dossier_id, Task.spec_name == step,
                                                          Task.state == "ready"))
            assert task_id is not None, step
            services.complete_task(session, task_id, actor=services.SYSTEM_ACTOR, data=data)
        if step == "approve" and data["decision"] == "approve":
            from connectors import build_registry

            registry = build_registry(Settings(env="test"), factory)
            jobs.drain(factory, registry, lease=timedelta(seconds=30))
    with transaction(factory) as session:
        state = session.get(WorkflowState, dossier_id)
        assert state is not None, "bench case has no state"
        assert state.completed, "bench case did not finish"
        tasks = session.scalars(select(Task).where(Task.dossier_id == dossier_id)).all()
        return {
            "user_and_service_tasks": len(tasks),
            "bpmn_tasks_run": _bpmn_tasks_run(),
            "stored_bytes": len(state.state),
            "json_bytes": state.size,
        }


def _bpmn_tasks_run() -> int:
    """How many BPMN elements the finished-case path runs, counted in memory without compaction."""
    from SpiffWorkflow.util.task import TaskState

    definition = catalogue.load_definition(catalogue.default_processes_dir() / PROCEDURE)
    parsed = workflow.parse_model(definition.bpmn_xml)
    far = "2099-01-01T00:00:00+00:00"
    wf = workflow.new_workflow(parsed.content_hash, parsed.spec_json, {"due_at": far, "warning_at": far})
    wf.do_engine_steps()
    for name, data in FINISHED_PATH:
        if name == "message":
            workflow.send_message(wf, "supplement_received", {"pages": 2})
        elif name == "service":
            task = next(t for t in wf.get_tasks(state=TaskState.STARTED) if workflow.is_service_task(t))
            workflow.finish_service_task(wf, task, {"sent": True})
        else:
            task = next(t for t in wf.get_tasks(state=TaskState.READY, manual=True) if t.task_spec.name == name)
            task.set_data(**data)
            task.run()
        wf.do_engine_steps()
    assert wf.is_completed()
    return sum(1 for t in wf.get_tasks(state=TaskState.COMPLETED) if t.task_spec.bpmn_id)


def run_engine_bench(settings: Settings, *, passes: int = 150) -> dict[str, Any]:
    raw = _raw_loop(passes)
    with scratch_database(settings) as scratch:
        engine = make_engine(scratch)
        Base.metadata.create_all(engine)
        factory = make_session_factory(engine)
        _setup(factory)
        persisted, _ = _persisted_loop(factory, passes)
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
