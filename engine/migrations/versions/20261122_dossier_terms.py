"""dossier terms: the legal time, fee and decider in force when the dossier was received

Revision ID: 2ccaa3c393c7
Revises: 88793446797e
Create Date: 2026-11-22 05:04:03.225982

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = "2ccaa3c393c7"
down_revision: str | Sequence[str] | None = "88793446797e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dossier", schema=None) as batch_op:
        batch_op.add_column(sa.Column("terms", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("dossier", schema=None) as batch_op:
        batch_op.drop_column("terms")
