"""Fault drills of the connectors with real RabbitMQ, PostgreSQL and Celery workers.

1. A worker SIGKILLed after the broker confirmed its inter-agency request and before the result was
   saved: after the restart the request is sent again with the same message id, the agency
   recognizes it, and the case takes the answer exactly once.
2. RabbitMQ shut down and started again while 200 cases go through the police round trip: every
   request and every answer is counted on both sides; none is lost, none is applied twice.

The counts are written to test-artifacts/drills/*.json for the closing notes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pika
import pytest
from sqlalchemy import func, select

from connectors.interagency import pika_url, topology
from engine.db import transaction
from engine.models import AuditEvent, CallbackReceipt, Dossier, Procedure, SandboxRecord, ServiceCall, Unit
from tests.conftest import IN_CI, service_available
from tests.factories import FIXTURES, create_unit, install_bpmn, submit
from tests.integration.conftest import Consumer, save_drill, wait_for

pytestmark = pytest.mark.integration
PROCEDURE = "interagency_roundtrip"


@pytest.fixture
def setup(celery_app) -> tuple[Any, str]:
    factory = celery_app.extensions["motcua"].factory
    with transaction(factory) as session:
        if session.scalar(select(Procedure).where(Procedure.code == PROCEDURE)) is None:
            install_bpmn(session, PROCEDURE, (FIXTURES / "interagency_roundtrip.bpmn").read_text())
        unit_code = create_unit(session).code
    return factory, unit_code


@pytest.fixture
def agencies(request, worker_factory, tmp_path) -> Iterator[dict[str, str]]:
    """The reply consumer and the sandbox police / social insurance, each in its own process; the
    agencies answer after the delay given as the fixture's parameter (seconds, default 0)."""
    env = dict(worker_factory().env)  # the same settings as the workers (the worker itself is not started)
    delay = str(getattr(request, "param", 0))
    started = [Consumer(["interagency", "replies"], env, tmp_path / "replies.log"),
               Consumer(["sandbox", "agencies", "--delay", delay], env, tmp_path / "agencies.log")]
    yield env
    for consumer in started:
        consumer.stop()


def _submit(factory: Any, unit_code: str) -> int:
    with transaction(factory) as session:
        unit = session.scalar(select(Unit).where(Unit.code == unit_code))
        return int(submit(session, unit, procedure=PROCEDURE).id)


def _tally(factory: Any, dossier_ids: list[int]) -> dict[str, Any]:
    """Both sides of every message, counted from the database."""
    with transaction(factory) as session:
        dossiers = session.scalars(select(Dossier).where(Dossier.id.in_(dossier_ids))).all()
        codes = {d.code for d in dossiers}
        calls = session.scalars(select(ServiceCall).where(ServiceCall.dossier_id.in_(dossier_ids),
                                                          ServiceCall.operation == "interagency.send")).all()
        received = [r for r in session.scalars(select(SandboxRecord).where(SandboxRecord.provider == "agency.police"))
                    if r.recipient in codes]
        receipts = session.scalar(select(func.count()).select_from(CallbackReceipt).where(
            CallbackReceipt.provider == "interagency", CallbackReceipt.dossier_id.in_(dossier_ids)))
        events = Counter(session.execute(
            select(AuditEvent.dossier_id, AuditEvent.action).where(
                AuditEvent.dossier_id.in_(dossier_ids),
                AuditEvent.action.in_(("message_received", "service_task_completed")))).all())
    return {
        "cases": len(dossier_ids),
        "finished": sum(d.finished_at is not None for d in dossiers),
        "requests_sent": sum(c.status == "done" for c in calls),
        "send_attempts": sum(c.attempts for c in calls),
        "requests_received": len({r.idempotency_key for r in received}),
        "request_deliveries": sum(r.attempts for r in received),
        "answers_applied": receipts,
        "cases_answered_once": sum(events[(i, "message_received")] == 1 for i in dossier_ids),
        "cases_answered_twice_or_more": sum(events[(i, "message_received")] > 1 for i in dossier_ids),
        "sends_completed_once": sum(events[(i, "service_task_completed")] == 1 for i in dossier_ids),
    }


def _depth(settings: Any, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(pika_url(settings.broker_url)))
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        connection.close()


def _drained(settings: Any) -> bool:
    names = topology(settings)
    return all(_depth(settings, q) == 0 for q in (names.replies, names.wait, names.agency_queue("police")))


