"""Result documents: the signing step of the lifecycle.

Until PAdES signing exists (documents and signatures issue), ``documents.sign_result`` records
the request in the sandbox ledger keyed by the service task id, so the process runs end to end
and a retried call signs once. It is registered only when sandboxes are on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from connectors import sandbox
from connectors.registry import ConnectorRegistry


def register(registry: ConnectorRegistry, factory: sessionmaker[Session]) -> None:
    def sign_result(params: Mapping[str, Any], key: str) -> dict[str, Any]:
        record_id, new = sandbox.record(factory, provider="signing", key=key,
                                        recipient=str(params.get("dossier_code", "")), payload=dict(params))
        return {"document": f"{params.get('kind', 'result')}-{record_id}", "duplicate": not new}

    registry.register("documents.sign_result", sign_result,
                      description="Sign the result digitally",
                      required=("dossier_code",), optional=("kind",))
