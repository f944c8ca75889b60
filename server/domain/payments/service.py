"""What a broker payment event does to holds and tickets.

A payment is never lost. A payment for a live hold issues its tickets. A payment for a hold that
expired, was released or failed re-reserves the places if they are still there and issues them; if
they are not, or the amount does not cover the hold, the payment is recorded as ``needs_refund`` and
the app is told (``ticket.hold.payment-unfulfilled``). Duplicate reports of one payment change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Hold, Payment, Ticket, Tier
from server.domain import ledger
from server.domain.catalog.service import lock_groups, tier_states
from server.domain.holds.rules import find_shortages
from server.domain.holds.service import end_hold
from server.domain.issuance.keys import Keyring
from server.domain.issuance.service import end_ticket, hold_items, issue_hold, prepare_issue
from server.domain.offers import service as offers
from server.domain.outbox.lifecycle import event_data
from server.domain.outbox.service import enqueue, event_uri

BROKER = "payment-broker"


@dataclass(frozen=True, slots=True)
class PaymentReport:
    environment: str
    payment_id: str
    checkout_token: str | None = None
    hold_id: str | None = None
    amount: int | None = None
    currency: str | None = None


_HOLD = select(Hold).where(Hold.environment == bindparam("environment"))
_HOLD_BY_TOKEN = _HOLD.where(Hold.token == bindparam("match")).with_for_update()
_HOLD_BY_ID = _HOLD.where(Hold.id == bindparam("match")).with_for_update()
_PAYMENT_STATUS = select(Payment.status).where(
    Payment.environment == bindparam("environment"), Payment.payment_id == bindparam("payment_id")
)


async def _find_hold(session: AsyncSession, report: PaymentReport) -> Hold | None:
    """The hold the payment names (by checkout token, else by id), locked."""
    if report.checkout_token:
        query, match = _HOLD_BY_TOKEN, report.checkout_token
    elif report.hold_id:
        query, match = _HOLD_BY_ID, report.hold_id
    else:
        return None
    hold: Hold | None = await session.scalar(
        query,
        {"environment": report.environment, "match": match},
        execution_options={"populate_existing": True},
    )
    return hold


def _record(
    session: AsyncSession,
    report: PaymentReport,
    hold: Hold | None,
    status: str,
    reason: str | None,
    now_ms: int,
) -> Payment:
    payment = Payment(
        environment=report.environment,
        payment_id=report.payment_id,
        hold_id=hold.id if hold else None,
        amount=report.amount if report.amount is not None else (hold.amount if hold else 0),
        currency=(report.currency or (hold.currency if hold else "")).lower()[:3],
        status=status,
        reason=reason,
        created_ms=now_ms,
        updated_ms=now_ms,
    )
    session.add(payment)
    return payment


async def _unfulfilled(
    session: AsyncSession, report: PaymentReport, hold: Hold | None, reason: str, now_ms: int
) -> str:
    _record(session, report, hold, "needs_refund", reason, now_ms)
    if hold is not None:
        ledger.note(
            session,
            "hold",
            hold,
            "payment-unfulfilled",
            BROKER,
            now_ms,
            {"paymentId": report.payment_id, "reason": reason},
        )
        await enqueue(
            session,
            hold.app_id,
            hold.environment,
            "ticket.hold.payment-unfulfilled",
            event_data(
                event_id=hold.event_id,
                event_uri=await event_uri(session, hold.event_id),
                hold_id=hold.id,
                payment_id=report.payment_id,
                hold={"id": hold.id, "eventId": hold.event_id},
                reason=reason,
            ),
            now_ms,
        )
    return "needs_refund"


async def payment_completed(
    session: AsyncSession, keyring: Keyring, report: PaymentReport, now_ms: int
) -> str:
    """Issue the hold's tickets once; answers what happened (``issued``, ``duplicate``, ``needs_refund``)."""
    known = await _known_status(session, report)
    if known is not None:
        # Reported before (under another delivery id), or refunded before its completion arrived.
        return "duplicate" if known != "refunded" else "refunded-before-completion"
    hold = await _find_hold(session, report)
    if hold is None:
        return await _unfulfilled(session, report, None, "no hold matches this payment", now_ms)
    if hold.status == "completed":
        return await _unfulfilled(session, report, hold, "the hold was already paid", now_ms)
    if report.currency is not None and report.currency.lower() != hold.currency:
        return await _unfulfilled(session, report, hold, "the payment is in another currency", now_ms)
    if report.amount is not None and report.amount < hold.amount:
        return await _unfulfilled(session, report, hold, "the payment does not cover the hold", now_ms)
    items = await hold_items(session, hold.id)
    live = hold.status == "held" and hold.expires_ms > now_ms
    # A live hold's places are its own: what needs no lock is done before the capacity groups are
    # locked, so that every other hold and payment of those groups waits for less.
    seller_url = await prepare_issue(session, keyring, hold, now_ms) if live else None
    groups = await lock_groups(session, [i.capacity_group_id for i in items])
    if not live:
        # The places were given back: take them again if nobody else has.
        tiers = await session.scalars(
            select(Tier)
            .where(Tier.id.in_([i.tier_id for i in items]))
            .execution_options(populate_existing=True)
        )
        states = await tier_states(session, tiers, now_ms, groups)
        requested = {i.tier_id: i.quantity for i in items}
        shortages = find_shortages(
            requested,
            {s.tier.id: s.pool for s in states},
            {s.tier.id: s.tier.capacity_group_id for s in states},
            {s.group.group.id: s.group.pool for s in states},
        )
        gone = "the places are gone" if shortages else None
        if gone is None and not await offers.recheck(session, hold, now_ms):
            gone = "its offer code has no redemptions left"
        if gone is not None:
            if hold.status == "held":
                await end_hold(session, hold, "expired", BROKER, now_ms, f"paid after expiry; {gone}")
            return await _unfulfilled(session, report, hold, f"paid after the hold ended and {gone}", now_ms)
        ledger.note(session, "hold", hold, "re-reserved", BROKER, now_ms, {"previousStatus": hold.status})
        seller_url = await prepare_issue(session, keyring, hold, now_ms)
    await issue_hold(
        session,
        hold,
        items,
        groups,
        now_ms,
        seller_url=seller_url,
        actor=BROKER,
        payment_id=report.payment_id,
    )
    _record(session, report, hold, "completed", None, now_ms)
    return "issued"


