"""``motcua bench seed``: bulk cases copied from cases the engine ran are cases like any other."""

from __future__ import annotations

import json
import zlib
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from SpiffWorkflow.util.task import TaskState as SpiffState
from sqlalchemy import func, select

from connectors import build_registry
from engine import clock, jobs, services, workflow
from engine.audit import verify_chain
from engine.config import Settings
from engine.db import make_engine, make_session_factory, transaction
from engine.migrate import upgrade
from engine.models import AuditEvent, Dossier, Task, TaskState, Timer, Unit, User, WorkflowState
from scripts.cli import main
from scripts.seed import seed_demo
from scripts.seedgen import OPEN_STAGES, STAGE_WEIGHTS, build_templates, generate, run_seed

CASES = 240


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    path = tmp_path_factory.mktemp("seedgen") / "seed.db"
    settings = Settings.from_env({}, database_url=f"sqlite:///{path}", env="test", sandbox=True)
    upgrade(settings)
    engine = make_engine(settings)
    factory = make_session_factory(engine)
    registry = build_registry(settings, factory)
    seed_demo(factory, registry, lease=timedelta(seconds=30))
    with transaction(factory) as session:
        before = session.scalar(select(func.max(Dossier.id))) or 0
    templates = build_templates(factory, registry)
    stages = [*OPEN_STAGES, *(s for s in STAGE_WEIGHTS if s not in OPEN_STAGES)]
    report = generate(engine, factory, templates, cases=CASES, seed=7,
                      stage=lambda k: stages[k % len(stages)], units=8)
    with transaction(factory) as session:
        first = (session.scalar(select(func.max(Dossier.id))) or 0) - CASES + 1
    yield {"factory": factory, "registry": registry, "report": report, "templates": templates,
           "first": first, "before": before}
    engine.dispose()


def _copies(session: Any, first: int, status: str | None = None) -> list[Dossier]:
    query = select(Dossier).where(Dossier.id >= first).order_by(Dossier.id)
    if status:
        query = query.where(Dossier.status == status)
    return list(session.scalars(query))


def test_templates_cover_every_procedure_at_every_stage(seeded):
    keys = Counter((t.procedure_id, t.stage) for t in seeded["templates"])
    procedures = {p for p, _ in keys}
    assert len(procedures) == 13
    assert set(keys) == {(p, s) for p in procedures for s in STAGE_WEIGHTS}
    assert all(n == 1 for n in keys.values())
    by_stage = {t.stage: t for t in seeded["templates"]}
    assert by_stage["returned"].completed
    assert by_stage["not_accepted"].completed
    assert not by_stage["work"].completed
    assert by_stage["work"].timers


def test_copies_have_their_rows_and_the_chain_holds(seeded):
    report = seeded["report"]
    assert report["cases"] == CASES
    assert sum(report["stages"].values()) == CASES
    assert set(report["stages"]) == set(STAGE_WEIGHTS)
    with transaction(seeded["factory"]) as session:
        copies = _copies(session, seeded["first"])
        assert len(copies) == CASES
        assert len({d.code for d in copies}) == CASES
        states = session.scalar(select(func.count()).select_from(WorkflowState).where(
            WorkflowState.dossier_id >= seeded["first"]))
        assert states == CASES
        chain = verify_chain(session)
        assert chain.ok, chain.reason
        copied_events = session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.dossier_id >= seeded["first"]))
        assert copied_events == report["rows"]["audit_event"] > CASES * 3
        # Events name the copy's own unit officers, not the template's.
        units = {d.id: d.unit_id for d in copies}
        actors = session.execute(select(AuditEvent.dossier_id, User.unit_id).join(User, User.id == AuditEvent.actor_id)
                                 .where(AuditEvent.dossier_id >= seeded["first"])).all()
        assert actors
        assert all(units[dossier_id] == unit_id for dossier_id, unit_id in actors)


def test_open_copies_tasks_and_timers_are_the_workflows_own(seeded):
    template_codes = {t.dossier["code"] for t in seeded["templates"]}
    with transaction(seeded["factory"]) as session:
        checked = 0
        for dossier in _copies(session, seeded["first"]):
            state = session.get(WorkflowState, dossier.id)
            if state is None or state.completed:
                continue
            wf = services.load_workflow(session, dossier)
            ready = {str(t.id) for t in wf.get_tasks(state=SpiffState.READY, manual=True)}
            rows = set(session.scalars(select(Task.id).where(Task.dossier_id == dossier.id, Task.kind == "user",
                                                             Task.state == TaskState.READY.value)))
            assert rows == ready, dossier.code
            timers = {row.id: row.run_at
                      for row in session.scalars(select(Timer).where(Timer.dossier_id == dossier.id))}
            assert timers == {task_id: due for task_id, _name, due in workflow.waiting_timers(wf)}, dossier.code
            # The copy's own deadlines, from the working-day calendar and its receipt (a paused
            # clock's timers wait for the far future).
            cal = services.calendar_for(session)
            due = services.legal_due(cal, services.dossier_terms(dossier), dossier.received_at)
            if dossier.status == "supplement_requested":
                assert set(timers.values()) == {services.PAUSED_UNTIL}, dossier.code
            else:
                assert dossier.due_at == due, dossier.code
                assert set(timers.values()) == {due, services.warning_for(cal, due, dossier.received_at)}, dossier.code
            raw = zlib.decompress(state.state).decode()
            assert dossier.code in raw, dossier.code
            assert not any(code in raw for code in template_codes), dossier.code
            checked += 1
        assert checked >= CASES * 5 // 8 - 5


