"""Inter-agency messages (liên thông): requests to the police (permanent residence) and social
insurance (health-insurance card). The RabbitMQ transport with pika comes with the connectors
issue; until then the request is recorded in the sandbox ledger per idempotency key, and the
answer arrives as a message event (``police_answer``, ``insurance_answer``) delivered to the case.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from connectors import sandbox
from connectors.registry import ConnectorRegistry
from engine.services import PermanentServiceError

AGENCIES = {"police": "Công an (đăng ký thường trú)", "social_insurance": "Bảo hiểm xã hội (thẻ BHYT)"}


def register(registry: ConnectorRegistry, factory: sessionmaker[Session]) -> None:
    def send(params: Mapping[str, Any], key: str) -> dict[str, Any]:
        agency = str(params.get("agency", ""))
        if agency not in AGENCIES:
            raise PermanentServiceError(f"unknown agency {agency!r}")
        record_id, new = sandbox.record(factory, provider=f"interagency.{agency}", key=key,
                                        recipient=str(params.get("dossier_code", "")), payload=dict(params))
        return {"request": record_id, "agency": agency, "duplicate": not new}

    registry.register("interagency.send", send)
