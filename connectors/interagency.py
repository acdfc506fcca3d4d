"""Inter-agency messages (liên thông) over RabbitMQ with pika: requests to the police (permanent
residence) and social insurance (health-insurance card); their answers come back on a reply queue
and are delivered to the waiting case as message events (``police_answer``, ``insurance_answer``).

Topology, named after ``MOTCUA_QUEUE`` (so test runs and deployments do not share queues):
``<q>.interagency`` (direct exchange, routing key = agency) → durable queue ``<q>.agency.<agency>``;
answers go to the durable queue ``<q>.interagency.replies``; every queue dead-letters into
``<q>.interagency.dlx`` → ``<q>.interagency.dead`` (poison messages are kept there, never lost).
An answer that comes before its case waits for it is parked in ``<q>.interagency.wait`` with a
per-message time to live, after which RabbitMQ dead-letters it back to the replies queue.

Requests are persistent, published with publisher confirms, with ``message_id`` = the service
task id (the receiver de-duplicates by it). Replies are applied once (``CallbackReceipt``). Without
a broker (the embedded default) requests go to the sandbox ledger and answers are delivered by hand.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import pika
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from connectors import sandbox
from connectors.registry import ConnectorRegistry
from engine import clock
from engine.config import Settings
from engine.db import transaction
from engine.models import CallbackReceipt
from engine.services import (
    Actor,
    ConflictError,
    NotFoundError,
    PermanentServiceError,
    deliver_message,
    get_dossier,
)

log = logging.getLogger(__name__)

AGENCIES = {"police": "Công an (đăng ký thường trú)", "social_insurance": "Bảo hiểm xã hội (thẻ BHYT)"}
ANSWER_MESSAGES = {"police": "police_answer", "social_insurance": "insurance_answer"}
# An answer that arrives before the case waits for it (the request's service step is still being
# finished, or its worker crashed after publishing and the step is taken again after the lease) is
# parked with a growing delay; one still early this long after it first came is dead-lettered.
REPLY_PATIENCE = timedelta(hours=1)
MAX_REPLY_DELAY = 30.0


def reply_delay(attempts: int) -> float:
    """Seconds an early answer waits before its next try: 0.5, 1, 2, 4 … up to 30."""
    return min(0.5 * 2 ** max(attempts - 1, 0), MAX_REPLY_DELAY)


class Topology:
    def __init__(self, prefix: str):
        self.exchange = f"{prefix}.interagency"
        self.replies = f"{prefix}.interagency.replies"
        self.dlx = f"{prefix}.interagency.dlx"
        self.dead = f"{prefix}.interagency.dead"
        self.wait = f"{prefix}.interagency.wait"
        self.prefix = prefix

    def agency_queue(self, agency: str) -> str:
        return f"{self.prefix}.agency.{agency}"

    def declare(self, channel: Any) -> None:
        channel.exchange_declare(self.dlx, exchange_type="fanout", durable=True)
        channel.queue_declare(self.dead, durable=True)
        channel.queue_bind(self.dead, self.dlx)
        dead_letter = {"x-dead-letter-exchange": self.dlx}
        channel.exchange_declare(self.exchange, exchange_type="direct", durable=True)
        for agency in AGENCIES:
            channel.queue_declare(self.agency_queue(agency), durable=True, arguments=dead_letter)
            channel.queue_bind(self.agency_queue(agency), self.exchange, routing_key=agency)
        channel.queue_declare(self.replies, durable=True, arguments=dead_letter)
        # No consumer: messages wait out their expiration, then go back to the replies queue.
        channel.queue_declare(self.wait, durable=True, arguments={
            "x-dead-letter-exchange": "", "x-dead-letter-routing-key": self.replies})


def topology(settings: Settings) -> Topology:
    return Topology(settings.queue)


def pika_url(broker_url: str) -> str:
    """The broker URL as pika reads it: Celery writes the default virtual host "/" as ``//``
    (or leaves it out), pika wants it percent-encoded."""
    scheme, _, rest = broker_url.partition("://")
    authority, slash, path = rest.partition("/")
    if not slash or path in ("", "/"):
        path = "%2F"
    return f"{scheme}://{authority}/{path}"


def connect(settings: Settings) -> Any:
    parameters = pika.URLParameters(pika_url(settings.broker_url))
    parameters.heartbeat = 30
    parameters.blocked_connection_timeout = 30
    return pika.BlockingConnection(parameters)


def publish(settings: Settings, *, routing_key: str, exchange: str, body: Mapping[str, Any], message_id: str,
            correlation_id: str, reply_to: str | None = None, headers: Mapping[str, Any] | None = None) -> None:
    """One persistent message, confirmed by the broker (an exception means: not sent, try again)."""
    connection = connect(settings)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        topology(settings).declare(channel)
        channel.basic_publish(
            exchange=exchange, routing_key=routing_key, mandatory=True,
            body=json.dumps(dict(body), ensure_ascii=False).encode(),
            properties=pika.BasicProperties(
                content_type="application/json", delivery_mode=pika.DeliveryMode.Persistent,
                message_id=message_id, correlation_id=correlation_id, reply_to=reply_to,
                headers=dict(headers or {})))
    finally:
        connection.close()


def register(registry: ConnectorRegistry, factory: sessionmaker[Session], settings: Settings) -> None:
    def send(params: Mapping[str, Any], key: str) -> dict[str, Any]:
        agency = str(params.get("agency", ""))
        if agency not in AGENCIES:
            raise PermanentServiceError(f"unknown agency {agency!r}")
        if settings.broker_url:
            names = topology(settings)
            publish(settings, exchange=names.exchange, routing_key=agency, body=dict(params), message_id=key,
                    correlation_id=str(params.get("dossier_code", "")), reply_to=names.replies)
            return {"request": key, "agency": agency, "transport": "amqp"}
        record_id, new = sandbox.record(factory, provider=f"interagency.{agency}", key=key,
                                        recipient=str(params.get("dossier_code", "")), payload=dict(params))
        return {"request": record_id, "agency": agency, "duplicate": not new}

    registry.register("interagency.send", send,
                      description="Send an inter-agency request (police, social insurance) over RabbitMQ",
                      required=("agency", "dossier_code"), optional=("*",))


# --- the answers ----------------------------------------------------------------------------------

def apply_reply(factory: sessionmaker[Session], body: Mapping[str, Any], message_id: str) -> str:
    """Deliver an agency's answer to its case once. Returns ``applied``, ``duplicate``, ``early``
    (the case does not wait for it yet: try again later) or raises ValueError (poison)."""
    agency = str(body.get("agency") or "")
    code = str(body.get("dossier_code") or "")
    if agency not in ANSWER_MESSAGES or not code or not isinstance(body.get("answer"), dict) or not message_id:
        raise ValueError("not an agency answer: agency, dossier_code, answer and a message id are required")
    with transaction(factory) as session:
        if session.scalar(select(CallbackReceipt.id).where(CallbackReceipt.provider == "interagency",
                                                           CallbackReceipt.event_id == message_id)):
            return "duplicate"
        try:
            dossier = get_dossier(session, code)
        except NotFoundError as exc:
            raise ValueError(f"no dossier {code}") from exc
        try:
            deliver_message(session, code, ANSWER_MESSAGES[agency], dict(body["answer"]),
                            actor=Actor(f"agency.{agency}"))
        except ConflictError:
            if dossier.finished_at is not None:
                raise ValueError(f"dossier {code} is closed") from None
            session.rollback()
            return "early"
        session.add(CallbackReceipt(provider="interagency", event_id=message_id, dossier_id=dossier.id,
                                    received_at=clock.now()))
    return "applied"


def consume_replies(settings: Settings, factory: sessionmaker[Session], *, stop: threading.Event | None = None,
                    on_applied: Callable[[str], None] | None = None) -> None:
    """Apply agency answers until ``stop`` is set (``motcua interagency replies``). A message is
    acknowledged only after its case change is committed; a crash before that redelivers it, and
    the receipt makes the second delivery a no-op."""
    names = topology(settings)
    stop = stop or threading.Event()
    while not stop.is_set():
        try:
            connection = connect(settings)
        except pika.exceptions.AMQPConnectionError:
            log.warning("broker unreachable; retrying")
            stop.wait(1.0)
            continue
        try:
            channel = connection.channel()
            channel.confirm_delivery()  # a re-published early answer must be confirmed before its ack
            topology(settings).declare(channel)
            channel.basic_qos(prefetch_count=10)
            for method, properties, raw in channel.consume(names.replies, inactivity_timeout=0.5):
                if stop.is_set():
                    break
                if method is None:
                    continue
                _handle_reply(settings, factory, channel, method, properties, raw, on_applied)
            channel.cancel()
        except pika.exceptions.AMQPError as exc:  # connection or channel lost (a broker restart)
            log.warning("broker connection lost (%s); reconnecting", type(exc).__name__)
            stop.wait(0.5)
        finally:
            if connection.is_open:
                connection.close()


def _handle_reply(settings: Settings, factory: sessionmaker[Session], channel: Any, method: Any, properties: Any,
                  raw: bytes, on_applied: Callable[[str], None] | None) -> None:
    message_id = str(properties.message_id or "")
    try:
        body = json.loads(raw)
        if not isinstance(body, dict):
            raise ValueError("not a JSON object")
        outcome = apply_reply(factory, body, message_id)
    except (ValueError, UnicodeDecodeError) as exc:
        log.error("dead-lettering reply %s: %s", message_id, exc)
        channel.basic_reject(method.delivery_tag, requeue=False)
        return
    except SQLAlchemyError:
        # The database is unreachable or refused: nothing was applied; the broker keeps the answer.
        log.exception("reply %s not applied; it stays queued", message_id)
        channel.basic_nack(method.delivery_tag, requeue=True)
        time.sleep(1.0)
        return
    if outcome == "early":
        headers = dict(properties.headers or {})
        attempts = int(headers.get("x-motcua-attempts", 0)) + 1
        first_seen = str(headers.get("x-motcua-first-seen") or clock.now().isoformat())
        if clock.now() - datetime.fromisoformat(first_seen) > REPLY_PATIENCE:
            log.error("dead-lettering reply %s: its case never waited for it", message_id)
            channel.basic_reject(method.delivery_tag, requeue=False)
            return
        # Parked, not slept on: the consumer goes on with other answers meanwhile. Confirmed by the
        # broker before the original is acknowledged, so a crash in between leaves a duplicate
        # (a no-op by its receipt), never a loss.
        channel.basic_publish("", topology(settings).wait, raw, pika.BasicProperties(
            content_type="application/json", delivery_mode=pika.DeliveryMode.Persistent, message_id=message_id,
            correlation_id=properties.correlation_id, expiration=str(int(reply_delay(attempts) * 1000)),
            headers={"x-motcua-attempts": attempts, "x-motcua-first-seen": first_seen}), mandatory=True)
    channel.basic_ack(method.delivery_tag)
    if outcome == "applied" and on_applied is not None:
        on_applied(message_id)


# --- the agencies' sandbox ------------------------------------------------------------------------

def sandbox_answer(agency: str, request: Mapping[str, Any]) -> dict[str, Any]:
    """What the sandbox agency answers: the residence registered at the declared address, or a
    health-insurance card number for the child (TE1 + province 42 + a number from the request)."""
    if agency == "police":
        return {"residence_registered": True, "address": request.get("residence_address", "")}
    digits = "".join(c for c in str(request.get("personal_id_number") or "") if c.isdigit())[-10:]
    return {"card_number": f"TE142{digits.rjust(10, '0')}"}


def run_sandbox_agencies(settings: Settings, factory: sessionmaker[Session], *, delay: float,
                         stop: threading.Event | None = None) -> None:
    """Play the police and social insurance (``motcua sandbox agencies``): consume their queues,
    record each request once (by its message id) and answer it after ``delay`` seconds, one at a
    time like a real agency's desk (so a backlog waits in the broker, not in this process)."""
    names = topology(settings)
    stop = stop or threading.Event()
    while not stop.is_set():
        try:
            connection = connect(settings)
        except pika.exceptions.AMQPConnectionError:
            stop.wait(1.0)
            continue
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            names.declare(channel)
            channel.basic_qos(prefetch_count=1)
            for agency in AGENCIES:
                channel.basic_consume(names.agency_queue(agency), _agency_handler(factory, agency, delay))
            while not stop.is_set():
                connection.process_data_events(time_limit=0.5)
        except pika.exceptions.AMQPError as exc:
            log.warning("agency sandbox lost the broker (%s); reconnecting", type(exc).__name__)
            stop.wait(0.5)
        finally:
            if connection.is_open:
                connection.close()