def test_worker_killed_after_publishing_sends_again_and_the_case_takes_the_answer_once(
        setup, celery_settings, worker_factory, agencies):
    factory, unit_code = setup
    first = worker_factory()
    first.env = {**first.env, "MOTCUA_FAULT_PAUSE_AFTER": "interagency.send=4"}
    first.start()
    dossier_id = _submit(factory, unit_code)

    def published() -> bool:  # the police have the request; the worker has not saved that yet
        facts = _tally(factory, [dossier_id])
        return facts["requests_received"] == 1 and facts["requests_sent"] == 0

    wait_for(published, timeout=60, what="the police to receive the request")
    first.kill()
    before = _tally(factory, [dossier_id])
    assert before["finished"] == 0
    assert before["requests_sent"] == 0  # the crash lost the worker's knowledge that it was sent …
    assert before["requests_received"] == 1  # … but not the message
    assert before["answers_applied"] == 0  # the answer came before the case waited: it is parked

    second = worker_factory()
    second.start()
    wait_for(lambda: _tally(factory, [dossier_id])["finished"] == 1, timeout=120,
             what="the case to finish after the restart")
    wait_for(lambda: _drained(celery_settings), timeout=90, what="every queue to drain")
    after = _tally(factory, [dossier_id])
    save_drill("worker_killed_after_publish", after)
    assert after["requests_sent"] == 1
    assert after["send_attempts"] == 2  # taken again when the dead worker's lease ran out
    assert after["requests_received"] == 1  # one request for the agency …
    assert after["request_deliveries"] == 2  # … delivered twice and recognized by its message id
    assert after["answers_applied"] == 1  # both copies of the answer came; one was applied
    assert after["cases_answered_once"] == 1
    assert after["sends_completed_once"] == 1
    assert _depth(celery_settings, topology(celery_settings).dead) == 0


# --- RabbitMQ restarted ---------------------------------------------------------------------------

def _rabbitmq_up() -> bool:
    return subprocess.run(["rabbitmqctl", "await_startup", "--timeout", "30"], capture_output=True,  # noqa: S607
                          timeout=60, check=False).returncode == 0 and service_available("127.0.0.1", 5672)


def _start_rabbitmq() -> None:
    subprocess.run(["rabbitmq-server", "-detached"], capture_output=True, timeout=60, check=False)  # noqa: S607
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if _rabbitmq_up():
            return
        time.sleep(1)
    raise RuntimeError("RabbitMQ did not come back within 120 s")


@pytest.fixture
def rabbitmq_control(broker_url) -> Iterator[None]:
    """The machine's own RabbitMQ node, which this drill stops and starts; it is up again afterwards."""
    if not shutil.which("rabbitmqctl") or os.geteuid() != 0:
        message = "the RabbitMQ drill needs rabbitmqctl and root on the machine running the broker"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    yield
    if not service_available("127.0.0.1", 5672):
        _start_rabbitmq()


def _restart_rabbitmq() -> float:
    started = time.monotonic()
    subprocess.run(["rabbitmqctl", "shutdown"], capture_output=True, timeout=120, check=True)  # noqa: S607
    assert not service_available("127.0.0.1", 5672)
    _start_rabbitmq()
    return round(time.monotonic() - started, 1)


@pytest.mark.parametrize("agencies", [0.1], indirect=True)  # the police answer 10 requests a second
def test_rabbitmq_restarted_during_200_cases_loses_no_message(
        setup, celery_settings, worker_factory, agencies, rabbitmq_control):
    factory, unit_code = setup
    worker = worker_factory()
    worker.start()
    total = 200
    dossier_ids: list[int] = []
    failures: list[BaseException] = []

    def submit_all() -> None:
        try:
            for _ in range(total):
                dossier_ids.append(_submit(factory, unit_code))
                time.sleep(0.01)
        except BaseException as exc:  # reported by the test below
            failures.append(exc)

    submitter = threading.Thread(target=submit_all, daemon=True)
    submitter.start()
    police = topology(celery_settings).agency_queue("police")

    def under_way() -> bool:  # some cases done, requests waiting in the broker, more being submitted
        return (_tally(factory, list(dossier_ids))["finished"] >= 10 and _depth(celery_settings, police) >= 5
                and len(dossier_ids) < total)

    wait_for(under_way, timeout=120, what="round trips under way with a backlog at the police")
    at_restart = {"submitted": len(dossier_ids), "finished": _tally(factory, list(dossier_ids))["finished"],
                  "requests_waiting_in_broker": _depth(celery_settings, police)}
    outage = _restart_rabbitmq()
    submitter.join(timeout=300)
    assert not failures
    assert len(dossier_ids) == total

    wait_for(lambda: _tally(factory, dossier_ids)["finished"] == total, timeout=420,
             what=f"all {total} cases to finish after the restart")
    wait_for(lambda: _drained(celery_settings), timeout=120, what="every queue to drain")
    facts = _tally(factory, dossier_ids)
    save_drill("rabbitmq_restart_200_cases", {**facts, "at_restart": at_restart, "broker_restart_seconds": outage})
    assert at_restart["requests_waiting_in_broker"] >= 5  # the restart hit messages held by the broker
    assert facts["finished"] == total
    assert facts["requests_sent"] == total  # every request confirmed by the broker …
    assert facts["requests_received"] == total  # … reached the agency, the same count
    assert facts["request_deliveries"] >= total  # redeliveries are allowed, and recognized
    assert facts["answers_applied"] == total  # every answer reached its case …
    assert facts["cases_answered_once"] == total  # … once
    assert facts["cases_answered_twice_or_more"] == 0
    assert facts["sends_completed_once"] == total
    assert _depth(celery_settings, topology(celery_settings).dead) == 0  # nothing was dead-lettered
