"""Migrations (STYLE 11): one head, named and reversible, upgrade-from-empty equals the models."""

from __future__ import annotations

import importlib.util
import os
import re
import secrets
import shutil
import socket
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import create_engine, inspect, text

from engine import migrate
from engine.config import Settings
from engine.db import make_engine
from engine.models import Base

REPO_ROOT = Path(__file__).resolve().parents[2]
POSTGRES_HOST, POSTGRES_PORT = "127.0.0.1", 5432
POSTGRES_SERVER = f"postgresql+psycopg://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}"


def settings_for(url: str) -> Settings:
    return Settings.from_env({}, database_url=url, env="test")


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(migrate.alembic_config(settings_for("sqlite://")))


def head() -> str:
    heads = script_directory().get_heads()
    assert len(heads) == 1, heads
    return heads[0]


def schema_diff(settings: Settings) -> list[Any]:
    """What autogenerate would still find between the migrated database and the models."""
    db_engine = make_engine(settings)
    try:
        with db_engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        db_engine.dispose()


def table_names(settings: Settings) -> set[str]:
    db_engine = make_engine(settings)
    try:
        with db_engine.connect() as connection:
            return set(inspect(connection).get_table_names())
    finally:
        db_engine.dispose()


def assert_upgrade_downgrade_upgrade(settings: Settings) -> None:
    migrate.upgrade(settings)
    assert migrate.current(settings) == head()
    assert schema_diff(settings) == []

    migrate.downgrade(settings, "base")
    assert migrate.current(settings) is None
    assert table_names(settings) == {"alembic_version"}

    migrate.upgrade(settings)
    assert migrate.current(settings) == head()
    assert schema_diff(settings) == []


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return settings_for(f"sqlite:///{tmp_path / 'motcua.db'}")


def test_there_is_exactly_one_head() -> None:
    assert len(script_directory().get_heads()) == 1


