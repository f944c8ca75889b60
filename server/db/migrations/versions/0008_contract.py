"""metadata of events and capacity groups; how each app receives its lifecycle events

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("delivery", sa.String(length=16), server_default="webhook", nullable=False)
        )
        batch_op.create_check_constraint("delivery", "delivery IN ('webhook', 'xrpc')")
    for table in ("events", "capacity_groups"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("metadata", JSON, nullable=True))


def downgrade() -> None:
    for table in ("capacity_groups", "events"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("metadata")
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_apps_delivery"), type_="check")
        batch_op.drop_column("delivery")
