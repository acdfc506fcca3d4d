"""Benchmarks with live processes: Celery workers firing deadline timers, gunicorn serving the API.

Both run on a scratch PostgreSQL database (dropped afterwards) filled by the realistic generator
(:mod:`scripts.seedgen`): the cases are copies of cases the engine ran, so a timer that fires or a
task that is completed goes through the whole engine, not a shortcut.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from engine import clock, jobs
from engine.config import Settings, child_environment
from engine.db import make_engine, make_session_factory, transaction
from engine.models import AuditEvent, Timer
from scripts.bench import _analyze, _percentiles, scratch_database

ROOT = Path(__file__).resolve().parents[1]
TIMER_GOAL_S = 5.0
LOCAL_BROKER = "amqp://guest:guest@127.0.0.1:5672//"  # when MOTCUA_BROKER_URL is not set


@contextmanager
def _province(settings: Settings, *, cases: int, seed: int, stage: Callable[[int], str] | None = None,
              deadlines: Any = None) -> Iterator[tuple[Settings, Engine, sessionmaker[Session], dict[str, Any]]]:
    """A scratch PostgreSQL database with the demo seed and ``cases`` generated cases, analysed."""
    from connectors import build_registry
    from engine.migrate import upgrade
    from scripts.seed import seed_demo
    from scripts.seedgen import build_templates, generate

    if make_url(settings.database_url).get_backend_name() != "postgresql":
        raise ValueError("this benchmark runs workers against PostgreSQL: pass --database-url postgresql+psycopg://…")
    with scratch_database(settings.with_(env="test", sandbox=True)) as scratch:
        upgrade(scratch)
        engine = make_engine(scratch)
        factory = make_session_factory(engine)
        registry = build_registry(scratch, factory)
        try:
            mark = time.perf_counter()
            seed_demo(factory, registry, lease=timedelta(seconds=30))
            templates = build_templates(factory, registry)
            load: dict[str, Any] = {"seed_and_templates_s": round(time.perf_counter() - mark, 1)}
            load["generated"] = generate(engine, factory, templates, cases=cases, seed=seed, stage=stage,
                                         deadlines=deadlines)
            mark = time.perf_counter()
            _analyze(engine)
            load["analyze_s"] = round(time.perf_counter() - mark, 1)
            yield scratch, engine, factory, load
        finally:
            engine.dispose()


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    return child_environment({
        "MOTCUA_ENV": "test", "MOTCUA_DATABASE_URL": settings.database_url,
        "MOTCUA_BROKER_URL": settings.broker_url, "MOTCUA_WORKER": "celery", "MOTCUA_QUEUE": settings.queue,
        "MOTCUA_SANDBOX": "1", **extra})


class _Process:
    """A child process in its own process group, stopped with SIGTERM (SIGKILL if it lingers)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path):
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,  # noqa: S603
                                         start_new_session=True)

    def stop(self) -> None:
        stop_group(self.proc)


