"""The built-in dev payments: what a real broker would send when a buyer pays, signed with the broker
secret and handed to the very same receiving code as ``POST /webhooks/atm``. They stand in for the
broker only in the ``test`` environment: a ``live`` hold needs a real broker."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.engine import Database
from server.db.models import App, Event, Hold, HoldItem, Tier
from server.domain.common import new_id
from server.domain.holds.service import end_hold
from server.domain.issuance.list_keys import Keyring
from server.domain.payments.inbound import Reply, broker_secrets, receive
from server.domain.webhook_format import BROKER_TYPE_BASE, envelope, headers, signature_header
from server.errors import PaymentSetupIncomplete
from server.settings import Settings

DEV_ENVIRONMENT = "test"


def check_payments_ready(settings: Settings, environment: str) -> None:
    """A hold outside ``test`` needs a payment broker: the dev payments would issue for free."""
    if environment != DEV_ENVIRONMENT and not settings.broker_url:
        raise PaymentSetupIncomplete(
            f"no payment broker is configured: holds are taken only in the {DEV_ENVIRONMENT} environment"
        )


def checkout_url(settings: Settings, token: str) -> str:
    """Where the buyer pays: the broker's checkout, or the built-in dev checkout without one."""
    base = settings.broker_url or settings.public_url
    return f"{base.rstrip('/')}/checkout/{token}"


def serves_checkout(settings: Settings, hold: Hold) -> bool:
    """The dev checkout pages serve a hold only without a broker, and only a ``test`` one."""
    return not settings.broker_url and hold.environment == DEV_ENVIRONMENT


async def live_apps_without_broker(session: AsyncSession, settings: Settings) -> int:
    """Enabled apps registered outside ``test`` while no broker is configured (their holds are
    refused): the server warns about them at startup."""
    if settings.broker_url:
        return 0
    count: int = (
        await session.scalar(
            select(func.count())
            .select_from(App)
            .where(App.environment != DEV_ENVIRONMENT, App.status == "active")
        )
        or 0
    )
    return count


async def pay(db: Database, keyring: Keyring, settings: Settings, hold: Hold, now_ms: int) -> Reply:
    """Pay ``hold`` in full, as the broker's ``payment.completed`` would report it."""
    delivery_id = new_id("evt", now_ms)
    data = {
        "paymentId": f"pay_dev_{secrets.token_hex(12)}",
        "paymentType": "ticket",
        "checkoutToken": hold.token,
        "amount": hold.amount,
        "currency": hold.currency,
        "metadata": {"holdId": hold.id},
    }
    raw = envelope(delivery_id, "payment.completed", now_ms, hold.environment, data, BROKER_TYPE_BASE)
    signed = signature_header(broker_secrets(settings, keyring), now_ms // 1000, delivery_id, raw)
    sent = headers(delivery_id, "payment.completed", hold.environment, signed)
    return await receive(db, keyring, settings, raw, sent, now_ms)


@dataclass(frozen=True, slots=True)
class DevCheckout:
    """A hold as the dev checkout page shows it: its event and its items with their tiers."""

    hold: Hold
    event: Event
    lines: list[tuple[HoldItem, Tier]]


async def checkout_of(db: Database, settings: Settings, token: str) -> DevCheckout | None:
    """The hold of the dev checkout ``token``; None when there is none or the dev checkout does not
    serve it (:func:`serves_checkout`)."""
    async with db.read() as session:
        hold = await session.scalar(select(Hold).where(Hold.token == token))
        if hold is None or not serves_checkout(settings, hold):
            return None
        event = await session.get(Event, hold.event_id)
        rows = await session.execute(
            select(HoldItem, Tier).join(Tier, Tier.id == HoldItem.tier_id).where(HoldItem.hold_id == hold.id)
        )
        assert event is not None
        return DevCheckout(hold, event, [(item, tier) for item, tier in rows])


async def cancel_checkout(db: Database, settings: Settings, token: str, now_ms: int) -> Hold | None:
    """Cancel at the dev checkout: the hold is released (when still held) and nothing is charged.
    None when the dev checkout does not serve ``token``."""
    async with db.write() as session:
        hold = await session.scalar(select(Hold).where(Hold.token == token).with_for_update())
        if hold is None or not serves_checkout(settings, hold):
            return None
        if hold.status == "held":
            await end_hold(session, hold, "released", "buyer", now_ms, "cancelled at checkout")
    return hold
