"""every uploaded check-in record is stored; one per key is kept (the kernel's acceptance rule)

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("check_in_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kept", sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.drop_constraint("uq_check_in_records_device_id_id", type_="unique")
        batch_op.create_index(
            "uq_check_in_records_kept",
            ["device_id", "id"],
            unique=True,
            postgresql_where=sa.text("kept"),
            sqlite_where=sa.text("kept"),
        )


def downgrade() -> None:
    op.execute("DELETE FROM check_in_records WHERE NOT kept")
    with op.batch_alter_table("check_in_records", schema=None) as batch_op:
        batch_op.drop_index("uq_check_in_records_kept")
        batch_op.create_unique_constraint("uq_check_in_records_device_id_id", ["device_id", "id"])
        batch_op.drop_column("kept")
