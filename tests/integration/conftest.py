"""Integration fixtures: a fresh PostgreSQL database migrated with Alembic, RabbitMQ, Celery workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from backoffice.app import create_app
from engine.config import Settings
from engine.migrate import upgrade
from scripts.bench_live import stop_group
from tests.conftest import require_service

PG_SERVER = os.environ.get("MOTCUA_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
BROKER = os.environ.get("MOTCUA_TEST_BROKER", "amqp://guest:guest@127.0.0.1:5672//")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def pg_settings() -> Iterator[Settings]:
    """A fresh database on the machine's PostgreSQL, migrated to head, dropped at the end."""
    url = make_url(PG_SERVER)
    require_service("PostgreSQL", url.host or "127.0.0.1", url.port or 5432)
    name = f"motcua_it_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    settings = Settings.from_env({}, env="test", database_url=url.set(database=name).render_as_string(False))
    try:
        upgrade(settings)
        yield settings
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def broker_url() -> str:
    url = make_url(BROKER.replace("amqp://", "postgresql://", 1))  # only to parse host and port
    require_service("RabbitMQ", url.host or "127.0.0.1", url.port or 5672)
    return BROKER


class WorkerProcess:
    """A ``motcua worker -B`` process in its own process group (so SIGKILL takes its pool too)."""

    def __init__(self, env: dict[str, str], log: Path):
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        schedule = self.log.with_suffix(".schedule")
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - our own console script
                [sys.executable, "-m", "scripts.cli", "worker", "-B", "--concurrency=1", "--pool=prefork",
                 f"--schedule={schedule}", "--without-gossip", "--without-mingle"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL the worker and its pool children: a crash, no cleanup, no acknowledgement."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc, timeout=15)


class Consumer:
    """A long-running ``motcua …`` command (reply consumer, sandbox agencies) in its own process."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path):
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "scripts.cli", *args], cwd=ROOT, env=env,  # noqa: S603
                                         stdout=out, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


@pytest.fixture
def celery_settings(pg_settings: Settings, broker_url: str) -> Settings:
    return pg_settings.with_(worker="celery", broker_url=broker_url, queue=f"motcua_it_{uuid.uuid4().hex[:8]}",
                             worker_interval=1.0, service_timeout=5.0)


@pytest.fixture
def celery_app(celery_settings: Settings) -> Iterator[Flask]:
    """The web application configured like the Celery workers (same database, broker and queue)."""
    application = create_app(celery_settings)
    yield application
    application.extensions["motcua"].engine.dispose()


@pytest.fixture
def worker_factory(celery_settings: Settings, tmp_path: Path) -> Iterator[Callable[[], WorkerProcess]]:
    workers: list[WorkerProcess] = []
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MOTCUA_")},
        "MOTCUA_ENV": "test",
        "MOTCUA_DATABASE_URL": celery_settings.database_url,
        "MOTCUA_BROKER_URL": celery_settings.broker_url,
        "MOTCUA_WORKER": "celery",
        "MOTCUA_QUEUE": celery_settings.queue,
        "MOTCUA_WORKER_INTERVAL": str(celery_settings.worker_interval),
        "MOTCUA_SERVICE_TIMEOUT": str(celery_settings.service_timeout),
    }

    def make() -> WorkerProcess:
        worker = WorkerProcess(env, tmp_path / f"worker{len(workers)}.log")
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.stop()


def save_drill(name: str, facts: dict[str, Any]) -> None:
    """A drill's counts, for the closing notes: test-artifacts/drills/<name>.json."""
    folder = ROOT / "test-artifacts" / "drills"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(facts, indent=2) + "\n")


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll until ``condition()`` holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")
