"""Database engines and sessions. The caller (request, job, CLI command) owns the transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from engine.config import Settings


def make_engine(settings: Settings, **kwargs: Any) -> Engine:
    """Create the SQLAlchemy engine for the configured URL, with per-backend tuning.

    SQL parameters never reach the logs (MOTCUA_SQL_ECHO, a DEBUG logger) nor the text of database
    errors: they carry SMS codes, second-factor secrets and personal data.
    """
    url = settings.database_url
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        engine = create_engine(
            url, echo=settings.sql_echo, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 5)
    kwargs.setdefault("max_overflow", 10)
    return create_engine(url, echo=settings.sql_echo, **kwargs)


def _ensure_sqlite_dir(url: str) -> None:
    from pathlib import Path

    path = url.split("///", 1)[-1]
    if path and path != ":memory:" and not path.startswith("file:"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: Engine) -> None:
    """WAL, foreign keys, and BEGIN IMMEDIATE so that writers queue instead of failing.

    pysqlite starts transactions lazily and a read that later writes cannot upgrade its lock
    ("database is locked"); taking the write lock at BEGIN serializes writers, which is what the
    row locks (SELECT … FOR UPDATE) give on PostgreSQL.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
