"""The linked birth procedure (birth + permanent residence + health-insurance card) end to end through
RabbitMQ: a Celery worker publishes the requests with pika, the sandbox police and social insurance
answer from their queues, the reply consumer delivers the answers to the waiting case. A repeated
answer changes nothing; a poison message ends in the dead-letter queue."""

from __future__ import annotations

import json
from typing import Any

import pika
import pytest
from sqlalchemy import select

from connectors.interagency import pika_url, topology
from engine.db import transaction
from engine.models import AuditEvent, Dossier, Role, Task
from tests.factories import create_unit, create_user, install_procedure, open_task
from tests.integration.conftest import Consumer, wait_for

pytestmark = pytest.mark.integration
CODE = "linked_birth_residence_health_insurance"
FORM = {
    "child_full_name": "Nguyễn Minh An", "birth_date": "2026-11-10", "gender": "male",
    "birth_place": "Bệnh viện Đa khoa tỉnh Hà Tĩnh", "mother_full_name": "Phạm Thị Dung",
    "mother_id_number": "001199000111", "father_full_name": "Nguyễn Văn Bình", "requester_relationship": "Mẹ",
    "residence_address": "Số 5, thôn Đông, xã An Hòa Thịnh, Hà Tĩnh", "head_of_household": "Nguyễn Văn Bình",
    "health_facility": "Trạm Y tế xã An Hòa Thịnh",
}


@pytest.fixture
def consumers(worker_factory, tmp_path):
    worker = worker_factory()
    worker.start()
    env = dict(worker.env)
    started = [Consumer(["interagency", "replies"], env, tmp_path / "replies.log"),
               Consumer(["sandbox", "agencies", "--delay", "0.5"], env, tmp_path / "agencies.log")]
    yield started
    for consumer in started:
        consumer.stop()


def _complete(factory: Any, dossier_id: int, step: str, data: dict[str, Any]) -> None:
    from engine import services

    with transaction(factory) as session:
        task = open_task(session, dossier_id, step)
        officer = services.Actor(f"{task.role}.it", None, frozenset({task.role}), task.unit_id)
        services.complete_task(session, task.id, actor=officer, data=data)


def _open_steps(factory: Any, dossier_id: int) -> list[str]:
    with transaction(factory) as session:
        return list(session.scalars(select(Task.spec_name).where(
            Task.dossier_id == dossier_id, Task.kind == "user", Task.state.in_(("ready", "started")))))


def _answers(factory: Any, dossier_id: int) -> list[str]:
    with transaction(factory) as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.dossier_id == dossier_id,
                                                          AuditEvent.action == "message_received"))
        return sorted(e.data["message"] for e in events)


def _queue_depth(settings: Any, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(pika_url(settings.broker_url)))
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        connection.close()


def _publish_reply(settings: Any, body: bytes, message_id: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(pika_url(settings.broker_url)))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish("", topology(settings).replies, body, pika.BasicProperties(
            content_type="application/json", delivery_mode=2, message_id=message_id))
    finally:
        connection.close()


def test_linked_birth_completes_through_rabbitmq(celery_app, celery_settings, consumers):
    factory = celery_app.extensions["motcua"].factory
    with transaction(factory) as session:
        install_procedure(session, CODE)
        unit = create_unit(session)
        for role in (Role.ONESTOP, Role.JUSTICE, Role.LEADER):
            create_user(session, unit, role.value)
        from engine import services

        dossier = services.submit_dossier(
            session, procedure_code=CODE, unit_code=unit.code, form=FORM, channel="counter",
            applicant={"type": "individual", "full_name": "Phạm Thị Dung", "phone": "0903333444"},
            actor=services.SYSTEM_ACTOR)
        dossier_id, code = dossier.id, dossier.code
    _complete(factory, dossier_id, "receive", {"decision": "accept"})
    wait_for(lambda: _open_steps(factory, dossier_id) == ["register_birth"], timeout=30, what="register_birth")
    _complete(factory, dossier_id, "register_birth", {"decision": "propose_approve", "birth_proof": "birth_certificate",
                                                      "personal_id_number": "042226000123"})

    # The worker publishes both requests; the sandbox agencies answer; the consumer applies them.
    wait_for(lambda: _answers(factory, dossier_id) == ["insurance_answer", "police_answer"], timeout=60,
             what="both agencies' answers")
    wait_for(lambda: _open_steps(factory, dossier_id) == ["review"], timeout=30, what="the review step")
    with transaction(factory) as session:
        from engine import services

        wf = services.load_workflow(session, session.get(Dossier, dossier_id))
        review = next(t for t in wf.get_tasks() if t.task_spec.name == "review" and t.data)
        assert review.data["residence_registered"] is True
        assert review.data["health_insurance_card"] == "TE1422226000123"  # 15 characters, as a BHYT card

    # The same answer again (a redelivery) changes nothing; a poison message is dead-lettered.
    names = topology(celery_settings)
    reply = {"agency": "police", "dossier_code": code, "answer": {"residence_registered": True}}
    with transaction(factory) as session:
        first_id = session.scalar(select(AuditEvent.id).where(
            AuditEvent.dossier_id == dossier_id, AuditEvent.action == "message_received").order_by(AuditEvent.id))
        assert first_id is not None
    police_request = next(iter(_sandbox_keys(factory, "agency.police")))
    _publish_reply(celery_settings, json.dumps(reply).encode(), f"reply-{police_request}")
    _publish_reply(celery_settings, b"{not json", "poison-1")
    wait_for(lambda: _queue_depth(celery_settings, names.dead) == 1, timeout=30,
             what="the poison message dead-lettered")
    wait_for(lambda: _queue_depth(celery_settings, names.replies) == 0, timeout=30, what="the replies queue drained")
    assert _answers(factory, dossier_id) == ["insurance_answer", "police_answer"]  # applied once each

    # The case finishes: review, approval, signing, hand-back.
    _complete(factory, dossier_id, "review", {"decision": "propose_approve"})
    wait_for(lambda: _open_steps(factory, dossier_id) == ["approve"], timeout=30, what="approval")
    _complete(factory, dossier_id, "approve", {"decision": "approve"})
    wait_for(lambda: _open_steps(factory, dossier_id) == ["hand_back"], timeout=30, what="hand-back")
    _complete(factory, dossier_id, "hand_back", {"decision": "delivered"})
    with transaction(factory) as session:
        assert session.get(Dossier, dossier_id).status == "returned"


def _sandbox_keys(factory: Any, provider: str) -> list[str]:
    from engine.models import SandboxRecord

    with transaction(factory) as session:
        return list(session.scalars(select(SandboxRecord.idempotency_key).where(SandboxRecord.provider == provider)))
