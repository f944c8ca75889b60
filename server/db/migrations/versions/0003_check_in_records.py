"""check-in records

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from server.db.ddl import append_only

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "check_in_records",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("list_id", sa.String(length=64), nullable=False),
        sa.Column("ticket_id", sa.String(length=64), nullable=True),
        sa.Column("token_generation", sa.Integer(), nullable=True),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("gate", sa.String(length=100), nullable=True),
        sa.Column("scanner_did", sa.String(length=2048), nullable=True),
        sa.Column("app_id", sa.String(length=64), nullable=True),
        sa.Column("device_ms", sa.BigInteger(), nullable=False),
        sa.Column("server_ms", sa.BigInteger(), nullable=False),
        sa.Column("metadata", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.CheckConstraint(
            "decision IN ('admit', 'refuse', 'attention')", name=op.f("ck_check_in_records_decision")
        ),
        sa.CheckConstraint("direction IN ('entry', 'exit')", name=op.f("ck_check_in_records_direction")),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_check_in_records_app_id_apps")),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_check_in_records_event_id_events")
        ),
        sa.ForeignKeyConstraint(
            ["list_id"], ["check_in_lists.id"], name=op.f("fk_check_in_records_list_id_check_in_lists")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_check_in_records")),
        sa.UniqueConstraint("device_id", "id", name=op.f("uq_check_in_records_device_id_id")),
    )
    with op.batch_alter_table("check_in_records", schema=None) as batch_op:
        batch_op.create_index("ix_check_in_records_list", ["list_id", "seq"], unique=False)
        batch_op.create_index(
            "ix_check_in_records_ticket", ["ticket_id", "list_id", "server_ms"], unique=False
        )
    append_only("check_in_records")


def downgrade() -> None:
    with op.batch_alter_table("check_in_records", schema=None) as batch_op:
        batch_op.drop_index("ix_check_in_records_ticket")
        batch_op.drop_index("ix_check_in_records_list")

    op.drop_table("check_in_records")
