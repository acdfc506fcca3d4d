"""National public-service portal sync (Cổng Dịch vụ công quốc gia): every dossier's status
changes, with the national status codes 1–10, pushed in order.

The audit log is the source: its events are numbered in commit order (the chain's lock), so a
cursor (setting ``national_portal.cursor``) marks what the portal has. A sweep sends the next batch
signed (HMAC-SHA256, ``X-Signature``) to ``MOTCUA_PORTAL_URL`` — or to the sandbox ledger — and
moves the cursor only once the portal accepted it; the portal de-duplicates by ``event_id``. Runs in
the embedded worker and in Celery beat's tick.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors import sandbox
from connectors.http import post_signed
from engine.calendar import to_vn
from engine.config import Settings
from engine.db import transaction
from engine.models import AuditEvent, Dossier, DossierStatus, Procedure, Setting, Unit

CURSOR = "national_portal.cursor"
SYNCED = ("dossier_submitted", "status_changed")
BATCH = 500


class PortalRefusedError(RuntimeError):
    pass


def _items(session: Session, after: int, limit: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(AuditEvent, Dossier.code, Procedure.national_code, Unit.agency_code)
        .join(Dossier, Dossier.id == AuditEvent.dossier_id)
        .join(Procedure, Procedure.id == Dossier.procedure_id)
        .join(Unit, Unit.id == Dossier.unit_id)
        .where(AuditEvent.id > after, AuditEvent.action.in_(SYNCED))
        .order_by(AuditEvent.id).limit(limit)
    ).all()
    items = []
    for event, code, national_code, agency_code in rows:
        status = DossierStatus.SUBMITTED.value if event.action == "dossier_submitted" else str(event.data["to"])
        items.append({"event_id": event.id, "dossier_code": code, "procedure_code": national_code,
                      "agency_code": agency_code, "status": status,
                      "status_code": DossierStatus(status).national_code, "at": to_vn(event.at).isoformat()})
    return items


def sync(settings: Settings, factory: sessionmaker[Session], *, limit: int = BATCH) -> int:
    """Push the next batch of status changes; returns how many the portal accepted. The cursor row
    is locked while sending, so two workers never send the same batch."""
    with transaction(factory) as session:
        cursor = session.get(Setting, CURSOR, with_for_update=True)
        if cursor is None:
            cursor = Setting(key=CURSOR, value="0")
            session.add(cursor)
            session.flush()
        items = _items(session, int(cursor.value), limit)
        if not items:
            return 0
        body = {"items": items}
        if settings.portal_url:
            status, _answer = post_signed(settings.portal_url, body, settings.connector_secret("portal") or "")
            if status >= 300:
                raise PortalRefusedError(f"the national portal answered HTTP {status}")
        else:
            sandbox.record_in(session, provider="national_portal", key=f"events-{items[0]['event_id']}",
                              recipient="dichvucong", payload=body)
        cursor.value = str(items[-1]["event_id"])
    return len(items)


def synced_until(session: Session) -> int:
    row = session.get(Setting, CURSOR)
    return int(row.value) if row else 0
