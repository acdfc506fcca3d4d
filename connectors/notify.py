"""Notifications: SMS through an HTTP gateway and e-mail through SMTP, in Vietnamese.

Operations for service tasks and the outbox (status changes, deadline warnings, escalations), and
``send_sms`` / ``send_mail`` for the portal's one-time codes. Without a gateway URL (SMTP host)
messages go to the sandbox ledger, keyed by the idempotency key so that a retried call never sends
twice; ``GET /sandbox/sms/messages`` and ``/sandbox/mail/messages`` list them.
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors import sandbox
from connectors.http import post_signed
from connectors.registry import ConnectorRegistry
from engine.config import Settings
from engine.models import Dossier, ServiceCall

TEMPLATES = {
    "notify.status": "Hồ sơ {dossier_code}: {status_text}",
    "notify.status_changed": "Hồ sơ {dossier_code}: {status_text}",
    "notify.deadline_warning": "Hồ sơ {dossier_code} sắp đến hạn xử lý ({due_at})",
    "notify.overdue_escalation": "Hồ sơ {dossier_code} đã quá hạn xử lý ({due_at})",
}
DESCRIPTIONS = {
    "notify.status": "Tell the applicant of a status change by SMS and e-mail",
    "notify.status_changed": "Tell the applicant of a status change by SMS and e-mail",
    "notify.deadline_warning": "Warn the officers that a deadline is near",
    "notify.overdue_escalation": "Tell the leader that a dossier is overdue",
}
STATUS_TEXT = {
    "submitted": "đã nộp trực tuyến; cơ quan sẽ kiểm tra và tiếp nhận. Tra cứu bằng mã hồ sơ.",
    "accepted": "đã được tiếp nhận; xem giấy hẹn trả kết quả.",
    "supplement_requested": "cần bổ sung, hoàn thiện; xem nội dung yêu cầu.",
    "not_accepted": "không được tiếp nhận; xem lý do từ chối.",
    "processed": "đã có kết quả.",
    "draft_ready": "đã có dự thảo kết quả; vui lòng kiểm tra và xác nhận trên Cổng dịch vụ công.",
    "payment_requested": "đã có kết quả; vui lòng thanh toán phí, lệ phí trực tuyến để nhận kết quả.",
    "withdrawal_requested": "đã ghi nhận yêu cầu rút hồ sơ.",
    "stopped": "đã dừng xử lý; xem lý do.",
    "returned": "đã trả kết quả.",
    "apology": "giải quyết chậm so với hẹn; cơ quan xin lỗi và hẹn lại ngày trả kết quả.",
    "result_ready": "đã có kết quả.",
    "posting_started": "đang được niêm yết công khai tại trụ sở UBND xã.",
    "ceremony_invitation": "mời các bên đến Bộ phận Một cửa để ký sổ và nhận kết quả.",
    "agency_overdue": "đang chờ cơ quan liên thông trả lời quá hạn; cán bộ đang đôn đốc.",
}
SUBJECT = "[motcua] Hồ sơ {dossier_code}"


def send_sms(settings: Settings, factory: sessionmaker[Session], *, to: str, text: str, key: str) -> dict[str, Any]:
    """Send one SMS. The gateway receives ``{"id", "to", "text"}`` signed with MOTCUA_SMS_SECRET and
    de-duplicates by ``id``; without a gateway the sandbox ledger plays it."""
    if settings.sms_url:
        status, _body = post_signed(settings.sms_url, {"id": key, "to": to, "text": text},
                                    settings.connector_secret("sms") or "")
        if status >= 300:
            raise RuntimeError(f"SMS gateway answered HTTP {status}")
        return {"sent": True, "status": status}
    record_id, new = sandbox.record(factory, provider="sms", key=key, recipient=to, payload={"text": text})
    return {"sent": True, "record": record_id, "duplicate": not new}


def send_mail(settings: Settings, factory: sessionmaker[Session], *, to: str, subject: str, text: str,
              key: str) -> dict[str, Any]:
    """Send one e-mail through SMTP (Message-ID from the key, so the receiver can drop repeats);
    without an SMTP host the sandbox ledger plays it."""
    if settings.smtp_host:
        message = EmailMessage()
        message["From"] = settings.smtp_sender
        message["To"] = to
        message["Subject"] = subject
        message["Message-ID"] = f"<{re.sub(r'[^A-Za-z0-9.-]', '.', key)}@motcua>"
        message.set_content(text)
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:
            smtp.send_message(message)
        return {"sent": True}
    record_id, new = sandbox.record(factory, provider="mail", key=key, recipient=to,
                                    payload={"subject": subject, "text": text})
    return {"sent": True, "record": record_id, "duplicate": not new}


def register(registry: ConnectorRegistry, factory: sessionmaker[Session], settings: Settings) -> None:
    def recipients(params: Mapping[str, Any], key: str) -> tuple[str, str]:
        """(phone, e-mail): the parameters', else the applicant's of the dossier named by the
        parameters or by the calling service task (the key is its id)."""
        phone, email = str(params.get("to") or ""), str(params.get("email") or "")
        if (phone and email) or params.get("roles"):
            return phone, email  # officers' alerts name their recipients; never the applicant
        with factory() as session:
            query = select(Dossier.applicant_phone, Dossier.applicant)
            if params.get("dossier_code"):
                row = session.execute(query.where(Dossier.code == params["dossier_code"])).first()
            else:
                row = session.execute(query.join(ServiceCall, ServiceCall.dossier_id == Dossier.id)
                                      .where(ServiceCall.id == key)).first()
        if row is not None:
            phone = phone or str(row[0] or "")
            email = email or str((row[1] or {}).get("email") or "")
        return phone, email

    for name, template in TEMPLATES.items():

        def send(params: Mapping[str, Any], key: str, _template: str = template) -> dict[str, Any]:
            values = {"dossier_code": "", "due_at": "", **params}
            values["status_text"] = STATUS_TEXT.get(str(params.get("template", "")), str(params.get("template", "")))
            text = _template.format_map(values)
            phone, email = recipients(params, key)
            result: dict[str, Any] = {"sent": False}
            if phone:
                result = send_sms(settings, factory, to=phone, text=text, key=key)
            if email and params.get("template"):  # status notices to the applicant; not officers' alerts
                send_mail(settings, factory, to=email, subject=SUBJECT.format_map(values), text=text, key=f"{key}:mail")
                result["mailed"] = True
            return result

        registry.register(name, send, description=DESCRIPTIONS.get(name, ""),
                          optional=("to", "email", "roles", "dossier_code", "due_at", "template", "label", "agency"))
