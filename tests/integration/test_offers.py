"""Offers over real HTTP on both databases: capped codes under concurrency (with a negative
control), redemptions given back by released and expired holds and spent by paid ones, presale
access to hidden tiers, per-buyer caps, app fees, comp codes, one answer for every wrong code, and
the limit on guessing codes."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import APP_DID, Harness, lapsing_harness, running_harness
from sqlalchemy import select
from support.broker import FakeBroker, new_payment_id
from support.catalog import ORGANIZER, active_event
from support.races import without_hold_locks
from support.server import MovedClock, make_settings, register, set_fees

from server.cli.main import build_parser
from server.db.engine import Database
from server.db.models import OutboxMessage
from server.domain.offers.pricing import Fees
from server.errors import AppNotRegistered, InvalidRequest

BROKER = FakeBroker()
BUYER = "did:plc:buyer00000000000000000001"
OTHER_BUYER = "did:plc:buyer00000000000000000002"


async def offer(h: Harness, event: dict[str, Any], code: str, **fields: Any) -> dict[str, Any]:
    body = {"eventId": event["id"], "name": fields.pop("name", f"Offer {code}"), "code": code, **fields}
    body.setdefault(
        "kind", "discount" if "discountPercent" in body or "discountAmount" in body else "affiliate"
    )
    out = await h.app.ok("createOffer", body)
    created: dict[str, Any] = out["offer"]
    return created


async def tier(h: Harness, event: dict[str, Any], **fields: Any) -> str:
    body = {
        "organizerDid": ORGANIZER,
        "event": {"uri": event["uri"]},
        "title": fields.pop("title", "General"),
        "currency": "eur",
        "unitAmount": 2_500,
        "quantityTotal": 500,
        "maxPerOrder": 50,
        **fields,
    }
    out = await h.app.ok("createTicketTier", body)
    tier_id: str = out["tier"]["id"]
    return tier_id


def buyer_fields(h: Harness, did: str, method: str = "createTicketHold") -> dict[str, str]:
    return {"buyerDid": did, "buyerAssertionJwt": h.identity(did).token(f"tickets.atmosphere.{method}")}


async def hold(h: Harness, tier_id: str, quantity: int = 1, **fields: Any) -> Any:
    return await h.app.call(
        "createTicketHold", {"items": [{"tierId": tier_id, "quantity": quantity}], **fields}
    )


async def issued_webhook_hold(database_url: str) -> dict[str, Any]:
    """The ``hold`` of the latest ``tickets.issued`` webhook in the outbox."""
    db = Database(database_url)
    try:
        async with db.read() as session:
            body = await session.scalar(
                select(OutboxMessage.body)
                .where(OutboxMessage.event_type == "tickets.issued")
                .order_by(OutboxMessage.id.desc())
            )
    finally:
        await db.dispose()
    assert body is not None
    hold: dict[str, Any] = json.loads(body)["data"]["hold"]
    return hold


@contextlib.asynccontextmanager
async def lapsing_tier(
    database_url: str, tmp_path: Path, clock: MovedClock
) -> AsyncIterator[tuple[Harness, dict[str, Any], str]]:
    """A :func:`lapsing_harness` with an active event and a tier."""
    async with lapsing_harness(database_url, tmp_path, clock) as h:
        event = await active_event(h.app)
        yield h, event, await tier(h, event)


async def usage(h: Harness, event: dict[str, Any], offer_id: str) -> dict[str, Any]:
    offers: list[dict[str, Any]] = (await h.app.ok("listOffers", {"eventId": event["id"]}))["offers"]
    (found,) = [o for o in offers if o["id"] == offer_id]
    return found


async def capped_burst(h: Harness) -> tuple[Counter[int], dict[str, Any]]:
    """100 holds at once on a code capped at 10 redemptions, with places for all of them."""
    event = await active_event(h.app)
    tier_id = await tier(h, event, quantityTotal=200)
    capped = await offer(h, event, "TEN-ONLY", discountPercent=20, maxRedemptions=10)
    answers = await asyncio.gather(*(hold(h, tier_id, offerCode="ten-only") for _ in range(100)))
    for answer in answers:
        if answer.status_code != 200:
            assert (answer.status_code, answer.json()["error"]) == (409, "OfferCodeExhausted"), answer.text
    return Counter(a.status_code for a in answers), await usage(h, event, capped["id"])


async def test_a_capped_code_is_never_redeemed_past_its_cap(harness: Harness) -> None:
    statuses, counters = await capped_burst(harness)
    assert statuses == Counter({200: 10, 409: 90})
    assert (counters["reservedQuantity"], counters["redeemedQuantity"], counters["remainingQuantity"]) == (
        10,
        0,
        0,
    )


async def test_negative_control_without_the_offer_lock_over_redeems(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_hold_locks(monkeypatch)
    async with running_harness(database_url, tmp_path) as h:
        statuses, counters = await capped_burst(h)
    assert statuses[200] == counters["reservedQuantity"]
    assert statuses[200] > 10, "the race was not caught: the concurrency test would not detect a missing lock"


async def test_released_and_expired_holds_give_redemptions_back_and_paid_ones_spend_them(
    database_url: str, tmp_path: Path
) -> None:
    clock = MovedClock()
    async with lapsing_tier(database_url, tmp_path, clock) as (h, event, tier_id):
        two = await offer(
            h, event, "TWO", discountAmount={"amount": 500, "currency": "eur"}, maxRedemptions=2
        )
        first = (await hold(h, tier_id, offerCode="TWO")).json()
        await hold(h, tier_id, offerCode="TWO")
        refused = await hold(h, tier_id, offerCode="TWO")
        assert refused.json()["error"] == "OfferCodeExhausted"
        await h.app.ok("releaseTicketHold", {"holdId": first["holdId"]})
        await register(database_url, APP_DID, webhook_url="http://127.0.0.1:9/hooks")  # webhooks queued
        paid = (await hold(h, tier_id, offerCode="TWO")).json()
        assert paid["amountCents"] == 2_000 and paid["discountAmount"] == 500 and paid["offerCode"] == "TWO"
        outcome = await BROKER.send(h.app.http, h.server.url, BROKER.paid(paid, payment_id=new_payment_id()))
        assert outcome.json()["outcome"] == "issued"
        issued = await issued_webhook_hold(database_url)  # the app learns the price parts and the offer
        assert (issued["amount"], issued["discountAmount"], issued["offerId"]) == (2_000, 500, two["id"])
        counters = await usage(h, event, two["id"])
        assert (counters["redeemedQuantity"], counters["reservedQuantity"]) == (1, 1)
        clock.advance(61)  # the unpaid hold lapses (not yet swept): its redemption is back
        counters = await usage(h, event, two["id"])
        assert (
            counters["redeemedQuantity"],
            counters["reservedQuantity"],
            counters["remainingQuantity"],
        ) == (
            1,
            0,
            1,
        )
        assert (await hold(h, tier_id, offerCode="TWO")).status_code == 200
        assert (await hold(h, tier_id, offerCode="TWO")).json()["error"] == "OfferCodeExhausted"


async def test_a_late_payment_whose_code_is_used_up_is_kept_for_refund(
    database_url: str, tmp_path: Path
) -> None:
    clock = MovedClock()
    async with lapsing_tier(database_url, tmp_path, clock) as (h, event, tier_id):
        await offer(h, event, "ONCE", discountPercent=50, maxRedemptions=1)
        late = (await hold(h, tier_id, offerCode="ONCE")).json()
        clock.advance(61)
        assert (await hold(h, tier_id, offerCode="ONCE")).status_code == 200  # took the redemption back
        answer = await BROKER.send(h.app.http, h.server.url, BROKER.paid(late, payment_id=new_payment_id()))
        assert answer.json()["outcome"] == "needs_refund"


async def test_a_presale_code_opens_a_hidden_tier_and_an_early_sale(harness: Harness) -> None:
    event = await active_event(harness.app)
    public = await tier(harness, event, title="General")
    hidden = await tier(harness, event, title="Friends", visibility="hidden")
    unlisted = await tier(harness, event, title="Press", visibility="unlisted")
    early = await tier(harness, event, title="Early", saleStartsAt="2099-01-01T00:00:00.000Z")
    await offer(harness, event, "FRIENDS", kind="presale", tierIds=[hidden, early])
    await offer(harness, event, "TENOFF", discountPercent=10, tierIds=[early])

    listed = await harness.app.ok("getTicketAvailability", {"eventId": event["id"]})
    assert [t["tierId"] for t in listed["tiers"]] == [public, early]  # neither hidden nor unlisted
    assert listed["tiers"][1]["status"] == "not-on-sale"
    refused = await hold(harness, hidden)
    assert (refused.status_code, refused.json()["error"]) == (409, "TicketHoldUnavailable")
    assert (await hold(harness, unlisted)).status_code == 200  # sold to whoever has its ID
    assert (await hold(harness, early, offerCode="TENOFF")).json()["error"] == "TicketHoldUnavailable"

    opened = await harness.app.ok("getTicketAvailability", {"eventId": event["id"], "offerCode": "friends"})
    states = {t["tierId"]: t["status"] for t in opened["tiers"]}
    assert states == {public: "available", hidden: "available", early: "available"}
    assert (await hold(harness, hidden, offerCode="Friends")).status_code == 200
    assert (await hold(harness, early, offerCode="FRIENDS")).status_code == 200
    # A presale code for other tiers opens nothing here, and says no more than an unknown code.
    assert (await hold(harness, public, offerCode="FRIENDS")).json()["error"] == "InvalidOfferCode"


async def test_every_wrong_code_gets_the_same_answer(harness: Harness) -> None:
    event = await active_event(harness.app)
    other_event = await active_event(harness.app)
    general = await tier(harness, event)
    hidden = await tier(harness, event, visibility="hidden")
    vip = await tier(harness, event, title="VIP")
    await offer(harness, event, "VIPONLY", discountPercent=5, tierIds=[vip])
    await offer(harness, event, "PAST", discountPercent=5, endsAt="2020-01-01T00:00:00.000Z")
    await offer(harness, event, "LATER", discountPercent=5, startsAt="2099-01-01T00:00:00.000Z")
    gone = await offer(harness, event, "GONE", discountPercent=5)
    await harness.app.ok("updateOffer", {"offerId": gone["id"], "status": "archived"})
    await offer(harness, other_event, "ELSEWHERE", discountPercent=5)

    answers = []
    for tier_id, code in [
        (general, "NOSUCHCODE"),
        (general, "VIPONLY"),
        (hidden, "VIPONLY"),
        (general, "PAST"),
        (general, "LATER"),
        (general, "GONE"),
        (general, "ELSEWHERE"),
    ]:
        response = await hold(harness, tier_id, offerCode=code)
        answers.append((response.status_code, response.json()))
        preview = await harness.app.call(
            "previewTicketOrder", {"tierId": tier_id, "quantity": 1, "offerCode": code}
        )
        answers.append((preview.status_code, preview.json()))
    assert {(status, body["error"], body["message"]) for status, body in answers} == {
        (400, "InvalidOfferCode", "this code cannot be used for this order")
    }


async def test_guessing_codes_is_limited_per_buyer_and_per_app(database_url: str, tmp_path: Path) -> None:
    async with running_harness(
        database_url, tmp_path, offer_code_failures_per_buyer=3, offer_code_failures_per_app=5
    ) as h:
        event = await active_event(h.app)
        tier_id = await tier(h, event)
        await offer(h, event, "REAL", discountPercent=10)
        for n in range(3):
            wrong = await hold(h, tier_id, offerCode=f"GUESS{n}", customerEmail="Guesser@example.org")
            assert wrong.json()["error"] == "InvalidOfferCode"
        blocked = await hold(h, tier_id, offerCode="REAL", customerEmail="guesser@example.org ")
        assert (blocked.status_code, blocked.json()["error"]) == (429, "RateLimitExceeded")
        assert 1 <= int(blocked.headers["retry-after"]) <= 600
        assert (
            await hold(h, tier_id, offerCode="REAL", customerEmail="someone@example.org")
        ).status_code == 200
        assert (await hold(h, tier_id, customerEmail="guesser@example.org")).status_code == 200  # no code
        for n in range(2):  # the app's fourth and fifth wrong codes, from other buyers
            await hold(h, tier_id, offerCode=f"MORE{n}", customerEmail=f"b{n}@example.org")
        guarded: list[tuple[str, dict[str, Any]]] = [
            ("createTicketHold", {"items": [{"tierId": tier_id, "quantity": 1}], "offerCode": "REAL"}),
            ("previewTicketOrder", {"tierId": tier_id, "quantity": 1, "offerCode": "REAL"}),
            ("getTicketAvailability", {"eventId": event["id"], "offerCode": "REAL"}),
        ]
        for call, body in guarded:
            response = await h.app.call(call, body)
            assert (response.status_code, response.json()["error"]) == (429, "RateLimitExceeded"), call
            assert "retry-after" in response.headers
        assert (await h.app.call("getTicketAvailability", {"eventId": event["id"]})).status_code == 200


async def test_a_code_capped_per_buyer(harness: Harness) -> None:
    event = await active_event(harness.app)
    tier_id = await tier(harness, event)
    await offer(harness, event, "PERSON", discountPercent=10, maxPerBuyer=2)
    assert (
        await hold(harness, tier_id, 2, offerCode="PERSON", **buyer_fields(harness, BUYER))
    ).status_code == 200
    again = await hold(harness, tier_id, 1, offerCode="PERSON", **buyer_fields(harness, BUYER))
    assert again.json()["error"] == "OfferCodeExhausted"
    assert (
        await hold(harness, tier_id, 2, offerCode="PERSON", customerEmail="x@example.org")
    ).status_code == 200
    assert (
        await hold(harness, tier_id, 1, offerCode="PERSON", **buyer_fields(harness, OTHER_BUYER))
    ).status_code == 200
    anonymous = await hold(harness, tier_id, 1, offerCode="PERSON")
    assert (anonymous.status_code, anonymous.json()["error"]) == (400, "InvalidRequest")


async def test_app_fees_on_the_buyer_or_the_organizer(harness: Harness, database_url: str) -> None:
    event = await active_event(harness.app)
    tier_id = await tier(harness, event)
    free = await tier(harness, event, title="Free", unitAmount=0)
    await offer(harness, event, "EARLY", discountPercent=15)
    await set_fees(database_url, APP_DID, Fees(bps=250, flat=30, to_buyer=True))
    quote = await harness.app.ok(
        "previewTicketOrder", {"tierId": tier_id, "quantity": 3, "offerCode": "early"}
    )
    assert quote == {
        "subtotalAmount": 7_500,
        "discountAmount": 1_125,
        "buyerFeeAmount": 249,
        "totalAmount": 6_624,
        "currency": "eur",
        "offerCode": "EARLY",
        "offerLabel": "Offer EARLY",
    }
    held = (await hold(harness, tier_id, 3, offerCode="early")).json()
    assert (held["amountCents"], held["buyerFeeAmount"], held["subtotalAmount"]) == (6_624, 249, 7_500)
    no_fee = await harness.app.ok("previewTicketOrder", {"tierId": free, "quantity": 2})
    assert (no_fee["buyerFeeAmount"], no_fee["totalAmount"]) == (0, 0)
    await set_fees(database_url, APP_DID, Fees(bps=250, flat=30, to_buyer=False))
    absorbed = await harness.app.ok("previewTicketOrder", {"tierId": tier_id, "quantity": 3})
    assert (absorbed["buyerFeeAmount"], absorbed["totalAmount"]) == (0, 7_500)


async def test_a_comp_code_makes_a_paid_tier_claimable(harness: Harness) -> None:
    event = await active_event(harness.app)
    tier_id = await tier(harness, event)
    await offer(harness, event, "CREW", discountPercent=100, maxRedemptions=2)
    claim = {"items": [{"tierId": tier_id, "quantity": 2}], **buyer_fields(harness, BUYER, "claimFreeTicket")}
    refused = await harness.app.call("claimFreeTicket", claim)
    assert refused.json()["error"] == "TierNotFree"
    # An assertion serves once: the second try carries a fresh one.
    fresh = buyer_fields(harness, BUYER, "claimFreeTicket")
    claimed = await harness.app.ok("claimFreeTicket", {**claim, **fresh, "offerCode": "crew"})
    assert len(claimed["tickets"]) == 2
    offers = await harness.app.ok("listOffers", {"eventId": event["id"]})
    assert offers["offers"][0]["redeemedQuantity"] == 2


async def test_managing_offers(harness: Harness) -> None:
    event = await active_event(harness.app)
    other = await active_event(harness.app)
    tier_id = await tier(harness, event)
    foreign = await tier(harness, other)
    created = await offer(harness, event, "Spring-25", discountPercent=25, maxRedemptions=5, public=True)
    assert created["code"] == "Spring-25" and created["public"] is True and created["remainingQuantity"] == 5
    refusals: list[tuple[dict[str, Any], str]] = [
        ({"code": "SPRING-25", "discountPercent": 5}, "InvalidRequest"),  # codes match without case
        (
            {"code": "BOTH", "discountPercent": 5, "discountAmount": {"amount": 1, "currency": "eur"}},
            "InvalidRequest",
        ),
        ({"code": "NODISCOUNT", "kind": "discount"}, "InvalidRequest"),
        ({"code": "x!", "discountPercent": 5}, "InvalidRequest"),
        ({"code": "FOREIGN", "discountPercent": 5, "tierIds": [foreign]}, "TierNotFound"),
        (
            {"code": "BACKWARDS", "startsAt": "2027-01-02T00:00:00Z", "endsAt": "2027-01-01T00:00:00Z"},
            "InvalidRequest",
        ),
    ]
    for body, error in refusals:
        response = await harness.app.call(
            "createOffer", {"eventId": event["id"], "name": "x", "kind": "discount", **body}
        )
        assert (response.status_code, response.json()["error"]) == (
            404 if error == "TierNotFound" else 400,
            error,
        )
    await hold(harness, tier_id, 3, offerCode="spring-25")
    too_low = await harness.app.call("updateOffer", {"offerId": created["id"], "maxRedemptions": 2})
    assert too_low.json()["error"] == "CapacityBelowCommitted"
    cleared = await harness.app.call("updateOffer", {"offerId": created["id"], "discountPercent": None})
    assert cleared.json()["error"] == "InvalidRequest"  # a discount offer keeps a discount
    changed = await harness.app.ok(
        "updateOffer",
        {
            "offerId": created["id"],
            "maxRedemptions": 3,
            "discountPercent": None,
            "discountAmount": {"amount": 300, "currency": "eur"},
            "name": "Spring",
        },
    )
    assert changed["offer"]["remainingQuantity"] == 0 and "discountPercent" not in changed["offer"]
    assert changed["offer"]["discountAmount"] == {"amount": 300, "currency": "eur"}
    for n in range(4):
        await offer(harness, event, f"PAGE{n}")
    first = await harness.app.ok("listOffers", {"eventId": event["id"], "limit": 3})
    rest = await harness.app.ok("listOffers", {"eventId": event["id"], "limit": 3, "cursor": first["cursor"]})
    assert len(first["offers"]) == 3 and len(rest["offers"]) == 2 and "cursor" not in rest
    intruder = await harness.client("did:plc:otherapp000000000000000001")
    try:
        denied = await intruder.call("listOffers", {"eventId": event["id"]})
        assert (denied.status_code, denied.json()["error"]) == (403, "Forbidden")
    finally:
        await intruder.aclose()


@pytest.mark.parametrize("visibility", ["public", "unlisted", "hidden"])
async def test_tier_visibility_round_trips(harness: Harness, visibility: str) -> None:
    event = await active_event(harness.app)
    tier_id = await tier(harness, event, visibility=visibility)
    changed = await harness.app.ok("updateTicketTier", {"tierId": tier_id, "visibility": "public"})
    assert changed["tier"]["visibility"] == "public"
    bad = await harness.app.call("updateTicketTier", {"tierId": tier_id, "visibility": "secret"})
    assert (bad.status_code, bad.json()["error"]) == (400, "InvalidRequest")


def test_the_operator_sets_an_apps_fee(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(database_url, tmp_path)
    parser = build_parser()

    def tickets(*argv: str) -> list[str]:
        args = parser.parse_args(argv)
        args.func(args, settings)
        return capsys.readouterr().out.splitlines()

    tickets("app", "add", "--did", "did:web:shop.example", "--environment", "live")
    assert tickets(
        "app",
        "fees",
        "--did",
        "did:web:shop.example",
        "--environment",
        "live",
        "--bps",
        "250",
        "--flat",
        "30",
        "--to-buyer",
    ) == ["did:web:shop.example in live: 2.5% + 30 per ticket, paid by the buyer"]
    header, *rows = tickets("app", "list")
    assert header.split("\t")[5] == "fees"
    (row,) = [r for r in rows if "did:web:shop.example" in r]
    assert row.split("\t")[5] == "2.5% + 30 per ticket, paid by the buyer"
    with pytest.raises(InvalidRequest):
        tickets("app", "fees", "--did", "did:web:shop.example", "--environment", "live", "--bps", "10001")
    with pytest.raises(AppNotRegistered):
        tickets("app", "fees", "--did", "did:web:nobody.example", "--bps", "10")
