"""Celery tasks: thin wrappers over engine.jobs; they take ids and are idempotent."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from celery import Celery, shared_task

from backoffice.extensions import motcua
from engine import jobs
from engine.services import ServiceHandler

RUN_SERVICE_CALL = "motcua.run_service_call"


@shared_task(name=RUN_SERVICE_CALL, acks_late=True, reject_on_worker_lost=True)
def run_service_call(call_id: str) -> str:
    ext = motcua()
    if ext.settings.is_test:
        jobs.follow_clock_offset(ext.factory)
    handler: ServiceHandler = ext.registry
    if ext.settings.fault_pause_after:
        handler = jobs.pause_after(ext.registry, ext.settings.fault_pauses())
    return jobs.run_service_call(ext.factory, call_id, handler, lease=ext.lease)


@shared_task(name="motcua.tick")
def tick() -> dict[str, Any]:
    """Beat: fire due timers, and (re)queue service calls that are due or whose lease ran out."""
    ext = motcua()
    if ext.settings.is_test:
        jobs.follow_clock_offset(ext.factory)
    fired = jobs.fire_timers(ext.factory, wait=ext.settings.worker_interval)
    calls = jobs.due_service_calls(ext.factory)
    for call_id in calls:
        run_service_call.delay(call_id)
    sync_national_portal.delay()
    return {"timers": fired, "calls": len(calls)}


@shared_task(name="motcua.sync_national_portal")
def sync_national_portal() -> int:
    """Push the next status changes to the national portal (the cursor row serializes workers)."""
    from connectors import national_portal

    ext = motcua()
    return national_portal.sync(ext.settings, ext.factory)


def dispatch_service_calls(celery: Celery, ids: Iterable[str]) -> None:
    for call_id in ids:
        celery.send_task(RUN_SERVICE_CALL, args=[call_id])


@shared_task(name="motcua.reconcile_payments")
def reconcile_payments() -> dict[str, Any]:
    """Yesterday (Vietnam time) against the payment provider's books."""
    from datetime import timedelta

    from connectors.payment import reconcile
    from engine import clock
    from engine.calendar import to_vn

    ext = motcua()
    return reconcile(ext.settings, ext.factory, to_vn(clock.now()).date() - timedelta(days=1))
