"""Notifications reach real servers: e-mail through a local SMTP server (aiosmtpd), SMS through an
HTTP gateway that checks the signature; without them, the sandbox ledger keeps one copy per key."""

from __future__ import annotations

import email
import email.policy
import json
import socket

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from connectors import postal, sandbox
from connectors.http import sign
from connectors.notify import send_mail, send_sms
from connectors.registry import ConnectorRegistry
from engine.config import Settings
from engine.db import make_engine, make_session_factory, transaction
from engine.migrate import upgrade
from engine.models import SandboxRecord
from engine.services import PermanentServiceError
from tests.factories import Provider


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


@pytest.fixture(scope="module")
def factory(tmp_path_factory):
    settings = Settings.from_env({}, env="test", database_url=f"sqlite:///{tmp_path_factory.mktemp('n') / 'n.db'}")
    upgrade(settings)
    engine = make_engine(settings)
    yield make_session_factory(engine)
    engine.dispose()


def test_mail_goes_through_smtp_in_vietnamese(factory):
    inbox = Inbox()
    with socket.socket() as probe:  # a free port for the SMTP server
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = Settings(env="test", smtp_host="127.0.0.1", smtp_port=port, smtp_sender="motcua@xa.example.vn")
        send_mail(settings, factory, to="an.nguyen@example.vn", subject="[motcua] Hồ sơ 000.20.42.H42-261130-0001",
                  text="Hồ sơ đã được tiếp nhận; xem giấy hẹn trả kết quả.", key="call-1:mail")
    finally:
        controller.stop()
    [message] = inbox.messages
    assert message["To"] == "an.nguyen@example.vn"
    assert message["From"] == "motcua@xa.example.vn"
    assert message["Subject"] == "[motcua] Hồ sơ 000.20.42.H42-261130-0001"
    assert message["Message-ID"] == "<call-1.mail@motcua>"  # the receiver can drop a repeat
    assert "đã được tiếp nhận" in message.get_content()


def test_sms_goes_to_a_gateway_with_a_signature(factory):
    with Provider((202, None)) as gateway:
        settings = Settings(env="test", sms_url=f"{gateway.url}/send", sms_secret="gateway-secret-0123")
        result = send_sms(settings, factory, to="0900000001", text="Hồ sơ X: đã có kết quả.", key="call-2")
    assert result == {"sent": True, "status": 202}
    [(signature, raw)] = gateway.received
    assert signature == sign("gateway-secret-0123", raw)
    assert json.loads(raw) == {"id": "call-2", "to": "0900000001", "text": "Hồ sơ X: đã có kết quả."}


def test_the_post_takes_an_order_and_answers_its_tracking_number(factory):
    registry = ConnectorRegistry()
    with Provider((503, None), (200, {"tracking": "EB123456789VN"}), (422, {"error": "address"})) as post:
        settings = Settings(env="test", postal_url=f"{post.url}/orders", postal_secret="post-secret-0123")
        postal.register(registry, factory, settings)
        order = {"dossier_code": "X-1", "address": "Thôn Đông, xã An Hòa Thịnh"}
        with pytest.raises(RuntimeError):  # a provider outage: the call is retried with back-off
            registry("postal.send_result", order, "call-4")
        assert registry("postal.send_result", order, "call-4") == {"tracking": "EB123456789VN"}
        with pytest.raises(PermanentServiceError):  # refused: no point retrying
            registry("postal.send_result", order, "call-5")
    first, second, _third = post.received
    assert first[1] == second[1]  # the same order again: the post de-duplicates by order_id
    assert json.loads(second[1]) == {"order_id": "call-4", "dossier_code": "X-1",
                                     "address": "Thôn Đông, xã An Hòa Thịnh", "kind": "result_delivery"}
    assert second[0] == sign("post-secret-0123", second[1])


def test_without_servers_the_sandbox_keeps_one_copy_per_key(factory):
    settings = Settings(env="test")
    for _ in range(2):
        send_sms(settings, factory, to="0900000009", text="một", key="call-3")
        send_mail(settings, factory, to="x@example.vn", subject="s", text="một", key="call-3:mail")
    with transaction(factory) as session:
        sms = sandbox.records(session, provider="sms", recipient="0900000009")
        mail = session.scalars(select(SandboxRecord).where(SandboxRecord.provider == "mail")).all()
    assert [(r.attempts, r.payload["text"]) for r in sms] == [(2, "một")]
    assert len(mail) == 1
