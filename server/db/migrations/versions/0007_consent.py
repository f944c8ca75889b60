"""organizer consents

Revision ID: 0007
Revises: 0006

No consent is carried over from before: an event an app ticketed earlier stays its app's, but the
app changes it again only after a call carrying the organizer's assertion.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organizer_consents",
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("organizer_did", sa.String(length=2048), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("jti", sa.String(length=200), nullable=False),
        sa.Column("granted_ms", sa.BigInteger(), nullable=False),
        sa.Column("revoked_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_organizer_consents_app_id_apps")),
        sa.PrimaryKeyConstraint("app_id", "organizer_did", name=op.f("pk_organizer_consents")),
    )
    with op.batch_alter_table("organizer_consents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_organizer_consents_organizer_did"), ["organizer_did"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("organizer_consents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_organizer_consents_organizer_did"))
    op.drop_table("organizer_consents")
