"""Catalog and hold behaviour over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from conftest import Harness, lapsing_harness
from support.catalog import ORGANIZER, active_event, event_input, for_event, shared_group
from support.consent import consented_app
from support.server import MovedClock


def hold_body(*items: tuple[str, int], **extra: Any) -> dict[str, Any]:
    return {"items": [{"tierId": t, "quantity": q} for t, q in items], **extra}


async def availability(h: Harness, event_id: str) -> dict[str, dict[str, Any]]:
    out = await h.app.ok("getTicketAvailability", {"eventId": event_id})
    return {t["tierId"]: t for t in out["tiers"]}


async def test_new_events_start_paused_and_holds_wait_for_activation(harness: Harness) -> None:
    created = await harness.app.ok(
        "createTicketTier",
        {
            "organizerDid": ORGANIZER,
            "event": event_input(),
            "title": "GA",
            "currency": "EUR",
            "unitAmount": 2500,
            "quantityTotal": 5,
        },
    )
    tier, group, event = created["tier"], created["capacityGroup"], created["event"]
    assert event["status"] == "paused"
    assert group["implicit"] is True and group["totalCapacity"] == 5
    assert tier["currency"] == "eur" and tier["availableQuantity"] == 5 and tier["maxPerOrder"] == 10

    refused = await harness.app.call("createTicketHold", hold_body((tier["id"], 1)))
    assert refused.status_code == 409 and refused.json()["error"] == "TicketHoldUnavailable"
    assert (await availability(harness, event["id"]))[tier["id"]]["status"] == "unavailable"

    await harness.app.ok("updateTicketEvent", {"eventId": event["id"], "status": "active"})
    hold = await harness.app.ok("createTicketHold", hold_body((tier["id"], 2)))
    assert hold["amountCents"] == 5000 and hold["currency"] == "eur"
    assert hold["items"] == [
        {"tierId": tier["id"], "title": "GA", "quantity": 2, "unitAmount": 2500, "currency": "eur"}
    ]
    assert hold["token"].startswith("chk_") and hold["url"].endswith(hold["token"])
    assert (await availability(harness, event["id"]))[tier["id"]]["availableQuantity"] == 3


async def test_release_returns_places_and_is_idempotent(harness: Harness) -> None:
    event = await active_event(harness.app)
    _, (tier,) = await shared_group(harness.app, event, capacity=4, tiers=1)
    hold = await harness.app.ok("createTicketHold", hold_body((tier, 4)))
    assert (await availability(harness, event["id"]))[tier]["status"] == "sold-out"
    for _ in range(2):
        released = await harness.app.ok(
            "releaseTicketHold", {"holdId": hold["holdId"], "reason": "changed mind"}
        )
        assert released["hold"] == {"id": hold["holdId"], "status": "released"}
    assert (await availability(harness, event["id"]))[tier]["availableQuantity"] == 4


async def test_a_hold_is_all_or_nothing_and_names_every_shortage(harness: Harness) -> None:
    event = await active_event(harness.app)
    group, (a, b) = await shared_group(harness.app, event, capacity=5, tiers=2, quantity=3)
    await harness.app.ok("createTicketHold", hold_body((a, 2)))
    refused = await harness.app.call("createTicketHold", hold_body((a, 2), (b, 3)))
    assert refused.status_code == 409
    body = refused.json()
    assert body["error"] == "InsufficientAvailability"
    assert {(s["subject"], s["id"], s["requested"], s["available"]) for s in body["shortages"]} == {
        ("tier", a, 2, 1),
        ("capacityGroup", group, 5, 3),
    }
    assert a in body["message"] and group in body["message"]
    tiers = await availability(harness, event["id"])
    assert (tiers[a]["availableQuantity"], tiers[b]["availableQuantity"]) == (1, 3)


async def test_sold_out_errors(harness: Harness) -> None:
    event = await active_event(harness.app)
    _, (a, b) = await shared_group(harness.app, event, capacity=2, tiers=2, quantity=2)
    await harness.app.ok("createTicketHold", hold_body((a, 2)))
    group_gone = await harness.app.call("createTicketHold", hold_body((b, 1)))
    assert group_gone.json()["error"] == "SoldOut"
    _, (c, d) = await shared_group(harness.app, event, capacity=5, tiers=2, quantity=2)
    await harness.app.ok("createTicketHold", hold_body((c, 2)))
    tier_gone = await harness.app.call("createTicketHold", hold_body((c, 1)))
    assert tier_gone.status_code == 409 and tier_gone.json()["error"] == "TierSoldOut"
    await harness.app.ok("createTicketHold", hold_body((d, 1)))


async def test_expired_holds_never_count_even_before_the_sweeper(database_url: str, tmp_path: Path) -> None:
    clock = MovedClock()
    async with lapsing_harness(database_url, tmp_path, clock) as h:
        event = await active_event(h.app)
        _, (tier,) = await shared_group(h.app, event, capacity=3, tiers=1)
        hold = await h.app.ok("createTicketHold", hold_body((tier, 3)))
        assert (await availability(h, event["id"]))[tier]["availableQuantity"] == 0
        clock.advance(61)
        assert (await availability(h, event["id"]))[tier]["availableQuantity"] == 3
        await h.app.ok("createTicketHold", hold_body((tier, 3)))
        released = await h.app.ok("releaseTicketHold", {"holdId": hold["holdId"]})
        assert released["hold"]["status"] == "expired"


async def test_the_sweeper_marks_lapsed_holds_expired(database_url: str, tmp_path: Path) -> None:
    clock = MovedClock()
    async with lapsing_harness(database_url, tmp_path, clock, sweep_interval_seconds=0.1) as h:
        event = await active_event(h.app)
        _, (tier,) = await shared_group(h.app, event, capacity=3, tiers=1)
        hold = await h.app.ok("createTicketHold", hold_body((tier, 1)))
        clock.advance(61)
        from sqlalchemy import select

        from server.db.engine import Database
        from server.db.models import Hold, LedgerEntry

        db = Database(database_url)
        try:
            for _ in range(50):
                await asyncio.sleep(0.1)
                async with db.read() as session:
                    status = await session.scalar(select(Hold.status).where(Hold.id == hold["holdId"]))
                if status == "expired":
                    break
            assert status == "expired"
            async with db.read() as session:
                actions = (
                    await session.scalars(
                        select(LedgerEntry.action)
                        .where(LedgerEntry.subject_id == hold["holdId"])
                        .order_by(LedgerEntry.id)
                    )
                ).all()
            assert actions == ["held", "expired"]
        finally:
            await db.dispose()


async def test_idempotency_key_replays_and_refuses_other_input(harness: Harness) -> None:
    event = await active_event(harness.app)
    _, (tier,) = await shared_group(harness.app, event, capacity=10, tiers=1)
    first = await harness.app.ok("createTicketHold", hold_body((tier, 2), idempotencyKey="order-42"))
    again = await harness.app.ok("createTicketHold", hold_body((tier, 2), idempotencyKey="order-42"))
    assert "reused" not in first
    assert again == {**first, "reused": True}
    assert (await availability(harness, event["id"]))[tier]["availableQuantity"] == 8
    other = await harness.app.call("createTicketHold", hold_body((tier, 3), idempotencyKey="order-42"))
    assert other.status_code == 422 and other.json()["error"] == "IdempotencyKeyReused"
    bad = await harness.app.call(
        "createTicketHold", hold_body((tier, 1), idempotencyKey="spaces are not allowed")
    )
    assert bad.status_code == 400 and bad.json()["error"] == "InvalidRequest"
    # Keys are per app: another app (the organizer consents to it too) may use the same key for
    # its own order.
    other_app = await consented_app(harness, "did:web:other-app.example", ORGANIZER)
    mine = await other_app.ok("createTicketHold", hold_body((tier, 1), idempotencyKey="order-42"))
    assert mine["holdId"] != first["holdId"]
    await other_app.aclose()


async def test_a_refused_idempotent_call_can_be_retried(harness: Harness) -> None:
    event = await active_event(harness.app)
    _, (tier,) = await shared_group(harness.app, event, capacity=2, tiers=1)
    blocker = await harness.app.ok("createTicketHold", hold_body((tier, 2)))
    refused = await harness.app.call("createTicketHold", hold_body((tier, 1), idempotencyKey="retry-me"))
    assert refused.json()["error"] == "SoldOut"
    await harness.app.ok("releaseTicketHold", {"holdId": blocker["holdId"]})
    retried = await harness.app.ok("createTicketHold", hold_body((tier, 1), idempotencyKey="retry-me"))
    assert "reused" not in retried


async def test_order_limit_sale_window_and_tier_status(harness: Harness) -> None:
    event = await active_event(harness.app)
    base = for_event(event, currency="usd", unitAmount=100, quantityTotal=50)
    limited = (await harness.app.ok("createTicketTier", {**base, "title": "Limited", "maxPerOrder": 2}))[
        "tier"
    ]
    later = (
        await harness.app.ok(
            "createTicketTier", {**base, "title": "Later", "saleStartsAt": "2099-01-01T00:00:00Z"}
        )
    )["tier"]
    over = await harness.app.call("createTicketHold", hold_body((limited["id"], 3)))
    assert over.status_code == 400 and over.json()["error"] == "OrderLimitExceeded"
    # Repeated lines for one tier add up against the limit.
    split = await harness.app.call("createTicketHold", hold_body((limited["id"], 2), (limited["id"], 1)))
    assert split.json()["error"] == "OrderLimitExceeded"
    early = await harness.app.call("createTicketHold", hold_body((later["id"], 1)))
    assert early.status_code == 409 and early.json()["error"] == "TicketHoldUnavailable"
    tiers = await availability(harness, event["id"])
    assert tiers[later["id"]]["status"] == "not-on-sale" and tiers[later["id"]]["availableQuantity"] == 0
    assert tiers[later["id"]]["saleStartsAt"] == "2099-01-01T00:00:00.000Z"

    await harness.app.ok("updateTicketTier", {"tierId": limited["id"], "status": "paused"})
    paused = await harness.app.call("createTicketHold", hold_body((limited["id"], 1)))
    assert paused.json()["error"] == "TicketHoldUnavailable"
    archived = await harness.app.ok("archiveTicketTier", {"tierId": limited["id"]})
    assert archived["tier"]["status"] == "archived"
    assert limited["id"] not in await availability(harness, event["id"])


async def test_a_hold_names_the_event_of_its_tiers(harness: Harness) -> None:
    event = await active_event(harness.app)
    other = await active_event(harness.app)
    _, (tier,) = await shared_group(harness.app, event, capacity=4, tiers=1)
    for named in ({"eventId": event["id"]}, {"eventUri": event["uri"]}, {}):
        assert (await harness.app.call("createTicketHold", hold_body((tier, 1), **named))).status_code == 200
    for named, status, error in (
        ({"eventId": other["id"]}, 400, "InvalidRequest"),
        ({"eventUri": other["uri"]}, 400, "InvalidRequest"),
        ({"eventId": event["id"], "eventUri": other["uri"]}, 404, "EventNotFound"),
        ({"eventId": "event_nope"}, 404, "EventNotFound"),
    ):
        refused = await harness.app.call("createTicketHold", hold_body((tier, 1), **named))
        assert (refused.status_code, refused.json()["error"]) == (status, error), named
    assert (await availability(harness, event["id"]))[tier]["availableQuantity"] == 1


async def test_capacity_never_goes_below_what_is_committed(harness: Harness) -> None:
    event = await active_event(harness.app)
    group, (tier,) = await shared_group(harness.app, event, capacity=10, tiers=1)
    await harness.app.ok("createTicketHold", hold_body((tier, 6)))
    below = await harness.app.call("updateCapacityGroup", {"capacityGroupId": group, "totalCapacity": 5})
    assert below.status_code == 409 and below.json()["error"] == "CapacityBelowCommitted"
    tier_below = await harness.app.call("updateTicketTier", {"tierId": tier, "quantityTotal": 5})
    assert tier_below.json()["error"] == "CapacityBelowCommitted"
    resized = await harness.app.ok("updateCapacityGroup", {"capacityGroupId": group, "totalCapacity": 6})
    assert resized["capacityGroup"]["availableQuantity"] == 0
    assert resized["capacityGroup"]["heldQuantity"] == 6


async def test_implicit_group_follows_its_tier(harness: Harness) -> None:
    created = await harness.app.ok(
        "createTicketTier",
        {
            "organizerDid": ORGANIZER,
            "event": event_input(),
            "title": "GA",
            "currency": "eur",
            "unitAmount": 100,
            "quantityTotal": 5,
        },
    )
    updated = await harness.app.ok("updateTicketTier", {"tierId": created["tier"]["id"], "quantityTotal": 8})
    assert updated["tier"]["quantityTotal"] == 8 and updated["tier"]["availableQuantity"] == 8


async def test_preview_prices_without_reserving(harness: Harness) -> None:
    event = await active_event(harness.app)
    _, (tier,) = await shared_group(harness.app, event, capacity=3, tiers=1)
    preview = await harness.app.ok(
        "previewTicketOrder", {"tierId": tier, "quantity": 3, "eventId": event["id"]}
    )
    assert preview == {
        "subtotalAmount": 3000,
        "buyerFeeAmount": 0,
        "discountAmount": 0,
        "totalAmount": 3000,
        "currency": "eur",
    }
    hold = await harness.app.ok("createTicketHold", hold_body((tier, 3)))
    assert hold["amountCents"] == preview["totalAmount"]


async def test_events_belong_to_their_app_until_the_organizer_hands_them_over(harness: Harness) -> None:
    event = await active_event(harness.app)
    other = await harness.client("did:web:other-app.example")
    refused = await other.call("updateTicketEvent", {"eventId": event["id"], "title": "Hijacked"})
    assert refused.status_code == 403 and refused.json()["error"] == "Forbidden"
    organizer = harness.identity(ORGANIZER)
    nsid = "tickets.atmosphere.createTicketTier"
    body = for_event(event, title="Partner tier", currency="eur", unitAmount=10, quantityTotal=5)
    no_assertion = await other.call("createTicketTier", body)
    assert no_assertion.status_code == 403 and no_assertion.json()["error"] == "OrganizerConsentRequired"
    forged = await other.call(
        "createTicketTier", {**body, "organizerAssertionJwt": other.identity.token(nsid)}
    )
    assert forged.status_code == 401 and forged.json()["error"] == "OrganizerAssertionInvalid"
    # The organizer's assertion hands the event to the app that presents it.
    ok = await other.ok("createTicketTier", {**body, "organizerAssertionJwt": organizer.token(nsid)})
    assert ok["tier"]["eventId"] == event["id"]
    lost = await harness.app.call("updateTicketEvent", {"eventId": event["id"], "title": "Mine"})
    assert lost.status_code == 403 and lost.json()["error"] == "Forbidden"
    reassign = await other.call(
        "createTicketEvent",
        {"organizerDid": "did:plc:someoneelse0000000000000", "event": {"uri": event["uri"], "title": "x"}},
    )
    assert reassign.status_code == 400 and reassign.json()["error"] == "OrganizerNotEventAuthority"
    await other.aclose()


async def test_environments_are_separate(harness: Harness) -> None:
    event = await active_event(harness.app)
    live = await harness.app.call("getTicketAvailability", {"eventId": event["id"]}, environment="live")
    assert live.status_code == 403 and live.json()["error"] == "AppNotRegistered"
    await harness.client(harness.app.identity.did, "live")
    missing = await harness.app.call("getTicketAvailability", {"eventId": event["id"]}, environment="live")
    assert missing.status_code == 404 and missing.json()["error"] == "EventNotFound"