def _agency_handler(factory: sessionmaker[Session], agency: str, delay: float) -> Callable[..., None]:
    def handle(channel: Any, method: Any, properties: Any, raw: bytes) -> None:
        try:
            request = json.loads(raw)
        except ValueError:
            channel.basic_reject(method.delivery_tag, requeue=False)
            return
        message_id = str(properties.message_id or "")
        _record_id, new = sandbox.record(factory, provider=f"agency.{agency}", key=message_id or "?",
                                         recipient=str(request.get("dossier_code", "")), payload=request)
        if properties.reply_to:
            # A request delivered again (the sender retried, or this consumer crashed before its
            # acknowledgement) is answered again with the same message id: the answer may have
            # been lost with the crash, and motcua applies it once whatever the number of copies.
            if new:
                time.sleep(delay)
            answer = {"agency": agency, "dossier_code": request.get("dossier_code"),
                      "answer": sandbox_answer(agency, request)}
            channel.basic_publish("", properties.reply_to, json.dumps(answer, ensure_ascii=False).encode(),
                                  pika.BasicProperties(content_type="application/json",
                                                       delivery_mode=pika.DeliveryMode.Persistent,
                                                       message_id=f"reply-{message_id}",
                                                       correlation_id=properties.correlation_id))
        channel.basic_ack(method.delivery_tag)

    return handle
