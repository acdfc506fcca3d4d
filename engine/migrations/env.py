"""Alembic environment: runs motcua's migrations on SQLite or PostgreSQL.

Entry points: ``engine.migrate`` (builds the Config in code, passes the Settings and optionally
an open connection in ``config.attributes``) and the ``alembic`` command line with the repository's
``alembic.ini`` (no URL there: it comes from ``Settings.from_env()``, i.e. ``MOTCUA_DATABASE_URL``).
"""

from __future__ import annotations

from collections.abc import Callable
from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from alembic.util import CommandError
from sqlalchemy import Connection, DefaultClause, make_url
from sqlalchemy.sql import functions as sa_functions

from engine.config import Settings
from engine.db import make_engine
from engine.models import Base, UTCDateTime

config = context.config

if config.config_file_name is not None:
    # Command-line use only: the logging sections of alembic.ini. Keep the application's loggers.
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _settings() -> Settings:
    """The Settings given by ``engine.migrate``, else from the environment (URL from the ini if set)."""
    settings = config.attributes.get("settings")
    if isinstance(settings, Settings):
        return settings
    url = config.get_main_option("sqlalchemy.url")
    return Settings.from_env(database_url=url) if url else Settings.from_env()


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render what autogenerate would render non-portably.

    UTCDateTime becomes its plain column type, so migrations never import engine.models: a
    migration must keep working after the models change, and the UTC conversion is Python-side
    only (nothing in the database).
    """
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if type_ == "server_default" and isinstance(obj, DefaultClause) and isinstance(obj.arg, sa_functions.now):
        # Otherwise rendered as the generating database's SQL: now() on PostgreSQL, which SQLite
        # lacks; (CURRENT_TIMESTAMP) on SQLite. func.now() compiles right on each backend.
        return "sa.func.now()"
    return False


def _options(dialect_name: str) -> dict[str, Any]:
    return {
        "target_metadata": Base.metadata,
        # Always batch, not only on SQLite: the same migration file runs on both backends, and
        # batch_alter_table is a plain ALTER on PostgreSQL.
        "render_as_batch": True,
        "render_item": render_item,
        "compare_type": True,
        # make_engine turns pysqlite's implicit transactions off and emits BEGIN IMMEDIATE itself,
        # so DDL is transactional on SQLite too: a failed upgrade leaves no half-built schema.
        "transactional_ddl": True if dialect_name == "sqlite" else None,
    }


def _run(connection: Connection, before_commit: Callable[[Connection], None] | None = None) -> None:
    context.configure(connection=connection, **_options(connection.dialect.name))
    # When the caller's connection is already in a transaction, this is a no-op and the caller
    # commits or rolls back (tests do the latter).
    with context.begin_transaction():
        context.run_migrations()
        if before_commit is not None:
            before_commit(connection)


def _check_sqlite_foreign_keys(connection: Connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise CommandError(f"migration leaves rows with broken foreign keys (table, rowid, parent): {broken}")


def _run_sqlite(connection: Connection) -> None:
    """Run with foreign keys unenforced, then check them before commit.

    Batch operations recreate a table (copy, drop, rename); with enforcement on (make_engine
    turns it on), dropping a referenced table would fail or cascade-delete the children. The
    PRAGMA is ignored inside a transaction, so it goes straight to the driver connection before
    the first BEGIN IMMEDIATE.
    """
    driver_connection = connection.connection.driver_connection
    assert driver_connection is not None
    driver_connection.execute("PRAGMA foreign_keys=OFF")
    try:
        _run(connection, before_commit=_check_sqlite_foreign_keys)
    finally:
        driver_connection.execute("PRAGMA foreign_keys=ON")


def run_migrations_offline() -> None:
    """``alembic upgrade --sql``: print the SQL instead of running it."""
    url = make_url(_settings().database_url)
    context.configure(url=url, literal_binds=True, **_options(url.get_backend_name()))
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    given = config.attributes.get("connection")
    if given is not None:
        # The caller owns this connection: its transaction, and on SQLite its PRAGMAs.
        _run(given)
        return
    db_engine = make_engine(_settings())
    try:
        with db_engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                _run_sqlite(connection)
            else:
                _run(connection)
    finally:
        db_engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
