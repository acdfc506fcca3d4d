"""Result documents: the signing step of the lifecycle (``documents.sign_result``).

The result document of the dossier's procedure (or, when the leader refused, the refusal letter)
is rendered to PDF, signed as PAdES by the leader who approved, with a visible signature block, and
kept; its hash goes into the audit chain. Keyed by the service task id: a retried call signs once.
Outside production a leader without a certificate gets one from the demo authority.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.registry import ConnectorRegistry
from engine import documents, paperwork, signing
from engine.config import Settings
from engine.db import transaction
from engine.models import Dossier
from engine.services import PermanentServiceError

KINDS = ("result", "refusal")


def register(registry: ConnectorRegistry, factory: sessionmaker[Session], settings: Settings) -> None:
    def sign_result(params: Mapping[str, Any], key: str) -> dict[str, Any]:
        code, kind = str(params.get("dossier_code") or ""), str(params.get("kind") or "result")
        if kind not in KINDS:
            raise PermanentServiceError(f"unknown document kind {kind!r}")
        with transaction(factory) as session:
            dossier = session.scalar(select(Dossier).where(Dossier.code == code))
            if dossier is None:
                raise PermanentServiceError(f"no dossier {code!r}")
            try:
                signed = paperwork.issue_signed(session, dossier, kind=kind, key=key, secret_key=settings.secret_key,
                                                verify_url=paperwork.verify_url(settings.public_url, code),
                                                issue_missing_certificate=settings.env != "production")
            except (paperwork.PaperworkError, documents.DocumentError, signing.SigningError) as exc:
                raise PermanentServiceError(str(exc)) from exc
        return {"document": signed.document_id, "sha256": signed.sha256, "duplicate": not signed.new}

    registry.register("documents.sign_result", sign_result,
                      description="Sign the result digitally",
                      required=("dossier_code",), optional=("kind",))
