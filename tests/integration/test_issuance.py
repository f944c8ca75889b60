"""Payment-linked issuance over real HTTP: the broker's signed webhooks, the dev checkout, free claims,
ticket listings, pass pages, and void / refund / transfer — on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Harness, lapsing_harness
from sqlalchemy import delete, select
from support.broker import BROKER_PREVIOUS_SECRET, FakeBroker, new_payment_id
from support.catalog import ORGANIZER, active_event, shared_group, tier_id
from support.payments import rows
from support.server import MovedClock
from support.webhooks import wait_until

from server.db.engine import Database, Driver
from server.db.models import (
    CapacityGroup,
    CheckInList,
    Hold,
    ListKey,
    OutboxMessage,
    Payment,
    TicketEvent,
    Tier,
)
from sync.passes import decode_pass

BROKER = FakeBroker()


async def paid_hold(
    h: Harness, quantity: int = 2, capacity: int = 10
) -> tuple[dict[str, Any], str, dict[str, Any]]:
    event = await active_event(h.app)
    _, (tier,) = await shared_group(h.app, event, capacity=capacity, tiers=1)
    hold = await h.app.ok(
        "createTicketHold",
        {
            "items": [{"tierId": tier, "quantity": quantity}],
            "buyerDid": "did:plc:buyer00000000000000000001",
            "buyerAssertionJwt": h.identity("did:plc:buyer00000000000000000001").token(
                "tickets.atmosphere.createTicketHold"
            ),
            "attendees": [{"name": "Ada Lovelace"}, {"name": "Grace Hopper", "email": "grace@example.org"}][
                :quantity
            ],
        },
    )
    return event, tier, hold


async def availability(h: Harness, event_id: str, tier: str) -> int:
    out = await h.app.ok("getTicketAvailability", {"eventId": event_id})
    (found,) = [t for t in out["tiers"] if t["tierId"] == tier]
    available: int = found["availableQuantity"]
    return available


async def tickets_of_payment(h: Harness, payment_id: str) -> list[dict[str, Any]]:
    out = await h.app.ok("listBuyerTickets", {"paymentId": payment_id})
    tickets: list[dict[str, Any]] = out["tickets"]
    return tickets


async def test_a_signed_payment_issues_the_holds_tickets_once(harness: Harness) -> None:
    event, tier, hold = await paid_hold(harness)
    delivery = BROKER.paid(hold, payment_id=(pid := new_payment_id()))
    first = await BROKER.send(harness.app.http, harness.server.url, delivery)
    assert first.status_code == 200 and first.json()["outcome"] == "issued"
    again = await BROKER.send(harness.app.http, harness.server.url, delivery)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    other_delivery = BROKER.paid(hold, payment_id=pid)  # same payment, new delivery id
    assert (await BROKER.send(harness.app.http, harness.server.url, other_delivery)).json()[
        "outcome"
    ] == "duplicate"

    tickets = await tickets_of_payment(harness, pid)
    assert [t["attendeeName"] for t in tickets] == ["Ada Lovelace", "Grace Hopper"]
    assert {t["status"] for t in tickets} == {"active"} and {t["tierId"] for t in tickets} == {tier}
    for t in tickets:
        assert t["eventId"] == event["id"] and t["paymentId"] == pid and t["generation"] == 1
        assert re.fullmatch(r"[0-9A-Z]{5}-[0-9A-Z]{5}", t["ticketNumber"])
        assert decode_pass(t["passToken"]).payload.ticket_id == t["id"]
        assert t["presentation"]["organizer"]["did"] == ORGANIZER
    assert await availability(harness, event["id"], tier) == 8
    released = await harness.app.ok("releaseTicketHold", {"holdId": hold["holdId"]})
    assert released["hold"]["status"] == "completed"


async def test_a_hold_across_groups_sells_from_each_once(harness: Harness) -> None:
    """A paid hold of tiers in two capacity groups counts its places sold in each group and each
    tier, once, however often the payment is delivered."""
    h = harness
    event = await active_event(h.app)
    first, (one, two) = await shared_group(h.app, event, capacity=10, tiers=2)
    second, (three,) = await shared_group(h.app, event, capacity=10, tiers=1)
    items = {one: 2, two: 1, three: 3}
    hold = await h.app.ok(
        "createTicketHold", {"items": [{"tierId": t, "quantity": q} for t, q in items.items()]}
    )
    delivery = BROKER.paid(hold, payment_id=new_payment_id())
    for _ in range(2):
        answer = await BROKER.send(h.app.http, h.server.url, delivery)
        assert answer.status_code == 200 and answer.json()["outcome"] == "issued", answer.text
    db = Database(h.settings.database_url)
    try:
        async with db.read() as session:
            tiers = dict((await session.execute(select(Tier.id, Tier.sold))).all())
            groups = dict((await session.execute(select(CapacityGroup.id, CapacityGroup.sold))).all())
    finally:
        await db.dispose()
    assert tiers == items
    assert (groups[first], groups[second]) == (3, 3)
    assert [await availability(h, event["id"], t) for t in (one, two, three)] == [7, 7, 7]


async def test_the_pass_page_shows_the_qr_only_to_its_link(harness: Harness) -> None:
    _, _, hold = await paid_hold(harness, quantity=1)
    delivery = BROKER.paid(hold, payment_id=(pid := new_payment_id()))
    await BROKER.send(harness.app.http, harness.server.url, delivery)
    (ticket,) = await tickets_of_payment(harness, pid)
    page = await harness.app.http.get(ticket["scanUrl"].replace("http://127.0.0.1:1", harness.server.url))
    assert page.status_code == 200 and "<svg" in page.text and ticket["ticketNumber"] in page.text
    forged = await harness.app.http.get(f"{harness.server.url}/passes/{ticket['id']}?k=guess")
    assert forged.status_code == 404


@pytest.mark.parametrize(
    ("tamper", "status"),
    [
        ("body", 401),
        ("secret", 401),
        ("old", 401),
        ("header", 401),
        ("missing", 401),
        ("previous", 200),
    ],
)
async def test_broker_signatures_are_checked_on_the_raw_body(
    harness: Harness, tamper: str, status: int
) -> None:
    _, _, hold = await paid_hold(harness, quantity=1)
    broker = FakeBroker(
        [BROKER_PREVIOUS_SECRET]
        if tamper == "previous"
        else ["whsec_wrong"]
        if tamper == "secret"
        else BROKER.secrets
    )
    delivery = (
        broker.paid(hold)
        if tamper != "old"
        else broker.delivery(
            "payment.completed",
            {"paymentId": new_payment_id(), "checkoutToken": hold["token"]},
            timestamp=int(time.time()) - 301,
        )
    )
    if tamper == "body":
        delivery.body = delivery.body.replace(b'"paymentType"', b'"paymentTyp3"')
    if tamper == "header":
        delivery.headers["atm-signature"] = "v1=deadbeef"
    if tamper == "missing":
        del delivery.headers["atm-signature"]
    response = await BROKER.send(harness.app.http, harness.server.url, delivery)
    assert response.status_code == status, response.text
    if status == 401:
        assert response.json()["error"] == "InvalidSignature"
        assert await rows(harness.settings, Payment) == []


async def test_unknown_event_types_are_acknowledged(harness: Harness) -> None:
    delivery = BROKER.delivery("payout.paid", {"anything": 1})
    response = await BROKER.send(harness.app.http, harness.server.url, delivery)
    assert response.status_code == 200 and response.json()["status"] == "ignored"


async def test_paid_after_expiry_reissues_when_places_remain(database_url: str, tmp_path: Path) -> None:
    clock = MovedClock()
    async with lapsing_harness(database_url, tmp_path, clock, sweep_interval_seconds=0.1) as h:
        event, tier, hold = await paid_hold(h, quantity=2, capacity=5)
        clock.advance(61)

        async def swept() -> bool:
            (row,) = await rows(h.settings, Hold, Hold.id == hold["holdId"])
            return row.status == "expired"

        await wait_until(swept, what="the sweeper to expire the hold")
        delivery = BROKER.paid(hold, payment_id=(pid := new_payment_id()))
        assert (await BROKER.send(h.app.http, h.server.url, delivery)).json()["outcome"] == "issued"
        assert len(await tickets_of_payment(h, pid)) == 2
        assert await availability(h, event["id"], tier) == 3


async def test_paid_after_expiry_when_sold_out_is_kept_for_refund(database_url: str, tmp_path: Path) -> None:
    clock = MovedClock()
    async with lapsing_harness(database_url, tmp_path, clock) as h:
        event, tier, hold = await paid_hold(h, quantity=2, capacity=2)
        clock.advance(61)  # lapsed (not yet swept)
        await h.app.ok("createTicketHold", {"items": [{"tierId": tier, "quantity": 2}]})
        delivery = BROKER.paid(hold, payment_id=(pid := new_payment_id()))
        response = await BROKER.send(h.app.http, h.server.url, delivery)
        assert response.json()["outcome"] == "needs_refund"
        assert await tickets_of_payment(h, pid) == []
        (payment,) = await rows(h.settings, Payment, Payment.payment_id == pid)
        assert payment.status == "needs_refund" and payment.hold_id == hold["holdId"]
        assert await availability(h, event["id"], tier) == 0


async def test_an_underpaid_hold_issues_nothing(harness: Harness) -> None:
    _, _, hold = await paid_hold(harness, quantity=2)
    short = BROKER.paid(
        {**hold, "amountCents": hold["amountCents"] - 1}, payment_id=(pid := new_payment_id())
    )
    assert (await BROKER.send(harness.app.http, harness.server.url, short)).json()[
        "outcome"
    ] == "needs_review"
    assert await tickets_of_payment(harness, pid) == []
    (payment,) = await rows(harness.settings, Payment, Payment.payment_id == pid)
    assert (payment.status, payment.amount) == ("needs_review", hold["amountCents"] - 1)


async def test_refund_and_failure_from_the_broker(harness: Harness) -> None:
    event, tier, hold = await paid_hold(harness, quantity=2)
    await BROKER.send(
        harness.app.http, harness.server.url, BROKER.paid(hold, payment_id=(pid := new_payment_id()))
    )
    assert await availability(harness, event["id"], tier) == 8
    refund = BROKER.delivery("payment.refunded", {"paymentId": pid, "reason": "customer request"})
    assert (await BROKER.send(harness.app.http, harness.server.url, refund)).status_code == 200
    assert {t["status"] for t in await tickets_of_payment(harness, pid)} == {"refunded"}
    assert await availability(harness, event["id"], tier) == 10

    other = await harness.app.ok("createTicketHold", {"items": [{"tierId": tier, "quantity": 3}]})
    failed = BROKER.delivery(
        "payment.failed", {"paymentId": new_payment_id(), "checkoutToken": other["token"]}
    )
    assert (await BROKER.send(harness.app.http, harness.server.url, failed)).json()["outcome"] == "failed"
    assert (await harness.app.ok("releaseTicketHold", {"holdId": other["holdId"]}))["hold"][
        "status"
    ] == "failed"
    assert await availability(harness, event["id"], tier) == 10


async def test_a_payment_names_its_hold_by_token_by_id_or_not_at_all(harness: Harness) -> None:
    """The broker names the hold by its checkout token, else by the hold's id in the metadata; a
    later event of the payment may name neither (its row names the hold). A token of no hold here is
    kept for a refund, and issues nothing."""
    h = harness
    event, tier, by_token = await paid_hold(h, quantity=1)
    by_id = await h.app.ok("createTicketHold", {"items": [{"tierId": tier, "quantity": 2}]})
    paid = {"paymentType": "ticket", "currency": by_id["currency"]}
    deliveries = {
        "by token": BROKER.paid(by_token, payment_id=(token_pid := new_payment_id())),
        "by id": BROKER.delivery(
            "payment.completed",
            {
                **paid,
                "paymentId": (id_pid := new_payment_id()),
                "amount": by_id["amountCents"],
                "metadata": {"holdId": by_id["holdId"]},
            },
        ),
        "of no hold": BROKER.delivery(
            "payment.completed",
            {
                **paid,
                "paymentId": (stray_pid := new_payment_id()),
                "checkoutToken": "chk_" + "x" * 32,
                "amount": 100,
            },
        ),
    }
    outcomes = {
        name: (await BROKER.send(h.app.http, h.server.url, delivery)).json()["outcome"]
        for name, delivery in deliveries.items()
    }
    assert outcomes == {"by token": "issued", "by id": "issued", "of no hold": "needs_refund"}
    assert [len(await tickets_of_payment(h, pid)) for pid in (token_pid, id_pid, stray_pid)] == [1, 2, 0]
    assert await availability(h, event["id"], tier) == 7
    refund = BROKER.delivery("payment.refunded", {"paymentId": id_pid})
    assert (await BROKER.send(h.app.http, h.server.url, refund)).json()["outcome"] == "refunded 2"
    assert {t["status"] for t in await tickets_of_payment(h, id_pid)} == {"refunded"}
    (row,) = await rows(h.settings, Payment, Payment.payment_id == id_pid)
    assert (row.status, row.hold_id) == ("refunded", by_id["holdId"])
    assert await availability(h, event["id"], tier) == 9


async def test_a_payment_completion_writes_in_one_statement(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A completion's writes (its payment's row, its hold and its lines, its tickets with their
    history and messages, the delivery's key) go to PostgreSQL in one statement; then the places are
    sold, in a statement of their own (a group's lock is held for it and the commit alone)."""
    h = harness
    if h.settings.database_url.startswith("sqlite"):
        pytest.skip("SQLite runs the writes one after the other (in one trip to its thread)")
    event, tier, hold = await paid_hold(h, quantity=2)
    sent: list[tuple[Driver, str]] = []  # by every driver of the server, its background jobs' too
    send = Driver._sent

    def recorded(driver: Driver, sql: str, statement: Any) -> Any:
        sent.append((driver, sql))
        return send(driver, sql, statement)

    monkeypatch.setattr(Driver, "_sent", recorded)
    answer = await BROKER.send(h.app.http, h.server.url, BROKER.paid(hold, payment_id=new_payment_id()))
    assert answer.json()["outcome"] == "issued"
    ((paying, writes),) = [(driver, sql) for driver, sql in sent if "INSERT INTO payments" in sql]
    for part in ("UPDATE hold_items", "UPDATE holds", "INSERT INTO tickets", "INSERT INTO idempotency_keys"):
        assert part in writes, part
    own = [sql for driver, sql in sent if driver is paying]
    assert [sql.split(" SET ")[0] for sql in own[own.index(writes) + 1 :]] == [
        "WITH groups AS (UPDATE capacity_groups",
        "COMMIT",
    ]
    assert await availability(h, event["id"], tier) == 8


