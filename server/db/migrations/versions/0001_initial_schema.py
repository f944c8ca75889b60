"""initial schema

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from server.db.ddl import append_only

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "apps",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("did", sa.String(length=2048), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("webhook_url", sa.String(length=2048), nullable=True),
        sa.Column("webhook_secret", sa.String(length=256), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("status IN ('active', 'disabled')", name=op.f("ck_apps_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apps")),
        sa.UniqueConstraint("did", "environment", name=op.f("uq_apps_did_environment")),
    )
    op.create_table(
        "jwt_replays",
        sa.Column("iss", sa.String(length=2048), nullable=False),
        sa.Column("jti", sa.String(length=200), nullable=False),
        sa.Column("exp", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("iss", "jti", name=op.f("pk_jwt_replays")),
    )
    with op.batch_alter_table("jwt_replays", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_jwt_replays_exp"), ["exp"], unique=False)

    op.create_table(
        "ledger",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=True),
        sa.Column("subject", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=2048), nullable=True),
        sa.Column("data", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger")),
    )
    with op.batch_alter_table("ledger", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_event_id"), ["event_id"], unique=False)
        batch_op.create_index("ix_ledger_subject", ["subject_id", "id"], unique=False)

    op.create_table(
        "events",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("organizer_did", sa.String(length=2048), nullable=False),
        sa.Column("owner_app_id", sa.String(length=64), nullable=False),
        sa.Column("uri", sa.String(length=2048), nullable=False),
        sa.Column("cid", sa.String(length=256), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("starts_ms", sa.BigInteger(), nullable=True),
        sa.Column("ends_ms", sa.BigInteger(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("url", sa.String(length=2048), nullable=True),
        sa.Column("image_url", sa.String(length=2048), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("status IN ('active', 'paused', 'archived')", name=op.f("ck_events_status")),
        sa.ForeignKeyConstraint(["owner_app_id"], ["apps.id"], name=op.f("fk_events_owner_app_id_apps")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("environment", "uri", name=op.f("uq_events_environment_uri")),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("method", sa.String(length=128), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("lease_until_ms", sa.BigInteger(), nullable=False),
        sa.Column("response", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("state IN ('in_flight', 'done')", name=op.f("ck_idempotency_keys_state")),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_idempotency_keys_app_id_apps")),
        sa.PrimaryKeyConstraint("app_id", "environment", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_table(
        "capacity_groups",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("total_capacity", sa.Integer(), nullable=False),
        sa.Column("sold", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("implicit", sa.Boolean(), nullable=False),
        sa.Column("owner_app_id", sa.String(length=64), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("status IN ('active', 'archived')", name=op.f("ck_capacity_groups_status")),
        sa.CheckConstraint(
            "sold >= 0 AND sold <= total_capacity", name=op.f("ck_capacity_groups_sold_within_capacity")
        ),
        sa.CheckConstraint("total_capacity >= 1", name=op.f("ck_capacity_groups_capacity_positive")),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_capacity_groups_event_id_events")),
        sa.ForeignKeyConstraint(
            ["owner_app_id"], ["apps.id"], name=op.f("fk_capacity_groups_owner_app_id_apps")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_capacity_groups")),
    )
    with op.batch_alter_table("capacity_groups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_capacity_groups_event_id"), ["event_id"], unique=False)

    op.create_table(
        "holds",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("token", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("buyer_did", sa.String(length=2048), nullable=True),
        sa.Column("customer_email", sa.String(length=320), nullable=True),
        sa.Column("return_url", sa.String(length=2048), nullable=True),
        sa.Column("cancel_url", sa.String(length=2048), nullable=True),
        sa.Column("metadata", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "status IN ('held', 'completed', 'released', 'expired', 'failed')", name=op.f("ck_holds_status")
        ),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_holds_amount_non_negative")),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_holds_app_id_apps")),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_holds_event_id_events")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holds")),
        sa.UniqueConstraint("token", name=op.f("uq_holds_token")),
    )
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_holds_event_id"), ["event_id"], unique=False)
        batch_op.create_index("ix_holds_held_expiry", ["status", "expires_ms"], unique=False)

    op.create_table(
        "tiers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("capacity_group_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("unit_amount", sa.BigInteger(), nullable=False),
        sa.Column("quantity_total", sa.Integer(), nullable=False),
        sa.Column("sold", sa.Integer(), nullable=False),
        sa.Column("max_per_order", sa.Integer(), nullable=False),
        sa.Column("sale_starts_ms", sa.BigInteger(), nullable=True),
        sa.Column("sale_ends_ms", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("tier_ref", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("product_ref", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("price_ref", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("metadata", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("owner_app_id", sa.String(length=64), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("status IN ('active', 'paused', 'archived')", name=op.f("ck_tiers_status")),
        sa.CheckConstraint("max_per_order >= 1", name=op.f("ck_tiers_max_per_order_positive")),
        sa.CheckConstraint("quantity_total >= 1", name=op.f("ck_tiers_quantity_positive")),
        sa.CheckConstraint(
            "sold >= 0 AND sold <= quantity_total", name=op.f("ck_tiers_sold_within_quantity")
        ),
        sa.CheckConstraint("unit_amount >= 0", name=op.f("ck_tiers_amount_non_negative")),
        sa.ForeignKeyConstraint(
            ["capacity_group_id"],
            ["capacity_groups.id"],
            name=op.f("fk_tiers_capacity_group_id_capacity_groups"),
        ),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_tiers_event_id_events")),
        sa.ForeignKeyConstraint(["owner_app_id"], ["apps.id"], name=op.f("fk_tiers_owner_app_id_apps")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tiers")),
    )
    with op.batch_alter_table("tiers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tiers_capacity_group_id"), ["capacity_group_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tiers_event_id"), ["event_id"], unique=False)

    op.create_table(
        "hold_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("hold_id", sa.String(length=64), nullable=False),
        sa.Column("tier_id", sa.String(length=64), nullable=False),
        sa.Column("capacity_group_id", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_amount", sa.BigInteger(), nullable=False),
        sa.Column("active_until_ms", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("quantity >= 1", name=op.f("ck_hold_items_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["capacity_group_id"],
            ["capacity_groups.id"],
            name=op.f("fk_hold_items_capacity_group_id_capacity_groups"),
        ),
        sa.ForeignKeyConstraint(["hold_id"], ["holds.id"], name=op.f("fk_hold_items_hold_id_holds")),
        sa.ForeignKeyConstraint(["tier_id"], ["tiers.id"], name=op.f("fk_hold_items_tier_id_tiers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hold_items")),
        sa.UniqueConstraint("hold_id", "tier_id", name=op.f("uq_hold_items_hold_id_tier_id")),
    )
    with op.batch_alter_table("hold_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_hold_items_group_active", ["capacity_group_id", "active_until_ms"], unique=False
        )

    append_only("ledger")


def downgrade() -> None:
    with op.batch_alter_table("hold_items", schema=None) as batch_op:
        batch_op.drop_index("ix_hold_items_group_active")

    op.drop_table("hold_items")
    with op.batch_alter_table("tiers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tiers_event_id"))
        batch_op.drop_index(batch_op.f("ix_tiers_capacity_group_id"))

    op.drop_table("tiers")
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.drop_index("ix_holds_held_expiry")
        batch_op.drop_index(batch_op.f("ix_holds_event_id"))

    op.drop_table("holds")
    with op.batch_alter_table("capacity_groups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_capacity_groups_event_id"))

    op.drop_table("capacity_groups")
    op.drop_table("idempotency_keys")
    op.drop_table("events")
    with op.batch_alter_table("ledger", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_subject")
        batch_op.drop_index(batch_op.f("ix_ledger_event_id"))

    op.drop_table("ledger")
    with op.batch_alter_table("jwt_replays", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jwt_replays_exp"))

    op.drop_table("jwt_replays")
    op.drop_table("apps")
