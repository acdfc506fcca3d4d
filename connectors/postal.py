"""Public postal service (bưu chính công ích): ordering the delivery of a result.

With ``MOTCUA_POSTAL_URL`` the order is a signed POST (``{"order_id", "dossier_code", "address",
"kind"}``, HMAC-SHA256 in ``X-Signature``) answered with the tracking number; the provider
de-duplicates by ``order_id`` (the service task id). Without it the sandbox ledger plays the post.
The post's status callbacks (picked up, in transit, delivered, returned) come back signed to
``/api/v1/connectors/postal/callback``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from connectors import sandbox
from connectors.http import post_signed
from connectors.registry import ConnectorRegistry
from engine.config import Settings
from engine.services import PermanentServiceError


def register(registry: ConnectorRegistry, factory: sessionmaker[Session], settings: Settings) -> None:
    def send_result(params: Mapping[str, Any], key: str) -> dict[str, Any]:
        address = str(params.get("address") or "").strip()
        if not address:
            raise PermanentServiceError("no delivery address")
        if settings.postal_url:
            order = {"order_id": key, "dossier_code": params.get("dossier_code"), "address": address,
                     "kind": "result_delivery"}
            status, body = post_signed(settings.postal_url, order, settings.connector_secret("postal") or "")
            if 400 <= status < 500:
                raise PermanentServiceError(f"the post refused the order: HTTP {status} {body[:200]!r}")
            if status >= 300:
                raise RuntimeError(f"the post answered HTTP {status}")  # retried with back-off
            return {"tracking": str(json.loads(body)["tracking"])}
        record_id, new = sandbox.record(factory, provider="postal", key=key, recipient=address, payload=dict(params))
        return {"tracking": f"BCCI{record_id:09d}", "duplicate": not new}

    registry.register("postal.send_result", send_result,
                      description="Order the post to deliver the result to an address",
                      required=("address",), optional=("dossier_code", "kind"))
