"""process spec library: the lifecycle BPMN documents a process model runs inside

Revision ID: 8a5a195b68e0
Revises: 53846d546774
Create Date: 2026-11-22 04:50:18.008390

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "8a5a195b68e0"
down_revision: str | Sequence[str] | None = "53846d546774"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing specs were deployed without a lifecycle: an empty list.
    with op.batch_alter_table("process_spec", schema=None) as batch_op:
        batch_op.add_column(sa.Column("library", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("process_spec", schema=None) as batch_op:
        batch_op.drop_column("library")
