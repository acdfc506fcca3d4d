"""``motcua audit verify`` against PostgreSQL after rows are edited, deleted or reordered."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import select, text

from engine.db import make_engine, make_session_factory, transaction
from engine.models import AuditEvent
from tests.factories import complete, create_unit, install_procedure, submit
from tests.integration.conftest import ROOT

pytestmark = pytest.mark.integration


def _verify(settings) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTCUA_")}
    env |= {"MOTCUA_DATABASE_URL": settings.database_url, "MOTCUA_ENV": "test"}
    return subprocess.run([sys.executable, "-m", "scripts.cli", "audit", "verify"], cwd=ROOT, env=env,  # noqa: S603
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def chain(pg_settings):
    engine = make_engine(pg_settings)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        install_procedure(session)
        dossier = submit(session, create_unit(session))
        complete(session, dossier.id, "receive", {"decision": "accept"})
        complete(session, dossier.id, "appraise", {"decision": "propose_approve"})
    with transaction(factory) as session:
        ids = session.scalars(select(AuditEvent.id).order_by(AuditEvent.id)).all()
    yield engine, ids
    engine.dispose()


def test_intact_chain_passes(pg_settings, chain):
    result = _verify(pg_settings)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "audit chain ok" in result.stdout


@pytest.mark.parametrize("tamper", ["edit", "delete", "reorder"])
def test_tampering_fails_with_the_first_broken_event(pg_settings, chain, tamper):
    engine, ids = chain
    victim = ids[-3]
    with engine.begin() as conn:
        if tamper == "edit":
            conn.execute(text("UPDATE audit_event SET data = '{\"form\": {\"decision\": \"refuse\"}}' WHERE id = :i"),
                         {"i": victim})
            expected = victim
        elif tamper == "delete":
            conn.execute(text("DELETE FROM audit_event WHERE id = :i"), {"i": victim})
            expected = ids[-2]  # the event after the hole no longer links to its predecessor
        else:  # swap the content of two neighbours, keeping their ids
            a, b = ids[-3], ids[-2]
            conn.execute(text("UPDATE audit_event SET id = -1 WHERE id = :a"), {"a": a})
            conn.execute(text("UPDATE audit_event SET id = :a WHERE id = :b"), {"a": a, "b": b})
            conn.execute(text("UPDATE audit_event SET id = :b WHERE id = -1"), {"b": b})
            expected = a
    result = _verify(pg_settings)
    assert result.returncode == 1
    assert f"BROKEN at event {expected}:" in result.stdout
    # repair for the next parametrized case: the chain fixture builds on the same database
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_event"))
        conn.execute(text("DELETE FROM setting WHERE key = 'audit_head'"))
