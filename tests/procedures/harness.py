"""Driving a procedure's dossier through its process in tests, the way officers and citizens would.

``CaseDriver`` submits a dossier, completes tasks as an officer of the task's role, delivers
messages, runs the service calls a worker would run, and moves the project clock to fire timers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import clock, services
from engine.models import Dossier, ServiceCall, Task, Unit, User
from tests.factories import create_unit, create_user, install_procedure

APPLICANT = {"type": "individual", "full_name": "Phạm Thị Dung", "id_number": "001199000111", "phone": "0903333444"}


class CaseDriver:
    """One dossier of one procedure, in a test session."""

    def __init__(self, session: Session, procedure: str, *, unit: Unit | None = None):
        self.session = session
        self.procedure = install_procedure(session, procedure)
        self.unit = unit or create_unit(session)
        self.users: dict[str, User] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.dossier: Dossier | None = None

    # --- people -----------------------------------------------------------------------------

    def officer(self, role: str) -> services.Actor:
        if role not in self.users:
            self.users[role] = create_user(self.session, self.unit, role)
        return services.Actor.of(self.users[role])

    # --- commands ---------------------------------------------------------------------------

    def submit(self, *, form: dict[str, Any], channel: str = "counter", delivery: dict[str, Any] | None = None,
               applicant: dict[str, Any] | None = None, at: datetime | None = None) -> Dossier:
        if at is not None:
            clock.freeze(at)
        self.dossier = services.submit_dossier(
            self.session, procedure_code=self.procedure.code, unit_code=self.unit.code,
            applicant=applicant or APPLICANT, form=form, channel=channel, delivery=delivery,
            actor=self.officer("onestop") if channel == "counter" else services.SYSTEM_ACTOR,
        )
        self.run_services()
        return self.dossier

    def task(self, step: str) -> Task:
        assert self.dossier is not None
        task = self.session.scalar(select(Task).where(Task.dossier_id == self.dossier.id, Task.spec_name == step,
                                                      Task.state == "ready"))
        assert task is not None, f"no open task {step!r}; open: {self.open_steps()}"
        return task

    def complete(self, step: str, **data: Any) -> Dossier:
        task = self.task(step)
        assert task.role is not None, f"task {step} has no role"
        dossier = services.complete_task(self.session, task.id, actor=self.officer(task.role), data=data)
        self.run_services()
        return dossier

    def message(self, name: str, payload: Any = None) -> Dossier:
        assert self.dossier is not None
        dossier = services.deliver_message(self.session, self.dossier.code, name, payload,
                                           actor=services.SYSTEM_ACTOR)
        self.run_services()
        return dossier

    def run_services(self, handler: Any = None) -> None:
        """Do what a worker does: perform every due service call and complete its task."""
        while True:
            calls = self.session.scalars(select(ServiceCall).where(ServiceCall.status == "pending")).all()
            if not calls:
                return
            for call in calls:
                services.take_service_call(self.session, call.id, lease=timedelta(seconds=30))
                result = handler(call.operation, call.params) if handler else {"ok": True}
                services.finish_service_call(self.session, call.id, result)
                self.calls.append((call.operation, dict(call.params)))

    def at(self, moment: datetime) -> int:
        """Move the clock to ``moment`` and fire what is due; returns how many timers fired."""
        clock.freeze(moment)
        fired = services.fire_due_timers(self.session)
        self.run_services()
        return fired

    # --- reading ----------------------------------------------------------------------------

    def open_steps(self) -> list[str]:
        assert self.dossier is not None
        return sorted(self.session.scalars(select(Task.spec_name).where(
            Task.dossier_id == self.dossier.id, Task.state == "ready")).all())

    def operations(self) -> list[str]:
        return [op for op, _ in self.calls]

    @property
    def status(self) -> str:
        assert self.dossier is not None
        return self.dossier.status

    @property
    def finished(self) -> bool:
        assert self.dossier is not None
        return self.dossier.finished_at is not None
