"""What a broker payment event does to holds and tickets: one state machine per payment id, whose
state is the payment's row (the table is in docs/issuance.md).

A payment is never lost and never issues twice. A completion whose amount and currency are the
hold's issues its tickets (re-reserving the places of a hold that ended, if they are still free);
one that does not match is kept as ``needs_review``; one whose places are gone, or whose hold was
paid by another payment, as ``needs_refund`` -- and the app is told
(``ticket.hold.payment-unfulfilled``). A failure before the completion is superseded by it; a full
refund before the completion is kept and the completion then issues nothing; a partial refund
refunds only the tickets it names. Every handler locks the hold first, then the payment's row.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.engine import Read, Together, Unit, driver_of
from server.db.models import Hold, HoldItem, Payment, Ticket, Tier
from server.db.rows import Shape
from server.domain import ledger
from server.domain.catalog.service import lock_groups, lock_groups_to_sell, tier_states
from server.domain.holds.rules import hold_status
from server.domain.holds.service import HOLD, HOLD_ITEM, end_hold, shortages_in
from server.domain.issuance.list_keys import Keyring
from server.domain.issuance.service import end_ticket, issue_hold, prepare_issue, release_later
from server.domain.offers import service as offers
from server.domain.outbox.lifecycle import event_data
from server.domain.outbox.service import destination_sql, enqueue, event_uri, remember
from server.domain.payments import rules
from server.domain.payments.reports import PaymentReport

BROKER = "payment-broker"

PAYMENT = Shape(Payment, "p")
_PAYMENT_KEY = " WHERE p.environment = :environment AND p.payment_id = :payment_id"
_PAYMENT = Read(PAYMENT.portable_columns, "FROM payments p" + _PAYMENT_KEY, lock=True)
_PAYMENT_HOLD = "SELECT p.hold_id FROM payments p" + _PAYMENT_KEY  # noqa: S608 (constant names)
# The hold a payment names, by checkout token or by id, locked, with what its messages need (its
# event's URI, its app's destination); then the payment's row, locked: the two locks in the one
# order every handler takes them; then the hold's lines, in their order: in one round trip.
_LOCATE = {
    column: Together(
        f"tickets_payment_hold_by_{column}",
        [("environment", "text"), ("match", "text"), ("payment_id", "text")],
        [
            Read(
                f"{HOLD.portable_columns}, e.uri, {destination_sql('a')}",
                "FROM holds h JOIN events e ON e.id = h.event_id JOIN apps a ON a.id = h.app_id "
                f"WHERE h.environment = :environment AND h.{column} = :match",
                lock=True,
                of="h",
            ),
            _PAYMENT,
            Read(
                HOLD_ITEM.portable_columns,
                "FROM hold_items i JOIN holds h ON h.id = i.hold_id "
                f"WHERE h.environment = :environment AND h.{column} = :match",
            ),
        ],
    )
    for column in ("token", "id")
}
TIER = Shape(Tier, "t")
_TIERS = f"SELECT {TIER.columns} FROM tiers t WHERE t.id IN (:tier_ids)"  # noqa: S608 (constant names)


async def _locate(session: Unit, report: PaymentReport) -> tuple[Hold | None, Payment | None, list[HoldItem]]:
    """The hold the payment names (by checkout token, else by id, else the one its row names), locked
    first, then the payment's row, locked: every handler takes the two locks in this order; then the
    hold's lines. The transaction keeps what the hold's messages need, read with it. The rows are as
    read, in no session: the hold changes only through the driver (``Shape.update``), the payment's
    row only by :func:`_settle`, and nothing changes the lines."""
    driver = await driver_of(session)
    keys = {"environment": report.environment, "payment_id": report.payment_id}
    located, match = _LOCATE["token"], report.checkout_token
    if match is None:
        located, match = _LOCATE["id"], report.hold_id
        if match is None:
            named = await driver.fetch(_PAYMENT_HOLD, keys)
            match = named[0][0] if named else None
    if not match:
        rows = await driver.read(_PAYMENT, keys)
        return None, PAYMENT.load(rows[0]) if rows else None, []
    holds, payments, items = await driver.together(located, {**keys, "match": match})
    hold: Hold | None = None
    if holds:
        hold = HOLD.load(holds[0][: HOLD.width])
        remember(
            session, event_id=hold.event_id, uri=holds[0][-2], app_id=hold.app_id, destination=holds[0][-1]
        )
    lines = sorted((HOLD_ITEM.load(row) for row in items), key=lambda item: item.id)  # attendees' order
    return hold, PAYMENT.load(payments[0]) if payments else None, lines


async def _settle(
    session: Unit,
    report: PaymentReport,
    payment: Payment | None,
    hold: Hold | None,
    status: str,
    reason: str | None,
    now_ms: int,
    *,
    completion: bool = False,
    refunded_amount: int | None = None,
) -> None:
    """Move the payment's row to ``status`` (made at its first event). A completion sets the amount
    and currency paid; before it, the row carries the hold's (0 while no hold is known)."""
    changes: dict[str, object] = {"status": status, "reason": reason, "updated_ms": now_ms}
    if completion and report.amount is not None and report.currency is not None:
        changes.update(amount=report.amount, currency=report.currency)
    if hold is not None and (payment is None or payment.hold_id is None):
        changes["hold_id"] = hold.id
    if refunded_amount is not None:
        changes["refunded_amount"] = refunded_amount
    driver = await driver_of(session)
    if payment is not None:
        await PAYMENT.update(driver, payment, later=True, **changes)
        return
    made = {
        "environment": report.environment,
        "payment_id": report.payment_id,
        "amount": hold.amount if hold else 0,
        "currency": hold.currency if hold else report.currency or "",
        "refunded_amount": 0,
        "created_ms": now_ms,
    }
    await PAYMENT.insert(driver, PAYMENT.new(**(made | changes)), later=True)


