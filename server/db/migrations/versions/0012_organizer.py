"""the organizer's view: conflict resolutions, console sign-in links and sessions

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conflict_resolutions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conflict_id", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=2100), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('admitted', 'refused', 'dismissed')", name=op.f("ck_conflict_resolutions_outcome")
        ),
        sa.ForeignKeyConstraint(
            ["conflict_id"],
            ["check_in_conflicts.id"],
            name=op.f("fk_conflict_resolutions_conflict_id_check_in_conflicts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conflict_resolutions")),
    )
    with op.batch_alter_table("conflict_resolutions", schema=None) as batch_op:
        batch_op.create_index("ix_conflict_resolutions_conflict", ["conflict_id", "id"], unique=False)
    op.create_table(
        "console_links",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("organizer_did", sa.String(length=2048), nullable=True),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("used_ms", sa.BigInteger(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_console_links")),
    )
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("organizer_did", sa.String(length=2048), nullable=True),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("ended_ms", sa.BigInteger(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_console_sessions")),
    )


def downgrade() -> None:
    op.drop_table("console_sessions")
    op.drop_table("console_links")
    with op.batch_alter_table("conflict_resolutions", schema=None) as batch_op:
        batch_op.drop_index("ix_conflict_resolutions_conflict")
    op.drop_table("conflict_resolutions")
