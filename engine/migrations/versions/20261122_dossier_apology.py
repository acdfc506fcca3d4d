"""dossier apology: when the apology (Mẫu 04) was requested, allowed once

Revision ID: 88793446797e
Revises: 8a5a195b68e0
Create Date: 2026-11-22 04:53:17.823276

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = "88793446797e"
down_revision: str | Sequence[str] | None = "8a5a195b68e0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dossier", schema=None) as batch_op:
        batch_op.add_column(sa.Column("apology_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dossier", schema=None) as batch_op:
        batch_op.drop_column("apology_at")
