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
    "notify.status": "Hồ sơ {dossier_code}: {status_text}",
    "notify.deadline_warning": "Hồ sơ {dossier_code} sắp đến hạn xử lý ({due_at})",
    "notify.overdue_escalation": "Hồ sơ {dossier_code} đã quá hạn xử lý ({due_at})",
}
STATUS_TEXT = {
    "accepted": "đã được tiếp nhận; xem giấy hẹn trả kết quả.",
    "supplement_requested": "cần bổ sung, hoàn thiện; xem nội dung yêu cầu.",
    "not_accepted": "không được tiếp nhận; xem lý do từ chối.",
    "processed": "đã có kết quả.",
    "apology": "giải quyết chậm so với hẹn; cơ quan xin lỗi và hẹn lại ngày trả kết quả.",
    "result_ready": "đã có kết quả.",
    "posting_started": "đang được niêm yết công khai tại trụ sở UBND xã.",
    "ceremony_invitation": "mời các bên đến Bộ phận Một cửa để ký sổ và nhận kết quả.",
    "agency_overdue": "đang chờ cơ quan liên thông trả lời quá hạn; cán bộ đang đôn đốc.",
}


def register(registry: ConnectorRegistry, factory: sessionmaker[Session]) -> None:
    for name, template in TEMPLATES.items():

        def send(params: Mapping[str, Any], key: str, _template: str = template) -> dict[str, Any]:
            values = {"dossier_code": "", "due_at": "", **params}
            values["status_text"] = STATUS_TEXT.get(str(params.get("template", "")), str(params.get("template", "")))
            text = _template.format_map(values)
            record_id, new = sandbox.record(
                factory, provider="sms", key=key, recipient=params.get("to"), payload={"text": text}
            )
            return {"sent": True, "record": record_id, "duplicate": not new}

        registry.register(name, send)
