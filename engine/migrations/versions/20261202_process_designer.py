"""process designer: drafts, task forms per deployed version, roll-back provenance

Revision ID: c5e7a9b1d3f5
Revises: a4d6f8b0c2e3
Create Date: 2026-12-02 01:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c5e7a9b1d3f5"
down_revision: str | Sequence[str] | None = "a4d6f8b0c2e3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("process_model_version", schema=None) as batch_op:
        batch_op.add_column(sa.Column("task_forms", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("redeploys_version", sa.Integer(), nullable=True))
    op.create_table(
        "process_draft",
        sa.Column("procedure_id", sa.Integer(), nullable=False),
        sa.Column("bpmn_xml", sa.Text(), nullable=False),
        sa.Column("lane_roles", sa.JSON(), nullable=False),
        sa.Column("task_forms", sa.JSON(), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=True),
        sa.Column("problems", sa.JSON(), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["procedure_id"], ["procedure.id"], name=op.f("fk_process_draft_procedure_id_procedure"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["updated_by_id"], ["user_account.id"],
                                name=op.f("fk_process_draft_updated_by_id_user_account")),
        sa.PrimaryKeyConstraint("procedure_id", name=op.f("pk_process_draft")),
    )


def downgrade() -> None:
    op.drop_table("process_draft")
    with op.batch_alter_table("process_model_version", schema=None) as batch_op:
        batch_op.drop_column("redeploys_version")
        batch_op.drop_column("task_forms")
