"""Append-only audit log with a hash chain.

Services call :func:`record_event`; the events are chained and inserted just before the
transaction commits (``before_commit``), under a lock that serializes chain writers, so the lock
is held only for the commit itself. ``verify_chain`` finds any edited, deleted or reordered row.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from engine import clock
from engine.models import AuditEvent, Setting

GENESIS = "0" * 64
HEAD_KEY = "audit_head"
_PENDING = "motcua_audit_pending"
# Arbitrary constant identifying the audit chain's advisory lock in PostgreSQL.
_PG_LOCK_ID = 7_201_801


def record_event(
    session: Session,
    *,
    action: str,
    actor: str,
    actor_id: int | None = None,
    dossier_id: int | None = None,
    dossier_code: str | None = None,
    task_id: str | None = None,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Queue an audit event; it is written, chained, when the session commits."""
    session.connection()  # begin the transaction now, so that a rollback also drops the event
    pending: list[dict[str, Any]] = session.info.setdefault(_PENDING, [])
    pending.append(
        {
            "at": at or clock.now(),
            "actor_id": actor_id,
            "actor": actor,
            "action": action,
            "dossier_id": dossier_id,
            "dossier_code": dossier_code,
            "task_id": task_id,
            "data": _jsonable(data or {}),
        }
    )


def pending_events(session: Session) -> list[dict[str, Any]]:
    return list(session.info.get(_PENDING, []))


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def event_hash(prev_hash: str, row: dict[str, Any]) -> str:
    """SHA-256 over the previous hash and the canonical JSON of the event's content."""
    at = row["at"]
    content = {
        "at": at.astimezone(UTC).isoformat(timespec="microseconds") if isinstance(at, datetime) else at,
        "actor_id": row["actor_id"],
        "actor": row["actor"],
        "action": row["action"],
        "dossier_id": row["dossier_id"],
        "dossier_code": row["dossier_code"],
        "task_id": row["task_id"],
        "data": row["data"],
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


def _lock_chain(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_ID})
    # SQLite: every transaction began with BEGIN IMMEDIATE, writers are already serialized.


def seal_pending(session: Session) -> int:
    """Chain and insert the queued events now (also run automatically before commit)."""
    pending: list[dict[str, Any]] = session.info.pop(_PENDING, [])
    if not pending:
        return 0
    _lock_chain(session)
    head = session.get(Setting, HEAD_KEY, with_for_update=True)
    state: dict[str, Any] = json.loads(head.value) if head else {"hash": GENESIS, "count": 0, "id": 0}
    prev: str = state["hash"]
    rows = []
    for item in pending:
        digest = event_hash(prev, item)
        rows.append(AuditEvent(prev_hash=prev, hash=digest, **item))
        prev = digest
    session.add_all(rows)
    session.flush()
    state = {"hash": prev, "count": state["count"] + len(rows), "id": rows[-1].id}
    if head is None:
        session.add(Setting(key=HEAD_KEY, value=json.dumps(state)))
    else:
        head.value = json.dumps(state)
    session.flush()
    return len(rows)


@event.listens_for(Session, "before_commit")
def _seal_before_commit(session: Session) -> None:
    if session.info.get(_PENDING):
        seal_pending(session)


@event.listens_for(Session, "after_soft_rollback")
def _drop_on_rollback(session: Session, _previous_transaction: object) -> None:
    session.info.pop(_PENDING, None)


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    events: int
    first_broken_id: int | None = None
    reason: str = ""


def verify_chain(session: Session, *, batch: int = 5000) -> ChainReport:
    """Walk the chain in id order; report the first event whose hash or link does not hold."""
    prev = GENESIS
    count = 0
    last_id = 0
    while True:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(batch)
        ).all()
        if not rows:
            break
        for row in rows:
            if row.prev_hash != prev:
                return ChainReport(False, count, row.id, "link to the previous event is broken "
                                   "(an event before it was deleted, inserted or reordered)")
            content = {
                "at": row.at,
                "actor_id": row.actor_id,
                "actor": row.actor,
                "action": row.action,
                "dossier_id": row.dossier_id,
                "dossier_code": row.dossier_code,
                "task_id": row.task_id,
                "data": row.data,
            }
            if event_hash(prev, content) != row.hash:
                return ChainReport(False, count, row.id, "content does not match its hash (edited)")
            prev = row.hash
            count += 1
            last_id = row.id
        session.expunge_all()
    head = session.get(Setting, HEAD_KEY)
    if head is not None:
        state = json.loads(head.value)
        if state["hash"] != prev or state["count"] != count:
            return ChainReport(False, count, last_id or None,
                               f"chain head says {state['count']} events ending at event {state['id']}: "
                               "events at the end were deleted")
    elif count:
        return ChainReport(False, count, None, "chain head record is missing")
    return ChainReport(True, count)
