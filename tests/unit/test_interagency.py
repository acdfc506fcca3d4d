"""Agency answers applied to their cases (the reply consumer's decisions, without a broker): once per
message id, "early" when the case does not wait yet, poison refused; the broker URL as pika reads it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from connectors import build_registry
from connectors.interagency import MAX_REPLY_DELAY, apply_reply, pika_url, reply_delay, sandbox_answer
from engine import jobs, services
from engine.config import Settings
from engine.db import make_engine, make_session_factory, transaction
from engine.migrate import upgrade
from engine.models import AuditEvent, Dossier, Role
from tests.factories import create_unit, create_user, install_procedure, open_task

CODE = "linked_birth_residence_health_insurance"
FORM = {
    "child_full_name": "Nguyễn Minh An", "birth_date": "2026-11-10", "gender": "male",
    "birth_place": "Bệnh viện Đa khoa tỉnh Hà Tĩnh", "mother_full_name": "Phạm Thị Dung",
    "requester_relationship": "Mẹ", "residence_address": "Số 5, thôn Đông", "head_of_household": "Nguyễn Văn Bình",
    "health_facility": "Trạm Y tế xã An Hòa Thịnh",
}


@pytest.fixture(scope="module")
def factory(tmp_path_factory):
    settings = Settings.from_env({}, env="test", database_url=f"sqlite:///{tmp_path_factory.mktemp('ia') / 'ia.db'}")
    upgrade(settings)
    engine = make_engine(settings)
    yield make_session_factory(engine)
    engine.dispose()


def _case(factory) -> tuple[int, str]:
    with transaction(factory) as session:
        install_procedure(session, CODE)
        unit = create_unit(session)
        for role in (Role.ONESTOP, Role.JUSTICE):
            create_user(session, unit, role.value)
        dossier = services.submit_dossier(session, procedure_code=CODE, unit_code=unit.code, form=FORM,
                                          channel="counter", applicant={"full_name": "Phạm Thị Dung"},
                                          actor=services.SYSTEM_ACTOR)
        return dossier.id, dossier.code


def _complete(factory, dossier_id: int, step: str, data: dict) -> None:
    with transaction(factory) as session:
        task = open_task(session, dossier_id, step)
        services.complete_task(session, task.id, data=data,
                               actor=services.Actor("it", None, frozenset({task.role}), task.unit_id))
    jobs.drain(factory, build_registry(Settings(env="test"), factory), lease=timedelta(seconds=30))


def _received(factory, dossier_id: int) -> list[str]:
    with transaction(factory) as session:
        return [e.data["message"] for e in session.scalars(select(AuditEvent).where(
            AuditEvent.dossier_id == dossier_id, AuditEvent.action == "message_received"))]


def test_answers_are_applied_once_and_early_ones_wait(factory):
    dossier_id, code = _case(factory)
    answer = {"agency": "police", "dossier_code": code, "answer": sandbox_answer("police", FORM)}
    assert apply_reply(factory, answer, "reply-1") == "early"  # the request is not even sent yet
    _complete(factory, dossier_id, "receive", {"decision": "accept"})
    _complete(factory, dossier_id, "register_birth", {"decision": "propose_approve", "birth_proof": "birth_certificate",
                                                      "personal_id_number": "042226000123"})
    assert apply_reply(factory, answer, "reply-1") == "applied"
    assert apply_reply(factory, answer, "reply-1") == "duplicate"
    assert _received(factory, dossier_id) == ["police_answer"]
    card = {"agency": "social_insurance", "dossier_code": code,
            "answer": sandbox_answer("social_insurance", {"personal_id_number": "042226000123"})}
    assert apply_reply(factory, card, "reply-2") == "applied"
    with transaction(factory) as session:
        assert open_task(session, dossier_id, "review") is not None
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.dossier_id == dossier_id, AuditEvent.action == "message_received")) == 2


@pytest.mark.parametrize(("body", "message_id"), [
    ({"agency": "army", "dossier_code": "X", "answer": {}}, "m1"),
    ({"agency": "police", "dossier_code": "", "answer": {}}, "m2"),
    ({"agency": "police", "dossier_code": "X", "answer": "yes"}, "m3"),
    ({"agency": "police", "dossier_code": "no-such-dossier", "answer": {}}, "m4"),
    ({"agency": "police", "dossier_code": "X", "answer": {}}, ""),
])
def test_poison_answers_are_refused(factory, body, message_id):
    before = _count(factory)
    with pytest.raises(ValueError):
        apply_reply(factory, body, message_id)
    assert _count(factory) == before


def _count(factory) -> int:
    with transaction(factory) as session:
        return session.scalar(select(func.count()).select_from(Dossier)) or 0


@pytest.mark.parametrize(("celery_url", "pika"), [
    ("amqp://guest:guest@127.0.0.1:5672//", "amqp://guest:guest@127.0.0.1:5672/%2F"),
    ("amqp://guest:guest@127.0.0.1:5672", "amqp://guest:guest@127.0.0.1:5672/%2F"),
    ("amqp://u:p@mq:5672/motcua", "amqp://u:p@mq:5672/motcua"),
])
def test_broker_url_for_pika(celery_url, pika):
    assert pika_url(celery_url) == pika


def test_early_answers_wait_longer_each_time_up_to_a_ceiling():
    delays = [reply_delay(attempt) for attempt in range(1, 10)]
    assert delays[:5] == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert delays == sorted(delays)
    assert max(delays) == MAX_REPLY_DELAY
