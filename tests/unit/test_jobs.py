"""The embedded worker thread (make run) runs due service calls and timers through engine.jobs."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from connectors import build_registry
from engine import clock, jobs
from engine.config import Settings
from engine.db import make_engine, make_session_factory, transaction
from engine.migrate import upgrade
from engine.models import Dossier, SandboxRecord, ServiceCall
from tests.factories import FIXTURES, complete, create_unit, install_bpmn, submit


@pytest.fixture
def factory(tmp_path):
    settings = Settings.from_env({}, env="test", database_url=f"sqlite:///{tmp_path / 'jobs.db'}")
    upgrade(settings)
    engine = make_engine(settings)
    yield make_session_factory(engine)
    engine.dispose()


def _wait(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_embedded_worker_is_woken_by_commits_and_finishes_the_case(factory):
    registry = build_registry(Settings(env="test"), factory)
    worker = jobs.EmbeddedWorker(factory, registry, interval=30.0, lease=timedelta(seconds=30))
    jobs.attach_dispatcher(factory, worker.wake)
    worker.start()
    try:
        with transaction(factory) as session:
            install_bpmn(session, "service_timer", (FIXTURES / "service_timer.bpmn").read_text())
            dossier_id = submit(session, create_unit(session), procedure="service_timer").id
        # the deadline timer waits 1 s after the review
        with transaction(factory) as session:
            wait_until = (clock.now() + timedelta(seconds=1)).isoformat()
            complete(session, dossier_id, "review", {"effect_seconds": 0, "wait_until": wait_until})

        def call_done() -> bool:
            with transaction(factory) as session:
                return session.scalars(select(ServiceCall.status).where(ServiceCall.dossier_id == dossier_id)).one() \
                    == "done"

        # interval is 30 s: only the wake-up on commit can make this quick
        assert _wait(call_done, timeout=10)
        time.sleep(1.2)
        worker.wake()  # the timer is due now; the next pass fires it

        def finished() -> bool:
            with transaction(factory) as session:
                return session.get(Dossier, dossier_id).finished_at is not None

        assert _wait(finished, timeout=10)
        with transaction(factory) as session:
            assert len(session.scalars(select(SandboxRecord).where(SandboxRecord.provider == "demo")).all()) == 1
    finally:
        worker.stop()
    assert worker.passes >= 2


def test_failed_call_is_retried_later_not_lost(factory):
    calls = []

    def flaky(operation, params, key):
        calls.append(key)
        if len(calls) == 1:
            raise ConnectionError("provider unreachable")
        return {"ok": True}

    clock.freeze(clock.now())  # the back-off is measured on the project clock, not on wall time
    with transaction(factory) as session:
        install_bpmn(session, "service_timer", (FIXTURES / "service_timer.bpmn").read_text())
        dossier_id = submit(session, create_unit(session), procedure="service_timer").id
    with transaction(factory) as session:
        complete(session, dossier_id, "review", {"effect_seconds": 0, "wait_until": "2099-01-01T00:00:00+07:00"})
        call_id = session.scalars(select(ServiceCall.id)).one()
    assert jobs.run_service_call(factory, call_id, flaky, lease=timedelta(seconds=30)) == "retry"
    assert jobs.run_service_call(factory, call_id, flaky, lease=timedelta(seconds=30)) == "skipped"  # backing off
    clock.freeze(clock.now() + timedelta(minutes=5))
    assert jobs.due_service_calls(factory) == [call_id]
    assert jobs.run_service_call(factory, call_id, flaky, lease=timedelta(seconds=30)) == "done"
    assert calls == [call_id, call_id]  # the same idempotency key both times


def test_a_fault_drill_pauses_only_the_named_operation_after_it_returned(monkeypatch):
    calls: list[str] = []
    slept: list[float] = []
    monkeypatch.setattr(jobs.time, "sleep", slept.append)

    def handler(operation, params, key):
        calls.append(operation)
        return {"ok": operation}

    paused = jobs.pause_after(handler, {"interagency.send": 4.0})
    assert paused("sms.send", {}, "k1") == {"ok": "sms.send"}
    assert slept == []
    assert paused("interagency.send", {}, "k2") == {"ok": "interagency.send"}
    assert (calls, slept) == (["sms.send", "interagency.send"], [4.0])
