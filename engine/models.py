"""SQLAlchemy 2 models: the durable state of units, users, procedures, cases, tasks, timers and audit.

The inbox reads the ``task`` projection and the scheduler reads ``timer``: neither ever parses the
serialized workflow JSON.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates
from sqlalchemy.types import TypeDecorator

from engine.calendar import to_vn

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes stored as UTC on every backend (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class Role(enum.StrEnum):
    """Roles; lanes of a process map to the officer roles."""

    ONESTOP = "onestop"  # Bộ phận Một cửa
    JUSTICE = "justice"  # Tư pháp – Hộ tịch
    CULTURE = "culture"  # Văn hoá – Xã hội
    LEADER = "leader"  # Lãnh đạo UBND
    DESIGNER = "designer"
    AUDITOR = "auditor"
    ADMIN = "admin"
    CITIZEN = "citizen"
    # A registered helper (youth volunteer at the commune's computer corner) who types dossiers in
    # for citizens; each submission needs the citizen's consent by the OTP sent to their phone.
    VOLUNTEER = "volunteer"


OFFICER_ROLES = frozenset({Role.ONESTOP, Role.JUSTICE, Role.CULTURE, Role.LEADER})


class DossierStatus(enum.StrEnum):
    """Dossier status; the value of each is mapped to the national portal status code 1–10."""

    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    NOT_ACCEPTED = "not_accepted"
    PROCESSING = "processing"
    SUPPLEMENT_REQUESTED = "supplement_requested"
    PAYMENT_REQUESTED = "payment_requested"
    WITHDRAWAL_REQUESTED = "withdrawal_requested"
    STOPPED = "stopped"
    PROCESSED = "processed"
    RETURNED = "returned"

    @property
    def national_code(self) -> int:
        return NATIONAL_STATUS_CODES[self]


NATIONAL_STATUS_CODES: dict[DossierStatus, int] = {
    status: number for number, status in enumerate(DossierStatus, start=1)
}
FINAL_STATUSES = frozenset({DossierStatus.NOT_ACCEPTED, DossierStatus.STOPPED, DossierStatus.RETURNED})


class Outcome(enum.StrEnum):
    """How a dossier's processing ended: evaluated results (trước hạn / đúng hạn / quá hạn) and the
    ends that are not evaluated."""

    EARLY = "early"
    ON_TIME = "on_time"
    LATE = "late"
    NOT_ACCEPTED = "not_accepted"
    WITHDRAWN = "withdrawn"
    STOPPED = "stopped"


EVALUATED_OUTCOMES = (Outcome.EARLY, Outcome.ON_TIME, Outcome.LATE)


def rate_result(ended_at: datetime, appointment_at: datetime | None, *, supplements: int = 0) -> Outcome:
    """Early, on time or late: the end of processing against the appointment (Decree 61/2018 on the
    one-stop mechanism, evaluation of handling; Circular 01/2018/TT-VPCP). More than one request
    for supplement counts as late, whatever the dates. Early is a result ready on a day before the
    appointment's day; on the day itself it is on time."""
    if supplements > 1:
        return Outcome.LATE
    if appointment_at is None:
        return Outcome.ON_TIME
    if ended_at > appointment_at:
        return Outcome.LATE
    return Outcome.EARLY if to_vn(ended_at).date() < to_vn(appointment_at).date() else Outcome.ON_TIME


class Unit(Base):
    """A commune-level People's Committee (UBND xã/phường), the scope of officers and dossiers."""

    __tablename__ = "unit"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # QCVN 102:2016 agency code, the prefix of every dossier code, e.g. 000.00.31.H26
    agency_code: Mapped[str] = mapped_column(String(40), unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class UnitTarget(Base):
    """A unit's yearly target (chỉ tiêu), e.g. the share of dossiers submitted online, in percent."""

    __tablename__ = "unit_target"

    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id", ondelete="CASCADE"), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    online_rate: Mapped[float] = mapped_column(default=0)  # percent of received dossiers

    unit: Mapped[Unit] = relationship()

    @validates("online_rate")
    def _check_rate(self, _key: str, value: float) -> float:
        if not 0 <= float(value) <= 100:
            raise ValueError("the online target is a percentage between 0 and 100")
        return float(value)


class User(Base):
    """An officer, leader, designer, auditor, admin or citizen account."""

    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(300), default="")
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"))
    phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(200))
    id_number: Mapped[str | None] = mapped_column(String(12), unique=True)  # CCCD for citizens
    title: Mapped[str | None] = mapped_column(String(120))  # e.g. "Chủ tịch UBND xã"
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Consecutive failed logins, and the lockout they caused.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column()
    # TOTP second factor (RFC 6238, base32 secret); required for leaders. The last accepted time
    # step is kept so a code cannot be replayed.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    # Citizens: date of birth (checked against the CCCD number), phone proved by an SMS code, and
    # the applicant profile reused on every submission (address, organisation, budget unit …).
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    phone_verified_at: Mapped[datetime | None] = mapped_column()
    profile: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    unit: Mapped[Unit | None] = relationship()
    role_rows: Mapped[list[UserRole]] = relationship(cascade="all, delete-orphan", lazy="selectin")

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(r.role for r in self.role_rows)

    def has_role(self, role: str) -> bool:
        return role in self.roles


