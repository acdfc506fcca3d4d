"""Celery bound to the Flask app (Flask's ``examples/celery`` pattern): JSON only, late acks."""

from __future__ import annotations

from typing import Any

from celery import Celery, Task
from celery.schedules import crontab
from flask import Flask
from kombu import Exchange, Queue

from backoffice.extensions import motcua


def timer_queue(queue: str) -> str:
    """The queue of the beat's tick, beside the deployment's work queue."""
    return f"{queue}.ticks"


def celery_init_app(app: Flask) -> Celery:
    settings = motcua(app).settings

    class FlaskTask(Task):  # type: ignore[misc]
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.name, task_cls=FlaskTask)
    # The tick (timers and the service-call sweep) has a queue of its own: a deadline must not wait
    # behind a backlog of service calls (say, the SMS of a burst of warnings). Workers take both.
    work, ticks = settings.queue, timer_queue(settings.queue)
    celery.conf.update(
        broker_url=settings.broker_url,
        task_default_queue=work,
        task_queues=(Queue(work, Exchange(work, type="direct"), routing_key=work),
                     Queue(ticks, Exchange(ticks, type="direct"), routing_key=ticks)),
        task_routes={"motcua.tick": {"queue": ticks, "routing_key": ticks}},
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        # A task is acknowledged after it ran: a worker killed mid-task leaves the message to be
        # delivered again; the service call's lease and task-id idempotency make that safe.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        task_soft_time_limit=settings.service_timeout,
        task_time_limit=settings.service_timeout + 30,
        beat_schedule={
            # A tick that waited in the queue longer than an interval is dropped: the next one does its work.
            "motcua-tick": {"task": "motcua.tick", "schedule": settings.worker_interval,
                            "options": {"expires": settings.worker_interval}},
            # Yesterday's payments against the provider's books, at 01:00 Vietnam time (18:00 UTC).
            "motcua-reconcile-payments": {"task": "motcua.reconcile_payments",
                                          "schedule": crontab(hour=18, minute=0)},
        },
        timezone="UTC",
    )
    celery.set_default()
    app.extensions["celery"] = celery
    import backoffice.tasks  # noqa: F401 - registers the tasks on this app

    return celery
