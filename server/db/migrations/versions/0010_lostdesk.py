"""ticket references for desks' records, and the log of desks' searches

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sync.records import ticket_ref

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ticket_ref", sa.String(length=40), nullable=True))
    connection = op.get_bind()
    tickets = sa.table("tickets", sa.column("id", sa.String), sa.column("ticket_ref", sa.String))
    ids = connection.execute(sa.select(tickets.c.id)).scalars().all()
    if ids:
        connection.execute(
            tickets.update().where(tickets.c.id == sa.bindparam("ticket_id")),
            [{"ticket_id": ticket_id, "ticket_ref": ticket_ref(ticket_id)} for ticket_id in ids],
        )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.alter_column("ticket_ref", existing_type=sa.String(length=40), nullable=False)
        batch_op.create_index("ix_tickets_ticket_ref", ["ticket_ref"], unique=True)

    op.create_table(
        "device_searches",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("list_id", sa.String(length=64), nullable=False),
        sa.Column("query_kind", sa.String(length=16), nullable=False),
        sa.Column("matches", sa.Integer(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("query_kind IN ('number', 'name')", name=op.f("ck_device_searches_query_kind")),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_device_searches_device_id_devices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_searches")),
    )
    with op.batch_alter_table("device_searches", schema=None) as batch_op:
        batch_op.create_index("ix_device_searches_device", ["device_id", "at_ms"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("device_searches", schema=None) as batch_op:
        batch_op.drop_index("ix_device_searches_device")
    op.drop_table("device_searches")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_ticket_ref")
        batch_op.drop_column("ticket_ref")