def test_an_officer_completes_a_copied_case_and_a_new_case_continues_the_codes(seeded):
    factory = seeded["factory"]
    with transaction(factory) as session:
        dossier = _copies(session, seeded["first"], "submitted")[0]
        task = session.scalar(select(Task).where(Task.dossier_id == dossier.id, Task.spec_name == "receive",
                                                 Task.state == TaskState.READY.value))
        assert task is not None
        officer = session.scalar(select(User).where(User.unit_id == dossier.unit_id, User.username.like("onestop.%")))
        assert officer is not None
        actor = services.Actor.of(officer)
        if task.assignee_id is None:
            services.claim_task(session, task.id, actor=actor)
        services.complete_task(session, task.id, actor=actor, data={"decision": "accept"})
        code, unit_code, received = dossier.code, dossier.unit.code, dossier.received_at
    jobs.drain(factory, seeded["registry"], lease=timedelta(seconds=30))  # the service tasks after acceptance
    with transaction(factory) as session:
        dossier = session.scalar(select(Dossier).where(Dossier.code == code))
        assert dossier is not None
        assert dossier.status in ("accepted", "processing")
        assert session.scalar(select(Task).where(Task.dossier_id == dossier.id, Task.state == TaskState.READY.value,
                                                 Task.kind == "user")) is not None
        fresh = services.submit_dossier(session, procedure_code="marital_status_confirmation", unit_code=unit_code,
                                        applicant={"type": "individual", "full_name": "Lê Văn Mới",
                                                   "phone": "0912345678"},
                                        form={"purpose": "Kết hôn", "residence": "Thôn Đông"}, channel="counter",
                                        actor=services.SYSTEM_ACTOR, received_at=received)
        assert fresh.code.rsplit("-", 1)[0] == code.rsplit("-", 1)[0]
        assert int(fresh.code.rsplit("-", 1)[1]) > int(code.rsplit("-", 1)[1])
    with transaction(factory) as session:
        assert verify_chain(session).ok


def test_a_copied_cases_deadline_warning_fires(seeded):
    factory = seeded["factory"]
    with transaction(factory) as session:
        dossier_id, warning = session.execute(
            select(Timer.dossier_id, func.min(Timer.run_at)).where(Timer.dossier_id >= seeded["first"])
            .group_by(Timer.dossier_id).order_by(Timer.dossier_id.desc()).limit(1)).one()
        dossier = session.get(Dossier, dossier_id)
        assert dossier is not None
        assert dossier.due_at is not None
        assert warning < dossier.due_at
    clock.set_now(warning + timedelta(seconds=3))
    with transaction(factory) as session:
        fired = services.fire_due_timers(session)
    assert fired >= 1
    with transaction(factory) as session:
        event = session.scalar(select(AuditEvent).where(AuditEvent.dossier_id == dossier_id,
                                                        AuditEvent.action == "timer_fired"))
        assert event is not None
        assert 3 <= event.data["late_seconds"] < 60
        assert session.scalar(select(func.min(Timer.run_at)).where(Timer.dossier_id == dossier_id)) > warning
        assert verify_chain(session).ok


def test_bench_seed_command_adds_cases_to_the_configured_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    result = CliRunner().invoke(main, ["bench", "seed", "--cases", "30", "--database-url", url],
                                env={"MOTCUA_ENV": "test"})
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{"):])
    assert report["benchmark"] == "seed"
    assert report["cases"] == 30
    assert report["audit_verify"]["ok"] is True
    assert report["rows"]["dossier"] == report["rows"]["workflow_state"] == 30
    assert report["workflow_state"]["finished"]["stored_bytes_avg"] > 0
    settings = Settings.from_env({}, database_url=url, env="test")
    engine = make_engine(settings)
    try:
        with transaction(make_session_factory(engine)) as session:
            assert session.scalar(select(func.count()).select_from(Unit)) == 60
    finally:
        engine.dispose()


def test_a_second_run_adds_more_copies_with_new_ids(seeded):
    factory = seeded["factory"]
    engine = factory.kw["bind"]
    report = generate(engine, factory, seeded["templates"], cases=12, seed=7, units=8)  # the same seed again
    assert report["cases"] == 12
    with transaction(factory) as session:
        assert verify_chain(session).ok
        codes = session.scalars(select(Dossier.code)).all()
        assert len(codes) == len(set(codes))


def test_seed_is_refused_in_production():
    settings = Settings.from_env({}, database_url="postgresql+psycopg://postgres@127.0.0.1:5432/none",
                                 env="production", secret_key="x" * 40, worker="celery",
                                 broker_url="amqp://u:p@127.0.0.1:5672//", sandbox=False)
    with pytest.raises(ValueError, match="refused"):
        run_seed(settings, cases=1)