class UserRole(Base):
    __tablename__ = "user_role"

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20), primary_key=True)

    @validates("role")
    def _check_role(self, _key: str, value: str) -> str:
        return Role(value).value


class Procedure(Base):
    """A catalogue entry (thủ tục hành chính) with its legal time, fee and forms."""

    __tablename__ = "procedure"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(80), unique=True)  # motcua key, e.g. birth_registration
    national_code: Mapped[str | None] = mapped_column(String(40))  # e.g. 1.001193
    name_vi: Mapped[str] = mapped_column(String(300))
    name_en: Mapped[str] = mapped_column(String(300))
    field: Mapped[str] = mapped_column(String(120), default="")
    online_level: Mapped[str] = mapped_column(String(20), default="partial")  # full | partial | none
    # Legal time: value + unit (same_day | working_days | calendar_days | hours).
    legal_time_value: Mapped[float] = mapped_column(default=0)
    legal_time_unit: Mapped[str] = mapped_column(String(20), default="working_days")
    catalogue: Mapped[dict[str, Any]] = mapped_column(default=dict)  # fee, documents, forms, delivery
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    @validates("legal_time_unit")
    def _check_unit(self, _key: str, value: str) -> str:
        if value not in ("same_day", "working_days", "calendar_days", "hours"):
            raise ValueError(f"unknown legal time unit {value!r}")
        return value


