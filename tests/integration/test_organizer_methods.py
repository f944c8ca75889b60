"""The organizer methods over real HTTP, on SQLite and PostgreSQL: an event's summary, conflicts made
by two offline desks (announced once as ``ticket.conflict``) and their resolution, a ticket's
history, desks and their revocation, lifecycle event deliveries and their redrive, and payments
that need attention."""

from __future__ import annotations

from typing import Any

from conftest import APP_DID, Harness
from sqlalchemy import select, update
from support.consent import refused
from support.contract import outbox_bodies
from support.doors import enrolled_desk, record, sold
from support.server import register

from server.db.engine import Database
from server.db.models import CheckInConflict, ConflictResolution, Payment
from server.domain.common import SystemClock

QUIET_RECEIVER = "http://127.0.0.1:9/atm-events"  # nothing listens: messages stay queued


async def two_desks_admit_one_ticket(h: Harness) -> tuple[dict[str, Any], dict[str, Any], str, list[str]]:
    """Two desks admit the same ticket offline and upload their records (the second one twice)."""
    event, tickets, list_id = await sold(h, 2)
    north, south = await enrolled_desk(h, list_id), await enrolled_desk(h, list_id)
    await north.ok("uploadCheckIns", {"records": [record(north.device_id, 1, list_id, tickets[0]).to_wire()]})
    late = record(south.device_id, 2, list_id, tickets[0]).to_wire()
    await south.ok("uploadCheckIns", {"records": [late]})
    await south.ok("uploadCheckIns", {"records": [late]})
    return event, tickets[0], list_id, [north.device_id, south.device_id]


async def test_a_conflict_is_announced_once_listed_and_resolved_without_deleting(harness: Harness) -> None:
    await register(harness.settings.resolved_database_url, APP_DID, webhook_url=QUIET_RECEIVER)
    event, ticket, list_id, desks = await two_desks_admit_one_ticket(harness)

    (announced,) = (await outbox_bodies(harness.settings.resolved_database_url))["ticket.conflict"]
    data = announced["data"]
    assert (data["eventId"], data["eventUri"]) == (event["id"], event["uri"])
    assert [t["ticketId"] for t in data["tickets"]] == [ticket["id"]]
    assert data["conflict"]["kind"] == "double_admission"
    assert data["conflict"]["records"] == [
        {"deviceId": desks[0], "id": "rec_0001"},
        {"deviceId": desks[1], "id": "rec_0002"},
    ]

    (conflict,) = (await harness.app.ok("listConflicts", {"eventId": event["id"]}))["conflicts"]
    assert (
        conflict["status"] == "open"
        and conflict["resolutions"] == []
        and conflict["checkInListId"] == list_id
    )
    summary = await harness.app.ok("getEventSummary", {"eventId": event["id"]})
    assert summary["openConflicts"] == 1

    body = {
        "eventId": event["id"],
        "conflictId": conflict["id"],
        "outcome": "admitted",
        "reason": "same guest, two doors",
    }
    resolved = (await harness.app.ok("resolveConflict", body))["conflict"]
    assert resolved["status"] == "resolved"
    assert [(r["outcome"], r["actor"]) for r in resolved["resolutions"]] == [("admitted", APP_DID)]
    again = (
        await harness.app.ok("resolveConflict", {**body, "outcome": "refused", "reason": "second look"})
    )["conflict"]
    assert [r["outcome"] for r in again["resolutions"]] == ["admitted", "refused"]

    assert (await harness.app.ok("listConflicts", {"eventId": event["id"]}))["conflicts"] == []
    assert (
        len((await harness.app.ok("listConflicts", {"eventId": event["id"], "status": "all"}))["conflicts"])
        == 1
    )
    assert (await harness.app.ok("getEventSummary", {"eventId": event["id"]}))["openConflicts"] == 0
    db = Database(harness.settings.resolved_database_url)
    try:
        async with db.read() as session:
            assert len(list(await session.scalars(select(CheckInConflict)))) == 1
            assert len(list(await session.scalars(select(ConflictResolution)))) == 2
    finally:
        await db.dispose()
    unknown = await harness.app.call("resolveConflict", {**body, "conflictId": "cfl_unknown"})
    refused(unknown, 404, "ConflictNotFound")
    blank = await harness.app.call("resolveConflict", {**body, "reason": "   "})
    refused(blank, 400, "InvalidRequest")


async def test_the_summary_counts_sales_and_the_door(harness: Harness) -> None:
    event, ticket, list_id, desks = await two_desks_admit_one_ticket(harness)
    summary = await harness.app.ok("getEventSummary", {"eventId": event["id"]})
    (tier,) = summary["tiers"]
    assert (tier["sold"], tier["held"], tier["available"]) == (2, 0, 98)
    assert (tier["gross"], tier["refunds"], tier["net"]) == (1800, 0, 1800 - tier["fees"] - tier["discounts"])
    door = next(c for c in summary["checkInLists"] if c["checkInListId"] == list_id)
    assert (door["checkedIn"], door["inside"], door["refused"]) == (1, 1, 0)
    assert door["byGate"] == [{"name": "North", "admitted": 2}]
    assert sorted(d["name"] for d in door["byDevice"]) == sorted(desks)

    await harness.app.ok("refundTicket", {"ticketId": ticket["id"], "reason": "asked"})
    (tier,) = (await harness.app.ok("getEventSummary", {"eventId": event["id"]}))["tiers"]
    assert (tier["sold"], tier["refunds"], tier["available"]) == (1, 900, 99)


