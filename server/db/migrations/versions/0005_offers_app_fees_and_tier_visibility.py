"""offers, app fees, tier visibility and rate counters

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_counters",
        sa.Column("scope", sa.String(length=512), nullable=False),
        sa.Column("window_ms", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "window_ms", name=op.f("pk_rate_counters")),
    )
    op.create_table(
        "offers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("owner_app_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("code_key", sa.String(length=100), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("discount_percent", sa.Integer(), nullable=True),
        sa.Column("discount_amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("tier_ids", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("starts_ms", sa.BigInteger(), nullable=True),
        sa.Column("ends_ms", sa.BigInteger(), nullable=True),
        sa.Column("max_redemptions", sa.Integer(), nullable=True),
        sa.Column("max_per_buyer", sa.Integer(), nullable=True),
        sa.Column("redeemed", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('discount', 'presale', 'affiliate', 'access-window')", name=op.f("ck_offers_kind")
        ),
        sa.CheckConstraint("status IN ('active', 'archived')", name=op.f("ck_offers_status")),
        sa.CheckConstraint(
            "discount_amount IS NULL OR discount_amount >= 0", name=op.f("ck_offers_amount_non_negative")
        ),
        sa.CheckConstraint(
            "discount_percent IS NULL OR (discount_percent >= 0 AND discount_percent <= 100)",
            name=op.f("ck_offers_percent_range"),
        ),
        sa.CheckConstraint(
            "discount_percent IS NULL OR discount_amount IS NULL", name=op.f("ck_offers_one_discount")
        ),
        sa.CheckConstraint(
            "redeemed >= 0 AND (max_redemptions IS NULL OR redeemed <= max_redemptions)",
            name=op.f("ck_offers_redeemed_within_cap"),
        ),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_offers_event_id_events")),
        sa.ForeignKeyConstraint(["owner_app_id"], ["apps.id"], name=op.f("fk_offers_owner_app_id_apps")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offers")),
        sa.UniqueConstraint("event_id", "code_key", name=op.f("uq_offers_event_id_code_key")),
    )
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_offers_event_id"), ["event_id"], unique=False)

    op.create_table(
        "offer_redemptions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("offer_id", sa.String(length=64), nullable=False),
        sa.Column("hold_id", sa.String(length=64), nullable=False),
        sa.Column("buyer_key", sa.String(length=2048), nullable=True),
        sa.Column("places", sa.Integer(), nullable=False),
        sa.Column("active_until_ms", sa.BigInteger(), nullable=True),
        sa.Column("consumed", sa.Boolean(), nullable=False),
        sa.CheckConstraint("places >= 1", name=op.f("ck_offer_redemptions_places_positive")),
        sa.ForeignKeyConstraint(["hold_id"], ["holds.id"], name=op.f("fk_offer_redemptions_hold_id_holds")),
        sa.ForeignKeyConstraint(
            ["offer_id"], ["offers.id"], name=op.f("fk_offer_redemptions_offer_id_offers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offer_redemptions")),
        sa.UniqueConstraint("hold_id", name=op.f("uq_offer_redemptions_hold_id")),
    )
    with op.batch_alter_table("offer_redemptions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_offer_redemptions_offer_active", ["offer_id", "active_until_ms"], unique=False
        )
        batch_op.create_index("ix_offer_redemptions_offer_buyer", ["offer_id", "buyer_key"], unique=False)

    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fee_bps", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("fee_flat", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.add_column(
            sa.Column("fee_to_buyer", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.create_check_constraint("fee_bps_range", "fee_bps >= 0 AND fee_bps <= 10000")
        batch_op.create_check_constraint("fee_flat_non_negative", "fee_flat >= 0")

    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subtotal_amount", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("discount_amount", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.add_column(
            sa.Column("buyer_fee_amount", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("app_fee_amount", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("offer_id", sa.String(length=64), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_holds_offer_id_offers"), "offers", ["offer_id"], ["id"])

    with op.batch_alter_table("tiers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("visibility", sa.String(length=16), server_default="public", nullable=False)
        )
        batch_op.create_check_constraint("visibility", "visibility IN ('public', 'unlisted', 'hidden')")

    # Holds made before offers and fees: what they charge is their subtotal.
    op.execute("UPDATE holds SET subtotal_amount = amount")


def downgrade() -> None:
    with op.batch_alter_table("tiers", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_tiers_visibility"), type_="check")
        batch_op.drop_column("visibility")

    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_holds_offer_id_offers"), type_="foreignkey")
        batch_op.drop_column("offer_id")
        batch_op.drop_column("app_fee_amount")
        batch_op.drop_column("buyer_fee_amount")
        batch_op.drop_column("discount_amount")
        batch_op.drop_column("subtotal_amount")

    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_apps_fee_flat_non_negative"), type_="check")
        batch_op.drop_constraint(batch_op.f("ck_apps_fee_bps_range"), type_="check")
        batch_op.drop_column("fee_to_buyer")
        batch_op.drop_column("fee_flat")
        batch_op.drop_column("fee_bps")

    with op.batch_alter_table("offer_redemptions", schema=None) as batch_op:
        batch_op.drop_index("ix_offer_redemptions_offer_buyer")
        batch_op.drop_index("ix_offer_redemptions_offer_active")

    op.drop_table("offer_redemptions")
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_offers_event_id"))

    op.drop_table("offers")
    op.drop_table("rate_counters")
