"""issuance, passes and webhooks

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from server.db.ddl import append_only

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("delivery_id", sa.String(length=64), nullable=False),
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("delivered_ms", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("state IN ('pending', 'delivered', 'dead')", name=op.f("ck_webhook_outbox_state")),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_webhook_outbox_app_id_apps")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_outbox")),
        sa.UniqueConstraint("delivery_id", name=op.f("uq_webhook_outbox_delivery_id")),
    )
    with op.batch_alter_table("webhook_outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_outbox_app_id"), ["app_id"], unique=False)
        batch_op.create_index("ix_webhook_outbox_due", ["state", "next_attempt_ms"], unique=False)

    op.create_table(
        "check_in_lists",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("tier_ids", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("allow_multiple_entries", sa.Boolean(), nullable=False),
        sa.Column("allow_reentry", sa.Boolean(), nullable=False),
        sa.Column("valid_from_ms", sa.BigInteger(), nullable=True),
        sa.Column("valid_until_ms", sa.BigInteger(), nullable=True),
        sa.Column("gates", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("status IN ('active', 'archived')", name=op.f("ck_check_in_lists_status")),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_check_in_lists_event_id_events")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_check_in_lists")),
    )
    with op.batch_alter_table("check_in_lists", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_check_in_lists_event_id"), ["event_id"], unique=False)

    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("response_excerpt", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["outbox_id"], ["webhook_outbox.id"], name=op.f("fk_webhook_attempts_outbox_id_webhook_outbox")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
    )
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_attempts_message", ["outbox_id", "id"], unique=False)

    op.create_table(
        "list_keys",
        sa.Column("list_id", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sealed_seed", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("retired_ms", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("status IN ('active', 'retired')", name=op.f("ck_list_keys_status")),
        sa.ForeignKeyConstraint(
            ["list_id"], ["check_in_lists.id"], name=op.f("fk_list_keys_list_id_check_in_lists")
        ),
        sa.PrimaryKeyConstraint("list_id", "key_id", name=op.f("pk_list_keys")),
        sa.UniqueConstraint("key_id", name=op.f("uq_list_keys_key_id")),
    )
    op.create_table(
        "payments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("payment_id", sa.String(length=300), nullable=False),
        sa.Column("hold_id", sa.String(length=64), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "status IN ('completed', 'refunded', 'partially_refunded', 'needs_refund', 'failed')",
            name=op.f("ck_payments_status"),
        ),
        sa.ForeignKeyConstraint(["hold_id"], ["holds.id"], name=op.f("fk_payments_hold_id_holds")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("environment", "payment_id", name=op.f("uq_payments_environment_payment_id")),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payments_hold_id"), ["hold_id"], unique=False)

    op.create_table(
        "tickets",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("tier_id", sa.String(length=64), nullable=False),
        sa.Column("capacity_group_id", sa.String(length=64), nullable=False),
        sa.Column("hold_id", sa.String(length=64), nullable=False),
        sa.Column("payment_id", sa.String(length=300), nullable=True),
        sa.Column("claim_id", sa.String(length=64), nullable=True),
        sa.Column("ticket_number", sa.String(length=32), nullable=False),
        sa.Column("buyer_did", sa.String(length=2048), nullable=True),
        sa.Column("attendee_name", sa.Text(), nullable=True),
        sa.Column("attendee_email", sa.String(length=320), nullable=True),
        sa.Column("unit_amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("status IN ('active', 'voided', 'refunded')", name=op.f("ck_tickets_status")),
        sa.CheckConstraint("generation >= 1", name=op.f("ck_tickets_generation_positive")),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_tickets_app_id_apps")),
        sa.ForeignKeyConstraint(
            ["capacity_group_id"],
            ["capacity_groups.id"],
            name=op.f("fk_tickets_capacity_group_id_capacity_groups"),
        ),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_tickets_event_id_events")),
        sa.ForeignKeyConstraint(["hold_id"], ["holds.id"], name=op.f("fk_tickets_hold_id_holds")),
        sa.ForeignKeyConstraint(["tier_id"], ["tiers.id"], name=op.f("fk_tickets_tier_id_tiers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
        sa.UniqueConstraint(
            "environment", "ticket_number", name=op.f("uq_tickets_environment_ticket_number")
        ),
    )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tickets_app_buyer", ["app_id", "environment", "buyer_did", "id"], unique=False
        )
        batch_op.create_index("ix_tickets_event", ["event_id", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tickets_hold_id"), ["hold_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tickets_payment_id"), ["payment_id"], unique=False)

    op.create_table(
        "ticket_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.String(length=64), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=2048), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_events_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_events")),
    )
    with op.batch_alter_table("ticket_events", schema=None) as batch_op:
        batch_op.create_index("ix_ticket_events_ticket", ["ticket_id", "id"], unique=False)

    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payment_id", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("claim_id", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("attendees", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True)
        )
        batch_op.create_unique_constraint(batch_op.f("uq_holds_claim_id"), ["claim_id"])

    # Idempotency keys are transient (leases and replays of recent calls): the table is rebuilt with
    # a generic scope so that app keys and broker delivery ids share one mechanism.
    op.drop_table("idempotency_keys")
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("lease_until_ms", sa.BigInteger(), nullable=False),
        sa.Column("response", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("state IN ('in_flight', 'done')", name=op.f("ck_idempotency_keys_state")),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_idempotency_keys")),
    )
    append_only("ticket_events")


def downgrade() -> None:
    op.drop_table("idempotency_keys")
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

    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_holds_claim_id"), type_="unique")
        batch_op.drop_column("attendees")
        batch_op.drop_column("claim_id")
        batch_op.drop_column("payment_id")

    with op.batch_alter_table("ticket_events", schema=None) as batch_op:
        batch_op.drop_index("ix_ticket_events_ticket")

    op.drop_table("ticket_events")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tickets_payment_id"))
        batch_op.drop_index(batch_op.f("ix_tickets_hold_id"))
        batch_op.drop_index("ix_tickets_event")
        batch_op.drop_index("ix_tickets_app_buyer")

    op.drop_table("tickets")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payments_hold_id"))

    op.drop_table("payments")
    op.drop_table("list_keys")
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_attempts_message")

    op.drop_table("webhook_attempts")
    with op.batch_alter_table("check_in_lists", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_check_in_lists_event_id"))

    op.drop_table("check_in_lists")
    with op.batch_alter_table("webhook_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_outbox_due")
        batch_op.drop_index(batch_op.f("ix_webhook_outbox_app_id"))

    op.drop_table("webhook_outbox")
