"""event record pins, event publications, published records and organizer accounts

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organizer_accounts",
        sa.Column("did", sa.String(length=2048), nullable=False),
        sa.Column("identifier", sa.String(length=253), nullable=False),
        sa.Column("sealed_password", sa.LargeBinary(), nullable=False),
        sa.Column("sealed_tokens", sa.LargeBinary(), nullable=True),
        sa.Column("pds_url", sa.String(length=2048), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("did", name=op.f("pk_organizer_accounts")),
    )
    op.create_table(
        "event_publications",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("organizer_did", sa.String(length=2048), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("published_version", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("published_ms", sa.BigInteger(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_event_publications_event_id_events")
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_event_publications")),
    )
    with op.batch_alter_table("event_publications", schema=None) as batch_op:
        batch_op.create_index("ix_event_publications_due", ["next_attempt_ms"], unique=False)

    op.create_table(
        "event_record_pins",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("cid", sa.String(length=256), nullable=True),
        sa.Column("resolved_ms", sa.BigInteger(), nullable=True),
        sa.Column("checked_ms", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_event_record_pins_event_id_events")
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_event_record_pins")),
    )
    op.create_table(
        "published_records",
        sa.Column("repo", sa.String(length=2048), nullable=False),
        sa.Column("collection", sa.String(length=317), nullable=False),
        sa.Column("rkey", sa.String(length=512), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("cid", sa.String(length=256), nullable=False),
        sa.Column("published_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_published_records_event_id_events")
        ),
        sa.PrimaryKeyConstraint("repo", "collection", "rkey", name=op.f("pk_published_records")),
    )
    with op.batch_alter_table("published_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_published_records_event_id"), ["event_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("published_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_published_records_event_id"))

    op.drop_table("published_records")
    op.drop_table("event_record_pins")
    with op.batch_alter_table("event_publications", schema=None) as batch_op:
        batch_op.drop_index("ix_event_publications_due")

    op.drop_table("event_publications")
    op.drop_table("organizer_accounts")