class ProcessSpec(Base):
    """A BPMN document and its parsed Spiff spec, stored once per content hash."""

    __tablename__ = "process_spec"

    content_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    process_id: Mapped[str] = mapped_column(String(200))
    bpmn_xml: Mapped[str] = mapped_column(Text)
    # The lifecycle BPMN documents this model runs inside (the shared one-stop lifecycle).
    library: Mapped[list[Any]] = mapped_column(default=list)
    spec_json: Mapped[str] = mapped_column(Text)  # serialized spec + subprocess specs
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ProcessModelVersion(Base):
    """A deployed version of a procedure's process; cases stay on the version they started with."""

    __tablename__ = "process_model_version"
    __table_args__ = (UniqueConstraint("procedure_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    procedure_id: Mapped[int] = mapped_column(ForeignKey("procedure.id"))
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(ForeignKey("process_spec.content_hash"))
    lane_roles: Mapped[dict[str, Any]] = mapped_column(default=dict)  # lane name → role
    deployed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    deployed_at: Mapped[datetime] = mapped_column()
    comment: Mapped[str] = mapped_column(String(500), default="")
    # The user-task forms (JSON Schema by form key) this version's tasks are checked against; None
    # for versions deployed before forms were versioned: they use the procedure's catalogue.
    task_forms: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # For a roll-back, the version whose model was deployed again.
    redeploys_version: Mapped[int | None] = mapped_column(Integer)

    procedure: Mapped[Procedure] = relationship()
    spec: Mapped[ProcessSpec] = relationship()
    deployed_by: Mapped[User | None] = relationship()


class ProcessDraft(Base):
    """A procedure's model being edited in the designer: saved on every change, validated on
    every save, deployed as a new version when it has no problem. One draft per procedure."""

    __tablename__ = "process_draft"

    procedure_id: Mapped[int] = mapped_column(ForeignKey("procedure.id", ondelete="CASCADE"), primary_key=True)
    bpmn_xml: Mapped[str] = mapped_column(Text)
    lane_roles: Mapped[dict[str, Any]] = mapped_column(default=dict)
    task_forms: Mapped[dict[str, Any]] = mapped_column(default=dict)
    base_version: Mapped[int | None] = mapped_column(Integer)  # the version the draft started from
    problems: Mapped[list[Any]] = mapped_column(default=list)  # of the last save
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    updated_at: Mapped[datetime] = mapped_column()

    procedure: Mapped[Procedure] = relationship()
    updated_by: Mapped[User | None] = relationship()


class Dossier(Base):
    """A case (hồ sơ): one application for one procedure, identified by its dossier code."""

    __tablename__ = "dossier"
    __table_args__ = (
        Index("ix_dossier_unit_status", "unit_id", "status"),
        Index("ix_dossier_unit_received", "unit_id", "received_at"),
        # Reports select by period province-wide: received, closed (end of processing), apology.
        Index("ix_dossier_received_at", "received_at"),
        # covering the month's counts by outcome and the dashboard's trend (index-only scans)
        Index("ix_dossier_closed_at", "closed_at", "outcome", "unit_id", "procedure_id"),
        Index("ix_dossier_apology_at", "apology_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(60), unique=True)
    procedure_id: Mapped[int] = mapped_column(ForeignKey("procedure.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"))
    model_version_id: Mapped[int] = mapped_column(ForeignKey("process_model_version.id"))
    applicant: Mapped[dict[str, Any]] = mapped_column(default=dict)
    applicant_name: Mapped[str] = mapped_column(String(200), default="", index=True)
    applicant_id_number: Mapped[str | None] = mapped_column(String(20), index=True)
    applicant_phone: Mapped[str | None] = mapped_column(String(20), index=True)  # auditors search by phone
    form: Mapped[dict[str, Any]] = mapped_column(default=dict)
    channel: Mapped[str] = mapped_column(String(20), default="online")  # online | counter | post
    status: Mapped[str] = mapped_column(String(30), default=DossierStatus.SUBMITTED.value)
    status_code: Mapped[int] = mapped_column(Integer, default=1)
    received_at: Mapped[datetime] = mapped_column()
    due_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    # When the clock is stopped (supplement requested), the moment it stopped; None while running.
    clock_paused_at: Mapped[datetime | None] = mapped_column()
    # Legal time, fee and decider in force when the dossier was received (services.procedure_terms).
    terms: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # When the apology (Mẫu 04) was requested; allowed once per dossier.
    apology_at: Mapped[datetime | None] = mapped_column()
    # Result evaluation (Decree 61/2018; Circular 01/2018/TT-VPCP), kept on the dossier so that the
    # province's reports read one row per dossier. ``appointment_at`` is the due moment the result
    # is judged against: the receipt's, or the one after the clock restarted on a complete
    # supplement; an apology's new date does not move it. ``closed_at`` is when processing ended
    # (result signed, refused at receipt, withdrawn or stopped) and ``outcome`` says how.
    appointment_at: Mapped[datetime | None] = mapped_column()
    processed_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    outcome: Mapped[str | None] = mapped_column(String(20))
    refused: Mapped[bool] = mapped_column(Boolean, default=False)  # the result is a refusal letter
    supplement_count: Mapped[int] = mapped_column(Integer, default=0)
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    procedure: Mapped[Procedure] = relationship()
    unit: Mapped[Unit] = relationship()
    model_version: Mapped[ProcessModelVersion] = relationship()
    pauses: Mapped[list[ClockPause]] = relationship(order_by="ClockPause.started_at")

    @validates("status")
    def _sync_status_code(self, _key: str, value: str) -> str:
        status = DossierStatus(value)
        self.status_code = status.national_code
        return status.value

    @property
    def is_finished(self) -> bool:
        return self.finished_at is not None

    def close(self, status: DossierStatus, *, at: datetime, refused: bool = False) -> None:
        """Record the end of processing once: the result was signed (rated against the
        appointment), the dossier was refused at receipt, withdrawn or stopped. Later changes
        (payment, hand-back, a withdrawal after the result) do not move it."""
        if self.closed_at is not None:
            return
        if status is DossierStatus.PROCESSED:
            self.processed_at = at
            self.refused = refused
            self.outcome = rate_result(at, self.appointment_at, supplements=self.supplement_count or 0).value
        elif status is DossierStatus.NOT_ACCEPTED:
            self.outcome = Outcome.NOT_ACCEPTED.value
        elif status is DossierStatus.WITHDRAWAL_REQUESTED:
            self.outcome = Outcome.WITHDRAWN.value
        elif status is DossierStatus.STOPPED:
            self.outcome = Outcome.STOPPED.value
        else:
            return
        self.closed_at = at


class ClockPause(Base):
    """A stop of the legal clock (Decree 61/2018 art.19: supplement requested), ended on resume."""

    __tablename__ = "clock_pause"

    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(40))
    started_at: Mapped[datetime] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()


class AttachmentKind(enum.StrEnum):
    """Why a file joined the dossier."""

    SUBMISSION = "submission"  # sent with the dossier
    SUPPLEMENT = "supplement"  # sent after a supplement request (Mẫu 02)


class Attachment(Base):
    """A file of a dossier (giấy tờ kèm theo): a scan or PDF sent by the applicant or the officer.

    The content stays in the database (deferred: listing a dossier's files never loads it); the
    SHA-256 lets an auditor prove which file was received.
    """

    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    mime: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    kind: Mapped[str] = mapped_column(String(20), default=AttachmentKind.SUBMISSION.value)
    uploaded_at: Mapped[datetime] = mapped_column()
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))

    dossier: Mapped[Dossier] = relationship()

    @validates("kind")
    def _check_kind(self, _key: str, value: str) -> str:
        return AttachmentKind(value).value


class DossierCodeCounter(Base):
    """Per unit and day sequence for dossier codes; incremented atomically with an upsert."""

    __tablename__ = "dossier_code_counter"

    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class WorkflowState(Base):
    """The serialized SpiffWorkflow state of a case, without its spec (stored once in process_spec)."""

    __tablename__ = "workflow_state"

    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), primary_key=True)
    content_hash: Mapped[str] = mapped_column(ForeignKey("process_spec.content_hash"))
    state: Mapped[bytes] = mapped_column(LargeBinary)  # zlib-compressed JSON
    size: Mapped[int] = mapped_column(Integer, default=0)  # uncompressed bytes, for monitoring
    completed: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column()


