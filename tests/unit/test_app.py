"""The web app in test mode: clock, drain through the embedded worker functions, sandbox, errors."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from backoffice.app import create_app
from engine import clock, jobs
from engine.db import transaction
from engine.migrate import upgrade
from engine.models import Dossier, SandboxRecord, ServiceCall
from tests.factories import complete, create_unit, install_procedure, submit


@pytest.fixture
def app(tmp_path):
    from engine.config import Settings

    settings = Settings.from_env({}, env="test", database_url=f"sqlite:///{tmp_path / 'app.db'}")
    upgrade(settings)
    application = create_app(settings)
    yield application
    application.extensions["motcua"].engine.dispose()


def test_drain_runs_service_calls_and_records_them_once(app):
    factory = app.extensions["motcua"].factory
    with transaction(factory) as session:
        install_procedure(session)
        dossier = submit(session, create_unit(session), applicant={"full_name": "Lê Thị C", "phone": "0911111111"})
        for step, data in [("receive", {"decision": "accept"}), ("appraise", {"decision": "propose_approve"}),
                           ("approve", {"decision": "approve"})]:
            complete(session, dossier.id, step, data)
        dossier_id = dossier.id
    client = app.test_client()
    drained = client.post("/api/v1/test/drain").get_json()
    assert drained["calls"] == 1
    assert client.post("/api/v1/test/drain").get_json() == {"timers": 0, "calls": 0}
    with transaction(factory) as session:
        call = session.scalars(select(ServiceCall).where(ServiceCall.dossier_id == dossier_id)).one()
        assert (call.status, call.attempts) == ("done", 1)
        records = session.scalars(select(SandboxRecord).where(SandboxRecord.idempotency_key == call.id)).all()
        assert len(records) == 1
        assert session.get(Dossier, dossier_id).status == "processing"


def test_clock_endpoint_moves_the_project_clock(app):
    client = app.test_client()
    response = client.post("/api/v1/test/clock", json={"now": "2027-01-04T08:00:00+07:00"})
    assert response.status_code == 200
    assert clock.now().isoformat().startswith("2027-01-04T01:00")
    # a worker process in test mode follows the published offset
    published = clock.offset()
    clock.reset()
    jobs.follow_clock_offset(app.extensions["motcua"].factory)
    assert clock.offset() == published
    bad = client.post("/api/v1/test/clock", json={"now": "soon"})
    assert bad.status_code == 400
    assert bad.get_json()["error"]["fields"] == {"now": ["ISO 8601 required"]}


def test_test_mode_is_absent_outside_test_env(tmp_path):
    from engine.config import Settings

    settings = Settings.from_env({}, env="development", database_url=f"sqlite:///{tmp_path / 'dev.db'}")
    upgrade(settings)
    application = create_app(settings)
    assert application.test_client().post("/api/v1/test/drain").status_code == 404
    application.extensions["motcua"].engine.dispose()
