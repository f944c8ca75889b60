"""Attacks on the money path, as a confused or hostile payment broker (or a careless app) would make
them, over real HTTP on SQLite and PostgreSQL: malformed payments, payments that do not match their
hold, every ordering of failed / completed / refunded, partial refunds, dev payments in ``live``,
and redirects the checkout must not follow."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from logging.handlers import BufferingHandler
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Harness, running_harness
from sqlalchemy import update
from support.broker import FakeBroker, new_payment_id
from support.catalog import ORGANIZER, active_event, shared_group
from support.payments import new_hold, rows, tier_with_holds
from support.server import register

from server.app import warn_about_payments
from server.cli.main import build_parser
from server.db.engine import Database
from server.db.models import Hold, IdempotencyKey, OutboxMessage, Payment, Ticket
from server.domain import apps
from server.domain.caller import Caller
from server.domain.common import SystemClock
from server.domain.issuance.list_keys import Keyring
from server.domain.webhook_format import signature_header
from server.settings import Settings

BROKER = FakeBroker()
HOOKS = "https://hooks.app.example/atm"


async def send(h: Harness, delivery: Any) -> httpx.Response:
    return await BROKER.send(h.app.http, h.server.url, delivery)


async def outcome(h: Harness, delivery: Any) -> str:
    response = await send(h, delivery)
    assert response.status_code == 200, response.text
    answer: str = response.json()["outcome"]
    return answer


async def available(h: Harness, event_id: str, tier: str) -> int:
    out = await h.app.ok("getTicketAvailability", {"eventId": event_id})
    (found,) = [t for t in out["tiers"] if t["tierId"] == tier]
    count: int = found["availableQuantity"]
    return count


async def tickets(h: Harness, payment_id: str) -> dict[str, str]:
    """The payment's tickets: id → status."""
    return {t.id: t.status for t in await rows(h.settings, Ticket, Ticket.payment_id == payment_id)}


async def payment(h: Harness, payment_id: str) -> Payment:
    (row,) = await rows(h.settings, Payment, Payment.payment_id == payment_id)
    return row


