"""The audit hash chain detects any edited, deleted or reordered event, and a cut tail."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from engine.audit import GENESIS, record_event, verify_chain
from engine.models import AuditEvent


@pytest.fixture
def events(session):
    for i in range(6):
        record_event(session, action="task_completed", actor=f"officer{i}", dossier_code=f"X-{i}",
                     data={"form": {"decision": "accept", "n": i}})
    session.commit()
    return session.scalars(select(AuditEvent.id).order_by(AuditEvent.id)).all()


def test_chain_links_every_event(session, events):
    rows = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert rows[0].prev_hash == GENESIS
    assert all(rows[i].prev_hash == rows[i - 1].hash for i in range(1, len(rows)))
    assert verify_chain(session).ok
    assert verify_chain(session).events == 6


def test_edited_event_is_found(session, events):
    session.execute(text("UPDATE audit_event SET actor = 'someone_else' WHERE id = :i"), {"i": events[2]})
    report = verify_chain(session)
    assert (report.ok, report.first_broken_id, report.events) == (False, events[2], 2)
    assert "edited" in report.reason


def test_deleted_event_is_found(session, events):
    session.execute(text("DELETE FROM audit_event WHERE id = :i"), {"i": events[3]})
    report = verify_chain(session)
    assert (report.ok, report.first_broken_id) == (False, events[4])


def test_reordered_events_are_found(session, events):
    a, b = events[1], events[2]
    session.execute(text("UPDATE audit_event SET id = -1 WHERE id = :a"), {"a": a})
    session.execute(text("UPDATE audit_event SET id = :a WHERE id = :b"), {"a": a, "b": b})
    session.execute(text("UPDATE audit_event SET id = :b WHERE id = -1"), {"b": b})
    report = verify_chain(session)
    assert (report.ok, report.first_broken_id) == (False, a)


def test_cut_tail_is_found_through_the_chain_head(session, events):
    session.execute(text("DELETE FROM audit_event WHERE id >= :i"), {"i": events[4]})
    report = verify_chain(session)
    assert not report.ok
    assert "deleted" in report.reason


def test_rolled_back_events_are_not_written(session):
    record_event(session, action="dossier_viewed", actor="x")
    session.rollback()
    session.commit()
    assert session.scalars(select(AuditEvent)).all() == []
