"""A case with a user task, a service task and a deadline timer, run by real Celery workers on
RabbitMQ and PostgreSQL — and a worker SIGKILLed in the middle of the service task."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from engine import clock
from engine.db import transaction
from engine.models import AuditEvent, Dossier, Procedure, SandboxRecord, ServiceCall, Timer
from tests.factories import FIXTURES, complete, create_unit, install_bpmn, submit
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def factory(celery_app):
    factory = celery_app.extensions["motcua"].factory
    with transaction(factory) as session:
        if session.scalar(select(Procedure).where(Procedure.code == "service_timer")) is None:
            install_bpmn(session, "service_timer", (FIXTURES / "service_timer.bpmn").read_text())
    return factory


def _start_case(factory: Any, *, effect_seconds: float, wait_seconds: float) -> tuple[int, str]:
    with transaction(factory) as session:
        unit = create_unit(session)
        dossier = submit(session, unit, procedure="service_timer")
        dossier_id = dossier.id
    with transaction(factory) as session:
        wait_until = (clock.now() + timedelta(seconds=wait_seconds)).isoformat()
        complete(session, dossier_id, "review", {"effect_seconds": effect_seconds, "wait_until": wait_until})
    with transaction(factory) as session:
        call_id = session.scalars(select(ServiceCall.id).where(ServiceCall.dossier_id == dossier_id)).one()
    return dossier_id, call_id


def _finished(factory: Any, dossier_id: int) -> bool:
    with transaction(factory) as session:
        return session.get(Dossier, dossier_id).finished_at is not None


def _facts(factory: Any, dossier_id: int, call_id: str) -> dict[str, Any]:
    with transaction(factory) as session:
        dossier = session.get(Dossier, dossier_id)
        call = session.get(ServiceCall, call_id)
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.dossier_id == dossier_id)).all()
        effects = session.scalars(select(SandboxRecord).where(SandboxRecord.provider == "demo",
                                                              SandboxRecord.idempotency_key == call_id)).all()
        return {
            "status": dossier.status,
            "call_status": call.status,
            "attempts": call.attempts,
            "effects": len(effects),
            "effect_deliveries": sum(e.attempts for e in effects),
            "service_completions": actions.count("service_task_completed"),
            "timer_fired": actions.count("timer_fired"),
            "timers_left": session.scalar(
                select(func.count()).select_from(Timer).where(Timer.dossier_id == dossier_id)),
        }


def test_case_runs_to_the_end_on_celery(factory, worker_factory):
    worker = worker_factory()
    worker.start()
    dossier_id, call_id = _start_case(factory, effect_seconds=0, wait_seconds=3)
    wait_for(lambda: _finished(factory, dossier_id), timeout=60, what="the case to finish on the worker")
    facts = _facts(factory, dossier_id, call_id)
    assert facts == {"status": "returned", "call_status": "done", "attempts": 1, "effects": 1,
                     "effect_deliveries": 1, "service_completions": 1, "timer_fired": 1, "timers_left": 0}


def test_worker_killed_during_service_task_finishes_once_after_restart(factory, worker_factory):
    first = worker_factory()
    first.start()
    dossier_id, call_id = _start_case(factory, effect_seconds=3, wait_seconds=1)

    def running() -> bool:
        with transaction(factory) as session:
            return session.get(ServiceCall, call_id).status == "running"

    wait_for(running, timeout=60, what="the worker to start the service call")
    first.kill()
    before = _facts(factory, dossier_id, call_id)
    assert before["effects"] == 0  # killed mid-call: the provider never saw it complete
    assert before["call_status"] == "running"

    second = worker_factory()
    second.start()
    wait_for(lambda: _finished(factory, dossier_id), timeout=90, what="the case to finish after the restart")
    after = _facts(factory, dossier_id, call_id)
    assert after["status"] == "returned"
    assert after["call_status"] == "done"
    assert after["attempts"] >= 2  # taken again after the crashed worker's lease ran out
    assert after["effects"] == 1  # the service was executed once …
    assert after["effect_deliveries"] == 1  # … and delivered to the provider once
    assert after["service_completions"] == 1  # the Spiff task was completed once
    assert after["timer_fired"] == 1
    assert after["timers_left"] == 0
