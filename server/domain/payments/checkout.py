"""The payment side an app sees on this service's base URL while the built-in dev payments stand
in for the broker: a checkout's state by its token, payout readiness, recipient approval."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.engine import Database
from server.db.models import App, Event, Hold, Payment
from server.domain.caller import Caller
from server.domain.holds.service import effective_status
from server.domain.payments.rules import CHECKOUT_STATUSES
from server.errors import PaymentNotFound


@dataclass(frozen=True, slots=True)
class Checkout:
    hold: Hold
    status: str
    recipient_did: str
    payment: Payment | None


async def token_environment(db: Database, token: str) -> str | None:
    """The environment of the checkout ``token``, if there is one."""
    async with db.read() as session:
        environment: str | None = await session.scalar(select(Hold.environment).where(Hold.token == token))
    return environment


async def checkout(db: Database, caller: Caller, token: str, now_ms: int) -> Checkout:
    """The calling app's checkout ``token`` (a hold), its state and its payment once paid."""
    async with db.read() as session:
        return await _checkout(session, caller, token, now_ms)


async def _checkout(session: AsyncSession, caller: Caller, token: str, now_ms: int) -> Checkout:
    row = (
        await session.execute(
            select(Hold, Event.organizer_did)
            .join(Event, Event.id == Hold.event_id)
            .where(
                Hold.token == token,
                Hold.app_id == caller.app_id,
                Hold.environment == caller.environment,
            )
        )
    ).first()
    if row is None:
        raise PaymentNotFound("no checkout of the calling app has this token")
    hold, organizer_did = row
    payment = None
    if hold.payment_id is not None:
        payment = await session.scalar(
            select(Payment).where(
                Payment.environment == hold.environment,
                Payment.payment_id == hold.payment_id,
                Payment.hold_id == hold.id,
            )
        )
    return Checkout(hold, CHECKOUT_STATUSES[effective_status(hold, now_ms)], organizer_did, payment)


def approval_id(caller: Caller, recipient_did: str) -> str:
    """A recipient approval's id: the same for an app, environment and recipient every time."""
    digest = hashlib.sha256(f"{caller.app_id}\n{recipient_did}".encode()).hexdigest()
    return f"approval_{digest[:26]}"


async def caller_registration(db: Database, caller: Caller) -> App:
    """The calling app's registration in the call's environment."""
    async with db.read() as session:
        return (await session.scalars(select(App).where(App.id == caller.app_id))).one()