class TaskState(enum.StrEnum):
    READY = "ready"
    STARTED = "started"  # a service task whose call is running in a worker
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    ERROR = "error"


OPEN_TASK_STATES = (TaskState.READY.value, TaskState.STARTED.value)
# The rows the inbox reads: open user tasks, a few per cent of the table once cases finish. The
# inbox indexes are partial on this condition, so they stay small and in memory however many
# finished cases pile up. A query uses them only when it spells the condition with literal values
# (see queries.open_user_task): the planner cannot prove the predicate from bound parameters.
OPEN_USER_TASK_SQL = "state IN ('ready', 'started') AND kind = 'user'"


class Task(Base):
    """Projection of a Spiff user or service task: what the inbox and dashboards read."""

    __tablename__ = "task"
    __table_args__ = (
        # The unit/all tabs and the mine tab, each in the inbox order (due_at, created_at, id): a
        # page is an index range, and with assignee_id the unit tab and the counts need no heap.
        Index("ix_task_open_unit", "unit_id", "role", "due_at", "created_at", "id", "assignee_id",
              postgresql_where=text(OPEN_USER_TASK_SQL), sqlite_where=text(OPEN_USER_TASK_SQL)),
        Index("ix_task_open_assignee", "assignee_id", "due_at", "created_at", "id",
              postgresql_where=text(OPEN_USER_TASK_SQL), sqlite_where=text(OPEN_USER_TASK_SQL)),
        Index("ix_task_completed_at", "completed_at"),  # work done per officer in the last days
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # Spiff task UUID
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), index=True)
    spec_name: Mapped[str] = mapped_column(String(200))  # BPMN element id
    name: Mapped[str] = mapped_column(String(300))  # label shown to officers
    kind: Mapped[str] = mapped_column(String(20))  # user | service
    form_key: Mapped[str | None] = mapped_column(String(80))  # the task form in the procedure catalogue
    lane: Mapped[str | None] = mapped_column(String(120))
    role: Mapped[str | None] = mapped_column(String(20))
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    state: Mapped[str] = mapped_column(String(20))
    due_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column()
    claimed_at: Mapped[datetime | None] = mapped_column()
    completed_at: Mapped[datetime | None] = mapped_column()
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    decision: Mapped[str | None] = mapped_column(String(40))

    dossier: Mapped[Dossier] = relationship()


class Timer(Base):
    """A waiting timer event of a case; refilled from ``waiting_events()`` on every save."""

    __tablename__ = "timer"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # Spiff task UUID of the catching event
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    run_at: Mapped[datetime] = mapped_column(index=True)


class ServiceCall(Base):
    """A service task's call, run by a job outside the engine step; keyed by the Spiff task id."""

    __tablename__ = "service_call"
    __table_args__ = (Index("ix_service_call_pending", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # Spiff task UUID = idempotency key
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), index=True)
    operation: Mapped[str] = mapped_column(String(120))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending|running|done|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column()
    next_attempt_at: Mapped[datetime] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()


