"""What a capacity group's lock guards on PostgreSQL, and for how long (ADR 0002): holds and payments
of one group decide one after the other, but a payment takes the lock only to sell its places, and a
transaction that merely names the group (a new ticket or hold line, whose foreign key takes a share
lock of the group's row) does not hold up the group's holds. SQLite runs one write transaction at a
time, so nothing here can interleave on it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from conftest import Harness
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from support.broker import Delivery, FakeBroker, new_payment_id
from support.catalog import active_event, shared_group
from support.pglocks import ANSWER_S, waiting_or_done

from server.db.engine import Database

BROKER = FakeBroker()


@asynccontextmanager
async def group_row_locked(database_url: str, group_id: str, mode: str) -> AsyncIterator[AsyncSession]:
    """Another transaction holding the group's row in ``mode`` until the block ends; the block may
    write more in it."""
    db = Database(database_url)
    try:
        async with db.write() as session:
            await session.execute(
                text(f"SELECT id FROM capacity_groups WHERE id = :id FOR {mode}"),
                {"id": group_id},
            )
            yield session
    finally:
        await db.dispose()


async def two_places_to_pay(h: Harness) -> tuple[dict[str, Any], str, str, Delivery]:
    """An event with a tier in a group of ten, a hold of two of its places, and the broker's
    completion of its payment: (event, group, tier, completion)."""
    event = await active_event(h.app)
    group, (tier,) = await shared_group(h.app, event, capacity=10, tiers=1)
    hold = await h.app.ok("createTicketHold", {"items": [{"tierId": tier, "quantity": 2}]})
    return event, group, tier, BROKER.paid(hold, payment_id=new_payment_id())


async def test_a_payment_locks_its_groups_only_to_sell_its_places(postgres_harness: Harness) -> None:
    """While a hold of the same group holds its lock, the broker's completion writes everything but
    the sale (its delivery's dedupe key too, all in one statement) and then waits at the sale, a
    statement of its own; let go, it issues the tickets."""
    h = postgres_harness
    url = h.settings.database_url
    event, group, _, delivery = await two_places_to_pay(h)
    async with group_row_locked(url, group, "NO KEY UPDATE"):
        paying = asyncio.create_task(BROKER.send(h.app.http, h.server.url, delivery))
        waiting = await waiting_or_done(url, paying, "the payment to wait for the group's lock")
        assert not paying.done()
        ((statement, written),) = waiting
        assert statement.startswith("WITH groups AS (UPDATE capacity_groups SET sold"), statement
        assert {"tickets", "holds", "payments", "idempotency_keys"} <= set(written), written
    answer = await asyncio.wait_for(paying, ANSWER_S)
    assert answer.status_code == 200 and answer.json()["outcome"] == "issued"
    availability = await h.app.ok("getTicketAvailability", {"eventId": event["id"]})
    assert [t["availableQuantity"] for t in availability["tiers"]] == [8]


async def test_a_sale_locks_its_tiers_only_after_their_group(postgres_harness: Harness) -> None:
    """A sale waiting for its group's lock has not locked its tier yet: the lock's holder may
    still change the tier, as an organizer's edit does under the group's lock. (A sale that locked
    the tier first would deadlock with it, and one of the two would be refused.)"""
    h = postgres_harness
    url = h.settings.database_url
    event, group, tier, delivery = await two_places_to_pay(h)
    async with group_row_locked(url, group, "NO KEY UPDATE") as session:
        paying = asyncio.create_task(BROKER.send(h.app.http, h.server.url, delivery))
        await waiting_or_done(url, paying, "the payment to wait for the group's lock", "WITH groups")
        assert not paying.done()
        await session.execute(text("SET LOCAL lock_timeout = '5s'"))
        await session.execute(text("UPDATE tiers SET title = 'Hall, renamed' WHERE id = :id"), {"id": tier})
    answer = await asyncio.wait_for(paying, ANSWER_S)
    assert answer.status_code == 200 and answer.json()["outcome"] == "issued", answer.text
    availability = await h.app.ok("getTicketAvailability", {"eventId": event["id"]})
    assert [(t["title"], t["availableQuantity"]) for t in availability["tiers"]] == [("Hall, renamed", 8)]


async def test_a_row_naming_a_group_does_not_hold_up_its_holds(postgres_harness: Harness) -> None:
    """A transaction that inserted a row naming the group holds a share lock of its row until it
    ends (the foreign key's check); holds of the group go on meanwhile."""
    h = postgres_harness
    event = await active_event(h.app)
    group, (tier,) = await shared_group(h.app, event, capacity=10, tiers=1)
    async with group_row_locked(h.settings.database_url, group, "KEY SHARE"):
        hold = await asyncio.wait_for(
            h.app.call("createTicketHold", {"items": [{"tierId": tier, "quantity": 1}]}), ANSWER_S
        )
        assert hold.status_code == 200, hold.text


async def test_a_hold_that_waited_for_the_lock_sees_what_its_holder_sold(postgres_harness: Harness) -> None:
    """A hold reads its tiers' counters after it has the group's lock: a sale of the tier's last
    places, committed by the transaction it waited for, refuses it. (Read before the lock, the
    tier still had its places, and the hold took one more than the tier has.)"""
    h = postgres_harness
    url = h.settings.database_url
    event = await active_event(h.app)
    group, (tier,) = await shared_group(h.app, event, capacity=10, tiers=1, quantity=2)
    db = Database(url)
    try:
        async with db.write() as session:  # a sale of the tier's two places, as a payment makes it
            await session.execute(
                text("SELECT id FROM capacity_groups WHERE id = :id FOR NO KEY UPDATE"), {"id": group}
            )
            holding = asyncio.create_task(
                h.app.call("createTicketHold", {"items": [{"tierId": tier, "quantity": 1}]})
            )
            waiting = await waiting_or_done(url, holding, "the hold to wait for the group's lock")
            assert not holding.done() and waiting, waiting
            await session.execute(
                text("UPDATE capacity_groups SET sold = sold + 2 WHERE id = :id"), {"id": group}
            )
            await session.execute(text("UPDATE tiers SET sold = sold + 2 WHERE id = :id"), {"id": tier})
    finally:
        await db.dispose()
    refused = await asyncio.wait_for(holding, ANSWER_S)
    assert refused.status_code == 409 and refused.json()["error"] == "TierSoldOut", refused.text
