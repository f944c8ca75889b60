"""manual admissions: door staff's reason on a check-in record

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("check_in_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("manual_reason", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("check_in_records", schema=None) as batch_op:
        batch_op.drop_column("manual_reason")