def completion(hold: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The data of a correct ``payment.completed`` for ``hold``, with ``changes`` (None drops a field)."""
    data = {
        "paymentId": new_payment_id(),
        "checkoutToken": hold["token"],
        "amount": hold["amountCents"],
        "currency": hold["currency"],
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


async def test_malformed_payments_are_refused_and_write_nothing(harness: Harness) -> None:
    event_id, tier, hold = await new_hold(harness.app, quantity=2)
    total = hold["amountCents"]
    malformed = {
        "amount missing": completion(hold, amount=None),
        'amount "1"': completion(hold, amount=str(total)),
        "amount 1.0": completion(hold, amount=float(total)),
        "amount true": completion(hold, amount=True),
        "amount 2^63": completion(hold, amount=2**63),
        "amount 2^53 + 1": completion(hold, amount=2**53 + 1),
        "amount negative": completion(hold, amount=-total),
        "currency missing": completion(hold, currency=None),
        "currency unknown": completion(hold, currency="EURO"),
        "currency upper case": completion(hold, currency="EUR"),
        "currency a number": completion(hold, currency=978),
        "paymentId missing": completion(hold, paymentId=None),
        "paymentId with a NUL": completion(hold, paymentId="pay_\x00"),
        "checkoutToken a number": completion(hold, checkoutToken=7),
        "metadata a list": completion(hold, metadata=["holdId"]),
    }
    for case, data in malformed.items():
        response = await send(harness, BROKER.delivery("payment.completed", data))
        assert response.status_code == 400, (case, response.text)
        assert response.json()["error"] == "InvalidRequest", case
        assert response.json()["message"].startswith("data."), case
    refund = BROKER.about("payment.refunded", hold, new_payment_id(), ticketIds="ticket_1")
    assert (await send(harness, refund)).status_code == 400
    assert await rows(harness.settings, Payment) == []
    assert await rows(harness.settings, Ticket) == []
    assert await rows(harness.settings, IdempotencyKey, IdempotencyKey.scope == "atm-delivery") == []
    assert await available(harness, event_id, tier) == 8  # still held, nothing sold
    assert await outcome(harness, BROKER.delivery("payment.completed", completion(hold))) == "issued"


async def test_garbled_headers_and_bodies_are_refused(harness: Harness) -> None:
    _, _, hold = await new_hold(harness.app, quantity=1)
    now = int(time.time())
    garbled = (
        f"t={now},v1={'é' * 64}".encode(),
        f"t={now},v1=00".encode() + b"\xff\xfe",
        "t=١٢٣,v1=ab".encode(),
    )
    for value in garbled:
        delivery = BROKER.paid(hold)
        sent: dict[str, Any] = {**delivery.headers, "atm-signature": value}
        response = await harness.app.http.post(
            f"{harness.server.url}/webhooks/atm", content=delivery.body, headers=sent
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "InvalidRequest"
    for delivery_id in ("evt_" + "x" * 300, "evt x", "evt_\x01"):  # signed, but not a delivery id
        signed = BROKER.delivery("payment.completed", completion(hold), delivery_id=delivery_id)
        assert (await send(harness, signed)).status_code == 400, delivery_id
    deep = b'{"type":"payment.completed","data":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    for body in (deep, b"[1, 2]", b"\xff\xfe not json"):
        signature = signature_header(BROKER.secrets, int(time.time()), "evt_raw", body)
        sent = {"atm-signature": signature, "atm-delivery-id": "evt_raw", "content-type": "application/json"}
        response = await harness.app.http.post(
            f"{harness.server.url}/webhooks/atm", content=body, headers=sent
        )
        assert response.status_code == 400 and response.json()["error"] == "InvalidRequest", body[:20]
    assert await rows(harness.settings, Payment) == []
    assert await outcome(harness, BROKER.paid(hold)) == "issued"  # the hold was never touched


async def test_a_payment_that_does_not_match_its_hold_is_kept_for_review(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    await register(harness.settings.resolved_database_url, harness.app.identity.did, webhook_url=HOOKS)
    event_id, tier, hold = await new_hold(harness.app, quantity=2)
    total = hold["amountCents"]
    wrong = {
        "less": completion(hold, amount=total - 1),
        "more": completion(hold, amount=total + 1),
        "other currency": completion(hold, currency="usd"),
        "nothing": completion(hold, amount=0),
    }
    for case, data in wrong.items():
        assert await outcome(harness, BROKER.delivery("payment.completed", data)) == "needs_review", case
        assert await tickets(harness, data["paymentId"]) == {}, case
        row = await payment(harness, data["paymentId"])
        assert (row.status, row.amount, row.currency) == ("needs_review", data["amount"], data["currency"])
    assert await available(harness, event_id, tier) == 8  # the hold still holds, the buyer may pay it
    told = [
        json.loads(m.body)["data"]
        for m in await rows(harness.settings, OutboxMessage)
        if m.event_type == "ticket.hold.payment-unfulfilled"
    ]
    assert [d["status"] for d in told] == ["needs_review"] * 4
    assert {d["paymentId"] for d in told} == {d["paymentId"] for d in wrong.values()}

    args = build_parser().parse_args(["payments", "list", "--status", "needs_review"])
    await asyncio.to_thread(args.func, args, harness.settings)
    listed = capsys.readouterr().out
    assert all(d["paymentId"] in listed for d in wrong.values())
    assert listed.count("needs_review") == 4
    assert await outcome(harness, BROKER.delivery("payment.completed", completion(hold))) == "issued"


async def test_failed_then_completed_issues_and_completed_then_failed_stands(harness: Harness) -> None:
    await register(harness.settings.resolved_database_url, harness.app.identity.did, webhook_url=HOOKS)
    event_id, tier, hold = await new_hold(harness.app, quantity=2, capacity=4)
    pid = new_payment_id()
    assert await outcome(harness, BROKER.about("payment.failed", hold, pid)) == "failed"
    assert await available(harness, event_id, tier) == 4
    assert (
        await outcome(harness, BROKER.delivery("payment.completed", completion(hold, paymentId=pid)))
        == "issued"
    )
    assert set((await tickets(harness, pid)).values()) == {"active"}
    assert (await payment(harness, pid)).status == "completed"
    assert await outcome(harness, BROKER.about("payment.failed", hold, pid)) == "ignored"
    assert set((await tickets(harness, pid)).values()) == {"active"}
    assert await available(harness, event_id, tier) == 2

    # Failed, its places taken meanwhile, then completed: kept for refund, and the app is told.
    other = await harness.app.ok("createTicketHold", {"items": [{"tierId": tier, "quantity": 2}]})
    late = new_payment_id()
    assert await outcome(harness, BROKER.about("payment.failed", other, late)) == "failed"
    await harness.app.ok("createTicketHold", {"items": [{"tierId": tier, "quantity": 2}]})
    paid_late = BROKER.delivery("payment.completed", completion(other, paymentId=late))
    assert await outcome(harness, paid_late) == "needs_refund"
    assert await tickets(harness, late) == {}
    assert (await payment(harness, late)).status == "needs_refund"
    told = [m for m in await rows(harness.settings, OutboxMessage) if late in m.body]
    assert [m.event_type for m in told] == ["ticket.hold.payment-unfulfilled"]


async def test_a_refund_before_its_completion_is_kept_and_nothing_is_issued(harness: Harness) -> None:
    event_id, tier, hold = await new_hold(harness.app, quantity=2)
    pid = new_payment_id()
    assert await outcome(harness, BROKER.about("payment.refunded", hold, pid)) == "refunded 0"
    paid = BROKER.delivery("payment.completed", completion(hold, paymentId=pid))
    assert await outcome(harness, paid) == "refunded"
    assert await tickets(harness, pid) == {}
    row = await payment(harness, pid)
    assert (row.status, row.refunded_amount) == ("refunded", hold["amountCents"])
    assert await outcome(harness, BROKER.about("payment.failed", hold, pid)) == "ignored"
    assert await available(harness, event_id, tier) == 8  # still the hold's, until it lapses

    # The other order: issued, then refunded in full.
    _, _, second = await new_hold(harness.app, quantity=2)
    after = new_payment_id()
    assert (
        await outcome(harness, BROKER.delivery("payment.completed", completion(second, paymentId=after)))
        == "issued"
    )
    assert await outcome(harness, BROKER.about("payment.refunded", second, after)) == "refunded 2"
    assert set((await tickets(harness, after)).values()) == {"refunded"}
    assert (await payment(harness, after)).status == "refunded"


async def test_a_partial_refund_refunds_only_the_tickets_it_names(harness: Harness) -> None:
    event_id, tier, hold = await new_hold(harness.app, quantity=3)
    pid, unit = new_payment_id(), hold["amountCents"] // 3
    await outcome(harness, BROKER.delivery("payment.completed", completion(hold, paymentId=pid)))
    first, second, third = sorted(await tickets(harness, pid))
    _, _, stranger = await new_hold(harness.app, quantity=1)
    other = new_payment_id()
    await outcome(harness, BROKER.delivery("payment.completed", completion(stranger, paymentId=other)))
    (foreign,) = await tickets(harness, other)

    named = BROKER.about(
        "payment.refunded", hold, pid, amount=unit, currency="eur", ticketIds=[first, foreign]
    )
    assert await outcome(harness, named) == "refunded 1"
    assert await tickets(harness, pid) == {first: "refunded", second: "active", third: "active"}
    assert await tickets(harness, other) == {
        foreign: "active"
    }  # another payment's ticket is not this refund's
    row = await payment(harness, pid)
    assert (row.status, row.refunded_amount) == ("partially_refunded", unit)
    assert await available(harness, event_id, tier) == 8  # one place back on sale, no more

    unnamed = BROKER.about("payment.refunded", hold, pid, amount=unit)
    assert await outcome(harness, unnamed) == "refunded 0"
    assert await tickets(harness, pid) == {first: "refunded", second: "active", third: "active"}
    assert (await payment(harness, pid)).refunded_amount == 2 * unit
    assert await available(harness, event_id, tier) == 8

    rest = BROKER.about("payment.refunded", hold, pid, amount=hold["amountCents"] - 2 * unit)
    assert await outcome(harness, rest) == "refunded 2"  # the amounts reach what was paid: all of it
    assert set((await tickets(harness, pid)).values()) == {"refunded"}
    row = await payment(harness, pid)
    assert (row.status, row.refunded_amount) == ("refunded", hold["amountCents"])
    assert await available(harness, event_id, tier) == 10


async def test_a_partial_refund_before_the_completion_keeps_its_amount(harness: Harness) -> None:
    _, _, hold = await new_hold(harness.app, quantity=2)
    pid = new_payment_id()
    assert await outcome(harness, BROKER.about("payment.refunded", hold, pid, amount=100)) == "refunded 0"
    assert (
        await outcome(harness, BROKER.delivery("payment.completed", completion(hold, paymentId=pid)))
        == "issued"
    )
    assert set((await tickets(harness, pid)).values()) == {"active"}
    row = await payment(harness, pid)
    assert (row.status, row.refunded_amount, row.amount) == ("partially_refunded", 100, hold["amountCents"])

    # Refunds naming no hold add up; the completion then finds them covering what it paid.
    _, _, other = await new_hold(harness.app, quantity=2)
    covered, total = new_payment_id(), other["amountCents"]
    for amount in (total - 100, 100):
        refund = BROKER.delivery("payment.refunded", {"paymentId": covered, "amount": amount})
        assert await outcome(harness, refund) == "refunded 0"
    assert (await payment(harness, covered)).status == "partially_refunded"
    paid = BROKER.delivery("payment.completed", completion(other, paymentId=covered))
    assert await outcome(harness, paid) == "refunded"
    assert await tickets(harness, covered) == {}
    row = await payment(harness, covered)
    assert (row.status, row.refunded_amount, row.hold_id) == ("refunded", total, other["holdId"])


async def live_hold(database_url: str, did: str) -> Hold:
    """A live hold as one made while a broker was configured (or before the rule) is stored."""
    db, now = Database(database_url), SystemClock().now_ms()
    try:
        async with db.write() as session:
            app = await apps.register_app(session, did=did, environment="live", now_ms=now)
            await session.flush()
            caller = Caller(app.id, app.did, "live")
            _, (hold,) = await tier_with_holds(
                session,
                caller,
                "live",
                [1],
                now,
                keyring=Keyring(b"l" * 32),
                return_url="https://shop.example/done",
            )
            return hold
    finally:
        await db.dispose()


async def test_the_dev_checkout_refuses_a_live_hold(harness: Harness) -> None:
    hold = await live_hold(harness.settings.resolved_database_url, "did:web:live-shop.example")
    checkout = f"{harness.server.url}/checkout/{hold.token}"
    assert (await harness.app.http.get(checkout)).status_code == 404
    assert (await harness.app.http.post(f"{checkout}/pay")).status_code == 404
    assert (await harness.app.http.post(f"{checkout}/cancel")).status_code == 404
    assert await rows(harness.settings, Ticket) == []
    assert await rows(harness.settings, Payment) == []
    (stored,) = await rows(harness.settings, Hold, Hold.id == hold.id)
    assert stored.status == "held"


async def test_a_live_hold_needs_a_broker(harness: Harness) -> None:
    live = await harness.client("did:web:live-shop.example", "live", acts_for=[ORGANIZER])
    event = await active_event(live)
    _, (tier,) = await shared_group(live, event, capacity=3, tiers=1)
    refused = await live.call("createTicketHold", {"items": [{"tierId": tier, "quantity": 1}]})
    assert refused.status_code == 409 and refused.json()["error"] == "PaymentSetupIncomplete"
    assert await rows(harness.settings, Hold) == []
    await live.aclose()

    handler = BufferingHandler(capacity=100)  # keeps the records it is handed
    logging.getLogger("tickets").addHandler(handler)
    db = Database(harness.settings.resolved_database_url)
    try:
        await warn_about_payments(db, harness.settings)
        await warn_about_payments(
            db, Settings(**{**harness.settings.model_dump(), "broker_url": "https://pay.example"})
        )
    finally:
        logging.getLogger("tickets").removeHandler(handler)
        await db.dispose()
    assert len(handler.buffer) == 1 and handler.buffer[0].levelno == logging.WARNING
    assert "PaymentSetupIncomplete" in handler.buffer[0].getMessage()


BAD_URLS = [
    "javascript:alert(document.cookie)",
    "JavaScript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "http://evil.example/done",
    "/done",
    "//evil.example/done",
    "https:evil.example",
    "https://user@evil.example/",
    "https://shop.example\\@evil.example/",
    "https://shop.example/ done",
    "https://bücher.example/",
    "ftp://shop.example/",
]


async def test_return_and_cancel_urls_must_be_https(harness: Harness) -> None:
    event = await active_event(harness.app)
    _, (tier,) = await shared_group(harness.app, event, capacity=10, tiers=1)
    items = [{"tierId": tier, "quantity": 1}]
    for field in ("returnUrl", "cancelUrl"):
        for url in BAD_URLS:
            response = await harness.app.call("createTicketHold", {"items": items, field: url})
            assert response.status_code == 400, (field, url, response.text)
            assert response.json()["error"] == "InvalidRequest" and field in response.json()["message"]
    assert await rows(harness.settings, Hold) == []

    good = await harness.app.ok(
        "createTicketHold",
        {
            "items": items,
            "returnUrl": "https://shop.example/done?x=1",
            "cancelUrl": "http://127.0.0.1:5173/back",
        },
    )
    checkout = f"{harness.server.url}/checkout/{good['token']}"
    paid = await harness.app.http.post(f"{checkout}/pay")
    assert paid.is_redirect and paid.headers["location"] == "https://shop.example/done?x=1"
    other = await harness.app.ok("createTicketHold", {"items": items, "cancelUrl": "http://localhost/back"})
    cancelled = await harness.app.http.post(f"{harness.server.url}/checkout/{other['token']}/cancel")
    assert cancelled.is_redirect and cancelled.headers["location"] == "http://localhost/back"

    # A URL stored before the rule is checked again where the buyer would be sent.
    stale = await harness.app.ok("createTicketHold", {"items": items})
    db = Database(harness.settings.resolved_database_url)
    try:
        async with db.write() as session:
            await session.execute(
                update(Hold).where(Hold.id == stale["holdId"]).values(return_url="javascript:alert(1)")
            )
    finally:
        await db.dispose()
    shown = await harness.app.http.post(f"{harness.server.url}/checkout/{stale['token']}/pay")
    assert shown.status_code == 200 and not shown.is_redirect and "Paid" in shown.text


async def test_with_a_broker_live_holds_are_taken_but_http_to_loopback_is_not(
    database_url: str, tmp_path: Path
) -> None:
    async with running_harness(database_url, tmp_path, broker_url="https://pay.example") as h:
        live = await h.client("did:web:live-shop.example", "live", acts_for=[ORGANIZER])
        event = await active_event(live)
        _, (tier,) = await shared_group(live, event, capacity=3, tiers=1)
        items = [{"tierId": tier, "quantity": 1}]
        refused = await live.call("createTicketHold", {"items": items, "returnUrl": "http://127.0.0.1/done"})
        assert refused.status_code == 400 and "returnUrl" in refused.json()["message"]
        hold = await live.ok("createTicketHold", {"items": items, "returnUrl": "https://shop.example/done"})
        assert hold["url"].startswith("https://pay.example/checkout/")
        await live.aclose()
