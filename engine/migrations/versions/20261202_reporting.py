"""reporting: result evaluation kept on the dossier, units' yearly targets, search by phone

Revision ID: e9a1c3b5d7f9
Revises: d7f9b1c3e5a7
Create Date: 2026-12-02 13:00:00

"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "e9a1c3b5d7f9"
down_revision: str | Sequence[str] | None = "d7f9b1c3e5a7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_VN = timezone(timedelta(hours=7))
_ENDS = {"processed": None, "not_accepted": "not_accepted", "withdrawal_requested": "withdrawn", "stopped": "stopped"}


def upgrade() -> None:
    with op.batch_alter_table("dossier") as batch:
        batch.add_column(sa.Column("appointment_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("outcome", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("refused", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("supplement_count", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_dossier_received_at", "dossier", ["received_at"])
    op.create_index("ix_dossier_closed_at", "dossier", ["closed_at", "outcome", "unit_id", "procedure_id"])
    op.create_index("ix_task_completed_at", "task", ["completed_at"])
    op.create_index("ix_dossier_apology_at", "dossier", ["apology_at"])
    op.create_index(op.f("ix_dossier_applicant_phone"), "dossier", ["applicant_phone"])
    op.create_table(
        "unit_target",
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("online_rate", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["unit_id"], ["unit.id"], name=op.f("fk_unit_target_unit_id_unit"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("unit_id", "year", name=op.f("pk_unit_target")),
    )
    _backfill()


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _rate(ended: datetime, appointment: datetime | None, supplements: int) -> str:
    """The evaluation rule as it stood when this migration was written (a migration never imports
    the models): more than one supplement is late; early is a day before the appointment's day."""
    if supplements > 1 or (appointment is not None and ended > appointment):
        return "late"
    if appointment is not None and ended.astimezone(_VN).date() < appointment.astimezone(_VN).date():
        return "early"
    return "on_time"


def _backfill() -> None:
    """Existing dossiers: the appointment is the due date unless an apology moved it, the supplements
    are the clock pauses, and the end of processing is the first status change that ended it."""
    bind = op.get_bind()
    dossier = sa.table("dossier", sa.column("id", sa.Integer), sa.column("due_at", sa.DateTime(timezone=True)),
                       sa.column("appointment_at", sa.DateTime(timezone=True)),
                       sa.column("processed_at", sa.DateTime(timezone=True)),
                       sa.column("closed_at", sa.DateTime(timezone=True)), sa.column("outcome", sa.String),
                       sa.column("supplement_count", sa.Integer))
    pause = sa.table("clock_pause", sa.column("dossier_id", sa.Integer), sa.column("reason", sa.String))
    event = sa.table("audit_event", sa.column("id", sa.Integer), sa.column("at", sa.DateTime(timezone=True)),
                     sa.column("dossier_id", sa.Integer), sa.column("action", sa.String), sa.column("data", sa.JSON))
    supplements: dict[int, int] = dict(bind.execute(sa.select(pause.c.dossier_id, sa.func.count()).where(
        pause.c.reason == "supplement").group_by(pause.c.dossier_id)).all())
    appointments: dict[int, datetime] = {}
    ends: dict[int, tuple[datetime, str]] = {}
    for dossier_id, at, action, data in bind.execute(
        sa.select(event.c.dossier_id, event.c.at, event.c.action, event.c.data)
        .where(event.c.action.in_(("status_changed", "due_date_changed")), event.c.dossier_id.is_not(None))
        .order_by(event.c.id)
    ):
        data = data or {}
        if action == "due_date_changed" and data.get("reason") == "apology" and data.get("from"):
            appointments.setdefault(dossier_id, datetime.fromisoformat(data["from"]))
        elif action == "status_changed" and data.get("to") in _ENDS and dossier_id not in ends:
            ends[dossier_id] = (_aware(at), data["to"])  # type: ignore[assignment]
    for dossier_id, due_at in bind.execute(sa.select(dossier.c.id, dossier.c.due_at)).all():
        appointment = appointments.get(dossier_id, _aware(due_at))
        count = supplements.get(dossier_id, 0)
        values: dict[str, object] = {"appointment_at": appointment, "supplement_count": count}
        if dossier_id in ends:
            at, status = ends[dossier_id]
            values["closed_at"] = at
            if status == "processed":
                values["processed_at"] = at
                values["outcome"] = _rate(at, appointment, count)
            else:
                values["outcome"] = _ENDS[status]
        bind.execute(sa.update(dossier).where(dossier.c.id == dossier_id).values(**values))


def downgrade() -> None:
    op.drop_table("unit_target")
    op.drop_index(op.f("ix_dossier_applicant_phone"), table_name="dossier")
    op.drop_index("ix_dossier_apology_at", table_name="dossier")
    op.drop_index("ix_task_completed_at", table_name="task")
    op.drop_index("ix_dossier_closed_at", table_name="dossier")
    op.drop_index("ix_dossier_received_at", table_name="dossier")
    with op.batch_alter_table("dossier") as batch:
        batch.drop_column("supplement_count")
        batch.drop_column("refused")
        batch.drop_column("outcome")
        batch.drop_column("closed_at")
        batch.drop_column("processed_at")
        batch.drop_column("appointment_at")