def stop_group(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM a child's process group, SIGKILL what is left of it after ``timeout`` seconds (also
    the children of a leader that died first)."""
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=timeout)
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=5)


def _delete_queue(settings: Settings) -> None:
    import pika

    from backoffice.celery_app import timer_queue
    from connectors.interagency import pika_url

    connection = pika.BlockingConnection(pika.URLParameters(pika_url(settings.broker_url)))
    try:
        channel = connection.channel()
        for queue in (settings.queue, timer_queue(settings.queue)):
            channel.queue_delete(queue)
    finally:
        connection.close()


# --- timers ---------------------------------------------------------------------------------------

def _timer_schedule(t0: datetime, *, burst: int, spread: int, spread_s: float,
                    rng_seed: int) -> Callable[[int, datetime, datetime], tuple[datetime, datetime]]:
    """Deadlines of the generated cases: the first ``burst`` cases are warned at ``t0`` (legal
    deadlines fall at the same 17:00), the next ``spread`` over ``spread_s`` seconds after it; every
    other case waits for its warning and its deadline on the working days after the run."""
    import random

    rng = random.Random(rng_seed)  # noqa: S311 - made-up deadlines

    def deadlines(k: int, _received: datetime, _due: datetime) -> tuple[datetime, datetime]:
        if k < burst:
            warning = t0
        elif k < burst + spread:
            warning = t0 + timedelta(seconds=spread_s * (k - burst + 1) / spread)
        else:
            warning = (t0 + timedelta(days=rng.randint(1, 30))).replace(hour=10, minute=0, second=0, microsecond=0)
        return warning + timedelta(days=1, hours=rng.uniform(0, 6)), warning

    return deadlines


def _fired(factory: sessionmaker[Session], since_id: int, first_dossier: int) -> list[tuple[str, float]]:
    """(due moment, lateness) of the generated cases' timers fired since the run began."""
    with transaction(factory) as session:
        rows = session.execute(select(AuditEvent.data).where(
            AuditEvent.id > since_id, AuditEvent.action == "timer_fired",
            AuditEvent.dossier_id >= first_dossier)).scalars()
        return [(str(d.get("due_at")), float(d["late_seconds"])) for d in rows]