async def test_dev_checkout_pay_and_cancel(harness: Harness) -> None:
    event, tier, hold = await paid_hold(harness, quantity=1)
    url = hold["url"].replace("http://127.0.0.1:1", harness.server.url)
    page = await harness.app.http.get(url)
    assert page.status_code == 200 and "Pay 10.00 EUR" in page.text
    paid = await harness.app.http.post(f"{url}/pay")
    assert paid.status_code == 200 and "Paid" in paid.text
    assert await availability(harness, event["id"], tier) == 9
    assert "completed" in (await harness.app.http.get(url)).text

    second = await harness.app.ok("createTicketHold", {"items": [{"tierId": tier, "quantity": 2}]})
    second_url = second["url"].replace("http://127.0.0.1:1", harness.server.url)
    cancelled = await harness.app.http.post(f"{second_url}/cancel")
    assert cancelled.status_code == 200 and "cancelled" in cancelled.text
    assert await availability(harness, event["id"], tier) == 9
    assert (await harness.app.http.get(f"{harness.server.url}/checkout/chk_nope")).status_code == 404


async def test_free_claims(harness: Harness) -> None:
    event = await active_event(harness.app)
    free = await tier_id(harness.app, event, "Free", unit_amount=0, quantity=3)
    priced = await tier_id(harness.app, event, "Paid", unit_amount=500, quantity=3)
    buyer = harness.identity("did:plc:freebuyer000000000000000001")
    nsid = "tickets.atmosphere.claimFreeTicket"
    claim = await harness.app.ok(
        "claimFreeTicket",
        {
            "buyerDid": buyer.did,
            "buyerAssertionJwt": buyer.token(nsid),
            "tierId": free,
            "idempotencyKey": "claim-1",
        },
    )
    assert claim["claimId"].startswith("claim_") and len(claim["tickets"]) == 1
    assert claim["tickets"][0]["claimId"] == claim["claimId"] and claim["tickets"][0]["buyerDid"] == buyer.did
    replay = await harness.app.ok(
        "claimFreeTicket",
        {
            "buyerDid": buyer.did,
            "buyerAssertionJwt": buyer.token(nsid),
            "tierId": free,
            "idempotencyKey": "claim-1",
        },
    )
    assert replay["reused"] is True and replay["claimId"] == claim["claimId"]
    not_free = await harness.app.call(
        "claimFreeTicket",
        {
            "buyerDid": buyer.did,
            "buyerAssertionJwt": buyer.token(nsid),
            "items": [{"tierId": priced, "quantity": 1}],
        },
    )
    assert not_free.status_code == 400 and not_free.json()["error"] == "TierNotFree"
    wrong_method = await harness.app.call(
        "claimFreeTicket",
        {
            "buyerDid": buyer.did,
            "buyerAssertionJwt": buyer.token("tickets.atmosphere.createTicketHold"),
            "tierId": free,
        },
    )
    assert wrong_method.status_code == 401 and wrong_method.json()["error"] == "UserDidMismatch"
    someone_else = await harness.app.call(
        "claimFreeTicket",
        {
            "buyerDid": "did:plc:victim0000000000000000001",
            "buyerAssertionJwt": buyer.token(nsid),
            "tierId": free,
        },
    )
    assert someone_else.json()["error"] == "UserDidMismatch"
    listed = await harness.app.ok("listBuyerTickets", {"buyerDid": buyer.did})
    assert [t["id"] for t in listed["tickets"]] == [claim["tickets"][0]["id"]]
    assert await availability(harness, event["id"], free) == 2


