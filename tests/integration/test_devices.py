"""Desk scanners against the real server: enrollment, signed offline bundles and their deltas,
idempotent upload and pull of check-in records, revocation — on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import time
from dataclasses import replace
from typing import Any

import pytest
from conftest import Harness
from sqlalchemy import select
from support.doors import Desk, enrolled_desk, record, sold

from server.db.engine import Database
from server.db.models import CheckInConflict, CheckInRecord
from server.domain.checkin.door import record_of
from server.domain.devices import service as devices
from server.domain.devices.records import resolve_tickets
from sync.bundle import BundleError, TicketIndex, verify_bundle
from sync.checkin import Reason, Verdict
from sync.merge import Conflict, ConflictKind, sort_variants
from sync.passes import ListVerifyKey, decode_pass
from sync.records import Record


def keys_of(bundle: dict[str, Any]) -> dict[str, ListVerifyKey]:
    return {k["keyId"]: ListVerifyKey(base64.b64decode(k["publicKey"])) for k in bundle["keys"]}


async def test_bundle_is_signed_private_and_updated_by_deltas(harness: Harness) -> None:
    _, tickets, list_id = await sold(harness)
    desk = await enrolled_desk(harness, list_id)
    full = (await desk.ok("getScannerBundle", {"checkInListId": list_id}, query=True))["bundle"]
    body = verify_bundle(full, keys_of(full))
    assert body["full"] is True and body["count"] == 3
    index = TicketIndex()
    index.learn_tiers(body["tiers"])
    index.apply(body["entries"])
    first = index.find(tickets[0]["id"])
    assert first is not None and (first.ticket_number, first.display_name) == (
        tickets[0]["ticketNumber"],
        "Guest 0",
    )
    assert decode_pass(tickets[0]["passToken"]).payload.ticket_id == tickets[0]["id"]
    assert tickets[0]["attendeeName"].encode() not in base64.b64decode(body["entries"])

    tampered = {**full, "count": 4}
    with pytest.raises(BundleError):
        verify_bundle(tampered, keys_of(full))

    await harness.app.ok("voidTicket", {"ticketId": tickets[1]["id"]})
    delta = (await desk.ok("getScannerBundle", {"checkInListId": list_id, "since": body["seq"]}, query=True))[
        "bundle"
    ]
    delta_body = verify_bundle(delta, keys_of(full))
    assert delta_body["full"] is False and delta_body["count"] >= 1
    assert index.apply(delta_body["entries"]) >= 1
    voided = index.find(tickets[1]["id"])
    assert voided is not None and voided.status == "voided"


async def test_upload_is_idempotent_and_pull_returns_every_desk(harness: Harness) -> None:
    event, tickets, list_id = await sold(harness)
    north = await enrolled_desk(harness, list_id)
    south = await enrolled_desk(harness, list_id)
    records = [record(north.device_id, n, list_id, t) for n, t in enumerate(tickets)]
    wire = [r.to_wire() for r in records]
    first = await north.ok("uploadCheckIns", {"records": wire})
    assert [r["status"] for r in first["results"]] == ["stored"] * 3
    again = await north.ok("uploadCheckIns", {"records": wire})
    assert [r["status"] for r in again["results"]] == ["duplicate"] * 3
    foreign = await north.ok(
        "uploadCheckIns", {"records": [{**wire[0], "id": "rec_x", "checkInListId": "cl_no"}]}
    )
    assert [r["status"] for r in foreign["results"]] == ["rejected"]
    malformed = await north.call("uploadCheckIns", {"records": [wire[0], {"id": "broken"}]})
    assert malformed.status_code == 400 and malformed.json()["error"] == "InvalidRequest"
    bad_cursor = await north.call("pullCheckIns", {"checkInListId": list_id, "cursor": "x"}, query=True)
    assert bad_cursor.status_code == 400

    online = await harness.app.ok("checkInTicket", {"ticketToken": tickets[0]["passToken"]})
    assert online["status"] == "already_checked_in"  # the offline admission counts online too

    pulled = await south.ok("pullCheckIns", {"checkInListId": list_id}, query=True)
    keys = {(r["deviceId"], r["id"]) for r in pulled["records"]}
    assert {(r.device_id, r.record_id) for r in records} <= keys and ("online", online["checkInId"]) in keys
    assert pulled["cursor"] == "0"  # nothing has settled yet: the next pull sends them again
    listed = (await harness.app.ok("listCheckInLists", {"eventId": event["id"]}))["checkInLists"]
    assert listed[0]["counts"]["checkedIn"] == 3


async def test_a_revoked_device_is_told_to_wipe(harness: Harness) -> None:
    _, _, list_id = await sold(harness, 1)
    desk = await enrolled_desk(harness, list_id)
    device_id = desk.device_id
    db = Database(harness.settings.resolved_database_url)
    try:
        async with db.write() as session:
            await devices.revoke(session, device_id, int(time.time() * 1000))
    finally:
        await db.dispose()
    refused = await desk.call("getScannerBundle", {"checkInListId": list_id}, query=True)
    assert refused.status_code == 403 and refused.json()["error"] == "DeviceRevoked"
    assert "wipe" in refused.json()["message"]
    stranger = Desk(harness.app.http, harness.server.url)
    stranger.credential = f"{device_id}.not-the-secret"
    assert (await stranger.call("pullCheckIns", {"checkInListId": list_id}, query=True)).status_code == 401
    other_list = await Desk(harness.app.http, harness.server.url).call(
        "pullCheckIns", {"checkInListId": list_id}, query=True
    )
    assert other_list.status_code == 401


async def test_two_offline_admissions_of_one_ticket_become_a_conflict(harness: Harness) -> None:
    _, tickets, list_id = await sold(harness, 1)
    north = await enrolled_desk(harness, list_id)
    south = await enrolled_desk(harness, list_id)
    (ticket,) = tickets
    a = record(north.device_id, 1, list_id, ticket)
    b = record(south.device_id, 2, list_id, ticket)
    await north.ok("uploadCheckIns", {"records": [a.to_wire()]})
    await south.ok("uploadCheckIns", {"records": [b.to_wire()]})
    await south.ok("uploadCheckIns", {"records": [b.to_wire()]})  # sent again: no new conflict
    db = Database(harness.settings.resolved_database_url)
    try:
        async with db.read() as session:
            rows = list(await session.scalars(select(CheckInConflict)))
    finally:
        await db.dispose()
    assert [(r.kind, r.ticket_id, r.records) for r in rows] == [
        ("double_admission", ticket["id"], [[north.device_id, "rec_0001"], [south.device_id, "rec_0002"]])
    ]
    exported = await harness.app.call(
        "exportCheckInList", {"checkInListId": list_id, "format": "conflicts-csv"}
    )
    lines = exported.text.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("Detected at,Kind,Ticket number") and len(lines) == 2
    pair = f"{north.device_id}/rec_0001; {south.device_id}/rec_0002"
    assert "double_admission" in lines[1] and pair in lines[1]


async def test_a_desk_checks_in_online_under_its_own_record_id(harness: Harness) -> None:
    _, tickets, list_id = await sold(harness, 2)
    desk = await enrolled_desk(harness, list_id)
    device_id = desk.device_id
    mine = record(device_id, 100, list_id, tickets[0])  # the desk's own record of the scan
    scan = {
        "ticketToken": tickets[0]["passToken"],
        "checkInListId": list_id,
        "idempotencyKey": mine.record_id,
        "gate": mine.gate,
        "deviceTimeMs": mine.device_ms,
        "clockOffsetMs": mine.clock_offset_ms,
    }
    first = await desk.ok("checkInTicket", scan)
    assert first["status"] == "checked_in" and first["checkInId"] == "rec_0100"
    assert (await desk.ok("checkInTicket", scan))["reused"] is True
    uploaded = await desk.ok("uploadCheckIns", {"records": [mine.to_wire()]})
    assert uploaded["results"][0]["status"] == "duplicate"
    pulled = await desk.ok("pullCheckIns", {"checkInListId": list_id}, query=True)
    # The very same record (no key reuse), its ticket named by reference: desks keep no ticket ids.
    assert [Record.from_wire(r) for r in pulled["records"]] == [mine.with_ticket_ref()]
    assert "ticketId" not in pulled["records"][0]
    unlisted = await desk.call("checkInTicket", {"ticketToken": tickets[1]["passToken"]})
    assert unlisted.status_code == 401 and unlisted.json()["error"] == "DeviceAuthenticationRequired"

    found = await desk.ok("searchTickets", {"checkInListId": list_id, "q": "guest 1"}, query=True)
    (match,) = found["tickets"]
    assert match["ticketId"] == tickets[1]["id"] and match["attendeeName"] == "Guest 1"
    by_number = await desk.ok(
        "searchTickets", {"checkInListId": list_id, "q": tickets[1]["ticketNumber"][:6].lower()}, query=True
    )
    assert tickets[1]["id"] in [t["ticketId"] for t in by_number["tickets"]]
    assert "passToken" not in match
    manual = await desk.ok("checkInSearchedTicket", {"ticketId": match["ticketId"], "checkInListId": list_id})
    assert manual["status"] == "checked_in"


async def test_a_reused_key_keeps_the_kernels_record_whatever_arrived_first(harness: Harness) -> None:
    """Two different records under one key: both are stored, the kernel's canonical one (the smaller
    wire JSON) is kept for the door, and the reuse is a conflict, in either arrival order."""
    _, tickets, list_id = await sold(harness, 2)
    for order in ("refused first", "admitted first"):
        desk = await enrolled_desk(harness, list_id)
        admitted = record(desk.device_id, 1, list_id, tickets[0]).with_ticket_ref()
        refused = replace(admitted, decision=Verdict.REFUSE, reason=Reason.ALREADY_CHECKED_IN)
        kept = sort_variants([admitted, refused])[0]
        batches = [[refused], [admitted]] if order == "refused first" else [[admitted], [refused]]
        statuses = [
            (await desk.ok("uploadCheckIns", {"records": [r.to_wire() for r in b]}))["results"]
            for b in batches
        ]
        assert [s[0]["status"] for s in statuses] == ["stored", "stored"], order
        pulled = await desk.ok("pullCheckIns", {"checkInListId": list_id}, query=True)
        mine = {r for r in map(Record.from_wire, pulled["records"]) if r.device_id == desk.device_id}
        assert mine == {admitted, refused}, order
        db = Database(harness.settings.resolved_database_url)
        try:
            async with db.read() as session:
                rows = await session.scalars(
                    select(CheckInRecord).where(CheckInRecord.device_id == desk.device_id)
                )
                assert [record_of(r).with_ticket_ref() for r in rows if r.kept] == [kept], order
                reuse = Conflict(ConflictKind.KEY_REUSE, list_id, tickets[0]["id"], (admitted.key,))
                assert await session.get(CheckInConflict, reuse.conflict_id) is not None, order
        finally:
            await db.dispose()


async def test_a_reference_resolves_in_its_own_environment_only(harness: Harness) -> None:
    """A record naming a ticket by reference is resolved to the ticket of the desk's environment:
    the same reference uploaded to another environment names no ticket there."""
    _, tickets, list_id = await sold(harness)
    mine = record("dev_x", 1, list_id, tickets[0]).with_ticket_ref()
    db = Database(harness.settings.resolved_database_url)
    try:
        async with db.read() as session:
            here = await resolve_tickets(session, "test", [mine])
            elsewhere = await resolve_tickets(session, "live", [mine])
    finally:
        await db.dispose()
    assert here == [(mine, mine.naming(tickets[0]["id"]))]
    assert elsewhere == [None]


async def test_a_record_naming_a_ticket_by_id_names_one_of_the_desks_environment(harness: Harness) -> None:
    """A record may name its ticket by id (an older desk's): only a ticket of the desk's own
    environment is one; another environment's ticket, or an id no ticket has, is refused, and
    nothing is stored or told."""
    _, tickets, list_id = await sold(harness)
    by_id = record("dev_x", 1, list_id, tickets[0])
    unknown = replace(record("dev_x", 2, list_id, tickets[1]), ticket_id="ticket_unknown")
    db = Database(harness.settings.resolved_database_url)
    try:
        async with db.read() as session:
            here = await resolve_tickets(session, "test", [by_id, unknown])
            elsewhere = await resolve_tickets(session, "live", [by_id])
    finally:
        await db.dispose()
    assert here == [(by_id.with_ticket_ref(), by_id), None]
    assert elsewhere == [None]
    desk = await enrolled_desk(harness, list_id)
    wire = replace(unknown, device_id=desk.device_id).to_wire()
    answer = await desk.ok("uploadCheckIns", {"records": [wire]})
    assert [(r["status"], r.get("error")) for r in answer["results"]] == [
        ("rejected", "the record names no ticket of this service")
    ]
