"""Concurrency on PostgreSQL: one task completed twice at once, many submissions at once."""

from __future__ import annotations

import re
import threading
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from engine import services
from engine.db import make_engine, make_session_factory, transaction
from engine.models import AuditEvent, Task
from tests.factories import create_unit, install_procedure, open_task, submit
from tests.integration.conftest import save_drill

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def factory(pg_settings):
    engine = make_engine(pg_settings, pool_size=30, max_overflow=10)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        install_procedure(session)
    yield factory
    engine.dispose()


def _race(n: int, action: Any) -> list[Any]:
    """Run ``action(i)`` in ``n`` threads released together; collect results or exceptions."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = action(i)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_two_concurrent_completions_one_wins_one_conflicts(factory):
    rounds = 10
    counts: Counter[str] = Counter()
    for _round in range(rounds):
        with transaction(factory) as session:
            dossier = submit(session, create_unit(session))
            task_id = open_task(session, dossier.id, "receive").id
            dossier_id = dossier.id

        def complete(i: int, task_id: str = task_id) -> str:
            with transaction(factory) as session:
                data = {"decision": "accept"} if i == 0 else {"decision": "refuse", "note": "Không đủ điều kiện"}
                services.complete_task(session, task_id, actor=services.SYSTEM_ACTOR, data=data)
                return str(data["decision"])

        results = _race(2, complete)
        wins = [r for r in results if isinstance(r, str)]
        conflicts = [r for r in results if isinstance(r, services.ConflictError)]
        with transaction(factory) as session:
            completions = session.scalar(select(func.count()).select_from(AuditEvent).where(
                AuditEvent.dossier_id == dossier_id, AuditEvent.action == "task_completed"))
            decision = session.get(Task, task_id).decision
            open_steps = session.scalars(select(Task.spec_name).where(
                Task.dossier_id == dossier_id, Task.state == "ready")).all()
        expected_next = ["appraise"] if wins[:1] == ["accept"] else []
        counts.update({"completions_attempted": len(results), "won": len(wins), "conflicted": len(conflicts),
                       "other_errors": len(results) - len(wins) - len(conflicts),
                       "rounds_one_winner_one_conflict": len(wins) == 1 and len(conflicts) == 1,
                       "task_completed_events": completions, "rounds_completed_once": completions == 1,
                       "rounds_decision_is_the_winners": wins[:1] == [decision],
                       "rounds_next_step_right": list(open_steps) == expected_next,
                       f"won_with_{wins[0] if len(wins) == 1 else 'none'}": 1})
    save_drill("concurrent_completion", {"rounds": rounds, **dict(sorted(counts.items()))})
    assert counts["rounds_one_winner_one_conflict"] == rounds, counts
    assert counts["won"] == counts["conflicted"] == rounds
    assert counts["other_errors"] == 0
    assert counts["task_completed_events"] == rounds  # one audit event per task: completed once
    assert counts["rounds_completed_once"] == rounds
    assert counts["rounds_decision_is_the_winners"] == rounds
    assert counts["rounds_next_step_right"] == rounds


def test_concurrent_submissions_never_share_a_code(factory):
    with transaction(factory) as session:
        unit = create_unit(session)
        agency = unit.agency_code
        unit_id = unit.id

    def submit_one(_i: int) -> str:
        with transaction(factory) as session:
            from engine.models import Unit

            return submit(session, session.get(Unit, unit_id)).code

    codes = _race(25, submit_one)
    errors = [c for c in codes if isinstance(c, Exception)]
    assert errors == []
    assert len(set(codes)) == 25
    numbers = sorted(int(c.rsplit("-", 1)[1]) for c in codes)
    assert numbers == list(range(1, 26))  # a gap-free sequence: no number lost or reused
    assert all(re.fullmatch(re.escape(agency) + r"-\d{6}-\d{4}", c) for c in codes)


def test_audit_chain_holds_under_concurrent_writers(factory):
    from engine.audit import verify_chain

    with transaction(factory) as session:
        unit_id = create_unit(session).id

    def submit_one(_i: int) -> str:
        with transaction(factory) as session:
            from engine.models import Unit

            return submit(session, session.get(Unit, unit_id)).code

    _race(20, submit_one)
    with transaction(factory) as session:
        report = verify_chain(session)
    assert report.ok, report
