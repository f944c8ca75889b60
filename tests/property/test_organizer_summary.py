"""``getEventSummary`` agrees with the ledger and the check-in log: for random orders over two tiers,
random voids and refunds and random entry and exit scans, over real HTTP on SQLite and PostgreSQL,
every tier's sales and money and every list's door counts are what the ledger's entries and the
logged scans add up to."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

from conftest import start_harness
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from support.broker import FakeBroker, new_payment_id
from support.catalog import ORGANIZER, active_event
from support.server import AppClient

from server.db.engine import Database
from server.db.models import CheckInRecord, LedgerEntry, Ticket

BROKER = FakeBroker()
orders = st.lists(st.tuples(st.integers(0, 1), st.integers(1, 3)), min_size=1, max_size=4)
prices = st.tuples(st.integers(1, 5_000), st.integers(1, 5_000))  # paid orders (free ones are claims)


async def sell(
    client: AppClient, order: list[tuple[int, int]], tier_prices: tuple[int, int]
) -> tuple[dict[str, Any], list[str], list[dict[str, Any]]]:
    event = await active_event(client)
    tiers = [
        (
            await client.ok(
                "createTicketTier",
                {
                    "organizerDid": ORGANIZER,
                    "event": {"uri": event["uri"]},
                    "title": f"Tier {n}",
                    "currency": "eur",
                    "unitAmount": amount,
                    "quantityTotal": 20,
                },
            )
        )["tier"]["id"]
        for n, amount in enumerate(tier_prices)
    ]
    sold: list[dict[str, Any]] = []
    for tier, quantity in order:
        hold = await client.ok("createTicketHold", {"items": [{"tierId": tiers[tier], "quantity": quantity}]})
        await BROKER.send(
            client.http, client.base_url, BROKER.paid(hold, payment_id=(pid := new_payment_id()))
        )
        sold += (await client.ok("listBuyerTickets", {"paymentId": pid}))["tickets"]
    return event, tiers, sold


async def from_the_ledger_and_log(
    database_url: str, event_id: str
) -> tuple[int, dict[str, int], dict[str, Any]]:
    """Tickets issued less ended (ledger), refunds per tier (the ledger's refunded tickets at their
    prices), and the door counts of each list as the check-in log adds them up."""
    db = Database(database_url)
    try:
        async with db.read() as session:
            entries = list(await session.scalars(select(LedgerEntry).where(LedgerEntry.event_id == event_id)))
            issued = sum(
                e.data["tickets"] for e in entries if e.subject == "hold" and e.action == "completed"
            )
            ended = [
                e.subject_id for e in entries if e.subject == "ticket" and e.action in {"voided", "refunded"}
            ]
            refunded = {e.subject_id for e in entries if e.subject == "ticket" and e.action == "refunded"}
            refunds: Counter[str] = Counter()
            for ticket in await session.scalars(select(Ticket).where(Ticket.id.in_(refunded))):
                refunds[ticket.tier_id] += ticket.unit_amount
            log = list(
                await session.scalars(
                    select(CheckInRecord)
                    .where(CheckInRecord.event_id == event_id)
                    .order_by(CheckInRecord.server_ms, CheckInRecord.seq)
                )
            )
    finally:
        await db.dispose()
    door: dict[str, Any] = {}
    for list_id in {r.list_id for r in log}:
        last: dict[str, str] = {}
        for r in log:
            if r.list_id == list_id and r.decision == "admit" and r.ticket_id is not None:
                last[r.ticket_id] = r.direction
        door[list_id] = {
            "checkedIn": len(last),
            "inside": sum(1 for d in last.values() if d == "entry"),
            "refused": sum(1 for r in log if r.list_id == list_id and r.decision == "refuse"),
        }
    return issued - len(ended), dict(refunds), door


async def one_night(url: str, app: AppClient, database_url: str, data: st.DataObject) -> None:
    client = AppClient(url, app.identity, acts_for=app.acts_for)  # one per event loop
    try:
        order, tier_prices = data.draw(orders, "orders"), data.draw(prices, "prices")
        event, tiers, sold = await sell(client, order, tier_prices)
        fates = data.draw(
            st.lists(st.sampled_from(["keep", "void", "refund"]), min_size=len(sold), max_size=len(sold)),
            "fates",
        )
        scans = data.draw(
            st.lists(
                st.tuples(st.integers(0, max(0, len(sold) - 1)), st.sampled_from(["entry", "exit"])),
                max_size=8 if sold else 0,
            ),
            "scans",
        )
        half = len(scans) // 2
        lists = (await client.ok("listCheckInLists", {"eventId": event["id"]}))["checkInLists"]
        list_id = lists[0]["id"]

        async def scan(index: int, direction: str) -> None:
            await client.ok(
                "checkInTicket",
                {
                    "ticketToken": sold[index]["passToken"],
                    "checkInListId": list_id,
                    "direction": direction,
                    "gate": "Main",
                },
            )

        for index, direction in scans[:half]:
            await scan(index, direction)
        for ticket, fate in zip(sold, fates, strict=True):
            if fate != "keep":
                await client.ok(f"{fate}Ticket", {"ticketId": ticket["id"]})
        for index, direction in scans[half:]:
            await scan(index, direction)

        summary = await client.ok("getEventSummary", {"eventId": event["id"]})
        net_sold, refunds, door = await from_the_ledger_and_log(database_url, event["id"])
        by_tier = {t["tierId"]: t for t in summary["tiers"]}
        assert sum(t["sold"] for t in summary["tiers"]) == net_sold
        for n, tier_id in enumerate(tiers):
            tier = by_tier[tier_id]
            bought = sum(quantity for t, quantity in order if t == n)
            kept = sum(
                1
                for ticket, fate in zip(sold, fates, strict=True)
                if ticket["tierId"] == tier_id and fate == "keep"
            )
            assert (tier["sold"], tier["held"], tier["available"]) == (kept, 0, 20 - kept)
            assert tier["gross"] == bought * tier_prices[n]
            assert tier["refunds"] == refunds.get(tier_id, 0)
            assert tier["net"] == tier["gross"] - tier["discounts"] - tier["fees"] - tier["refunds"]
        for counted in summary["checkInLists"]:
            expected = door.get(counted["checkInListId"], {"checkedIn": 0, "inside": 0, "refused": 0})
            assert {k: counted[k] for k in expected} == expected
            assert sum(g["admitted"] for g in counted["byGate"]) == sum(
                g["admitted"] for g in counted["byDevice"]
            )
    finally:
        await client.aclose()


def test_the_summary_agrees_with_the_ledger_and_the_check_in_log(database_url: str, tmp_path: Path) -> None:
    harness = asyncio.run(start_harness(database_url, tmp_path))
    try:

        @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
        @given(st.data())
        def check(data: st.DataObject) -> None:
            asyncio.run(one_night(harness.server.url, harness.app, database_url, data))

        check()
    finally:
        harness.server.stop()