def _wait_ready(worker: _Process, timeout: float = 90.0) -> None:
    """Until the Celery worker says it is ready (its log), so its start-up is not counted as lateness."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.proc.poll() is not None:
            raise RuntimeError(f"the worker exited; log:\n{worker.log.read_text(errors='replace')[-2000:]}")
        if " ready." in worker.log.read_text(errors="replace"):
            return
        time.sleep(0.5)
    raise RuntimeError("the worker did not start")


def _lateness(samples: list[float]) -> dict[str, float]:
    """min, p50, p95, p99, max and mean of lateness samples, in seconds."""
    if not samples:
        return {}
    return {"min": round(min(samples), 3),
            **{k: round(v / 1000, 3) for k, v in _percentiles(samples).items()}}  # _percentiles gives ms


def run_timers_bench(settings: Settings, *, timers: int = 100_000, burst: int = 1_000, spread: int = 2_000,
                     spread_s: float = 120.0, concurrency: int = 2, seed: int = 20261202) -> dict[str, Any]:
    """``timers`` waiting deadline timers (two per open case); ``burst`` of them due at the same
    moment and ``spread`` over the next ``spread_s`` seconds; a Celery worker with beat fires them.
    Lateness = the project clock when the timer fired minus its due moment (the ``late_seconds`` of
    each ``timer_fired`` audit event)."""
    cases = timers // 2
    window = burst + spread
    if not 0 < window <= cases:
        raise ValueError("burst + spread must be at least 1 and at most the cases (timers / 2)")
    lead = timedelta(hours=2)  # the generated deadlines start this long after the load began
    t0 = (clock.now() + lead).replace(microsecond=0)
    open_stages = ("receive", "work", "work", "approve", "hand_back")
    settings = settings.with_(queue=f"motcua_bench_{uuid.uuid4().hex[:8]}", worker="celery",
                              broker_url=settings.broker_url or LOCAL_BROKER)
    with _province(settings, cases=cases, seed=seed, stage=lambda k: open_stages[k % len(open_stages)],
                   deadlines=_timer_schedule(t0, burst=burst, spread=spread, spread_s=spread_s,
                                             rng_seed=seed)) as (scratch, _engine, factory, load):
        first = load["generated"]["first_dossier_id"]
        with transaction(factory) as session:
            waiting = session.scalar(select(func.count()).select_from(Timer)) or 0
            generated = select(func.count()).select_from(Timer).where(Timer.dossier_id >= first)
            in_window = session.scalar(generated.where(Timer.run_at <= t0 + timedelta(seconds=spread_s))) or 0
            at_t0 = session.scalar(generated.where(Timer.run_at == t0)) or 0
            of_generated = session.scalar(generated) or 0
            last_event = session.scalar(select(func.max(AuditEvent.id))) or 0
        with tempfile.TemporaryDirectory() as tmp, ExitStack() as cleanup:
            cleanup.callback(_delete_queue, scratch)
            cleanup.callback(clock.reset)
            worker = _Process([sys.executable, "-m", "scripts.cli", "worker", "-B", f"--concurrency={concurrency}",
                               "--pool=prefork", f"--schedule={Path(tmp) / 'beat'}", "--without-gossip",
                               "--without-mingle"], _env(scratch), Path(tmp) / "worker.log")
            cleanup.callback(worker.stop)
            _wait_ready(worker)
            # The shared test clock: the worker's "now" is 10 s before the burst from here on.
            clock.set_offset(t0 - timedelta(seconds=10) - datetime.now(UTC))
            jobs.share_clock_offset(factory)
            started = time.monotonic()
            deadline = started + 10 + spread_s + 600
            fired: list[tuple[str, float]] = []
            while time.monotonic() < deadline and worker.proc.poll() is None:
                time.sleep(2)
                fired = _fired(factory, last_event, first)
                if len(fired) >= in_window:
                    break
            elapsed = time.monotonic() - started
            log_tail = worker.log.read_text(errors="replace")[-2000:]
        lateness = [late for _due, late in fired]
        burst_late = [late for due, late in fired if datetime.fromisoformat(due) == t0]
        spread_late = [late for due, late in fired if datetime.fromisoformat(due) != t0]
    if len(fired) < in_window:
        raise RuntimeError(f"only {len(fired)} of {in_window} timers fired in {elapsed:.0f} s; worker log:\n{log_tail}")
    p99 = _lateness(lateness)["p99"]
    return {
        "benchmark": "timers",
        "database": "postgresql",
        "waiting_timers": waiting,
        "waiting_timers_of_generated_cases": of_generated,
        "open_cases": cases,
        "due_during_run": in_window,
        "burst": {"timers": at_t0, "fired": len(burst_late), "due_at": t0.isoformat()},
        "spread": {"timers": in_window - at_t0, "fired": len(spread_late), "over_s": spread_s},
        "worker": {"processes": concurrency, "beat_interval_s": scratch.worker_interval,
                   "sweep_budget_s": jobs.TIMER_SWEEP_SECONDS},
        "fired": len(fired),
        "lateness_s": _lateness(lateness),
        "burst_lateness_s": _lateness(burst_late),
        "spread_lateness_s": _lateness(spread_late),
        "burst_drained_in_s": round(max(burst_late), 1) if burst_late else None,
        "burst_fired_per_s": round(len(burst_late) / max(max(burst_late) - min(burst_late), 1e-3), 1)
        if len(burst_late) > 1 else None,
        "goals": {"lateness_p99_s": TIMER_GOAL_S, "measured_p99_s": p99, "ok": p99 <= TIMER_GOAL_S},
        "load": load,
        "note": "lateness is measured on the project clock shared with the worker (test mode), which runs at "
                "real speed from 10 s before the burst, once the worker is ready; each fired warning also "
                "queues the officers' SMS/e-mail, run by the same worker",
    }


# --- lifecycle: task completions through the HTTP API -------------------------------------------

LIFECYCLE_GOAL_PER_S = 200.0
LIFECYCLE_GOAL_P95_MS = 100.0
LIFECYCLE_STAGES = ("receive", "work", "work", "approve", "hand_back")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _step_data(factory: sessionmaker[Session], dossier_id: int, task: Any) -> dict[str, Any]:
    """What an officer submits for the open task: the procedure example's data for work steps."""
    from engine import catalogue
    from engine.models import Dossier

    if task.spec_name == "receive":
        return {"decision": "accept"}
    if task.spec_name == "approve":
        return {"decision": "approve"}
    with transaction(factory) as session:
        dossier = session.get(Dossier, dossier_id)
        assert dossier is not None
        if task.spec_name == "hand_back":
            return {"decision": "delivered", "fee_collected": int(dossier.terms.get("fee_due") or 0),
                    "receiver_name": "Phạm Thị Dung"}
        example = catalogue.load_definition(catalogue.default_processes_dir() / dossier.procedure.code).data
    for step in (example.get("example") or {}).get("work", []):
        if step.get("task") == task.spec_name:
            return dict(step["data"])
    raise AssertionError(f"no example data for {task.spec_name}")