async def test_void_refund_and_transfer_keep_history(harness: Harness) -> None:
    event, tier, hold = await paid_hold(harness, quantity=2)
    await BROKER.send(
        harness.app.http, harness.server.url, BROKER.paid(hold, payment_id=(pid := new_payment_id()))
    )
    first, second = await tickets_of_payment(harness, pid)

    moved = (
        await harness.app.ok(
            "transferTicket",
            {
                "ticketId": first["id"],
                "toBuyerDid": "did:plc:newholder0000000000000001",
                "attendeeName": "Alan Turing",
                "reason": "gift",
            },
        )
    )["ticket"]
    assert moved["generation"] == 2 and moved["attendeeName"] == "Alan Turing"
    assert decode_pass(moved["passToken"]).payload.generation == 2
    old_page = await harness.app.http.get(first["scanUrl"].replace("http://127.0.0.1:1", harness.server.url))
    # The old address no longer shows a pass: it says the ticket moved on (and not to whom).
    assert old_page.status_code == 410 and "<svg" not in old_page.text and "Alan Turing" not in old_page.text

    voided = (await harness.app.ok("voidTicket", {"ticketId": second["id"], "reason": "duplicate order"}))[
        "ticket"
    ]
    assert voided["status"] == "voided" and "passToken" not in voided and "scanUrl" not in voided
    again = await harness.app.call("voidTicket", {"ticketId": second["id"]})
    assert again.status_code == 409 and again.json()["error"] == "TicketNotActive"
    assert await availability(harness, event["id"], tier) == 9
    refunded = (await harness.app.ok("refundTicket", {"ticketId": first["id"]}))["ticket"]
    assert refunded["status"] == "refunded"
    assert await availability(harness, event["id"], tier) == 10

    history = await rows(harness.settings, TicketEvent, TicketEvent.ticket_id == first["id"])
    assert [(e.action, e.status, e.generation) for e in sorted(history, key=lambda e: e.id)] == [
        ("issued", "active", 1),
        ("transferred", "active", 2),
        ("refunded", "refunded", 2),
    ]
    other_app = await harness.client("did:web:other-app.example")
    foreign = await other_app.call("voidTicket", {"ticketId": first["id"]})
    assert foreign.status_code == 403
    missing = await harness.app.call("voidTicket", {"ticketId": "ticket_nope"})
    assert missing.status_code == 404 and missing.json()["error"] == "TicketNotFound"
    await other_app.aclose()


