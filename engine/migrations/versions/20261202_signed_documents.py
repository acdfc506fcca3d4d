"""signed documents: signing credentials (leaders, the authority) and signed PDFs of dossiers

Revision ID: d7f9b1c3e5a7
Revises: c5e7a9b1d3f5
Create Date: 2026-12-02 02:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "d7f9b1c3e5a7"
down_revision: str | Sequence[str] | None = "c5e7a9b1d3f5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signing_credential",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("is_authority", sa.Boolean(), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("certificate", sa.Text(), nullable=False),
        sa.Column("pkcs12", sa.LargeBinary(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"], name=op.f("fk_signing_credential_user_id_user_account"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signing_credential")),
    )
    op.create_index(op.f("ix_signing_credential_user_id"), "signing_credential", ["user_id"])
    op.create_table(
        "document",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dossier_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("form_set", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("signed_by_id", sa.Integer(), nullable=True),
        sa.Column("signer_name", sa.String(length=200), nullable=False),
        sa.Column("signer_title", sa.String(length=200), nullable=False),
        sa.Column("certificate_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["dossier_id"], ["dossier.id"], name=op.f("fk_document_dossier_id_dossier"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["signed_by_id"], ["user_account.id"],
                                name=op.f("fk_document_signed_by_id_user_account")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document")),
        sa.UniqueConstraint("key", name=op.f("uq_document_key")),
    )
    op.create_index(op.f("ix_document_dossier_id"), "document", ["dossier_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_document_dossier_id"), table_name="document")
    op.drop_table("document")
    op.drop_index(op.f("ix_signing_credential_user_id"), table_name="signing_credential")
    op.drop_table("signing_credential")