def _work_items(factory: sessionmaker[Session], first: int, app: Any) -> list[dict[str, Any]]:
    """One completion per generated case: its ready user task, the data, the token of the unit's
    officer of the task's role (the assignee when the task is claimed)."""
    from backoffice.auth import issue_token
    from engine.models import Dossier, Task, TaskState, User, UserRole

    items = []
    tokens: dict[int, str] = {}
    data_of: dict[tuple[int, str], dict[str, Any]] = {}
    with transaction(factory) as session:
        officers = {(unit_id, role): user_id for user_id, unit_id, role in session.execute(
            select(User.id, User.unit_id, UserRole.role).join(UserRole, UserRole.user_id == User.id)
            .where(User.unit_id.is_not(None)))}
        tasks = session.execute(select(Task, Dossier.procedure_id).join(Dossier, Dossier.id == Task.dossier_id)
                                .where(Task.dossier_id >= first, Task.kind == "user",
                                       Task.state == TaskState.READY.value).order_by(Task.dossier_id)).all()
        users = {u.id: u for u in session.scalars(select(User))}
        with app.app_context():
            for task, procedure in tasks:
                user_id = task.assignee_id or officers[(task.unit_id, task.role)]
                if user_id not in tokens:
                    tokens[user_id] = issue_token(users[user_id])
                key = (procedure, task.spec_name)
                if key not in data_of:
                    data_of[key] = _step_data(factory, task.dossier_id, task)
                items.append({"dossier_id": task.dossier_id, "task": task.id, "user_id": user_id,
                              "token": tokens[user_id], "data": data_of[key]})
    return items


