"""Status changes reach the national portal in commit order, once: a refused push moves nothing,
the next sweep sends the same batch again; the portal checks the signature."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from connectors import national_portal, sandbox
from connectors.http import sign
from engine.config import Settings
from engine.db import make_engine, make_session_factory, transaction
from engine.migrate import upgrade
from engine.models import DossierStatus
from tests.factories import Provider, complete, create_unit, install_procedure, submit


@pytest.fixture(scope="module")
def factory(tmp_path_factory):
    settings = Settings.from_env({}, env="test", database_url=f"sqlite:///{tmp_path_factory.mktemp('p') / 'p.db'}")
    upgrade(settings)
    engine = make_engine(settings)
    yield make_session_factory(engine)
    engine.dispose()


def _case(factory) -> tuple[str, int]:
    with transaction(factory) as session:
        install_procedure(session)
        dossier = submit(session, create_unit(session))
        return dossier.code, dossier.id


def test_status_changes_go_to_the_sandbox_portal_in_order_and_once(factory):
    code, dossier_id = _case(factory)
    with transaction(factory) as session:
        complete(session, dossier_id, "receive", {"decision": "accept"})
    settings = Settings(env="test")
    assert national_portal.sync(settings, factory) == 2
    assert national_portal.sync(settings, factory) == 0  # nothing new: nothing sent twice
    with transaction(factory) as session:
        items = [i for r in sandbox.records(session, provider="national_portal") for i in r.payload["items"]]
        until = national_portal.synced_until(session)
    mine = [(i["status"], i["status_code"]) for i in items if i["dossier_code"] == code]
    assert mine == [("submitted", 1), ("processing", 4)]  # the demo process goes straight to processing
    assert [i["event_id"] for i in items] == sorted(i["event_id"] for i in items)
    assert until == items[-1]["event_id"]
    assert {i["agency_code"] for i in items} == {code.rsplit("-", 2)[0]}  # the code starts with it


def test_a_refused_push_is_sent_again_and_the_signature_checks(factory):
    code, dossier_id = _case(factory)
    with transaction(factory) as session:
        before = national_portal.synced_until(session)
        complete(session, dossier_id, "receive", {"decision": "accept"})
    with Provider((503, None), (200, {"accepted": True})) as portal:
        settings = Settings(env="test", portal_url=f"{portal.url}/api/status", portal_secret="portal-secret-0123")
        with pytest.raises(national_portal.PortalRefusedError):
            national_portal.sync(settings, factory)
        with transaction(factory) as session:
            assert national_portal.synced_until(session) == before  # nothing moved
        sent = national_portal.sync(settings, factory)
    assert sent >= 2
    (_sig1, raw1), (sig2, raw2) = portal.received
    assert raw1 == raw2  # the same batch again
    assert sig2 == sign("portal-secret-0123", raw2)
    statuses = [(i["dossier_code"], i["status_code"]) for i in json.loads(raw2)["items"]]
    assert statuses[-2:] == [(code, DossierStatus.SUBMITTED.national_code),
                             (code, DossierStatus.PROCESSING.national_code)]
    with transaction(factory) as session:
        assert national_portal.synced_until(session) > before
        assert session.scalar(select(national_portal.Setting.value).where(
            national_portal.Setting.key == national_portal.CURSOR)) == str(json.loads(raw2)["items"][-1]["event_id"])
