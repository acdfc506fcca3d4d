"""The objects one app instance owns: database engine, session factory, connectors, worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from connectors.registry import ConnectorRegistry
from engine.config import Settings
from engine.jobs import EmbeddedWorker


@dataclass
class Motcua:
    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    registry: ConnectorRegistry
    worker: EmbeddedWorker | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.settings.service_timeout)


def motcua(app: Flask | None = None) -> Motcua:
    ext: Motcua = (app or current_app).extensions["motcua"]
    return ext


def db() -> Session:
    """The request's session; the view commits, teardown closes (and rolls back what was not)."""
    if "db" not in g:
        g.db = motcua().factory()
    session: Session = g.db
    return session


def close_db(_exc: BaseException | None = None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()
