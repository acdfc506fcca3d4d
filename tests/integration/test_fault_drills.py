"""Fault drills of the workers, the database and the provider callbacks (issue 10), with real
PostgreSQL, RabbitMQ and Celery workers.

1. Celery workers SIGKILLed at seeded random moments while 500 cases each run a service task
   (``demo.effect``) and a timer: every case finishes, every call takes effect once, no Spiff task
   is completed twice, nothing is lost, the audit chain holds.
2. PostgreSQL terminates every connection to the database several times while a worker processes
   cases: the worker and the web app recover on their own (pool pre-ping, leases, retries) and
   every case finishes once.
3. The payment provider and the post call back twice, in shuffled order, some copies at the same
   moment, signed as the sandboxes sign them, through the real HTTP endpoints: each callback takes
   effect once, a stale status never moves a case back, every copy is answered 2xx.

The counts are written to test-artifacts/drills/*.json (see conftest.save_drill) and asserted.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from backoffice.app import create_app
from connectors.http import sign
from engine import clock, jobs, portal
from engine.audit import verify_chain
from engine.db import transaction
from engine.models import (
    AuditEvent,
    CallbackReceipt,
    Dossier,
    Payment,
    SandboxRecord,
    ServiceCall,
    Task,
    Timer,
    Unit,
)
from engine.services import Actor
from tests.factories import FIXTURES, complete, create_unit, create_user, install_bpmn, submit
from tests.integration.conftest import WorkerProcess, save_drill, wait_for
from tests.integration.test_celery_worker import factory  # noqa: F401 - the service_timer procedure

pytestmark = pytest.mark.integration
SERVICE_TIMER = "service_timer"  # tests/fixtures/service_timer.bpmn: review → demo.effect → timer → end


# --- shared by drills 1 and 2 ---------------------------------------------------------------------

def _start_case(sessions: sessionmaker[Session], unit_id: int, *, effect_seconds: float) -> int:
    """Submit a service_timer case and complete its review in one transaction: the service call is
    dispatched to the workers at commit; the timer is due one second after it finishes."""
    with transaction(sessions) as session:
        dossier = submit(session, session.get(Unit, unit_id), procedure=SERVICE_TIMER)
        wait_until = (clock.now() + timedelta(seconds=1)).isoformat()
        complete(session, dossier.id, "review", {"effect_seconds": effect_seconds, "wait_until": wait_until})
        return int(dossier.id)


def _calls_done(sessions: sessionmaker[Session], unit_id: int) -> int:
    with transaction(sessions) as session:
        return int(session.scalar(
            select(func.count()).select_from(ServiceCall).join(Dossier, Dossier.id == ServiceCall.dossier_id)
            .where(Dossier.unit_id == unit_id, ServiceCall.status == "done")) or 0)


def _finished(sessions: sessionmaker[Session], unit_id: int) -> int:
    with transaction(sessions) as session:
        return int(session.scalar(select(func.count()).select_from(Dossier).where(
            Dossier.unit_id == unit_id, Dossier.finished_at.is_not(None))) or 0)


def _tally(sessions: sessionmaker[Session], unit_id: int, dossier_ids: list[int]) -> dict[str, Any]:
    """Every case of the unit, its service call, the provider's ledger and the audit, counted."""
    with transaction(sessions) as session:
        dossiers = session.scalars(select(Dossier).where(Dossier.unit_id == unit_id)).all()
        ids = [d.id for d in dossiers]
        calls = session.scalars(select(ServiceCall).where(ServiceCall.dossier_id.in_(ids))).all()
        keys = [c.id for c in calls]
        effects = Counter(session.scalars(select(SandboxRecord.idempotency_key).where(
            SandboxRecord.provider == "demo", SandboxRecord.idempotency_key.in_(keys))).all())
        deliveries = session.scalar(select(func.coalesce(func.sum(SandboxRecord.attempts), 0)).where(
            SandboxRecord.provider == "demo", SandboxRecord.idempotency_key.in_(keys)))
        completions = Counter(session.scalars(select(AuditEvent.task_id).where(
            AuditEvent.dossier_id.in_(ids), AuditEvent.action == "service_task_completed")).all())
        timers = Counter(session.scalars(select(AuditEvent.dossier_id).where(
            AuditEvent.dossier_id.in_(ids), AuditEvent.action == "timer_fired")).all())
        timers_left = session.scalar(select(func.count()).select_from(Timer).where(Timer.dossier_id.in_(ids)))
        chain = verify_chain(session)
    return {
        "cases": len(dossier_ids),
        "cases_in_database": len(ids),
        "cases_lost": len(set(dossier_ids) - set(ids)),
        "finished": sum(d.finished_at is not None for d in dossiers),
        "returned": sum(d.status == "returned" for d in dossiers),
        "service_calls": len(calls),
        "calls_done": sum(c.status == "done" for c in calls),
        "calls_failed": sum(c.status == "failed" for c in calls),
        "call_attempts": sum(c.attempts for c in calls),
        "calls_taken_more_than_once": sum(c.attempts > 1 for c in calls),
        "effects": len(effects),
        "effects_per_key_max": max(effects.values(), default=0),
        "effect_deliveries": int(deliveries or 0),
        "effects_delivered_again": int(deliveries or 0) - len(effects),
        "service_task_completions": sum(completions.values()),
        "tasks_completed_once": sum(completions[k] == 1 for k in keys),
        "tasks_completed_twice_or_more": sum(n > 1 for n in completions.values()),
        "timers_fired": sum(timers.values()),
        "cases_timer_fired_once": sum(timers[i] == 1 for i in ids),
        "timers_left": timers_left,
        "audit_chain_ok": chain.ok,
        "audit_events_verified": chain.events,
    }


