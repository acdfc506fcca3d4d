"""task form key: the form of a user task, so task pages need not load the workflow

Revision ID: 0e0711de8eb5
Revises: b4ddef803160
Create Date: 2026-11-22 05:22:29.871503

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = "0e0711de8eb5"
down_revision: str | Sequence[str] | None = "b4ddef803160"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.add_column(sa.Column("form_key", sa.String(length=80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_column("form_key")
