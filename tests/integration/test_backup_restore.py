"""Backup and restore drill, as README's production notes say to do it: ``pg_dump -Fc`` of a live
database with cases in every state, ``pg_restore`` into a new database, ``motcua audit verify``
passes on the copy with the same number of events, and the restored cases go on: an open task is
completed, a waiting timer fires, and the audit chain continues from the restored head."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from engine import clock, services
from engine.config import Settings
from engine.db import make_engine, make_session_factory, transaction
from engine.migrate import upgrade
from engine.models import AuditEvent, ClockPause, Dossier, Task, Timer, WorkflowState
from tests.factories import complete, create_unit, install_procedure, submit
from tests.integration.conftest import PG_SERVER, ROOT

pytestmark = pytest.mark.integration
TABLES = (Dossier, Task, Timer, WorkflowState, AuditEvent, ClockPause)
ARTIFACTS = ROOT / "test-artifacts" / "drills"


def _libpq(settings: Settings) -> str:
    """The database URL as pg_dump and pg_restore take it (no SQLAlchemy driver name)."""
    return make_url(settings.database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def _verify(settings: Settings) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTCUA_")}
    env |= {"MOTCUA_DATABASE_URL": settings.database_url, "MOTCUA_ENV": "test"}
    return subprocess.run([sys.executable, "-m", "scripts.cli", "audit", "verify"], cwd=ROOT, env=env,  # noqa: S603
                          capture_output=True, text=True, timeout=120, check=False)


def _counts(factory) -> dict[str, int]:
    with transaction(factory) as session:
        return {model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0 for model in TABLES}


@pytest.fixture
def databases():
    """Two empty databases on the machine's PostgreSQL: the live one (migrated) and the target."""
    url = make_url(PG_SERVER)
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    names = [f"motcua_live_{uuid.uuid4().hex[:8]}", f"motcua_restored_{uuid.uuid4().hex[:8]}"]
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    live, restored = (Settings.from_env({}, env="test", database_url=url.set(database=n).render_as_string(False))
                      for n in names)
    upgrade(live)
    try:
        yield live, restored
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_dump_restore_verify_and_the_cases_go_on(databases, tmp_path: Path):
    live, restored = databases
    engine = make_engine(live)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        install_procedure(session)
        unit = create_unit(session)
        done = submit(session, unit)
        for step, data in (("receive", {"decision": "accept"}), ("appraise", {"decision": "propose_approve"}),
                           ("approve", {"decision": "approve"})):
            complete(session, done.id, step, data)
        waiting = submit(session, unit)
        complete(session, waiting.id, "receive", {"decision": "accept"})
        paused = submit(session, unit)
        complete(session, paused.id, "receive", {"decision": "supplement", "note": "Thiếu tờ khai"})
        codes = {"done": done.code, "waiting": waiting.code, "paused": paused.code}
    before = _counts(factory)
    engine.dispose()
    assert before["timer"] > 0
    assert before["clock_pause"] == 1

    dump = tmp_path / "motcua.dump"
    subprocess.run(["pg_dump", "-Fc", "-f", str(dump), _libpq(live)], check=True, timeout=120)  # noqa: S603, S607
    subprocess.run(["pg_restore", "--no-owner", "-d", _libpq(restored), str(dump)],  # noqa: S603, S607
                   check=True, timeout=120)

    verified = _verify(restored)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"{before['audit_event']} events" in verified.stdout

    engine = make_engine(restored)
    factory = make_session_factory(engine)
    try:
        assert _counts(factory) == before
        # The restored case goes on: its open step is completed and the chain grows from its head.
        with transaction(factory) as session:
            dossier = services.get_dossier(session, codes["waiting"])
            complete(session, dossier.id, "appraise", {"decision": "propose_approve"})
            assert session.scalar(select(Task.spec_name).where(Task.dossier_id == dossier.id,
                                                               Task.state == "ready")) == "approve"
        # A waiting timer restored with its due moment fires.
        with transaction(factory) as session:
            run_at = session.scalar(select(func.min(Timer.run_at)))
        clock.freeze(run_at + timedelta(seconds=1))
        with transaction(factory) as session:
            fired = services.fire_due_timers(session)
        assert fired >= 1
        # The paused dossier resumes when the supplement arrives.
        with transaction(factory) as session:
            services.deliver_message(session, codes["paused"], "supplement_received", {"documents": ["to_khai.pdf"]},
                                     actor=services.SYSTEM_ACTOR)
            assert services.get_dossier(session, codes["paused"]).clock_paused_at is None
        after = _counts(factory)
    finally:
        engine.dispose()
    verified = _verify(restored)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert after["audit_event"] > before["audit_event"]
    assert f"{after['audit_event']} events" in verified.stdout
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "backup-restore.json").write_text(json.dumps(
        {"dumped": before, "after_continuing": after, "dump_bytes": dump.stat().st_size}, indent=2))
