"""Provider sandboxes' ledger: what a fake provider received, de-duplicated by idempotency key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine import clock
from engine.db import transaction
from engine.models import SandboxRecord


def record(
    factory: sessionmaker[Session],
    *,
    provider: str,
    key: str,
    recipient: str | None,
    payload: Mapping[str, Any],
) -> tuple[int, bool]:
    """Store a request as the provider would; a repeated key only counts one more attempt.

    Returns (record id, True when this key was new).
    """
    with transaction(factory) as session:
        return record_in(session, provider=provider, key=key, recipient=recipient, payload=payload)


def record_in(session: Session, *, provider: str, key: str, recipient: str | None,
              payload: Mapping[str, Any]) -> tuple[int, bool]:
    """As :func:`record`, inside the caller's transaction."""
    row = session.scalar(
        select(SandboxRecord)
        .where(SandboxRecord.provider == provider, SandboxRecord.idempotency_key == key)
        .with_for_update()
    )
    if row is not None:
        row.attempts += 1
        session.flush()
        return row.id, False
    row = SandboxRecord(
        provider=provider,
        idempotency_key=key,
        recipient=recipient,
        payload=dict(payload),
        created_at=clock.now(),
    )
    session.add(row)
    session.flush()
    return row.id, True


def records(session: Session, *, provider: str, recipient: str | None = None,
            key: str | None = None) -> list[SandboxRecord]:
    query = select(SandboxRecord).where(SandboxRecord.provider == provider)
    if recipient is not None:
        query = query.where(SandboxRecord.recipient == recipient)
    if key is not None:
        query = query.where(SandboxRecord.idempotency_key == key)
    return list(session.scalars(query.order_by(SandboxRecord.id)))
