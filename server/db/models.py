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
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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
    )

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    did: Mapped[str] = mapped_column(String(2048))
    environment: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="active")
    webhook_url: Mapped[str | None] = mapped_column(String(2048))
    webhook_secret: Mapped[str | None] = mapped_column(String(256))
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
    status: Mapped[str] = mapped_column(String(16))
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
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    expires_ms: Mapped[int] = mapped_column(BigInteger)
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
    """One caller's idempotency key: ``in_flight`` while its first call runs (leased until
    ``lease_until_ms``, so a crashed call does not block the key forever), then ``done`` with the
    response to replay."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (CheckConstraint("state IN ('in_flight', 'done')", name="state"),)

    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id"), primary_key=True)
    environment: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    method: Mapped[str] = mapped_column(String(128))
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    lease_until_ms: Mapped[int] = mapped_column(BigInteger)
    response: Mapped[Any] = mapped_column(JsonType, nullable=True)
    created_ms: Mapped[int] = mapped_column(BigInteger)
