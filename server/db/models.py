"""Tables. Times are integer milliseconds since the Unix epoch (``*_ms``): exact, portable between
SQLite and PostgreSQL, cheap to compare in SQL. Money is integer minor units. Invariants that must
hold whatever the code does live here as constraints."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sync.records import ticket_ref

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonType = JSON().with_variant(JSONB(), "postgresql")
Id = String(64)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class App(Base):
    """An event app allowed to call, per environment (data is fully separate per environment)."""

    __tablename__ = "apps"
    __table_args__ = (
        UniqueConstraint("did", "environment"),
        CheckConstraint("status IN ('active', 'disabled')", name="status"),
        CheckConstraint("fee_bps >= 0 AND fee_bps <= 10000", name="fee_bps_range"),
        CheckConstraint("fee_flat >= 0", name="fee_flat_non_negative"),
        CheckConstraint("delivery IN ('webhook', 'xrpc')", name="delivery"),
    )

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    did: Mapped[str] = mapped_column(String(2048))
    environment: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="active")
    webhook_url: Mapped[str | None] = mapped_column(String(2048))
    webhook_secret: Mapped[str | None] = mapped_column(String(256))
    # The app's fee on every paid order: basis points of what the tickets cost after discounts plus
    # a flat amount per ticket (minor units), added to the buyer's total when ``fee_to_buyer``.
    fee_bps: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    fee_flat: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    fee_to_buyer: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # How lifecycle events reach the app: HMAC-signed webhooks to ``webhook_url``, or XRPC
    # ``money.atmosphere.event.receive`` calls to the ``#AtmEventReceiver`` service of its DID document.
    delivery: Mapped[str] = mapped_column(String(16), default="webhook", server_default="webhook")
    created_ms: Mapped[int] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class JwtReplay(Base):
    """Seen ``(iss, jti)`` pairs until their ``exp``: a replayed service-auth token is refused in
    every server process, not only the one that saw it first."""

    __tablename__ = "jwt_replays"

    iss: Mapped[str] = mapped_column(String(2048), primary_key=True)
    jti: Mapped[str] = mapped_column(String(200), primary_key=True)
    exp: Mapped[int] = mapped_column(BigInteger, index=True)


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("environment", "uri"),
        CheckConstraint("status IN ('active', 'paused', 'archived')", name="status"),
    )

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    environment: Mapped[str] = mapped_column(String(16))
    organizer_did: Mapped[str] = mapped_column(String(2048))
    owner_app_id: Mapped[str] = mapped_column(ForeignKey("apps.id"))
    uri: Mapped[str] = mapped_column(String(2048))
    cid: Mapped[str | None] = mapped_column(String(256))
    title: Mapped[str] = mapped_column(Text)
    starts_ms: Mapped[int | None] = mapped_column(BigInteger)
    ends_ms: Mapped[int | None] = mapped_column(BigInteger)
    timezone: Mapped[str | None] = mapped_column(String(64))
    url: Mapped[str | None] = mapped_column(String(2048))
    image_url: Mapped[str | None] = mapped_column(String(2048))
    # Where it takes place, as text, from the locations of the pinned calendar record.
    place: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    metadata_: Mapped[Any] = mapped_column("metadata", JsonType, nullable=True)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class CapacityGroup(Base):
    """A shared pool of places. Its row is the one lock every hold on its tiers takes."""

    __tablename__ = "capacity_groups"
    __table_args__ = (
        CheckConstraint("total_capacity >= 1", name="capacity_positive"),
        CheckConstraint("sold >= 0 AND sold <= total_capacity", name="sold_within_capacity"),
        CheckConstraint("status IN ('active', 'archived')", name="status"),
    )

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), index=True)
    name: Mapped[str] = mapped_column(Text)
    total_capacity: Mapped[int] = mapped_column(Integer)
    sold: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))
    implicit: Mapped[bool] = mapped_column(Boolean, default=False)
    metadata_: Mapped[Any] = mapped_column("metadata", JsonType, nullable=True)
    owner_app_id: Mapped[str] = mapped_column(ForeignKey("apps.id"))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class Tier(Base):
    __tablename__ = "tiers"
    __table_args__ = (
        CheckConstraint("quantity_total >= 1", name="quantity_positive"),
        CheckConstraint("sold >= 0 AND sold <= quantity_total", name="sold_within_quantity"),
        CheckConstraint("unit_amount >= 0", name="amount_non_negative"),
        CheckConstraint("max_per_order >= 1", name="max_per_order_positive"),
        CheckConstraint("status IN ('active', 'paused', 'archived')", name="status"),
        CheckConstraint("visibility IN ('public', 'unlisted', 'hidden')", name="visibility"),
    )

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), index=True)
    capacity_group_id: Mapped[str] = mapped_column(ForeignKey("capacity_groups.id"), index=True)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    currency: Mapped[str] = mapped_column(String(3))
    unit_amount: Mapped[int] = mapped_column(BigInteger)
    quantity_total: Mapped[int] = mapped_column(Integer)
    sold: Mapped[int] = mapped_column(Integer, default=0)
    max_per_order: Mapped[int] = mapped_column(Integer)
    sale_starts_ms: Mapped[int | None] = mapped_column(BigInteger)
    sale_ends_ms: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    # ``public``: listed; ``unlisted``: sold to whoever has its id, listed only with an access
    # code; ``hidden``: listed and sold only with an access code (see docs/offers.md).
    visibility: Mapped[str] = mapped_column(String(16), default="public", server_default="public")
    tier_ref: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    product_ref: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    price_ref: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    metadata_: Mapped[Any] = mapped_column("metadata", JsonType, nullable=True)
    owner_app_id: Mapped[str] = mapped_column(ForeignKey("apps.id"))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class Hold(Base):
    """A short checkout reservation. ``status`` is ``held`` until it completes, is released or fails,
    or the sweeper marks it ``expired``; a ``held`` hold past ``expires_ms`` already counts as expired."""

    __tablename__ = "holds"
    __table_args__ = (
        CheckConstraint("status IN ('held', 'completed', 'released', 'expired', 'failed')", name="status"),
        CheckConstraint("amount >= 0", name="amount_non_negative"),
        Index("ix_holds_held_expiry", "status", "expires_ms"),
    )

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id"))
    environment: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), index=True)
    token: Mapped[str] = mapped_column(String(128), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    buyer_did: Mapped[str | None] = mapped_column(String(2048))
    customer_email: Mapped[str | None] = mapped_column(String(320))
    return_url: Mapped[str | None] = mapped_column(String(2048))
    cancel_url: Mapped[str | None] = mapped_column(String(2048))
    metadata_: Mapped[Any] = mapped_column("metadata", JsonType, nullable=True)
    # What the buyer pays: subtotal - discount + buyer fee (see server.domain.offers.pricing).
    amount: Mapped[int] = mapped_column(BigInteger)
    subtotal_amount: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    discount_amount: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    buyer_fee_amount: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    app_fee_amount: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    offer_id: Mapped[str | None] = mapped_column(ForeignKey("offers.id"))
    currency: Mapped[str] = mapped_column(String(3))
    expires_ms: Mapped[int] = mapped_column(BigInteger)
    # Set when the hold completes: by a payment, or by a free claim.
    payment_id: Mapped[str | None] = mapped_column(String(300))
    claim_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Attendee details collected at checkout, one entry per place: [{"name": ..., "email": ...}].
    attendees: Mapped[Any] = mapped_column(JsonType, nullable=True)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class HoldItem(Base):
    """One tier line of a hold. ``active_until_ms`` is the hold's expiry while it is ``held`` and NULL
    once it is not: the places it reserves are ``SUM(quantity) WHERE active_until_ms > now``."""

    __tablename__ = "hold_items"
    __table_args__ = (
        CheckConstraint("quantity >= 1", name="quantity_positive"),
        UniqueConstraint("hold_id", "tier_id"),
        Index("ix_hold_items_group_active", "capacity_group_id", "active_until_ms"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hold_id: Mapped[str] = mapped_column(ForeignKey("holds.id"))
    tier_id: Mapped[str] = mapped_column(ForeignKey("tiers.id"))
    capacity_group_id: Mapped[str] = mapped_column(ForeignKey("capacity_groups.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_amount: Mapped[int] = mapped_column(BigInteger)
    active_until_ms: Mapped[int | None] = mapped_column(BigInteger)


class Offer(Base):
    """A code buyers enter: a discount, a presale or access window that unlocks tiers, or an
    affiliate's tracking code. ``redeemed`` counts the tickets of completed holds; unexpired holds
    reserve more through :class:`OfferRedemption`, like places in a capacity group."""

    __tablename__ = "offers"
    __table_args__ = (
        UniqueConstraint("event_id", "code_key"),
        CheckConstraint("kind IN ('discount', 'presale', 'affiliate', 'access-window')", name="kind"),
        CheckConstraint("status IN ('active', 'archived')", name="status"),
        CheckConstraint(
            "discount_percent IS NULL OR (discount_percent >= 0 AND discount_percent <= 100)",
            name="percent_range",
        ),
        CheckConstraint("discount_amount IS NULL OR discount_amount >= 0", name="amount_non_negative"),
        CheckConstraint("discount_percent IS NULL OR discount_amount IS NULL", name="one_discount"),
        CheckConstraint(
            "redeemed >= 0 AND (max_redemptions IS NULL OR redeemed <= max_redemptions)",
            name="redeemed_within_cap",
        ),
    )

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    environment: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), index=True)
    owner_app_id: Mapped[str] = mapped_column(ForeignKey("apps.id"))
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(100))
    # The code as matched: case and surrounding blanks do not count.
    code_key: Mapped[str] = mapped_column(String(100))
    public: Mapped[bool] = mapped_column(Boolean)
    discount_percent: Mapped[int | None] = mapped_column(Integer)
    discount_amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    tier_ids: Mapped[list[str] | None] = mapped_column(JsonType)
    starts_ms: Mapped[int | None] = mapped_column(BigInteger)
    ends_ms: Mapped[int | None] = mapped_column(BigInteger)
    max_redemptions: Mapped[int | None] = mapped_column(Integer)
    max_per_buyer: Mapped[int | None] = mapped_column(Integer)
    redeemed: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class OfferRedemption(Base):
    """The tickets of one hold that use an offer. ``active_until_ms`` is the hold's expiry while it
    is ``held`` (the redemption is reserved until then) and NULL once it is not; ``consumed`` when
    the hold completed."""

    __tablename__ = "offer_redemptions"
    __table_args__ = (
        CheckConstraint("places >= 1", name="places_positive"),
        Index("ix_offer_redemptions_offer_active", "offer_id", "active_until_ms"),
        Index("ix_offer_redemptions_offer_buyer", "offer_id", "buyer_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    offer_id: Mapped[str] = mapped_column(ForeignKey("offers.id"))
    hold_id: Mapped[str] = mapped_column(ForeignKey("holds.id"), unique=True)
    buyer_key: Mapped[str | None] = mapped_column(String(2048))
    places: Mapped[int] = mapped_column(Integer)
    active_until_ms: Mapped[int | None] = mapped_column(BigInteger)
    consumed: Mapped[bool] = mapped_column(Boolean, default=False)


class RateCounter(Base):
    """Events counted per scope in fixed windows (``window_ms`` is the window's start), shared by
    every server process: the one rate limiter's counts (``server.domain.ratelimit``)."""

    __tablename__ = "rate_counters"

    scope: Mapped[str] = mapped_column(String(512), primary_key=True)
    window_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class LedgerEntry(Base):
    """Append-only history of every catalog, capacity and hold change (database triggers refuse
    UPDATE and DELETE)."""

    __tablename__ = "ledger"
    __table_args__ = (Index("ix_ledger_subject", "subject_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at_ms: Mapped[int] = mapped_column(BigInteger)
    environment: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str | None] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str | None] = mapped_column(String(2048))
    data: Mapped[Any] = mapped_column(JsonType, nullable=True)


class IdempotencyKey(Base):
    """A key that makes a call happen once within its ``scope`` (an app's idempotency keys, or the
    payment broker's delivery ids): ``in_flight`` while the first call runs (leased until
    ``lease_until_ms``, so a crashed call does not block the key forever), then ``done`` with the
    response to replay."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (CheckConstraint("state IN ('in_flight', 'done')", name="state"),)

    scope: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    lease_until_ms: Mapped[int] = mapped_column(BigInteger)
    response: Mapped[Any] = mapped_column(JsonType, nullable=True)
    created_ms: Mapped[int] = mapped_column(BigInteger)


class CheckInList(Base):
    """A door list. Each has its own signing keys; a pass carries a signature per list admitting it."""

    __tablename__ = "check_in_lists"
    __table_args__ = (CheckConstraint("status IN ('active', 'archived')", name="status"),)

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), index=True)
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    # Tier ids this list admits; NULL admits every tier of the event.
    tier_ids: Mapped[list[str] | None] = mapped_column(JsonType)
    allow_multiple_entries: Mapped[bool] = mapped_column(Boolean, default=False)
    allow_reentry: Mapped[bool] = mapped_column(Boolean, default=False)
    valid_from_ms: Mapped[int | None] = mapped_column(BigInteger)
    valid_until_ms: Mapped[int | None] = mapped_column(BigInteger)
    gates: Mapped[list[str] | None] = mapped_column(JsonType)
    status: Mapped[str] = mapped_column(String(16))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class ListKey(Base):
    """An Ed25519 key pair of one check-in list. The private half is encrypted under the server
    key; a retired key still verifies the passes it signed but signs nothing new."""

    __tablename__ = "list_keys"
    __table_args__ = (CheckConstraint("status IN ('active', 'retired')", name="status"),)

    list_id: Mapped[str] = mapped_column(ForeignKey("check_in_lists.id"), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16), primary_key=True, unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sealed_seed: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    retired_ms: Mapped[int | None] = mapped_column(BigInteger)


class Ticket(Base):
    """An issued ticket. ``status`` caches the last row of its append-only history
    (``ticket_events``), written in the same transaction."""

    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("environment", "ticket_number"),
        CheckConstraint("status IN ('active', 'voided', 'refunded')", name="status"),
        CheckConstraint("generation >= 1", name="generation_positive"),
        Index("ix_tickets_app_buyer", "app_id", "environment", "buyer_did", "id"),
        Index("ix_tickets_event", "event_id", "id"),
        Index("ix_tickets_ticket_ref", "ticket_ref", unique=True),
    )

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    # How desks name the ticket (sync.records.ticket_ref): their uploads are resolved by it.
    ticket_ref: Mapped[str] = mapped_column(
        String(40), default=lambda context: ticket_ref(context.get_current_parameters()["id"])
    )
    environment: Mapped[str] = mapped_column(String(16))
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id"))
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"))
    tier_id: Mapped[str] = mapped_column(ForeignKey("tiers.id"))
    capacity_group_id: Mapped[str] = mapped_column(ForeignKey("capacity_groups.id"))
    hold_id: Mapped[str] = mapped_column(ForeignKey("holds.id"), index=True)
    payment_id: Mapped[str | None] = mapped_column(String(300), index=True)
    claim_id: Mapped[str | None] = mapped_column(String(64))
    ticket_number: Mapped[str] = mapped_column(String(32))
    buyer_did: Mapped[str | None] = mapped_column(String(2048))
    attendee_name: Mapped[str | None] = mapped_column(Text)
    attendee_email: Mapped[str | None] = mapped_column(String(320))
    unit_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    # Increases on transfer: passes of older generations are revoked.
    generation: Mapped[int] = mapped_column(Integer, default=1)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class TicketEvent(Base):
    """Append-only history of a ticket: what happened (``action``: issued, voided, refunded,
    transferred) and the status and generation it left the ticket in."""

    __tablename__ = "ticket_events"
    __table_args__ = (Index("ix_ticket_events_ticket", "ticket_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"))
    at_ms: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    generation: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str | None] = mapped_column(String(2048))
    reason: Mapped[str | None] = mapped_column(Text)
    data: Mapped[Any] = mapped_column(JsonType, nullable=True)


PAYMENT_STATUSES = ("completed", "refunded", "partially_refunded", "needs_refund", "needs_review", "failed")


class Payment(Base):
    """A payment the broker reported for a hold: one row per payment id, the state of its state
    machine (docs/issuance.md). ``needs_refund`` marks money taken for places that could not be
    issued (paid after expiry, sold out meanwhile); ``needs_review`` a payment whose amount or
    currency is not the hold's. ``refunded_amount`` adds up the refunds the broker reported."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("environment", "payment_id"),
        CheckConstraint(f"status IN ({', '.join(repr(s) for s in PAYMENT_STATUSES)})", name="status"),
        CheckConstraint("refunded_amount >= 0", name="refunded_amount_non_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    environment: Mapped[str] = mapped_column(String(16))
    payment_id: Mapped[str] = mapped_column(String(300))
    hold_id: Mapped[str | None] = mapped_column(ForeignKey("holds.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(24))
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    reason: Mapped[str | None] = mapped_column(Text)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class OutboxMessage(Base):
    """A lifecycle webhook to one app, written in the transaction of the change it reports and
    delivered at least once by the delivery worker, under a stable ``delivery_id``."""

    __tablename__ = "webhook_outbox"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'delivered', 'dead')", name="state"),
        Index("ix_webhook_outbox_due", "state", "next_attempt_ms"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(String(64), unique=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id"), index=True)
    environment: Mapped[str] = mapped_column(String(16))
    event_type: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_ms: Mapped[int] = mapped_column(BigInteger)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    delivered_ms: Mapped[int | None] = mapped_column(BigInteger)
    # The id of the request that caused the event (sent as ``X-Request-Id`` with every attempt).
    request_id: Mapped[str | None] = mapped_column(String(64))


class MailMessage(Base):
    """An e-mail to a buyer about their tickets (issued, voided, refunded, transferred, sent again),
    written in the transaction of the change it tells and sent at least once by the mail worker.
    The message itself is composed when it is sent, from the tickets as they are then."""

    __tablename__ = "mail_outbox"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'sent', 'dead')", name="state"),
        CheckConstraint("kind IN ('issued', 'voided', 'refunded', 'transferred', 'resent')", name="kind"),
        Index("ix_mail_outbox_due", "state", "next_attempt_ms"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    environment: Mapped[str] = mapped_column(String(16))
    hold_id: Mapped[str] = mapped_column(ForeignKey("holds.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(320))
    ticket_ids: Mapped[list[str]] = mapped_column(JsonType)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_ms: Mapped[int] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    sent_ms: Mapped[int | None] = mapped_column(BigInteger)


class WebhookAttempt(Base):
    """The delivery log: one row per attempt to deliver an outbox message."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_message", "outbox_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("webhook_outbox.id"))
    at_ms: Mapped[int] = mapped_column(BigInteger)
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer)
    response_excerpt: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)


class CheckInRecord(Base):
    """One scan, admitted or refused, online or from a device: the append-only check-in log.

    ``(device_id, id)`` is a record's key. Every distinct record is stored once however often it is
    uploaded; of two different records under one key (a reused key) both are stored, and the one
    the kernel's acceptance rule keeps (:func:`sync.protocol.accept`) is ``kept``: door state,
    counts and exports read kept records only, pulls serve them all. Online scans carry the device
    id ``online``."""

    __tablename__ = "check_in_records"
    __table_args__ = (
        Index(
            "uq_check_in_records_kept",
            "device_id",
            "id",
            unique=True,
            postgresql_where=text("kept"),
            sqlite_where=text("kept"),
        ),
        CheckConstraint("direction IN ('entry', 'exit')", name="direction"),
        CheckConstraint("decision IN ('admit', 'refuse', 'attention')", name="decision"),
        Index("ix_check_in_records_ticket", "ticket_id", "list_id", "server_ms"),
        Index("ix_check_in_records_list", "list_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64))
    device_id: Mapped[str] = mapped_column(String(64))
    environment: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"))
    list_id: Mapped[str] = mapped_column(ForeignKey("check_in_lists.id"))
    ticket_id: Mapped[str | None] = mapped_column(String(64))
    token_generation: Mapped[int | None] = mapped_column(Integer)
    direction: Mapped[str] = mapped_column(String(8))
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(32))
    gate: Mapped[str | None] = mapped_column(String(100))
    scanner_did: Mapped[str | None] = mapped_column(String(2048))
    # A manual admission at a desk: door staff's reason (sync.records.Record.manual_reason).
    manual_reason: Mapped[str | None] = mapped_column(String(100))
    app_id: Mapped[str | None] = mapped_column(ForeignKey("apps.id"))
    device_ms: Mapped[int] = mapped_column(BigInteger)
    # Server time minus device time as the device last measured it; device_ms + offset orders scans.
    clock_offset_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    server_ms: Mapped[int] = mapped_column(BigInteger)
    metadata_: Mapped[Any] = mapped_column("metadata", JsonType, nullable=True)
    kept: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class Device(Base):
    """A desk scanner: enrolled with a one-time code for some check-in lists, then authenticated by a
    secret credential (only its hash is stored). A revoked device is refused and told to wipe."""

    __tablename__ = "devices"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'active', 'revoked')", name="status"),
        UniqueConstraint("code_hash"),
    )

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    environment: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"))
    list_ids: Mapped[list[str]] = mapped_column(JsonType)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    code_hash: Mapped[str | None] = mapped_column(String(64))
    code_expires_ms: Mapped[int | None] = mapped_column(BigInteger)
    credential_hash: Mapped[str | None] = mapped_column(String(64))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    enrolled_ms: Mapped[int | None] = mapped_column(BigInteger)
    last_seen_ms: Mapped[int | None] = mapped_column(BigInteger)
    revoked_ms: Mapped[int | None] = mapped_column(BigInteger)


class DeviceSearch(Base):
    """One ``searchTickets`` call of a desk: when, on which list, what kind of query (a ticket
    number or a name) and how many tickets it found; never the query itself."""

    __tablename__ = "device_searches"
    __table_args__ = (
        CheckConstraint("query_kind IN ('number', 'name')", name="query_kind"),
        Index("ix_device_searches_device", "device_id", "at_ms"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    list_id: Mapped[str] = mapped_column(Id)
    query_kind: Mapped[str] = mapped_column(String(16))
    matches: Mapped[int] = mapped_column(Integer)
    at_ms: Mapped[int] = mapped_column(BigInteger)


class TicketChange(Base):
    """Append-only change feed of tickets per event: scanner bundles are brought up to date from it
    (``seq`` is the delta cursor)."""

    __tablename__ = "ticket_changes"
    __table_args__ = (Index("ix_ticket_changes_event", "event_id", "seq"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"))
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"))
    at_ms: Mapped[int] = mapped_column(BigInteger)


class CheckInConflict(Base):
    """A conflict the merge rules derived from the check-in records (two admissions of one ticket,
    an admission after a void, …): kept for the organizer, identified deterministically."""

    __tablename__ = "check_in_conflicts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    environment: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), index=True)
    list_id: Mapped[str] = mapped_column(ForeignKey("check_in_lists.id"))
    ticket_id: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    records: Mapped[Any] = mapped_column(JsonType)
    detected_ms: Mapped[int] = mapped_column(BigInteger)


# --- atproto: the event graph and the public records written to organizers' repositories --------


class EventRecordPin(Base):
    """The calendar event record version this service last read and verified for an event
    (``events.cid`` is set to it), and how the last read went: ``error`` says why it failed."""

    __tablename__ = "event_record_pins"

    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), primary_key=True)
    cid: Mapped[str | None] = mapped_column(String(256))
    resolved_ms: Mapped[int | None] = mapped_column(BigInteger)
    checked_ms: Mapped[int] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)


class EventPublication(Base):
    """An event whose public records this service keeps in its organizer's repository. Every change
    to the event's catalog bumps ``version`` in the same transaction; the publisher brings the
    repository up to a version and records it in ``published_version``."""

    __tablename__ = "event_publications"
    __table_args__ = (Index("ix_event_publications_due", "next_attempt_ms"),)

    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), primary_key=True)
    organizer_did: Mapped[str] = mapped_column(String(2048))
    version: Mapped[int] = mapped_column(Integer, default=1)
    published_version: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_ms: Mapped[int] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)
    published_ms: Mapped[int | None] = mapped_column(BigInteger)
    created_ms: Mapped[int] = mapped_column(BigInteger)


class PublishedRecord(Base):
    """A record this service wrote into an organizer's repository, with the CID it has there."""

    __tablename__ = "published_records"

    repo: Mapped[str] = mapped_column(String(2048), primary_key=True)
    collection: Mapped[str] = mapped_column(String(317), primary_key=True)
    rkey: Mapped[str] = mapped_column(String(512), primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), index=True)
    subject_id: Mapped[str] = mapped_column(Id)
    cid: Mapped[str] = mapped_column(String(256))
    published_ms: Mapped[int] = mapped_column(BigInteger)


class OrganizerAccount(Base):
    """How this service logs into an organizer's PDS to write their public records: the login
    identifier, and the app password and session tokens sealed under the server key."""

    __tablename__ = "organizer_accounts"

    did: Mapped[str] = mapped_column(String(2048), primary_key=True)
    identifier: Mapped[str] = mapped_column(String(253))
    sealed_password: Mapped[bytes] = mapped_column(LargeBinary)
    sealed_tokens: Mapped[bytes | None] = mapped_column(LargeBinary)
    pds_url: Mapped[str | None] = mapped_column(String(2048))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class OrganizerConsent(Base):
    """An organizer's consent that one app tickets its events (the app row is per environment):
    recorded by the app's first call carrying the organizer's assertion (``jti``), relied on by its
    later calls, until the organizer revokes it (``revoked_ms``) or grants it again."""

    __tablename__ = "organizer_consents"

    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id"), primary_key=True)
    organizer_did: Mapped[str] = mapped_column(String(2048), primary_key=True, index=True)
    environment: Mapped[str] = mapped_column(String(16))
    jti: Mapped[str] = mapped_column(String(200))
    granted_ms: Mapped[int] = mapped_column(BigInteger)
    revoked_ms: Mapped[int | None] = mapped_column(BigInteger)


# --- the organizer's view: conflict resolutions and console sign-in ---------------------------------


class ConflictResolution(Base):
    """How an organizer settled a check-in conflict: who and why. Append-only; the conflict and its
    records are never changed or deleted, and the newest resolution of a conflict is the one that
    stands."""

    __tablename__ = "conflict_resolutions"
    __table_args__ = (
        CheckConstraint("outcome IN ('admitted', 'refused', 'dismissed')", name="outcome"),
        Index("ix_conflict_resolutions_conflict", "conflict_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conflict_id: Mapped[str] = mapped_column(ForeignKey("check_in_conflicts.id"))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    # Who settled it: an app DID (with the organizer's consent), or ``console:<organizer DID>``.
    actor: Mapped[str] = mapped_column(String(2100))
    at_ms: Mapped[int] = mapped_column(BigInteger)


class ConsoleLink(Base):
    """A one-time console sign-in link the operator printed: only the hash of its secret is kept.
    ``organizer_did`` NULL is an operator link (every organizer)."""

    __tablename__ = "console_links"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    organizer_did: Mapped[str | None] = mapped_column(String(2048))
    expires_ms: Mapped[int] = mapped_column(BigInteger)
    used_ms: Mapped[int | None] = mapped_column(BigInteger)
    created_ms: Mapped[int] = mapped_column(BigInteger)


class ConsoleSession(Base):
    """A signed-in console: the cookie carries the secret, the row its hash, its organizer (NULL:
    the operator), its CSRF token and when it expires or was signed out."""

    __tablename__ = "console_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    organizer_did: Mapped[str | None] = mapped_column(String(2048))
    csrf_token: Mapped[str] = mapped_column(String(64))
    expires_ms: Mapped[int] = mapped_column(BigInteger)
    ended_ms: Mapped[int | None] = mapped_column(BigInteger)
    created_ms: Mapped[int] = mapped_column(BigInteger)