async def _flag(
    session: Unit,
    report: PaymentReport,
    payment: Payment | None,
    hold: Hold | None,
    status: str,
    reason: str,
    now_ms: int,
    *,
    completion: bool = True,
) -> str:
    """Keep the money for the operator (``needs_refund`` or ``needs_review``) and tell the app."""
    await _settle(session, report, payment, hold, status, reason, now_ms, completion=completion)
    if hold is not None:
        entry = ledger.about(
            "hold",
            hold,
            "payment-unfulfilled",
            BROKER,
            now_ms,
            {"paymentId": report.payment_id, "status": status, "reason": reason},
        )
        await ledger.ENTRY.insert(await driver_of(session), entry)
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
                status=status,
                hold={"id": hold.id, "eventId": hold.event_id},
                reason=reason,
            ),
            now_ms,
        )
    return status


def _completion_seen(payment: Payment | None, hold: Hold | None, report: PaymentReport) -> bool:
    """Whether a completion of the payment was handled already (it issued, or was flagged)."""
    issued = hold is not None and hold.status == "completed" and hold.payment_id == report.payment_id
    return rules.completion_seen(None if payment is None else payment.status, issued)


async def payment_completed(session: Unit, keyring: Keyring, report: PaymentReport, now_ms: int) -> str:
    """Issue the hold's tickets once; answers what happened (``issued``, ``needs_review``,
    ``needs_refund``, ``refunded``: refunded in full, nothing issued; ``duplicate``)."""
    hold, payment, items = await _locate(session, report)
    if _completion_seen(payment, hold, report):
        return "duplicate"
    paid = report.amount or 0
    if payment is not None and rules.refunded_before_completion(
        payment.status, payment.refunded_amount, paid
    ):
        # Refunded in full before this completion (or after it issued): nothing (more) is issued.
        refunded = max(payment.refunded_amount, paid)
        await _settle(
            session,
            report,
            payment,
            hold,
            "refunded",
            payment.reason,
            now_ms,
            completion=True,
            refunded_amount=refunded,
        )
        return "refunded"
    # The first completion of this payment: after nothing, a failure or a partial refund.
    if hold is None:
        return await _flag(
            session, report, payment, None, "needs_refund", "no hold matches this payment", now_ms
        )
    mismatch = rules.mismatch(report.amount, report.currency, hold.amount, hold.currency)
    if mismatch is not None:
        return await _flag(session, report, payment, hold, "needs_review", mismatch, now_ms)
    if hold.status == "completed":
        return await _flag(
            session, report, payment, hold, "needs_refund", "the hold was already paid", now_ms
        )
    if hold_status(hold.status, hold.expires_ms, now_ms) != "held":
        # The places were given back: take them again if nobody else has.
        gone = await _places_gone(session, hold, items, now_ms)
        if gone is not None:
            if hold.status == "held":
                await end_hold(session, hold, "expired", BROKER, now_ms, f"paid after expiry; {gone}")
            return await _flag(
                session,
                report,
                payment,
                hold,
                "needs_refund",
                f"paid after the hold ended and {gone}",
                now_ms,
            )
        entry = ledger.about("hold", hold, "re-reserved", BROKER, now_ms, {"previousStatus": hold.status})
        await ledger.ENTRY.insert(await driver_of(session), entry)
    # A live hold's places are its own: its groups are locked only by the sale, the last thing
    # written, so that every other hold and payment of those groups waits for less.
    seller_url = await prepare_issue(session, keyring, hold, now_ms)
    await release_later(session, hold.id)  # after prepare_issue's reads: with the writes below
    await _settle(
        session,
        report,
        payment,
        hold,
        rules.completed_status(None if payment is None else payment.status),
        None if payment is None else payment.reason,
        now_ms,
        completion=True,
    )
    await issue_hold(
        session, hold, items, now_ms, seller_url=seller_url, actor=BROKER, payment_id=report.payment_id
    )
    return "issued"