def _assert_every_case_once(facts: dict[str, Any], total: int) -> None:
    assert facts["cases"] == total
    assert facts["cases_in_database"] == total  # no case lost, none made twice
    assert facts["cases_lost"] == 0
    assert facts["finished"] == total
    assert facts["returned"] == total
    assert facts["service_calls"] == total
    assert facts["calls_done"] == total
    assert facts["calls_failed"] == 0
    assert facts["effects"] == total  # every call reached the provider …
    assert facts["effects_per_key_max"] == 1  # … and took effect once per idempotency key
    assert facts["service_task_completions"] == total
    assert facts["tasks_completed_once"] == total
    assert facts["tasks_completed_twice_or_more"] == 0
    assert facts["timers_fired"] == total
    assert facts["cases_timer_fired_once"] == total
    assert facts["timers_left"] == 0
    assert facts["audit_chain_ok"] is True


# --- 1. workers SIGKILLed at random moments during 500 cases --------------------------------------

def test_workers_sigkilled_at_random_moments_during_500_cases_lose_and_repeat_nothing(
        factory, worker_factory):  # noqa: F811 - the fixture imported above
    total, kills, seed = 500, 5, 10
    rng = random.Random(seed)
    started = time.monotonic()
    with transaction(factory) as session:
        unit_id = create_unit(session).id
    worker = worker_factory()
    worker.start()
    dossier_ids: list[int] = []
    failures: list[BaseException] = []

    def submit_all() -> None:
        try:
            for _ in range(total):
                dossier_ids.append(_start_case(factory, unit_id, effect_seconds=0.02))
        except BaseException as exc:  # reported by the test below
            failures.append(exc)

    submitter = threading.Thread(target=submit_all, daemon=True)
    submitter.start()
    # Each kill when a seeded number of calls is done (one in each fifth of the run, so that the
    # kills are spread over it whatever the machine's speed), then after a seeded extra pause: the
    # worker dies taking a call, in the provider's wait, saving a result or firing timers.
    thresholds = [i * total // kills + rng.randrange(10, total // kills - 20) for i in range(kills)]
    killed: list[dict[str, Any]] = []
    for threshold in thresholds:
        wait_for(lambda t=threshold: _calls_done(factory, unit_id) >= t, timeout=120,
                 what=f"{threshold} service calls done")
        time.sleep(rng.uniform(0, 0.5))
        with transaction(factory) as session:
            running = session.scalar(select(func.count()).select_from(ServiceCall)
                                     .join(Dossier, Dossier.id == ServiceCall.dossier_id)
                                     .where(Dossier.unit_id == unit_id, ServiceCall.status == "running"))
        worker.kill()
        killed.append({"after_calls_done": _calls_done(factory, unit_id), "calls_running": running,
                       "cases_submitted": len(dossier_ids), "at_second": round(time.monotonic() - started, 1)})
        worker = worker_factory()
        worker.start()
    submitter.join(timeout=180)
    assert not failures
    assert len(dossier_ids) == total
    wait_for(lambda: _finished(factory, unit_id) == total, timeout=180,
             what=f"all {total} cases to finish after {kills} kills")
    facts = _tally(factory, unit_id, dossier_ids)
    save_drill("worker_sigkill_500_cases", {**facts, "seed": seed, "kills": killed,
                                      "seconds": round(time.monotonic() - started, 1)})
    assert len(killed) == kills
    _assert_every_case_once(facts, total)  # calls a kill caught in flight were taken again, once in effect


# --- 2. PostgreSQL drops every connection while a worker works -----------------------------------

TERMINATE = text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE datname = current_database() AND pid <> pg_backend_pid()")
BUSY = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')")


def _drop_connections(killer: Engine, *, within: float) -> dict[str, Any]:
    """Terminate every other connection to the database, as soon as one of them is inside a
    transaction (waiting at most ``within`` seconds for that): the worker loses its connection in
    the middle of its work, the web app's idle pool loses all of its own."""
    deadline = time.monotonic() + within
    with killer.connect() as conn:  # AUTOCOMMIT: each poll sees a fresh pg_stat_activity
        busy = 0
        while busy == 0 and time.monotonic() < deadline:
            busy = int(conn.execute(BUSY).scalar_one())
            if not busy:
                time.sleep(0.005)
        terminated = sum(bool(row[0]) for row in conn.execute(TERMINATE))
    return {"connections_terminated": terminated, "busy_when_terminated": busy}


def _tasks_failed_on_dropped_connection(worker: WorkerProcess) -> int:
    """Celery tasks that died on a terminated connection (the worker's log): proof the drill hit
    the worker at work; they are retried through the call's lease and the beat's sweep."""
    if not worker.log.exists():
        return 0
    return worker.log.read_text(errors="replace").count("raised unexpected: OperationalError")


def test_database_connections_terminated_while_a_worker_works_every_case_finishes_once(
        factory, worker_factory, celery_app, celery_settings):  # noqa: F811 - the fixture imported above
    total, drops, seed = 150, 5, 20
    rng = random.Random(seed)
    started = time.monotonic()
    with transaction(factory) as session:
        unit_id = create_unit(session).id
    dossier_ids = [_start_case(factory, unit_id, effect_seconds=0.05) for _ in range(total)]
    worker = worker_factory()
    worker.start()
    killer = create_engine(celery_settings.database_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    client = celery_app.test_client()
    dropped: list[dict[str, Any]] = []
    try:
        for i in range(drops):
            threshold = (i + 1) * total // (drops + 2) + rng.randrange(0, 10)
            wait_for(lambda t=threshold: _calls_done(factory, unit_id) >= t, timeout=120,
                     what=f"{threshold} service calls done")
            time.sleep(rng.uniform(0, 0.3))
            drop = _drop_connections(killer, within=3)
            # the web app's pool lost its connections too: its next request must still answer,
            # and its next write go through (a case submitted at once, which must finish as well)
            with client.get("/api/v1/units") as response:
                web_status = response.status_code
            dossier_ids.append(_start_case(factory, unit_id, effect_seconds=0.05))
            dropped.append({**drop, "after_calls_done": _calls_done(factory, unit_id), "web_status_after": web_status,
                            "at_second": round(time.monotonic() - started, 1)})
        wait_for(lambda: _finished(factory, unit_id) == total + drops, timeout=120,
                 what=f"all {total + drops} cases to finish after {drops} connection drops")
    finally:
        killer.dispose()
    facts = _tally(factory, unit_id, dossier_ids)
    worker_alive = worker.proc is not None and worker.proc.poll() is None
    failed_tasks = _tasks_failed_on_dropped_connection(worker)
    save_drill("postgres_connections_dropped", {**facts, "seed": seed, "drops": dropped, "worker_alive": worker_alive,
                                           "worker_tasks_failed_on_dropped_connection": failed_tasks,
                                           "seconds": round(time.monotonic() - started, 1)})
    assert len(dropped) == drops
    assert all(d["connections_terminated"] >= 1 for d in dropped)
    assert sum(d["busy_when_terminated"] > 0 for d in dropped) >= drops // 2  # mostly in mid-transaction
    assert all(d["web_status_after"] == 200 for d in dropped)  # the web app reconnected by itself
    assert worker_alive  # the same worker recovered: no restart was needed
    _assert_every_case_once(facts, total + drops)


# --- 3. provider callbacks twice, out of order, some at the same moment --------------------------

CALLBACK_DRILL = "callback_drill"
# tests/fixtures/callback_drill.bpmn, the lifecycle's tail (processes/_lifecycle/onestop.bpmn)
# alone: fee paid online, result sent by post, delivered — or returned undelivered and handed back
# at the counter. The same message names and the same postal connector as the real procedures;
# nothing else to walk through per case.
STATUS_RANK = {"submitted": 0, "payment_requested": 1, "processed": 2, "returned": 3}
PAYMENT_PATH, POSTAL_PATH = "/api/v1/connectors/payment/callback", "/api/v1/connectors/postal/callback"


@pytest.fixture
def web_app(pg_settings) -> Iterator[Flask]:
    """The web app on PostgreSQL; its worker thread is not started: the test drains the work."""
    application = create_app(pg_settings)
    with transaction(application.extensions["motcua"].factory) as session:
        install_bpmn(session, CALLBACK_DRILL, (FIXTURES / "callback_drill.bpmn").read_text(),
                     catalogue_data={"delivery": ["counter", "post"]})
    yield application
    application.extensions["motcua"].engine.dispose()


def _signed_post(app: Flask, path: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST ``payload`` as the provider's server does (connectors.http.post_signed): the JSON body
    and its HMAC-SHA256 under the provider's key in ``X-Signature``."""
    body = json.dumps(payload, ensure_ascii=False).encode()
    secret = app.extensions["motcua"].settings.connector_secret(path.split("/")[4])
    assert secret
    with app.test_client().post(path, data=body, headers={
            "Content-Type": "application/json", "X-Signature": sign(secret, body)}) as response:
        return response.status_code, response.get_json(silent=True) or {}


def _deliver_twice(app: Flask, rng: random.Random, messages: list[tuple[str, dict[str, Any]]],
                   together_share: float) -> tuple[list[dict[str, Any]], int]:
    """Send every (path, payload) twice, all in a seeded random order across cases; a share of the
    messages has both copies sent at the same moment (a provider retrying while the first copy is
    still in flight). Returns one row per copy (event, HTTP status, answer) in arrival order, and
    how many messages went twice at once."""
    slots: list[tuple[str, int]] = []
    for i in range(len(messages)):
        slots += [("together", i)] if rng.random() < together_share else [("single", i), ("single", i)]
    rng.shuffle(slots)
    answers: list[dict[str, Any]] = []

    def send(i: int) -> dict[str, Any]:
        path, payload = messages[i]
        try:
            status, body = _signed_post(app, path, payload)
        except Exception as exc:  # counted: an exception is a 5xx for the provider
            status, body = 599, {"exception": repr(exc)}
        return {"event_id": payload["event_id"], "status": status, "answer": body}

    for kind, i in slots:
        if kind == "single":
            answers.append(send(i))
            continue
        barrier, pair = threading.Barrier(2), []
        lock = threading.Lock()

        def copy(i: int = i, barrier: threading.Barrier = barrier, pair: list[dict[str, Any]] = pair,
                 lock: threading.Lock = lock) -> None:
            barrier.wait()
            answer = send(i)
            with lock:
                pair.append(answer)

        threads = [threading.Thread(target=copy) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        answers += pair
    return answers, sum(kind == "together" for kind, _ in slots)


def _first_arrivals(answers: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(a["event_id"] for a in answers))


def test_provider_callbacks_twice_and_out_of_order_take_effect_once_and_never_move_a_case_back(web_app):
    total, seed = 40, 30
    rng = random.Random(seed)
    started = time.monotonic()
    ext = web_app.extensions["motcua"]
    sessions = ext.factory
    with transaction(sessions) as session:
        unit = create_unit(session)
        citizen = create_user(session, None, "citizen")
        owner = Actor.of(citizen)
        codes = [submit(session, unit, procedure=CALLBACK_DRILL, citizen_id=citizen.id,
                        delivery={"method": "post", "address": f"Số {n} đường Lê Lợi, xã An Hòa"}).code
                 for n in range(total)]
    with transaction(sessions) as session:
        payments = {code: portal.create_payment(session, code, actor=owner) for code in codes}
        references = {code: p.reference for code, p in payments.items()}
    renotified = set(codes[::3])

    # The payment provider: the citizen's first try failed, the second was paid; a third of the
    # payments are notified "paid" once more under a new event id. Each message comes twice.
    payment_messages = []
    for n, code in enumerate(codes):
        ref = references[code]
        base = {"reference": ref, "amount": 10000, "currency": "VND"}
        payment_messages += [
            (PAYMENT_PATH, {**base, "event_id": f"pay-{ref}-failed", "status": "failed", "transaction": f"SBXF{n}"}),
            (PAYMENT_PATH, {**base, "event_id": f"pay-{ref}-paid", "status": "paid", "transaction": f"SBXP{n}"})]
        if code in renotified:
            payment_messages.append((PAYMENT_PATH, {**base, "event_id": f"pay-{ref}-paid-again", "status": "paid",
                                                    "transaction": f"SBXP{n}"}))
    paid_answers, paid_together = _deliver_twice(web_app, rng, payment_messages, together_share=0.3)
    first = _first_arrivals(paid_answers)
    failed_after_paid = [c for c in codes if first.index(f"pay-{references[c]}-failed") > min(
        first.index(e) for e in (f"pay-{references[c]}-paid", f"pay-{references[c]}-paid-again") if e in first)]
    drained = jobs.drain(sessions, ext.registry, lease=ext.lease)  # the post takes the orders
    with transaction(sessions) as session:
        tracking = {}
        for call in session.scalars(select(ServiceCall).join(Dossier, Dossier.id == ServiceCall.dossier_id).where(
                Dossier.code.in_(codes), ServiceCall.operation == "postal.send_result")):
            tracking[session.get(Dossier, call.dossier_id).code] = call.result["value"]["tracking"]

    # The post: picked up, in transit, then delivered (a fifth of the results come back undelivered).
    undelivered = set(codes[::5])
    postal_messages = []
    for code in codes:
        track = tracking.get(code, "none")
        for event in ("picked_up", "in_transit", "returned" if code in undelivered else "delivered"):
            postal_messages.append((POSTAL_PATH, {"event_id": f"{track}-{event}", "dossier_code": code,
                                                  "event": event, "tracking": track}))
    post_answers, post_together = _deliver_twice(web_app, rng, postal_messages, together_share=0.3)
    first_post = _first_arrivals(post_answers)
    final_first = [c for c in codes if first_post.index(
        f"{tracking.get(c)}-{'returned' if c in undelivered else 'delivered'}") < max(
        first_post.index(f"{tracking.get(c)}-picked_up"), first_post.index(f"{tracking.get(c)}-in_transit"))]

    with transaction(sessions) as session:
        dossiers = {d.code: d for d in session.scalars(select(Dossier).where(Dossier.code.in_(codes)))}
        ids = [d.id for d in dossiers.values()]
        events = session.execute(select(AuditEvent.dossier_id, AuditEvent.action, AuditEvent.data)
                                 .where(AuditEvent.dossier_id.in_(ids)).order_by(AuditEvent.id)).all()
        pay_rows = {p.reference: p for p in session.scalars(select(Payment).where(
            Payment.reference.in_(list(references.values()))))}
        receipts = Counter(session.scalars(select(CallbackReceipt.provider).where(
            CallbackReceipt.dossier_id.in_(ids))).all())
        open_hand_backs = session.scalar(select(func.count()).select_from(Task).where(
            Task.dossier_id.in_(ids), Task.spec_name == "hand_back_returned", Task.state == "ready"))
        chain = verify_chain(session)
    per_case: dict[int, Counter[str]] = {i: Counter() for i in ids}
    statuses: dict[int, list[str]] = {i: [] for i in ids}
    for dossier_id, action, data in events:
        per_case[dossier_id][action if action != "message_received" else f"message:{data['message']}"] += 1
        if action == "status_changed":
            statuses[dossier_id].append(data["to"])
    answers = paid_answers + post_answers
    by_id = {d.id: d for d in dossiers.values()}

    def count(condition: Callable[[int], bool]) -> int:
        return sum(condition(i) for i in ids)

    facts = {
        "cases": total,
        "payment_messages": len(payment_messages),
        "postal_messages": len(postal_messages),
        "callbacks_sent": len(answers),
        "sent_twice_at_the_same_moment": paid_together + post_together,
        "answers_by_status": dict(sorted(Counter(str(a["status"]) for a in answers).items())),
        "errors": dict(Counter(f"{a['event_id'].rsplit('-', 1)[-1]}: {a['answer']['exception'][:160]}"
                               for a in answers if "exception" in a["answer"])),
        "answers_duplicate_false": sum(a["answer"].get("duplicate") is False for a in answers),
        "answers_duplicate_true": sum(a["answer"].get("duplicate") is True for a in answers),
        "payment_receipts": receipts["payment"],
        "postal_receipts": receipts["postal"],
        "cases_failed_arrived_after_paid": len(failed_after_paid),
        "cases_final_postal_event_before_an_earlier_one": len(final_first),
        "payments_paid": sum(p.status == "paid" for p in pay_rows.values()),
        "payments_keeping_the_paid_transaction": sum(  # a stale failure did not overwrite the row
            p.provider_transaction == f"SBXP{codes.index(code)}" for code, p in
            ((c, pay_rows[references[c]]) for c in codes)),
        "cases_payment_received_once": count(lambda i: per_case[i]["message:payment_received"] == 1),
        "cases_payment_failed_recorded": count(lambda i: per_case[i]["payment_failed"] == 1),
        "cases_payment_failed_twice_or_more": count(lambda i: per_case[i]["payment_failed"] > 1),
        "postal_orders": len(tracking),
        "drain": drained,
        "cases_picked_up_once": count(lambda i: per_case[i]["postal_picked_up"] == 1),
        "cases_in_transit_once": count(lambda i: per_case[i]["postal_in_transit"] == 1),
        "cases_delivered_once": count(lambda i: per_case[i]["message:postal_delivered"] == 1),
        "cases_returned_by_post_once": count(lambda i: per_case[i]["message:postal_returned"] == 1),
        "cases_finished_returned": count(lambda i: by_id[i].status == "returned" and by_id[i].finished_at is not None),
        "cases_waiting_hand_back": count(lambda i: by_id[i].status == "processed" and by_id[i].finished_at is None),
        "open_hand_back_tasks": open_hand_backs,
        "cases_status_ever_moved_back": count(lambda i: any(
            STATUS_RANK[b] < STATUS_RANK[a] for a, b in zip(statuses[i], statuses[i][1:], strict=False))),
        "status_changes": sum(len(s) for s in statuses.values()),
        "audit_chain_ok": chain.ok,
        "seconds": round(time.monotonic() - started, 1),
    }
    save_drill("callbacks", facts)
    distinct_payment, distinct_postal = len(payment_messages), len(postal_messages)
    assert facts["callbacks_sent"] == 2 * (distinct_payment + distinct_postal)
    assert facts["answers_by_status"] == {"200": facts["callbacks_sent"]}  # every copy answered 2xx
    assert facts["errors"] == {}
    assert facts["sent_twice_at_the_same_moment"] > 0
    assert facts["cases_failed_arrived_after_paid"] > 0  # the drill did send stale statuses …
    assert facts["cases_final_postal_event_before_an_earlier_one"] > 0  # … of both providers
    # each distinct event recorded once, each second copy recognized
    assert facts["payment_receipts"] == distinct_payment
    assert facts["postal_receipts"] == distinct_postal
    applied = total + (total - len(failed_after_paid)) + distinct_postal  # paid, earlier failures, post events
    assert facts["answers_duplicate_false"] == applied
    assert facts["answers_duplicate_true"] == facts["callbacks_sent"] - applied
    # payment: paid once, the case moved once; a failure counts only when it came before the success
    assert facts["payments_paid"] == total
    assert facts["payments_keeping_the_paid_transaction"] == total
    assert facts["cases_payment_received_once"] == total
    assert facts["cases_payment_failed_recorded"] == total - len(failed_after_paid)
    assert facts["cases_payment_failed_twice_or_more"] == 0
    # post: every event once; delivered cases closed, returned ones wait at the counter
    assert facts["postal_orders"] == total
    assert facts["cases_picked_up_once"] == total
    assert facts["cases_in_transit_once"] == total
    assert facts["cases_delivered_once"] == total - len(undelivered)
    assert facts["cases_returned_by_post_once"] == len(undelivered)
    assert facts["cases_finished_returned"] == total - len(undelivered)
    assert facts["cases_waiting_hand_back"] == len(undelivered)
    assert facts["open_hand_back_tasks"] == len(undelivered)
    assert facts["cases_status_ever_moved_back"] == 0
    assert facts["status_changes"] == 3 * total - len(undelivered)  # payment_requested, processed, returned
    assert facts["audit_chain_ok"] is True