async def payment_refunded(
    session: AsyncSession, report: PaymentReport, reason: str | None, now_ms: int
) -> str:
    """Refund every active ticket of the payment (their places go back on sale)."""
    tickets = list(
        await session.scalars(
            select(Ticket)
            .where(Ticket.environment == report.environment, Ticket.payment_id == report.payment_id)
            .order_by(Ticket.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )
    payment = await session.scalar(
        select(Payment).where(
            Payment.environment == report.environment, Payment.payment_id == report.payment_id
        )
    )
    if payment is None:
        # The refund overtook the completion: remember it, so the completion issues nothing.
        _record(session, report, await _find_hold(session, report), "refunded", reason, now_ms)
    else:
        payment.status = "refunded"
        payment.updated_ms = now_ms
    refunded = 0
    for ticket in tickets:
        if ticket.status == "active":
            await end_ticket(
                session, ticket, "refunded", BROKER, reason or "refunded by the payment broker", now_ms
            )
            refunded += 1
    return f"refunded {refunded}"


async def payment_failed(session: AsyncSession, report: PaymentReport, now_ms: int) -> str:
    """A failed payment is recorded and frees its hold (a completed hold is left alone)."""
    if await _known_status(session, report) is not None:
        return "duplicate"
    hold = await _find_hold(session, report)
    _record(session, report, hold, "failed", None, now_ms)
    if hold is None or hold.status != "held":
        return "ignored"
    await end_hold(session, hold, "failed", BROKER, now_ms, "payment failed")
    return "failed"


async def _known_status(session: AsyncSession, report: PaymentReport) -> str | None:
    status: str | None = await session.scalar(
        _PAYMENT_STATUS, {"environment": report.environment, "payment_id": report.payment_id}
    )
    return status
