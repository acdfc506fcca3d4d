"""Public postal service (bưu chính công ích): ordering the delivery of a result.

The HTTP client and signed callbacks come with the connectors issue; the sandbox order here
returns a tracking number per idempotency key, as the provider would.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from connectors import sandbox
from connectors.registry import ConnectorRegistry


def register(registry: ConnectorRegistry, factory: sessionmaker[Session]) -> None:
    def send_result(params: Mapping[str, Any], key: str) -> dict[str, Any]:
        if not str(params.get("address") or "").strip():
            from engine.services import PermanentServiceError

            raise PermanentServiceError("no delivery address")
        record_id, new = sandbox.record(factory, provider="postal", key=key,
                                        recipient=str(params.get("address")), payload=dict(params))
        return {"tracking": f"BCCI{record_id:09d}", "duplicate": not new}

    registry.register("postal.send_result", send_result)
