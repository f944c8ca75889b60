"""devices, ticket change feed and conflicts

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from server.db.ddl import append_only

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("list_ids", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=True),
        sa.Column("code_expires_ms", sa.BigInteger(), nullable=True),
        sa.Column("credential_hash", sa.String(length=64), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("enrolled_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_seen_ms", sa.BigInteger(), nullable=True),
        sa.Column("revoked_ms", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'active', 'revoked')", name=op.f("ck_devices_status")),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_devices_event_id_events")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_devices_code_hash")),
    )
    op.create_table(
        "check_in_conflicts",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("list_id", sa.String(length=64), nullable=False),
        sa.Column("ticket_id", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("records", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("detected_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_check_in_conflicts_event_id_events")
        ),
        sa.ForeignKeyConstraint(
            ["list_id"], ["check_in_lists.id"], name=op.f("fk_check_in_conflicts_list_id_check_in_lists")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_check_in_conflicts")),
    )
    with op.batch_alter_table("check_in_conflicts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_check_in_conflicts_event_id"), ["event_id"], unique=False)

    op.create_table(
        "ticket_changes",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("ticket_id", sa.String(length=64), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_ticket_changes_event_id_events")),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_changes_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_ticket_changes")),
    )
    with op.batch_alter_table("ticket_changes", schema=None) as batch_op:
        batch_op.create_index("ix_ticket_changes_event", ["event_id", "seq"], unique=False)

    with op.batch_alter_table("check_in_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("clock_offset_ms", sa.BigInteger(), nullable=False, server_default="0"))
    append_only("ticket_changes")


def downgrade() -> None:
    with op.batch_alter_table("check_in_records", schema=None) as batch_op:
        batch_op.drop_column("clock_offset_ms")

    with op.batch_alter_table("ticket_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_ticket_changes_event")

    op.drop_table("ticket_changes")
    with op.batch_alter_table("check_in_conflicts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_check_in_conflicts_event_id"))

    op.drop_table("check_in_conflicts")
    op.drop_table("devices")
