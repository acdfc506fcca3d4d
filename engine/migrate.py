"""Database migrations with Alembic, configured in code.

No alembic.ini is read at run time: the scripts in ``engine/migrations`` ship as package data and
are found from this module's path, so this works from an installed package and from any working
directory. (The repository's ``alembic.ini`` is only for ``alembic revision --autogenerate``.)
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection

from engine.config import Settings
from engine.db import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Named migrations, e.g. 20250131_add_dossier_channel.py; the same template as alembic.ini.
# "%%" because Config options go through ConfigParser interpolation.
FILE_TEMPLATE = "%%(year)d%%(month).2d%%(day).2d_%%(slug)s"


def _escape(value: str) -> str:
    return value.replace("%", "%%")


def alembic_config(settings: Settings, *, connection: Connection | None = None) -> Config:
    """An Alembic Config for these settings; with ``connection``, migrations run inside it.

    A given connection is the caller's: if it is in a transaction, the caller commits or rolls
    back (tests roll back); the caller also owns its PRAGMAs on SQLite.
    """
    config = Config()
    config.set_main_option("script_location", _escape(str(MIGRATIONS_DIR)))
    config.set_main_option("file_template", FILE_TEMPLATE)
    # Informational (and for --sql); env.py uses the Settings object itself.
    config.set_main_option("sqlalchemy.url", _escape(settings.database_url))
    config.attributes["settings"] = settings
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(settings: Settings, revision: str = "head", *, connection: Connection | None = None) -> None:
    """Upgrade the database to ``revision`` (default: the latest)."""
    command.upgrade(alembic_config(settings, connection=connection), revision)


def downgrade(settings: Settings, revision: str, *, connection: Connection | None = None) -> None:
    """Downgrade the database to ``revision`` ("base" empties it; "-1" goes one step back)."""
    command.downgrade(alembic_config(settings, connection=connection), revision)


def current(settings: Settings, *, connection: Connection | None = None) -> str | None:
    """The revision the database is at; None when it was never migrated."""
    if connection is not None:
        return MigrationContext.configure(connection).get_current_revision()
    db_engine = make_engine(settings)
    try:
        with db_engine.connect() as own_connection:
            return MigrationContext.configure(own_connection).get_current_revision()
    finally:
        db_engine.dispose()