async def test_listing_pages_with_a_cursor(harness: Harness) -> None:
    event, _, hold = await paid_hold(harness, quantity=2)
    await BROKER.send(harness.app.http, harness.server.url, BROKER.paid(hold))
    _, _, hold2 = await paid_hold(harness, quantity=2)
    await BROKER.send(harness.app.http, harness.server.url, BROKER.paid(hold2))
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        out = await harness.app.ok(
            "listOrganizerTickets",
            {"organizerDid": ORGANIZER, "limit": 3, **({"cursor": cursor} if cursor else {})},
        )
        seen += [t["id"] for t in out["tickets"]]
        cursor = out.get("cursor")
        if cursor is None:
            break
    assert len(seen) == 4 and seen == sorted(seen)
    by_event = await harness.app.ok("listOrganizerTickets", {"eventId": event["id"]})
    assert len(by_event["tickets"]) == 2
    bad = await harness.app.call("listOrganizerTickets", {"cursor": "!!!"})
    assert bad.status_code == 400


async def test_lifecycle_webhooks_are_queued_with_the_change(harness: Harness) -> None:
    from server.domain import apps

    db = Database(harness.settings.resolved_database_url)
    try:
        async with db.write() as session:
            await apps.register_app(
                session,
                did=harness.app.identity.did,
                environment="test",
                now_ms=1,
                webhook_url="http://127.0.0.1:9/hooks",
            )
    finally:
        await db.dispose()
    _, _, hold = await paid_hold(harness, quantity=1)
    await BROKER.send(harness.app.http, harness.server.url, BROKER.paid(hold))
    types = [m.event_type for m in await rows(harness.settings, OutboxMessage)]
    assert types[:2] == ["ticket.hold.created", "tickets.issued"]


