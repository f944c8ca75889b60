"""One state machine per payment id: Hypothesis chooses which broker events of one hold happen
(its payment completed, failed, refunded in part or in full; another payment of it with the wrong
amount, refunded or not), how often each is sent (new delivery ids and copies of one delivery) and
in what order. The payments' final states, the tickets left active and the places sold are the same
whatever the order; tickets are issued at most once, never for the mismatched payment, and never
when the refund came before the completion. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from support.broker import BROKER_SECRET, Delivery, FakeBroker, new_payment_id
from support.payments import tier_with_holds

from server.db.engine import Database
from server.db.models import Hold, Payment, Ticket, TicketEvent, Tier
from server.domain import apps
from server.domain.caller import Caller
from server.domain.common import SystemClock
from server.domain.issuance.list_keys import Keyring
from server.domain.payments.inbound import receive
from server.settings import Settings

BROKER = FakeBroker()
KEYRING = Keyring(b"s" * 32)
QUANTITY, TOTAL, PARTIAL = 2, 200, 50  # two places at 100 eur
KINDS = ("paid", "failed", "partial", "refunded", "mismatched", "mismatch-refunded")


def deliveries(kind: str, token: str, paid: str, mismatched: str) -> Delivery:
    """A fresh delivery (its own delivery id) of the event ``kind``."""
    if kind == "paid":
        data = {"paymentId": paid, "amount": TOTAL, "currency": "eur"}
        return BROKER.delivery("payment.completed", {**data, "checkoutToken": token})
    if kind == "mismatched":
        data = {"paymentId": mismatched, "amount": TOTAL - 1, "currency": "eur"}
        return BROKER.delivery("payment.completed", {**data, "checkoutToken": token})
    if kind == "failed":
        return BROKER.delivery("payment.failed", {"paymentId": paid, "checkoutToken": token})
    if kind == "partial":
        return BROKER.delivery("payment.refunded", {"paymentId": paid, "amount": PARTIAL})
    payment = paid if kind == "refunded" else mismatched
    return BROKER.delivery("payment.refunded", {"paymentId": payment, "checkoutToken": token})


def expected(present: set[str]) -> dict[str, Any]:
    """What the events decide, whatever their order."""
    full, partial, paid = "refunded" in present, "partial" in present, "paid" in present
    status = (
        "refunded"
        if full
        else "partially_refunded"
        if partial
        else "completed"
        if paid
        else "failed"
        if "failed" in present
        else None
    )
    refunded = TOTAL if full else PARTIAL if partial else 0
    other = (
        "refunded" if "mismatch-refunded" in present else "needs_review" if "mismatched" in present else None
    )
    active = QUANTITY if paid and not full else 0
    return {"paid": (status, refunded if status else None), "other": other, "active": active, "sold": active}


async def observed(db: Database, tier_id: str, hold_id: str, paid: str, mismatched: str) -> dict[str, Any]:
    async with db.read() as session:
        rows = {
            p.payment_id: p
            for p in await session.scalars(select(Payment).where(Payment.payment_id.in_([paid, mismatched])))
        }
        active = await session.scalar(
            select(func.count())
            .select_from(Ticket)
            .where(Ticket.hold_id == hold_id, Ticket.status == "active")
        )
        sold = await session.scalar(select(Tier.sold).where(Tier.id == tier_id))
    mine, other = rows.get(paid), rows.get(mismatched)
    return {
        "paid": (mine.status, mine.refunded_amount) if mine else (None, None),
        "other": other.status if other else None,
        "active": active,
        "sold": sold,
    }


async def issued(db: Database, hold_id: str) -> dict[str | None, int]:
    """How many tickets were ever issued for the hold, per payment id."""
    async with db.read() as session:
        counts = await session.execute(
            select(Ticket.payment_id, func.count())
            .join(TicketEvent, TicketEvent.ticket_id == Ticket.id)
            .where(Ticket.hold_id == hold_id, TicketEvent.action == "issued")
            .group_by(Ticket.payment_id)
        )
        return dict(counts.all())


def test_any_order_of_one_holds_payment_events_ends_in_one_state(database_url: str, tmp_path: Path) -> None:
    config = Settings(data_dir=tmp_path, database_url=database_url, broker_webhook_secret=BROKER_SECRET)
    loop = asyncio.new_event_loop()
    db = Database(database_url)

    async def setup() -> Caller:
        async with db.write() as session:
            app = await apps.register_app(
                session, did="did:web:machine.example", environment="test", now_ms=0
            )
            await session.flush()
            return Caller(app.id, app.did, "test")

    caller = loop.run_until_complete(setup())
    examples = iter(range(10_000))

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        present=st.sets(st.sampled_from(KINDS), min_size=1),
        resent=st.lists(st.integers(1, 2), min_size=len(KINDS), max_size=len(KINDS)),
        copies=st.lists(st.integers(1, 3), min_size=2 * len(KINDS), max_size=2 * len(KINDS)),
        data=st.data(),
    )
    def events(present: set[str], resent: list[int], copies: list[int], data: st.DataObject) -> None:
        async def make() -> tuple[str, Hold]:
            async with db.write() as session:
                tier_id, (hold,) = await tier_with_holds(
                    session, caller, f"m{next(examples)}", [QUANTITY], SystemClock().now_ms(), keyring=KEYRING
                )
            return tier_id, hold

        tier_id, hold = loop.run_until_complete(make())
        paid, mismatched = new_payment_id(), new_payment_id()
        made: list[tuple[str, Delivery]] = []
        for n, kind in enumerate(KINDS):
            if kind in present:
                # A partial refund sent under a second delivery id would be a second refund.
                times = 1 if kind == "partial" else resent[n]
                made += [(kind, deliveries(kind, hold.token, paid, mismatched)) for _ in range(times)]
        sent = [pair for n, pair in enumerate(made) for _ in range(copies[n])]
        order = data.draw(st.permutations(sent))

        async def deliver_all() -> None:
            for _, delivery in order:
                reply = await receive(
                    db, KEYRING, config, delivery.body, delivery.headers, SystemClock().now_ms()
                )
                assert reply.status == 200, reply.body

        loop.run_until_complete(deliver_all())
        assert loop.run_until_complete(observed(db, tier_id, hold.id, paid, mismatched)) == expected(present)
        tickets = loop.run_until_complete(issued(db, hold.id))
        assert mismatched not in tickets  # never issued for a payment that does not match its hold
        kinds = [kind for kind, _ in order]
        both = {"refunded", "paid"} <= present
        refunded_first = both and kinds.index("refunded") < kinds.index("paid")
        # Issued once, unless refunded before its completion: then never.
        assert tickets.get(paid, 0) == (QUANTITY if "paid" in present and not refunded_first else 0)

    try:
        events()
    finally:
        loop.run_until_complete(db.dispose())
        loop.close()