def test_every_migration_is_named_and_reversible() -> None:
    revisions = list(script_directory().walk_revisions())
    assert revisions
    for revision in revisions:
        path = Path(revision.path)
        assert re.fullmatch(r"\d{8}_[a-z0-9_]+\.py", path.name), path.name
        assert (revision.doc or "").strip(), f"{path.name} has no message"
        spec = importlib.util.spec_from_file_location(f"_migration_{revision.revision}", path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert callable(module.upgrade)
        assert callable(module.downgrade)
        # Migrations stay valid when the models change: they never import them.
        assert "engine.models" not in path.read_text(encoding="utf-8"), path.name


def test_alembic_ini_matches_the_code_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # %(here)s makes the ini independent of the working directory
    ini = Config(str(REPO_ROOT / "alembic.ini"))
    code = migrate.alembic_config(settings_for("sqlite://"))
    assert Path(ScriptDirectory.from_config(ini).dir).resolve() == migrate.MIGRATIONS_DIR
    assert ini.get_main_option("file_template") == code.get_main_option("file_template")
    assert code.get_main_option("file_template") == "%(year)d%(month).2d%(day).2d_%(slug)s"
    assert ini.get_main_option("sqlalchemy.url") is None  # the URL comes from Settings


def test_upgrade_from_empty_sqlite_matches_models(
    sqlite_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no alembic.ini in sight: the configuration is built in code
    assert migrate.current(sqlite_settings) is None

    migrate.upgrade(sqlite_settings)

    assert migrate.current(sqlite_settings) == head()
    assert schema_diff(sqlite_settings) == []


def test_sqlite_downgrade_to_base_then_upgrade_again(sqlite_settings: Settings) -> None:
    assert_upgrade_downgrade_upgrade(sqlite_settings)


def test_sqlite_foreign_keys_enforced_again_after_migrating(sqlite_settings: Settings) -> None:
    migrate.upgrade(sqlite_settings)
    db_engine = make_engine(sqlite_settings)
    try:
        with db_engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        db_engine.dispose()


def test_migrations_run_inside_a_given_connection_and_roll_back(sqlite_settings: Settings) -> None:
    """A test can migrate in its own transaction: make_engine's BEGIN IMMEDIATE makes SQLite DDL
    transactional, so rolling back removes the schema again."""
    db_engine = make_engine(sqlite_settings)
    try:
        with db_engine.connect() as connection:
            transaction = connection.begin()
            migrate.upgrade(sqlite_settings, connection=connection)
            assert {"dossier", "task", "alembic_version"} <= set(inspect(connection).get_table_names())
            assert migrate.current(sqlite_settings, connection=connection) == head()
            transaction.rollback()
            assert inspect(connection).get_table_names() == []
    finally:
        db_engine.dispose()


def config_with_extra_migration(settings: Settings, tmp_path: Path, upgrade_body: str) -> Config:
    """A copy of the scripts with one more migration after head, for testing env.py itself."""
    scripts = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "29991231_test_only.py").write_text(
        f'''"""test only"""

import sqlalchemy as sa
from alembic import op

revision = "test_only"
down_revision = {head()!r}


def upgrade() -> None:
{textwrap.indent(upgrade_body, "    ")}


def downgrade() -> None:
    pass
''',
        encoding="utf-8",
    )
    config = migrate.alembic_config(settings)
    config.set_main_option("script_location", str(scripts))
    return config


PARENT_AND_CHILD = """\
op.create_table("t_parent", sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String(10)))
op.create_table(
    "t_child",
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("t_parent.id", ondelete="CASCADE")),
)
op.execute("INSERT INTO t_parent (id, name) VALUES (1, 'a')")
"""


def test_sqlite_batch_recreate_keeps_referencing_rows(sqlite_settings: Settings, tmp_path: Path) -> None:
    """Recreating a referenced table drops it; with foreign keys enforced that would cascade."""
    body = PARENT_AND_CHILD + textwrap.dedent("""\
        op.execute("INSERT INTO t_child (id, parent_id) VALUES (1, 1)")
        with op.batch_alter_table("t_parent", recreate="always") as batch_op:
            batch_op.alter_column("name", type_=sa.String(20))
        """)
    command.upgrade(config_with_extra_migration(sqlite_settings, tmp_path, body), "head")

    db_engine = make_engine(sqlite_settings)
    try:
        with db_engine.connect() as connection:
            assert connection.execute(text("SELECT parent_id FROM t_child")).scalars().all() == [1]
    finally:
        db_engine.dispose()


def test_sqlite_upgrade_leaving_broken_foreign_keys_rolls_back(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    body = PARENT_AND_CHILD + 'op.execute("INSERT INTO t_child (id, parent_id) VALUES (1, 99)")\n'
    config = config_with_extra_migration(sqlite_settings, tmp_path, body)

    with pytest.raises(CommandError, match="broken foreign keys"):
        command.upgrade(config, "head")

    # One transaction for the whole upgrade: not even the initial schema remains.
    assert migrate.current(sqlite_settings) is None
    assert table_names(sqlite_settings) == set()


def _postgres_reachable() -> bool:
    try:
        with socket.create_connection((POSTGRES_HOST, POSTGRES_PORT), timeout=3):
            return True
    except OSError:
        return False


@pytest.fixture
def postgres_settings() -> Iterator[Settings]:
    """A fresh PostgreSQL database, dropped afterwards."""
    if not _postgres_reachable():
        message = f"PostgreSQL unreachable at {POSTGRES_HOST}:{POSTGRES_PORT}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI=true: PostgreSQL is required)")
        pytest.skip(message)
    name = f"motcua_mig_{secrets.token_hex(6)}"
    server = create_engine(f"{POSTGRES_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield settings_for(f"{POSTGRES_SERVER}/{name}")
        finally:
            with server.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        server.dispose()


@pytest.mark.integration
def test_postgres_upgrade_from_empty_matches_models_and_round_trips(postgres_settings: Settings) -> None:
    assert migrate.current(postgres_settings) is None
    assert_upgrade_downgrade_upgrade(postgres_settings)
