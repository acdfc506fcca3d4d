"""A demonstration operation with a visible side effect and a configurable duration.

``demo.effect`` waits ``seconds`` (a slow provider), then records one effect per idempotency key
in the sandbox ledger. Tests kill a worker during the wait and check the effect happened once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from connectors import sandbox
from connectors.registry import ConnectorRegistry


def register(registry: ConnectorRegistry, factory: sessionmaker[Session]) -> None:
    def effect(params: Mapping[str, Any], key: str) -> dict[str, Any]:
        seconds = float(params.get("seconds", 0) or 0)
        if seconds:
            time.sleep(min(seconds, 60.0))
        record_id, new = sandbox.record(
            factory, provider="demo", key=key, recipient=str(params.get("label", "")), payload=dict(params)
        )
        return {"record": record_id, "duplicate": not new}

    registry.register("demo.effect", effect,
                      description="Demo: record an effect in the sandbox, optionally after some seconds",
                      optional=("label", "seconds"))
