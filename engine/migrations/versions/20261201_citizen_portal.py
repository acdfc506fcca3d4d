"""citizen portal: citizen profile and phone check, SMS one-time codes, payments, callback receipts

Revision ID: a4d6f8b0c2e3
Revises: 9c3e5a7b1d42
Create Date: 2026-12-01 10:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "a4d6f8b0c2e3"
down_revision: str | Sequence[str] | None = "9c3e5a7b1d42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("date_of_birth", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("phone_verified_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("profile", sa.JSON(), nullable=False, server_default="{}"))
    op.create_table(
        "otp_challenge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sends", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("client_ip", sa.String(length=45), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"], name=op.f("fk_otp_challenge_user_id_user_account"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_otp_challenge")),
    )
    op.create_index("ix_otp_challenge_phone_created", "otp_challenge", ["phone", "created_at"])
    op.create_index("ix_otp_challenge_ip_created", "otp_challenge", ["client_ip", "created_at"])
    op.create_index(op.f("ix_otp_challenge_user_id"), "otp_challenge", ["user_id"])
    op.create_table(
        "payment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=40), nullable=False),
        sa.Column("dossier_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("provider_transaction", sa.String(length=80), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["dossier_id"], ["dossier.id"], name=op.f("fk_payment_dossier_id_dossier"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment")),
        sa.UniqueConstraint("reference", name=op.f("uq_payment_reference")),
    )
    op.create_index(op.f("ix_payment_dossier_id"), "payment", ["dossier_id"])
    op.create_table(
        "callback_receipt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("event_id", sa.String(length=120), nullable=False),
        sa.Column("dossier_id", sa.Integer(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_receipt")),
        sa.UniqueConstraint("provider", "event_id", name=op.f("uq_callback_receipt_provider")),
    )


def downgrade() -> None:
    op.drop_table("callback_receipt")
    op.drop_index(op.f("ix_payment_dossier_id"), table_name="payment")
    op.drop_table("payment")
    op.drop_index(op.f("ix_otp_challenge_user_id"), table_name="otp_challenge")
    op.drop_index("ix_otp_challenge_ip_created", table_name="otp_challenge")
    op.drop_index("ix_otp_challenge_phone_created", table_name="otp_challenge")
    op.drop_table("otp_challenge")
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_column("profile")
        batch_op.drop_column("phone_verified_at")
        batch_op.drop_column("date_of_birth")
