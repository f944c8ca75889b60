"""Check-in lists, verification and online check-in over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from conftest import Harness, start_harness
from support.broker import FakeBroker, new_payment_id
from support.catalog import ORGANIZER, active_event
from support.races import without_ticket_lock

from sync.passes import decode_pass

BROKER = FakeBroker()


async def sold_tickets(
    h: Harness, quantities: dict[str, int] | None = None
) -> tuple[dict[str, Any], dict[str, str], list[dict[str, Any]]]:
    """An active event with tiers GA and VIP and paid tickets; answers (event, tier ids, tickets)."""
    event = await active_event(h.app)
    tiers = {}
    for title in ("GA", "VIP"):
        out = await h.app.ok(
            "createTicketTier",
            {
                "organizerDid": ORGANIZER,
                "event": {"uri": event["uri"]},
                "title": title,
                "currency": "eur",
                "unitAmount": 1000,
                "quantityTotal": 50,
            },
        )
        tiers[title] = out["tier"]["id"]
    tickets: list[dict[str, Any]] = []
    for title, quantity in (quantities or {"GA": 2, "VIP": 1}).items():
        hold = await h.app.ok("createTicketHold", {"items": [{"tierId": tiers[title], "quantity": quantity}]})
        await BROKER.send(h.app.http, h.server.url, BROKER.paid(hold, payment_id=(pid := new_payment_id())))
        tickets += (await h.app.ok("listBuyerTickets", {"paymentId": pid}))["tickets"]
    return event, tiers, tickets


async def scan(h: Harness, token: str, **extra: Any) -> dict[str, Any]:
    return await h.app.ok("checkInTicket", {"ticketToken": token, **extra})


async def test_entry_duplicate_and_exit(harness: Harness) -> None:
    _, _, (ticket, *_) = await sold_tickets(harness)
    token = ticket["passToken"]
    first = await scan(harness, token, gate="Gate 2", scannerDid="did:plc:scanner000000000000000001")
    assert (
        first["status"] == "checked_in" and first["reason"] == "ok" and first["ticket"]["id"] == ticket["id"]
    )
    again = await scan(harness, token, gate="Gate 1")
    assert again["status"] == "already_checked_in" and again["reason"] == "already_checked_in"
    assert (
        again["previous"]["checkedInAt"] == first["checkedInAt"] and again["previous"]["deviceId"] == "online"
    )
    out = await scan(harness, token, direction="exit")
    assert out["status"] == "checked_out"
    assert (await scan(harness, token, direction="exit"))["reason"] == "not_inside"
    verified = await harness.app.ok("verifyTicket", {"ticketToken": token})
    assert verified == {
        **verified,
        "valid": False,
        "reason": "already_redeemed",
        "detail": "already_checked_in",
    }


async def test_idempotent_scans_answer_the_first_result(harness: Harness) -> None:
    _, _, (ticket, *_) = await sold_tickets(harness)
    first = await scan(harness, ticket["passToken"], idempotencyKey="scan-1")
    retry = await scan(harness, ticket["passToken"], idempotencyKey="scan-1")
    assert retry == {**first, "reused": True}


async def test_refusals_name_their_reason(harness: Harness) -> None:
    event, tiers, tickets = await sold_tickets(harness, {"GA": 3, "VIP": 1})
    ga1, ga2, ga3, vip = tickets
    assert (await harness.app.ok("verifyTicket", {"ticketToken": ga1["passToken"]}))["valid"] is True

    await harness.app.ok("voidTicket", {"ticketId": ga1["id"]})
    assert (await scan(harness, ga1["passToken"]))["reason"] == "voided"
    await harness.app.ok("refundTicket", {"ticketId": ga2["id"]})
    assert (await scan(harness, ga2["passToken"]))["reason"] == "refunded"
    moved = (await harness.app.ok("transferTicket", {"ticketId": ga3["id"], "attendeeName": "New Holder"}))[
        "ticket"
    ]
    old = await harness.app.ok("verifyTicket", {"ticketToken": ga3["passToken"]})
    assert (old["valid"], old["reason"]) == (False, "revoked")
    assert (await scan(harness, moved["passToken"]))["status"] == "checked_in"

    garbage = await scan(harness, "NOT-A-PASS")
    assert garbage == {"ok": False, "status": "not_valid", "reason": "invalid"}
    tampered = vip["passToken"][:-2] + ("AA" if vip["passToken"][-2:] != "AA" else "BB")
    forged = await harness.app.ok("verifyTicket", {"ticketToken": tampered})
    assert forged["valid"] is False and forged["reason"] == "invalid" and "ticket" not in forged

    vip_only = (
        await harness.app.ok(
            "createCheckInList",
            {"eventId": event["id"], "name": "VIP lounge", "tierIds": [tiers["VIP"]], "gates": ["Lounge"]},
        )
    )["checkInList"]
    wrong = await scan(harness, moved["passToken"], checkInListId=vip_only["id"])
    assert wrong["status"] == "not_valid" and wrong["reason"] == "wrong_list"
    # The VIP pass was rendered before the lounge list existed: online it is still genuine and
    # admitted by the lounge's rules; rendered again, it carries the lounge's own signature too.
    fresh = (await harness.app.ok("listBuyerTickets", {"paymentId": vip["paymentId"]}))["tickets"][0][
        "passToken"
    ]
    assert len(decode_pass(fresh).signatures) == 2 and len(decode_pass(vip["passToken"]).signatures) == 1
    assert (await scan(harness, vip["passToken"], checkInListId=vip_only["id"]))["status"] == "checked_in"
    again = await harness.app.ok("verifyTicket", {"ticketToken": fresh, "checkInListId": vip_only["id"]})
    assert again["detail"] == "already_checked_in"


async def test_list_rules_and_counts(harness: Harness) -> None:
    event, _, tickets = await sold_tickets(harness, {"GA": 2, "VIP": 1})
    later = (
        await harness.app.ok(
            "createCheckInList",
            {"eventId": event["id"], "name": "Tomorrow", "validFrom": "2099-01-01T00:00:00Z"},
        )
    )["checkInList"]
    tokens = (await harness.app.ok("listBuyerTickets", {"paymentId": tickets[0]["paymentId"]}))["tickets"]
    early = await scan(harness, tokens[0]["passToken"], checkInListId=later["id"])
    assert early["reason"] == "not_yet_valid"
    relaxed = (
        await harness.app.ok(
            "createCheckInList", {"eventId": event["id"], "name": "Hall", "allowReentry": True}
        )
    )["checkInList"]
    token = (await harness.app.ok("listBuyerTickets", {"paymentId": tickets[0]["paymentId"]}))["tickets"][0][
        "passToken"
    ]
    assert [
        (await scan(harness, token, checkInListId=relaxed["id"], direction=d))["status"]
        for d in ("entry", "exit", "entry", "entry")
    ] == ["checked_in", "checked_out", "checked_in", "already_checked_in"]
    await scan(harness, tickets[1]["passToken"])
    listed = {
        c["name"]: c
        for c in (await harness.app.ok("listCheckInLists", {"eventId": event["id"]}))["checkInLists"]
    }
    assert set(listed) == {"Main entrance", "Tomorrow", "Hall"} and listed["Main entrance"]["isDefault"]
    assert listed["Hall"]["counts"] == {
        "checkedIn": 1,
        "inside": 1,
        "admissible": 3,
        "scans": 4,
        "refused": 1,
    }
    assert listed["Main entrance"]["counts"]["checkedIn"] == 1
    closed = (
        await harness.app.ok(
            "updateCheckInList", {"checkInListId": relaxed["id"], "status": "archived", "rotateKey": True}
        )
    )["checkInList"]
    assert closed["status"] == "archived" and len(closed["keyIds"]) == 2
    assert (await scan(harness, token, checkInListId=relaxed["id"]))["reason"] == "list_closed"


async def test_doors_belong_to_the_event_app(harness: Harness) -> None:
    _, _, (ticket, *_) = await sold_tickets(harness)
    stranger = await harness.client("did:web:stranger-app.example")
    refused = await stranger.ok("checkInTicket", {"ticketToken": ticket["passToken"]})
    # nothing of another app's ticket
    assert refused == {"ok": False, "status": "not_valid", "reason": "invalid"}
    await stranger.aclose()
    assert (await scan(harness, ticket["passToken"]))["status"] == "checked_in"


async def concurrent_scans(h: Harness, token: str, n: int = 20, **extra: Any) -> list[str]:
    return [r["status"] for r in await asyncio.gather(*(scan(h, token, **extra) for _ in range(n)))]


@pytest.mark.parametrize("named", [False, True], ids=["default list", "list named"])
async def test_one_ticket_twenty_doors_one_admission(harness: Harness, named: bool) -> None:
    """Twenty scans of each of three passes, all at once: the ticket's lock makes each read the
    admissions the one before it wrote, at the event's default list and at a list the scan names
    alike."""
    event, _, tickets = await sold_tickets(harness)
    extra = {}
    if named:
        (main,) = (await harness.app.ok("listCheckInLists", {"eventId": event["id"]}))["checkInLists"]
        extra = {"checkInListId": main["id"]}
    per_ticket = await asyncio.gather(*(concurrent_scans(harness, t["passToken"], **extra) for t in tickets))
    assert len(per_ticket) == 3
    for statuses in per_ticket:
        assert statuses.count("checked_in") == 1 and statuses.count("already_checked_in") == 19


async def test_negative_control_without_the_ticket_lock_admits_twice(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_ticket_lock(monkeypatch)
    h = await start_harness(database_url, tmp_path)
    try:
        _, _, tickets = await sold_tickets(h, {"GA": 6})
        # Every ticket at once, 30 scans each: without the lock, some ticket gets in twice.
        per_ticket = await asyncio.gather(*(concurrent_scans(h, t["passToken"], 30) for t in tickets))
    finally:
        await h.app.aclose()
        await asyncio.to_thread(h.server.stop)
    assert max(statuses.count("checked_in") for statuses in per_ticket) > 1, (
        "the race was not caught: the test would not detect a missing lock"
    )


async def test_exports_over_xrpc(harness: Harness) -> None:
    event, _, tickets = await sold_tickets(harness)
    await scan(harness, tickets[0]["passToken"])
    main = (await harness.app.ok("listCheckInLists", {"eventId": event["id"]}))["checkInLists"][0]
    csv_file = await harness.app.call("exportCheckInList", {"checkInListId": main["id"]})
    assert csv_file.status_code == 200 and csv_file.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv_file.headers["content-disposition"]
    assert tickets[0]["ticketNumber"] in csv_file.text and csv_file.text.count("\n") == 4
    pdf = await harness.app.call("exportCheckInList", {"checkInListId": main["id"], "format": "pdf"})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    stranger = await harness.client("did:web:stranger-app.example")
    assert (await stranger.call("exportCheckInList", {"checkInListId": main["id"]})).status_code == 403
    await stranger.aclose()
