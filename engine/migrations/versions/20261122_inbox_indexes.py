"""inbox indexes: partial indexes on open user tasks replace the whole-table inbox indexes

The inbox reads open user tasks only, a few per cent of the task table once cases finish; the
old indexes (unit_id, role, state, due_at) and (assignee_id, state, due_at) indexed every task,
finished ones included. The partial ones stay small, hold the inbox order (due_at, created_at, id)
so that a page is an index range, and make the tab counts index-only scans.

Revision ID: 9c3e5a7b1d42
Revises: 8b2d4f6a0c31
Create Date: 2026-11-22 10:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = "9c3e5a7b1d42"
down_revision: str | Sequence[str] | None = "8b2d4f6a0c31"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The models' OPEN_USER_TASK_SQL when this migration was written (a migration never imports the models).
OPEN_USER_TASK = "state IN ('ready', 'started') AND kind = 'user'"


def upgrade() -> None:
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_index("ix_task_inbox_unit")
        batch_op.drop_index("ix_task_inbox_assignee")
        batch_op.create_index("ix_task_open_unit", ["unit_id", "role", "due_at", "created_at", "id", "assignee_id"],
                              unique=False,
                              postgresql_where=sa.text(OPEN_USER_TASK), sqlite_where=sa.text(OPEN_USER_TASK))
        batch_op.create_index("ix_task_open_assignee", ["assignee_id", "due_at", "created_at", "id"], unique=False,
                              postgresql_where=sa.text(OPEN_USER_TASK), sqlite_where=sa.text(OPEN_USER_TASK))


def downgrade() -> None:
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_index("ix_task_open_assignee")
        batch_op.drop_index("ix_task_open_unit")
        batch_op.create_index("ix_task_inbox_assignee", ["assignee_id", "state", "due_at"], unique=False)
        batch_op.create_index("ix_task_inbox_unit", ["unit_id", "role", "state", "due_at"], unique=False)
