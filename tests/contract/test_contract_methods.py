"""Each published method called the way the public SDK and the pilot event app call it (with their
nulls, metadata, ``tierId`` or ``items``), and the fields they read checked one by one, type by type.
Over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from conftest import Harness
from support.catalog import ORGANIZER
from support.contract import (
    EVENT_SUMMARY,
    GROUP_SUMMARY,
    PRESENTATION,
    TICKET_SUMMARY,
    TIER_NULLS,
    TIER_SUMMARY,
    buyer_assertion,
    no_nulls,
    sdk_event,
    sdk_tier,
    shape,
    tier_request,
)

NS = "tickets.atmosphere."
CID = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"


async def test_tiers_take_the_sdks_nulls_and_answer_the_published_summaries(harness: Harness) -> None:
    event = await sdk_event(harness.app)
    created = await harness.app.ok("createTicketTier", tier_request(event["uri"]))
    assert set(created) == {"event", "capacityGroup", "tier"}
    shape(created["event"], EVENT_SUMMARY, "event")
    shape(created["capacityGroup"], GROUP_SUMMARY, "capacityGroup")
    tier = shape(created["tier"], TIER_SUMMARY, "tier")
    assert (tier["title"], tier["currency"], tier["unitAmount"], tier["quantityTotal"]) == (
        "General admission",
        "eur",
        2500,
        100,
    )
    assert tier["metadata"] == {"source": "sdk"}
    for cleared in ("description", "saleStartsAt", "saleEndsAt", "tierRef", "productRef", "priceRef"):
        assert cleared not in tier
    no_nulls(created)

    described = await harness.app.ok(
        "updateTicketTier",
        {
            "tierId": tier["id"],
            "description": "Standing",
            "saleStartsAt": "2026-01-01T00:00:00.000Z",
            "tierRef": {"uri": f"at://{ORGANIZER}/tickets.atmosphere.ticketTier/3ktier", "cid": CID},
        },
    )
    assert described["tier"]["description"] == "Standing"
    # The SDK clears with null: every one of its nullable fields goes back to "none".
    updated = await harness.app.ok(
        "updateTicketTier",
        {
            "tierId": tier["id"],
            "title": "GA",
            **TIER_NULLS,
            "metadata": {"source": "sdk", "v": 2},
        },
    )
    assert set(updated) == {"tier"}
    shape(updated["tier"], TIER_SUMMARY, "tier")
    assert updated["tier"]["title"] == "GA"
    assert updated["tier"]["metadata"] == {"source": "sdk", "v": 2}
    assert not {"description", "saleStartsAt", "tierRef"} & set(updated["tier"])
    no_nulls(updated)
    archived = await harness.app.ok("archiveTicketTier", {"tierId": tier["id"]})
    assert shape(archived["tier"], TIER_SUMMARY, "tier")["status"] == "archived"


async def test_events_and_groups_store_and_echo_the_apps_metadata(harness: Harness) -> None:
    event = await sdk_event(harness.app)
    shape(event, EVENT_SUMMARY, "event")
    assert event["metadata"] == {"pilot": {"eventPage": "/e/1"}}
    updated = await harness.app.ok(
        "updateTicketEvent",
        {
            "eventId": event["id"],
            "startsAt": None,
            "eventCid": None,
            "imageUrl": None,
            "metadata": {"pilot": {"eventPage": "/e/2"}},
        },
    )
    assert set(updated) == {"event"}
    assert updated["event"]["metadata"] == {"pilot": {"eventPage": "/e/2"}}
    assert "imageUrl" not in updated["event"]
    no_nulls(updated)

    group = await harness.app.ok(
        "createCapacityGroup",
        {
            "organizerDid": ORGANIZER,
            "event": {"uri": event["uri"]},
            "name": "Hall",
            "totalCapacity": 200,
            "metadata": {"floor": 1},
        },
    )
    assert set(group) == {"event", "capacityGroup"}
    shape(group["event"], {"id": str, "uri": str, "title": str}, "event")  # startsAt was cleared
    assert "startsAt" not in group["event"]
    shape(group["capacityGroup"], GROUP_SUMMARY, "capacityGroup")
    assert group["capacityGroup"]["metadata"] == {"floor": 1}
    resized = await harness.app.ok(
        "updateCapacityGroup",
        {"capacityGroupId": group["capacityGroup"]["id"], "totalCapacity": 150, "metadata": {"floor": 2}},
    )
    assert shape(resized["capacityGroup"], GROUP_SUMMARY, "capacityGroup")["totalCapacity"] == 150
    assert resized["capacityGroup"]["metadata"] == {"floor": 2}
    no_nulls(resized)


async def test_free_claims_take_tier_id_or_items_and_answer_ticket_summaries(harness: Harness) -> None:
    event = await sdk_event(harness.app)
    tier = await sdk_tier(harness.app, event["uri"], title="Free entry", unitAmount=0)
    buyer = harness.identity("did:plc:buyer000000000000000000a")
    claim = NS + "claimFreeTicket"
    by_tier = await harness.app.ok(
        "claimFreeTicket",
        {
            "eventId": event["id"],
            "tierId": tier["id"],
            "buyerDid": buyer.did,
            "buyerAssertionJwt": buyer_assertion(buyer, claim),
            "metadata": {"rsvp": "going"},
        },
    )
    by_items = await harness.app.ok(
        "claimFreeTicket",
        {
            "eventUri": event["uri"],
            "items": [{"tierId": tier["id"], "quantity": 2}],
            "buyerDid": buyer.did,
            "buyerAssertionJwt": buyer_assertion(buyer, claim),
            "idempotencyKey": "pilot:claim:1",
        },
    )
    for out, count in ((by_tier, 1), (by_items, 2)):
        shape(out, {"claimId": str, "holdId": str, "environment": str, "items": list, "tickets": list})
        assert len(out["tickets"]) == count
        for ticket in out["tickets"]:
            shape(ticket, TICKET_SUMMARY, "ticket")
            assert ticket["ticketId"] == ticket["id"]
            assert (ticket["eventId"], ticket["eventUri"], ticket["tierId"]) == (
                event["id"],
                event["uri"],
                tier["id"],
            )
            assert "paymentId" not in ticket  # a free claim has no payment: omitted, not null
        no_nulls(out)

    listed = await harness.app.ok("listBuyerTickets", {"buyerDid": buyer.did, "limit": 100})
    assert len(listed["tickets"]) == 3 and "cursor" not in listed
    for ticket in listed["tickets"]:
        shape(ticket, TICKET_SUMMARY, "ticket")
    by_organizer = await harness.app.ok("listOrganizerTickets", {"organizerDid": ORGANIZER})
    assert {t["id"] for t in by_organizer["tickets"]} == {t["id"] for t in listed["tickets"]}
    no_nulls(listed)


async def test_verify_and_check_in_answer_what_the_sdk_reads(harness: Harness) -> None:
    event = await sdk_event(harness.app)
    tier = await sdk_tier(harness.app, event["uri"], title="Door", unitAmount=0)
    buyer = harness.identity("did:plc:buyer000000000000000000b")
    claimed = await harness.app.ok(
        "claimFreeTicket",
        {
            "eventId": event["id"],
            "tierId": tier["id"],
            "buyerDid": buyer.did,
            "buyerAssertionJwt": buyer_assertion(buyer, NS + "claimFreeTicket"),
        },
    )
    (ticket,) = claimed["tickets"]

    verified = await harness.app.ok("verifyTicket", {"ticketToken": ticket["passToken"]})
    shape(verified, {"valid": bool, "ticket": dict, "presentation": dict, "event": dict, "tier": dict})
    assert verified["valid"] is True and "reason" not in verified
    shape(verified["ticket"], TICKET_SUMMARY, "ticket")
    shape(verified["event"], EVENT_SUMMARY, "event")
    shape(verified["tier"], TIER_SUMMARY, "tier")
    presentation = shape(verified["presentation"], PRESENTATION, "presentation")
    shape(presentation["event"], {"uri": str, "title": str, "startsAt": str}, "presentation.event")
    assert presentation["tier"] == {"title": "Door"}
    assert presentation["organizer"] == {"did": ORGANIZER}
    assert (verified["event"]["id"], verified["tier"]["id"]) == (event["id"], tier["id"])
    no_nulls(verified)

    scanned = await harness.app.ok(
        "checkInTicket",
        {"ticketToken": ticket["passToken"], "idempotencyKey": "door-1:scan-1", "metadata": {"door": 1}},
    )
    shape(scanned, {"ok": bool, "status": str, "ticket": dict})
    assert (scanned["ok"], scanned["status"]) == (True, "checked_in")
    shape(scanned["ticket"], TICKET_SUMMARY, "ticket")
    again = await harness.app.ok("checkInTicket", {"ticketToken": ticket["passToken"]})
    assert (again["ok"], again["status"]) == (False, "already_checked_in")
    no_nulls(again)