class AuditEvent(Base):
    """Append-only audit log; each row's hash covers its content and the previous row's hash."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column()
    actor_id: Mapped[int | None] = mapped_column(Integer)  # no FK: the log outlives accounts
    actor: Mapped[str] = mapped_column(String(120))  # username, or "system"/"worker"
    action: Mapped[str] = mapped_column(String(60))
    dossier_id: Mapped[int | None] = mapped_column(Integer, index=True)
    dossier_code: Mapped[str | None] = mapped_column(String(60))
    task_id: Mapped[str | None] = mapped_column(String(36))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class CalendarEntry(Base):
    """A day that breaks the Mon–Fri rule: public holiday, day off, or make-up working day."""

    __tablename__ = "holiday"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # holiday | day_off | make_up_day
    name: Mapped[str] = mapped_column(String(200))
    source: Mapped[str | None] = mapped_column(String(500))

    @validates("kind")
    def _check_kind(self, _key: str, value: str) -> str:
        if value not in ("holiday", "day_off", "make_up_day"):
            raise ValueError(f"unknown calendar day kind {value!r}")
        return value


class Setting(Base):
    """Small key/value settings shared by all processes (e.g. the test-mode clock offset)."""

    __tablename__ = "setting"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class SandboxRecord(Base):
    """What a provider sandbox received (development and test only), de-duplicated by the
    idempotency key the caller sent, as a real provider does; ``attempts`` counts deliveries."""

    __tablename__ = "sandbox_record"
    __table_args__ = (UniqueConstraint("provider", "idempotency_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(40))  # sms | mail | demo | …
    idempotency_key: Mapped[str] = mapped_column(String(80))
    recipient: Mapped[str | None] = mapped_column(String(200), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column()


class OtpChallenge(Base):
    """A one-time code sent by SMS: registration, login, password reset, or a citizen's consent to
    a dossier typed in for them. Only a salted hash of the code is kept; ``attempts`` and
    ``sends`` bound guessing and resending, ``expires_at`` bounds its life."""

    __tablename__ = "otp_challenge"
    __table_args__ = (Index("ix_otp_challenge_phone_created", "phone", "created_at"),
                      Index("ix_otp_challenge_ip_created", "client_ip", "created_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[str] = mapped_column(String(20))  # register | login | reset | consent
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    phone: Mapped[str] = mapped_column(String(20))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column()
    last_sent_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    sends: Mapped[int] = mapped_column(Integer, default=1)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    consumed_at: Mapped[datetime | None] = mapped_column()
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)  # e.g. the draft dossier to consent to
    client_ip: Mapped[str | None] = mapped_column(String(45))  # who asked (registration and reset limits)


class Payment(Base):
    """An online payment of a dossier's fee through the payment provider; the provider's signed
    callback settles it once (``reference`` is what the provider echoes back)."""

    __tablename__ = "payment"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(40), unique=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), index=True)
    amount: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="VND")
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending | paid | failed
    provider_transaction: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column()
    settled_at: Mapped[datetime | None] = mapped_column()


class CallbackReceipt(Base):
    """A provider callback already applied (provider, its event id): a repeat changes nothing."""

    __tablename__ = "callback_receipt"
    __table_args__ = (UniqueConstraint("provider", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(120))
    dossier_id: Mapped[int | None] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column()


class SigningCredential(Base):
    """A signing certificate with its key (PKCS#12, encrypted): a leader's, or the deployment's
    certificate authority (``user_id`` None, ``is_authority``) that the verify page trusts."""

    __tablename__ = "signing_credential"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    is_authority: Mapped[bool] = mapped_column(Boolean, default=False)
    subject: Mapped[str] = mapped_column(String(200))
    certificate: Mapped[str] = mapped_column(Text)  # PEM
    pkcs12: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    fingerprint: Mapped[str] = mapped_column(String(64))  # SHA-256 of the certificate
    not_after: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column()


class Document(Base):
    """A signed document of a dossier (the result, a refusal, an apology letter): stored as signed,
    never changed; its SHA-256 is in the audit chain (``document_signed``)."""

    __tablename__ = "document"

    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)  # idempotency key (the signing step's id)
    kind: Mapped[str] = mapped_column(String(40))  # result | refusal | apology …
    form_set: Mapped[str] = mapped_column(String(10), default="2018")
    name: Mapped[str] = mapped_column(String(200))
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    signed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    signer_name: Mapped[str] = mapped_column(String(200))
    signer_title: Mapped[str] = mapped_column(String(200), default="")
    certificate_fingerprint: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column()

    dossier: Mapped[Dossier] = relationship()
