"""The daily payment reconciliation flags every difference between the provider's books and ours,
once: money taken but not recorded (a lost callback), recorded but unknown to the provider, a
different amount, an unknown reference."""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from connectors.payment import reconcile, settle_in_sandbox
from engine.calendar import VN_TZ
from engine.config import Settings
from engine.db import make_engine, make_session_factory, transaction
from engine.migrate import upgrade
from engine.models import AuditEvent, Payment
from scripts.cli import main as cli
from tests.factories import create_unit, install_procedure, submit

DAY = date(2026, 11, 30)
NOON = datetime(2026, 11, 30, 12, 0, tzinfo=VN_TZ)


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    settings = Settings.from_env({}, env="test", database_url=f"sqlite:///{tmp_path_factory.mktemp('r') / 'r.db'}")
    upgrade(settings)
    return settings


@pytest.fixture(scope="module")
def factory(settings):
    engine = make_engine(settings)
    yield make_session_factory(engine)
    engine.dispose()


def _payments(factory) -> None:
    with transaction(factory) as session:
        install_procedure(session)
        dossier = submit(session, create_unit(session))
        rows = [("MC-OK", 10000, "paid"), ("MC-LOST", 10000, "pending"), ("MC-OURS", 8000, "paid"),
                ("MC-AMOUNT", 10000, "paid")]
        for reference, amount, status in rows:
            session.add(Payment(reference=reference, dossier_id=dossier.id, amount=amount, status=status,
                                created_at=NOON, settled_at=NOON if status == "paid" else None))
    from engine import clock

    clock.freeze(NOON)
    for reference, amount in (("MC-OK", 10000), ("MC-LOST", 10000), ("MC-AMOUNT", 12000), ("MC-STRANGER", 5000)):
        settle_in_sandbox(factory, reference=reference, amount=amount, currency="VND", status="paid",
                          transaction_id=f"T-{reference}")


def test_every_difference_is_flagged_once(settings, factory):
    _payments(factory)
    report = reconcile(settings, factory, DAY)
    kinds = {m["reference"]: m["kind"] for m in report["mismatches"]}
    assert kinds == {"MC-LOST": "not_recorded", "MC-OURS": "not_at_provider", "MC-AMOUNT": "amount_mismatch",
                     "MC-STRANGER": "unknown_reference"}
    assert (report["provider_paid"], report["checked"]) == (4, 5)
    again = reconcile(settings, factory, DAY)
    assert again["mismatches"] == report["mismatches"]  # still reported …
    with transaction(factory) as session:  # … but flagged in the audit only once
        flagged = session.scalars(select(AuditEvent).where(AuditEvent.action == "payment_mismatch")).all()
    assert sorted(e.data["reference"] for e in flagged) == ["MC-AMOUNT", "MC-LOST", "MC-OURS", "MC-STRANGER"]
    assert next(e for e in flagged if e.data["reference"] == "MC-LOST").dossier_code is not None
    assert reconcile(settings, factory, date(2026, 11, 29))["mismatches"] == []  # another day: nothing


def test_the_command_prints_the_report(settings, factory, monkeypatch):
    monkeypatch.setenv("MOTCUA_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("MOTCUA_ENV", "test")
    result = CliRunner().invoke(cli, ["payments", "reconcile", "--date", "2026-11-30"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)["mismatches"]) == 4
    bad = CliRunner().invoke(cli, ["payments", "reconcile", "--date", "30/11/2026"])
    assert bad.exit_code == 2
    assert "YYYY-MM-DD" in bad.output