async def test_history_devices_deliveries_and_payments(harness: Harness) -> None:
    await register(harness.settings.resolved_database_url, APP_DID, webhook_url=QUIET_RECEIVER)
    event, ticket, _, desks = await two_desks_admit_one_ticket(harness)
    await harness.app.ok("voidTicket", {"ticketId": ticket["id"], "reason": "fraud"})

    history = await harness.app.ok("getTicketHistory", {"eventId": event["id"], "ticketId": ticket["id"]})
    assert [(c["action"], c["status"]) for c in history["changes"]] == [
        ("issued", "active"),
        ("voided", "voided"),
    ]
    assert history["changes"][1]["reason"] == "fraud"
    assert [s["deviceId"] for s in history["checkIns"]] == desks
    assert {"ticket.voided", "ticket.conflict"} <= {d["type"] for d in history["deliveries"]}
    missing = await harness.app.call("getTicketHistory", {"eventId": event["id"], "ticketId": "ticket_nope"})
    refused(missing, 404, "TicketNotFound")

    listed = (await harness.app.ok("listDevices", {"eventId": event["id"]}))["devices"]
    assert [d["deviceId"] for d in listed] == desks and {d["status"] for d in listed} == {"active"}
    revoked = (await harness.app.ok("revokeDevice", {"eventId": event["id"], "deviceId": desks[0]}))["device"]
    assert revoked["status"] == "revoked" and "revokedAt" in revoked
    refused(
        await harness.app.call("revokeDevice", {"eventId": event["id"], "deviceId": "dev_nope"}),
        404,
        "DeviceNotFound",
    )

    deliveries = (await harness.app.ok("listWebhookDeliveries", {"eventId": event["id"]}))["deliveries"]
    assert deliveries and all(d["state"] in {"pending", "dead"} for d in deliveries)
    first = deliveries[-1]["deliveryId"]
    redriven = await harness.app.ok("redriveWebhookDelivery", {"eventId": event["id"], "deliveryId": first})
    assert redriven["delivery"]["state"] == "pending" and redriven["delivery"]["attempts"] == 0
    refused(
        await harness.app.call("redriveWebhookDelivery", {"eventId": event["id"], "deliveryId": "whd_nope"}),
        404,
        "WebhookDeliveryNotFound",
    )

    db = Database(harness.settings.resolved_database_url)
    try:
        async with db.write() as session:
            await session.execute(
                update(Payment).values(
                    status="needs_review", reason="amount differs", updated_ms=SystemClock().now_ms()
                )
            )
    finally:
        await db.dispose()
    (issue,) = (await harness.app.ok("listPaymentIssues", {"eventId": event["id"]}))["payments"]
    assert (issue["status"], issue["amount"], issue["currency"]) == ("needs_review", 1800, "eur")
    assert (await harness.app.ok("getEventSummary", {"eventId": event["id"]}))[
        "paymentsNeedingAttention"
    ] == 1


async def test_another_app_sees_nothing_of_the_event(harness: Harness) -> None:
    event, ticket, _, desks = await two_desks_admit_one_ticket(harness)
    other = await harness.client("did:web:other-app.example")
    try:
        for method, extra in [
            ("getEventSummary", {}),
            ("listConflicts", {}),
            ("listPaymentIssues", {}),
            ("getTicketHistory", {"ticketId": ticket["id"]}),
            ("listDevices", {}),
            ("revokeDevice", {"deviceId": desks[0]}),
            ("listWebhookDeliveries", {}),
        ]:
            refused(await other.call(method, {"eventId": event["id"], **extra}), 403, "Forbidden")
    finally:
        await other.aclose()
    listed = (await harness.app.ok("listDevices", {"eventId": event["id"]}))["devices"]
    assert {d["status"] for d in listed} == {"active"}


async def test_bad_input_is_refused_with_a_4xx(harness: Harness) -> None:
    event, _, _, _ = await two_desks_admit_one_ticket(harness)
    (conflict,) = (await harness.app.ok("listConflicts", {"eventId": event["id"]}))["conflicts"]
    resolve = {"eventId": event["id"], "conflictId": conflict["id"], "outcome": "maybe", "reason": "why"}
    refused(await harness.app.call("resolveConflict", resolve), 400, "InvalidRequest")
    refused(
        await harness.app.call("listConflicts", {"eventId": event["id"], "status": "some"}),
        400,
        "InvalidRequest",
    )
    refused(await harness.app.call("getEventSummary", {"eventId": "event_nope"}), 404, "EventNotFound")
    refused(
        await harness.app.call("listWebhookDeliveries", {"eventId": event["id"], "limit": 0}),
        400,
        "InvalidRequest",
    )
    assert (await harness.app.ok("listConflicts", {"eventId": event["id"]}))["conflicts"][0][
        "resolutions"
    ] == []
