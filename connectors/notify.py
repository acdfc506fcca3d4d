"""Notification operations for service tasks (status changes, deadline warnings, escalations).

Until the SMS gateway and SMTP clients exist (connectors issue), messages go to the SMS
sandbox ledger, keyed by the service task id so that a retried call never sends twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from connectors import sandbox
from connectors.registry import ConnectorRegistry

TEMPLATES = {
    "notify.status": "Hồ sơ {dossier_code}: {template}",
    "notify.deadline_warning": "Hồ sơ {dossier_code} sắp đến hạn xử lý ({due_at})",
    "notify.overdue_escalation": "Hồ sơ {dossier_code} đã quá hạn xử lý ({due_at})",
}


def register(registry: ConnectorRegistry, factory: sessionmaker[Session]) -> None:
    for name, template in TEMPLATES.items():

        def send(params: Mapping[str, Any], key: str, _template: str = template) -> dict[str, Any]:
            values = {"dossier_code": "", "template": "", "due_at": "", **params}
            text = _template.format_map(values)
            record_id, new = sandbox.record(
                factory, provider="sms", key=key, recipient=params.get("to"), payload={"text": text}
            )
            return {"sent": True, "record": record_id, "duplicate": not new}

        registry.register(name, send)
