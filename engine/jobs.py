"""Background work shared by the embedded worker thread and Celery: due timers and service calls.

Each function owns its transactions (one per unit of work) and is safe to run in several
processes at once. Service calls are idempotent by Spiff task id: the id is the idempotency key
sent to the provider, and the task is completed once whatever the number of attempts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from engine import clock, services
from engine.db import transaction
from engine.models import Setting
from engine.services import PermanentServiceError, ServiceHandler

log = logging.getLogger(__name__)

Dispatcher = Callable[[Iterable[str]], None]
# How long one pass fires timers before it lets the worker do other work (the next pass goes on).
TIMER_SWEEP_SECONDS = 10.0
_DISPATCH_KEY = "motcua_dispatch"


def attach_dispatcher(factory: sessionmaker[Session], dispatch: Dispatcher) -> None:
    """After each commit of a session from ``factory``, hand new service calls to ``dispatch``."""
    factory.kw.setdefault("info", {})[_DISPATCH_KEY] = dispatch


@event.listens_for(Session, "after_commit")
def _dispatch_after_commit(session: Session) -> None:
    dispatch = session.info.get(_DISPATCH_KEY)
    ids = services.pop_new_service_calls(session)
    if dispatch is not None and ids:
        try:
            dispatch(ids)
        except Exception:  # the sweep of due calls picks them up later: nothing is lost
            log.exception("dispatch of service calls %s failed; the next sweep retries them", ids)


@event.listens_for(Session, "after_soft_rollback")
def _forget_after_rollback(session: Session, _previous_transaction: object) -> None:
    services.pop_new_service_calls(session)


def share_clock_offset(factory: sessionmaker[Session]) -> None:
    """Test mode: publish this process's clock offset so that workers in other processes follow."""
    with transaction(factory) as session:
        row = session.get(Setting, clock.SETTING_KEY)
        value = str(clock.offset().total_seconds())
        if row is None:
            session.add(Setting(key=clock.SETTING_KEY, value=value))
        else:
            row.value = value


def follow_clock_offset(factory: sessionmaker[Session]) -> None:
    """Test mode: take the clock offset another process published (see share_clock_offset)."""
    with transaction(factory) as session:
        row = session.get(Setting, clock.SETTING_KEY)
    if row is not None:
        clock.set_offset(timedelta(seconds=float(row.value)))


def run_service_call(
    factory: sessionmaker[Session], call_id: str, handler: ServiceHandler, *, lease: timedelta
) -> str:
    """Take, perform and finish one service call; returns what happened."""
    with transaction(factory) as session:
        call = services.take_service_call(session, call_id, lease=lease)
        if call is None:
            return "skipped"
        operation, params = call.operation, dict(call.params)
    try:
        result = handler(operation, params, call_id)
    except PermanentServiceError as exc:
        with transaction(factory) as session:
            services.fail_service_call(session, call_id, str(exc), permanent=True)
        return "failed"
    except Exception as exc:
        log.warning("service call %s (%s) failed: %s", call_id, operation, exc)
        with transaction(factory) as session:
            services.fail_service_call(session, call_id, f"{type(exc).__name__}: {exc}")
        return "retry"
    with transaction(factory) as session:
        finished = services.finish_service_call(session, call_id, result)
    return "done" if finished else "already-done"


def pause_after(handler: ServiceHandler, pauses: Mapping[str, float]) -> ServiceHandler:
    """Test-mode fault drills (MOTCUA_FAULT_PAUSE_AFTER): wait after the provider accepted a call
    and before its result is saved — the window where a crash must not lose or repeat the call."""
    def paused(operation: str, params: Mapping[str, Any], key: str) -> Any:
        result = handler(operation, params, key)
        seconds = pauses.get(operation, 0.0)
        if seconds:
            log.warning("fault drill: %s %s done; pausing %.1fs before its result is saved", operation, key, seconds)
            time.sleep(seconds)
        return result

    return paused


def fire_timers(factory: sessionmaker[Session], *, budget: float = TIMER_SWEEP_SECONDS, wait: float = 0.0) -> int:
    """Fire due timers, one dossier per transaction, until none is due or ``budget`` seconds passed.

    With ``wait``, a timer falling within ``wait`` seconds of the start is waited for instead of
    left to the next pass (Celery's tick passes its interval: a deadline fires when it falls, not
    up to a tick later, and a tick holds its worker process no longer than until the next tick).
    Safe to run in several workers at once (they share the due dossiers, see
    :func:`services.fire_next_due_timers`). A dossier whose timers fail to fire is logged and left
    for the next pass, after the others; a crash loses at most the dossier being fired, whose timer
    stays due.
    """
    fired = 0
    seen: set[int] = set()  # dossiers this pass leaves for the next one (kept small: not every fired one)
    started = time.monotonic()
    deadline = started + budget
    while time.monotonic() < deadline:
        try:
            with transaction(factory) as session:
                done = services.fire_next_due_timers(session, exclude=seen)
                upcoming = services.next_timer_due(session, exclude=seen) if done is None and wait > 0 else None
        except services.TimerError as exc:
            log.exception("%s; retried on the next pass", exc)
            seen.add(exc.dossier_id)
            continue
        if done is None:
            if upcoming is None:
                break
            pause = (upcoming - clock.now()).total_seconds()
            if not 0 <= pause <= started + wait - time.monotonic():
                break  # not falling before the next pass
            time.sleep(pause + 0.001)  # due once its moment has passed
            continue
        if not done[1]:  # its due row fired nothing (another worker had it, or it is stale): skip it
            seen.add(done[0])
        fired += done[1]
    return fired


def due_service_calls(factory: sessionmaker[Session], *, limit: int = 100) -> list[str]:
    with transaction(factory) as session:
        return services.due_service_calls(session, limit=limit)


def drain(
    factory: sessionmaker[Session], handler: ServiceHandler, *, lease: timedelta, max_rounds: int = 100
) -> dict[str, int]:
    """Run due timers and service calls until nothing is left to do now (test mode, embedded)."""
    totals = {"timers": 0, "calls": 0}
    for _ in range(max_rounds):
        fired = fire_timers(factory)
        calls = due_service_calls(factory)
        for call_id in calls:
            run_service_call(factory, call_id, handler, lease=lease)
        totals["timers"] += fired
        totals["calls"] += len(calls)
        if not fired and not calls:
            break
    return totals


class EmbeddedWorker:
    """A daemon thread that drains due work every ``interval`` seconds, or at once when woken."""

    def __init__(
        self, factory: sessionmaker[Session], handler: ServiceHandler, *, interval: float, lease: timedelta,
        sweeps: Iterable[Callable[[], object]] = (),
    ):
        self.factory = factory
        self.handler = handler
        self.sweeps = list(sweeps)  # periodic work of the connectors (the national portal sync)
        self.interval = interval
        self.lease = lease
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.passes = 0

    def wake(self, _ids: Iterable[str] = ()) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="motcua-worker", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                drain(self.factory, self.handler, lease=self.lease)
                for sweep in self.sweeps:
                    sweep()
            except Exception:  # keep the thread alive; the failed work stays due and is retried
                log.exception("embedded worker pass failed")
            self.passes += 1
            self._wake.wait(self.interval)
            self._wake.clear()
