"""payments: the needs_review status and the refunded amount

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

OLD_STATUSES = "status IN ('completed', 'refunded', 'partially_refunded', 'needs_refund', 'failed')"
NEW_STATUSES = (
    "status IN ('completed', 'refunded', 'partially_refunded', 'needs_refund', 'needs_review', 'failed')"
)


def upgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("refunded_amount", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.drop_constraint(op.f("ck_payments_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_payments_status"), NEW_STATUSES)
        batch_op.create_check_constraint(
            op.f("ck_payments_refunded_amount_non_negative"), "refunded_amount >= 0"
        )


def downgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_payments_refunded_amount_non_negative"), type_="check")
        batch_op.drop_constraint(op.f("ck_payments_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_payments_status"), OLD_STATUSES)
        batch_op.drop_column("refunded_amount")