async def test_a_payment_for_an_event_without_a_default_list_makes_it(harness: Harness) -> None:
    """An event made before default lists existed has none: its first payment makes the list and
    the list's key in its own transaction, and the tickets it issues are signed for that list and
    admitted by it."""
    event, _, hold = await paid_hold(harness)
    db = Database(harness.settings.resolved_database_url)
    try:
        async with db.write() as session:  # what an event made before default lists looks like
            of_event = select(CheckInList.id).where(CheckInList.event_id == event["id"])
            await session.execute(delete(ListKey).where(ListKey.list_id.in_(of_event)))
            await session.execute(delete(CheckInList).where(CheckInList.event_id == event["id"]))
    finally:
        await db.dispose()
    delivery = BROKER.paid(hold, payment_id=(pid := new_payment_id()))
    assert (await BROKER.send(harness.app.http, harness.server.url, delivery)).json()["outcome"] == "issued"

    (made,) = (await harness.app.ok("listCheckInLists", {"eventId": event["id"]}))["checkInLists"]
    assert made["isDefault"] and made["status"] == "active" and len(made["keyIds"]) == 1
    for ticket in await tickets_of_payment(harness, pid):
        signed = {s.key_id for s in decode_pass(ticket["passToken"]).signatures}
        assert signed == set(made["keyIds"])
        scanned = await harness.app.ok("checkInTicket", {"ticketToken": ticket["passToken"]})
        assert scanned["status"] == "checked_in" and scanned["checkInListId"] == made["id"]
