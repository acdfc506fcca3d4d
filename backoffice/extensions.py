"""The objects one app instance owns: database engine, session factory, connectors, worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session, scoped_session, sessionmaker

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
    # One session per application context (request), shared by the views and Flask-Admin: with
    # SQLite a second session would wait on the first one's write lock.
    scoped: scoped_session[Session] = field(init=False)

    def __post_init__(self) -> None:
        self.scoped = scoped_session(self.factory, scopefunc=lambda: id(g._get_current_object()))

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.settings.service_timeout)


def motcua(app: Flask | None = None) -> Motcua:
    ext: Motcua = (app or current_app).extensions["motcua"]
    return ext


def db() -> Session:
    """The request's session; the view commits, teardown closes (and rolls back what was not)."""
    return motcua().scoped()


def close_db(_exc: BaseException | None = None) -> None:
    motcua().scoped.remove()
