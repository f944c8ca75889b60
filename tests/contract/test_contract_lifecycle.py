"""Every lifecycle event's ``data`` in the public SDK's shape: ``{eventId, eventUri, holdId,
paymentId, issuedCount, tickets[]}`` at the top level (each where it applies), ``$type`` =
``money.atmosphere.event.receive#<lowerCamel type>``, no ``null`` anywhere. Checked on the exact
bytes queued for delivery, after real calls over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from conftest import APP_DID, running_harness
from support.contract import (
    EVENT_TYPE_BASE,
    LIFECYCLE_TOP,
    TICKET_SUMMARY,
    buyer_assertion,
    no_nulls,
    outbox_bodies,
    poll,
    sdk_event,
    sdk_tier,
    shape,
)
from support.server import register

NS = "tickets.atmosphere."
TYPES = {
    "ticket.hold.created": "ticketHoldCreated",
    "ticket.hold.expired": "ticketHoldExpired",
    "tickets.issued": "ticketsIssued",
    "ticket.voided": "ticketVoided",
    "ticket.refunded": "ticketRefunded",
    "ticket.checked-in": "ticketCheckedIn",
}


async def test_every_lifecycle_event_carries_the_sdks_data(database_url: str, tmp_path: Path) -> None:
    async with running_harness(database_url, tmp_path, hold_ttl_seconds=2, sweep_interval_seconds=0.2) as h:
        # Nothing listens there: the messages stay queued, exactly as they would be sent.
        await register(database_url, APP_DID, webhook_url="http://127.0.0.1:9/atm-events")
        event = await sdk_event(h.app)
        paid_tier = await sdk_tier(h.app, event["uri"], unitAmount=1200)
        free_tier = await sdk_tier(h.app, event["uri"], title="Free", unitAmount=0)

        hold = await h.app.ok("createTicketHold", {"items": [{"tierId": paid_tier["id"], "quantity": 2}]})
        async with httpx.AsyncClient(base_url=h.server.url) as browser:
            assert (await browser.post(f"/checkout/{hold['token']}/pay")).status_code == 200
        paid = (await h.app.ok("listBuyerTickets", {}))["tickets"]
        buyer = h.identity("did:plc:lifecyclebuyer0000000000")
        claim = await h.app.ok(
            "claimFreeTicket",
            {
                "tierId": free_tier["id"],
                "buyerDid": buyer.did,
                "buyerAssertionJwt": buyer_assertion(buyer, NS + "claimFreeTicket"),
            },
        )
        await h.app.ok("checkInTicket", {"ticketToken": paid[0]["passToken"]})
        await h.app.ok("voidTicket", {"ticketId": paid[1]["id"], "reason": "duplicate"})
        await h.app.ok("refundTicket", {"ticketId": claim["tickets"][0]["id"]})
        lapsed = await h.app.ok("createTicketHold", {"items": [{"tierId": paid_tier["id"], "quantity": 1}]})

        async def all_queued() -> dict[str, list[dict[str, Any]]] | None:
            bodies = await outbox_bodies(database_url)
            return bodies if "ticket.hold.expired" in bodies else None

        bodies = await poll(all_queued)

    assert set(TYPES) <= set(bodies)
    for event_type, messages in bodies.items():
        for body in messages:
            shape(
                body,
                {
                    "id": str,
                    "type": str,
                    "createdAt": str,
                    "apiVersion": str,
                    "environment": str,
                    "data": dict,
                },
            )
            assert (body["type"], body["apiVersion"], body["environment"]) == (event_type, "2026-07", "test")
            data = shape(body["data"], LIFECYCLE_TOP, f"{event_type}.data")
            assert data["eventId"] == event["id"] and data["eventUri"] == event["uri"]
            if event_type in TYPES:
                assert data["$type"] == f"{EVENT_TYPE_BASE}#{TYPES[event_type]}"
            no_nulls(data, f"{event_type}.data")

    created = [b["data"] for b in bodies["ticket.hold.created"]]
    assert [d["holdId"] for d in created] == [hold["holdId"], claim["holdId"], lapsed["holdId"]]
    assert [d["holdId"] for d in (b["data"] for b in bodies["ticket.hold.expired"])] == [lapsed["holdId"]]

    sold, claimed = (b["data"] for b in bodies["tickets.issued"])
    assert (sold["holdId"], sold["issuedCount"], len(sold["tickets"])) == (hold["holdId"], 2, 2)
    assert isinstance(sold["paymentId"], str)
    assert (claimed["holdId"], claimed["issuedCount"], claimed["claimId"]) == (
        claim["holdId"],
        1,
        claim["claimId"],
    )
    assert "paymentId" not in claimed  # a free claim: omitted, not null
    for data in (sold, claimed):
        for ticket in data["tickets"]:
            shape(ticket, TICKET_SUMMARY, "tickets[]")
            assert (ticket["status"], ticket["eventUri"]) == ("issued", event["uri"])
    assert {t["id"] for t in sold["tickets"]} == {t["id"] for t in paid}

    for event_type, ticket_id, status in (
        ("ticket.checked-in", paid[0]["id"], "active"),
        ("ticket.voided", paid[1]["id"], "voided"),
        ("ticket.refunded", claim["tickets"][0]["id"], "refunded"),
    ):
        (data,) = (b["data"] for b in bodies[event_type])
        (ticket,) = data["tickets"]
        assert shape(ticket, TICKET_SUMMARY, "tickets[]")["id"] == ticket_id
        assert ticket["status"] == status
        assert data["ticket"]["id"] == ticket_id  # the nested object stays beside
    checked_in = bodies["ticket.checked-in"][0]["data"]
    assert checked_in["paymentId"] == sold["paymentId"]
    shape(checked_in["checkIn"], {"id": str, "checkInListId": str, "checkedInAt": str}, "checkIn")
