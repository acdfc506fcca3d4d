"""The embedded worker thread (make run) runs due service calls and timers through engine.jobs."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from connectors import build_registry
from engine import clock, jobs, services
from engine.config import Settings
from engine.db import make_engine, make_session_factory, transaction
from engine.migrate import upgrade
from engine.models import AuditEvent, Dossier, SandboxRecord, ServiceCall, Timer
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


def _waiting_cases(factory, moments: list) -> list[int]:
    """Cases of the service_timer fixture waiting for their timer at each of ``moments``."""
    registry = build_registry(Settings(env="test"), factory)
    ids = []
    with transaction(factory) as session:
        install_bpmn(session, "service_timer", (FIXTURES / "service_timer.bpmn").read_text())
        unit = create_unit(session)
    for moment in moments:
        with transaction(factory) as session:
            dossier_id = submit(session, unit, procedure="service_timer").id
            complete(session, dossier_id, "review", {"effect_seconds": 0, "wait_until": moment.isoformat()})
        ids.append(dossier_id)
    jobs.drain(factory, registry, lease=timedelta(seconds=30))  # the effect calls; the timers still wait
    with transaction(factory) as session:
        assert session.scalar(select(func.count()).select_from(Timer).where(Timer.dossier_id.in_(ids))) == len(ids)
    return ids


def _fired(factory, ids: list[int]) -> list[int]:
    with transaction(factory) as session:
        return sorted(session.scalars(select(AuditEvent.dossier_id).where(
            AuditEvent.action == "timer_fired", AuditEvent.dossier_id.in_(ids))))


def test_a_timer_is_due_once_its_moment_has_passed(factory):
    moment = clock.now().replace(microsecond=0) + timedelta(hours=1)
    [dossier_id] = _waiting_cases(factory, [moment])
    clock.freeze(moment)
    assert jobs.fire_timers(factory) == 0  # at the moment itself Spiff does not fire it yet
    clock.freeze(moment + timedelta(milliseconds=1))
    assert jobs.fire_timers(factory) == 1
    assert _fired(factory, [dossier_id]) == [dossier_id]
    assert jobs.fire_timers(factory) == 0  # fired once


def test_a_timer_that_stays_due_or_fails_does_not_hold_up_the_others(factory, monkeypatch, caplog):
    moment = clock.now().replace(microsecond=0) + timedelta(hours=1)
    stuck, failing, *others = _waiting_cases(factory, [moment - timedelta(minutes=5 - i) for i in range(5)])
    with transaction(factory) as session:
        # a timer row the workflow does not wait for (Spiff never fires it) is the earliest due …
        session.add(Timer(id="00000000-0000-4000-8000-000000000000", dossier_id=stuck, name="stale",
                          run_at=moment - timedelta(minutes=10)))
    load = services.load_workflow

    def broken(session, dossier):  # … and the next one's engine step fails
        if dossier.id == failing:
            raise RuntimeError("script error")
        return load(session, dossier)

    monkeypatch.setattr(services, "load_workflow", broken)
    clock.freeze(moment + timedelta(seconds=1))
    assert jobs.fire_timers(factory) == 1 + len(others)  # the stuck case's own timer, and the others'
    assert _fired(factory, [stuck, failing, *others]) == sorted([stuck, *others])
    assert "did not fire" in caplog.text
    with transaction(factory) as session:  # the row Spiff does not know was dropped when its case was saved
        assert session.get(Timer, "00000000-0000-4000-8000-000000000000") is None
    monkeypatch.setattr(services, "load_workflow", load)
    assert jobs.fire_timers(factory) == 1  # the failed one on the next pass
    assert _fired(factory, [failing]) == [failing]


def test_a_pass_waits_for_a_timer_falling_before_the_next_pass(factory):
    soon = clock.now() + timedelta(seconds=0.4)
    [dossier_id] = _waiting_cases(factory, [soon + timedelta(seconds=0.6)])
    clock.set_now(soon)  # the clock runs: the timer falls 0.6 s from now
    assert jobs.fire_timers(factory) == 0  # without waiting it is left to the next pass
    started = time.monotonic()
    assert jobs.fire_timers(factory, wait=2.0) == 1
    assert time.monotonic() - started < 2.0
    assert clock.now() > soon + timedelta(seconds=0.6)
    assert _fired(factory, [dossier_id]) == [dossier_id]