def _api_load(port: int, items: list[dict[str, Any]], *, clients: int) -> tuple[list[float], dict[int, int], float]:
    """POST every completion with ``clients`` concurrent connections; (latencies, statuses, seconds)."""
    import http.client
    import json
    import threading
    from collections import Counter

    queue = list(reversed(items))
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: Counter[int] = Counter()

    def run() -> None:
        while True:
            with lock:
                if not queue:
                    return
                item = queue.pop()
            body = json.dumps({"data": item["data"]}).encode()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            start = time.perf_counter()
            try:
                connection.request("POST", f"/api/v1/tasks/{item['task']}/complete", body=body,
                                   headers={"Authorization": f"Bearer {item['token']}",
                                            "Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                status = response.status
            except OSError:  # reset, timeout: counted as status 0, the client goes on
                status = 0
            finally:
                connection.close()
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                statuses[status] += 1

    threads = [threading.Thread(target=run) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, dict(statuses), time.perf_counter() - started


def _raw_load(factory: sessionmaker[Session], items: list[dict[str, Any]]) -> dict[str, Any]:
    """The same completions through the case service in this process, one after another."""
    from engine import services
    from engine.models import User

    with transaction(factory) as session:
        actors = {}
        for user in session.scalars(select(User).where(User.unit_id.is_not(None))):
            actors[user.id] = services.Actor.of(user)
    samples = []
    started = time.perf_counter()
    for item in items:
        mark = time.perf_counter()
        with transaction(factory) as session:
            services.complete_task(session, item["task"], actor=actors[item["user_id"]], data=item["data"])
        samples.append(time.perf_counter() - mark)
    seconds = time.perf_counter() - started
    return {"completions": len(items), "seconds": round(seconds, 1),
            "completions_per_s": round(len(items) / seconds, 1), "latency_ms": _percentiles(samples)}


def _wait_http(port: int, proc: _Process, timeout: float = 60.0) -> None:
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited; log:\n{proc.log.read_text(errors='replace')[-2000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/api/v1/units")
            if connection.getresponse().status == 200:
                connection.close()
                return
            connection.close()
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError("gunicorn did not answer")


def run_lifecycle_bench(settings: Settings, *, completions: int = 3_000, raw: int = 1_000, web_workers: int = 2,
                        clients: int = 8, seed: int = 20261203) -> dict[str, Any]:
    """Task completions per second through the HTTP API (gunicorn, ``web_workers`` processes, on
    PostgreSQL), p50/p95/p99, and the same kind of completions through the case service in this
    process. Each generated case waits at one step (receipt, work, approval, hand-back) and gets one
    completion by its unit's officer of that role; what follows a completion (the next task, the
    service calls queued for the Celery worker) is written in the same transaction."""
    import secrets

    from backoffice.app import create_app

    settings = settings.with_(queue=f"motcua_bench_{uuid.uuid4().hex[:8]}", worker="celery",
                              broker_url=settings.broker_url or LOCAL_BROKER)
    total = completions + raw
    with _province(settings, cases=total, seed=seed,
                   stage=lambda k: LIFECYCLE_STAGES[k % len(LIFECYCLE_STAGES)]) as (scratch, _engine, factory, load):
        secret = secrets.token_hex(32)
        web = scratch.with_(env="development", secret_key=secret)
        app = create_app(web)
        try:
            items = _work_items(factory, load["generated"]["first_dossier_id"], app)
        finally:
            app.extensions["motcua"].engine.dispose()
        random.Random(seed).shuffle(items)  # noqa: S311 - an order of work
        api_items, raw_items = items[:completions], items[completions:total]
        port = _free_port()
        with tempfile.TemporaryDirectory() as tmp, ExitStack() as cleanup:
            cleanup.callback(_delete_queue, scratch)  # the service calls the completions queued
            env = _env(web, MOTCUA_ENV="development", MOTCUA_SECRET_KEY=secret)
            server = _Process([sys.executable, "-m", "gunicorn", f"--workers={web_workers}",
                               f"--bind=127.0.0.1:{port}", "backoffice.app:app_factory()"], env, Path(tmp) / "web.log")
            cleanup.callback(server.stop)
            _wait_http(port, server)
            latencies, statuses, seconds = _api_load(port, api_items, clients=clients)
            log_tail = server.log.read_text(errors="replace")[-1500:]
        engine_run = _raw_load(factory, raw_items)
        with transaction(factory) as session:
            from engine.audit import verify_chain

            chain = verify_chain(session)
    ok = statuses.get(200, 0)
    if ok < len(api_items) * 0.99:
        raise RuntimeError(f"completions answered {statuses}; gunicorn log:\n{log_tail}")
    api = {"completions": len(api_items), "statuses": {str(k): v for k, v in sorted(statuses.items())},
           "seconds": round(seconds, 1), "completions_per_s": round(ok / seconds, 1),
           "latency_ms": _percentiles(latencies)}
    return {
        "benchmark": "lifecycle",
        "database": "postgresql",
        "web": {"server": "gunicorn", "workers": web_workers, "concurrent_clients": clients},
        "api": api,
        "engine_in_process": engine_run,
        "api_concurrent_vs_engine_one_thread": round(api["completions_per_s"] / engine_run["completions_per_s"], 2),
        "audit_chain": {"ok": chain.ok, "events": chain.events},
        "goals": {"completions_per_s": LIFECYCLE_GOAL_PER_S, "measured_per_s": api["completions_per_s"],
                  "throughput_ok": api["completions_per_s"] >= LIFECYCLE_GOAL_PER_S,
                  "p95_ms": LIFECYCLE_GOAL_P95_MS, "measured_p95_ms": api["latency_ms"]["p95"],
                  "latency_ok": api["latency_ms"]["p95"] <= LIFECYCLE_GOAL_P95_MS},
        "load": load,
        "note": "the client runs on the same 2 cores as gunicorn and PostgreSQL; one completion per case, "
                "spread over receipt, work, approval and hand-back steps of all procedures",
    }