async def _places_gone(session: Unit, hold: Hold, items: Sequence[HoldItem], now_ms: int) -> str | None:
    """Why an ended hold's places cannot be taken again, checked with its groups (then its offer)
    locked, which stay locked until its tickets are issued; None when they can."""
    groups = await lock_groups_to_sell(session, [i.capacity_group_id for i in items])
    rows = await (await driver_of(session)).fetch(_TIERS, {"tier_ids": [i.tier_id for i in items]})
    states = await tier_states(session, map(TIER.load, rows), now_ms, groups)
    if shortages_in({i.tier_id: i.quantity for i in items}, states):
        return "the places are gone"
    if not await offers.recheck(session, hold, now_ms):
        return "its offer code has no redemptions left"
    return None


async def _tickets(session: AsyncSession, report: PaymentReport, only: Sequence[str] | None) -> list[Ticket]:
    """The payment's active tickets (``only`` those named), locked."""
    query = select(Ticket).where(
        Ticket.environment == report.environment,
        Ticket.payment_id == report.payment_id,
        Ticket.status == "active",
    )
    if only is not None:
        query = query.where(Ticket.id.in_(only))
    return list(
        await session.scalars(
            query.order_by(Ticket.id).with_for_update().execution_options(populate_existing=True)
        )
    )


async def payment_refunded(session: AsyncSession, report: PaymentReport, now_ms: int) -> str:
    """A refund of the whole payment (no amount, or the amounts refunded reach what was paid)
    refunds every active ticket of it; a partial one only the tickets it names, and adds its amount.
    Before the completion it is kept: a full refund then stops the completion from issuing."""
    hold, payment, _ = await _locate(session, report)
    # What was paid: known once the completion came; before it, the hold's total (if it is known).
    seen = _completion_seen(payment, hold, report)
    total, currency = (
        (payment.amount, payment.currency)
        if payment is not None and seen
        else (hold.amount, hold.currency)
        if hold is not None
        else (None, None)
    )
    already = payment.refunded_amount if payment is not None else 0
    plan = rules.refund(None if payment is None else payment.status, already, report.amount, total)
    if plan is None:
        return "refunded 0"
    problem = rules.refund_currency_problem(report.currency, currency)
    if problem is not None:
        return await _flag(session, report, payment, hold, "needs_review", problem, now_ms, completion=False)
    tickets = await _tickets(session, report, None if plan.full else report.ticket_ids)
    reason = payment.reason if plan.keeps_reason and payment is not None else report.reason
    await _settle(
        session, report, payment, hold, plan.status, reason, now_ms, refunded_amount=plan.refunded_amount
    )
    # Every group first, in the one lock order (each ticket's own lock then finds it held): a refund
    # of tickets of two groups would otherwise take them in the tickets' order.
    await lock_groups(session, (ticket.capacity_group_id for ticket in tickets))
    for ticket in tickets:
        await end_ticket(
            session, ticket, "refunded", BROKER, report.reason or "refunded by the payment broker", now_ms
        )
    return f"refunded {len(tickets)}"


async def payment_failed(session: AsyncSession, report: PaymentReport, now_ms: int) -> str:
    """A failure as the payment's first event is recorded and frees its hold (a completed hold is
    left alone); after any other event of the payment it changes nothing."""
    hold, payment, _ = await _locate(session, report)
    outcome = rules.failure_outcome(None if payment is None else payment.status)
    if outcome is not None:
        return outcome
    await _settle(session, report, None, hold, "failed", report.reason, now_ms)
    if hold is None or hold.status != "held":
        return "ignored"
    await end_hold(session, hold, "failed", BROKER, now_ms, "payment failed")
    return "failed"


async def list_payments(
    session: AsyncSession, *, status: str | None, environment: str | None, limit: int
) -> list[Payment]:
    """Payments for the operator, most recently changed first."""
    query = select(Payment)
    if status is not None:
        query = query.where(Payment.status == status)
    if environment is not None:
        query = query.where(Payment.environment == environment)
    return list(
        await session.scalars(query.order_by(Payment.updated_ms.desc(), Payment.id.desc()).limit(limit))
    )
