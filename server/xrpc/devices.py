"""Desk scanner methods: enrollment (by code), offline bundles, and the check-in record sync
(upload and pull), authenticated by the device credential instead of an app's JWT."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import CheckInList, CheckInRecord, Device, Ticket, Tier
from server.domain import ratelimit
from server.domain.checkin.door import record_of
from server.domain.checkin.lists import find_list, search
from server.domain.common import decode_seq_cursor
from server.domain.devices import service as devices
from server.domain.devices.bundles import SETTLE_MS, build_bundle
from server.domain.devices.records import resolve_tickets, store_records
from server.domain.devices.searches import log_search
from server.domain.errors import InvalidRequest
from server.domain.issuance.keys import pass_signer
from server.domain.issuance.service import TicketNotFound
from server.xrpc.checkin import check_in_ticket
from server.xrpc.framework import NAMESPACE, Call, xrpc_method
from server.xrpc.principals import code_auth, device_auth
from server.xrpc.ratelimits import enrollment_scopes
from server.xrpc.views import compact
from sync.records import Record, RecordFormatError

PULL_LIMIT = 1000


@xrpc_method(NAMESPACE + "enrollDevice", auth=code_auth)
async def enroll_device(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """Redeem a code; while the caller's address, or everyone together, has sent too many wrong
    codes lately, every code is refused (429)."""
    if not call.settings.rate_limits_enabled:
        return await _enroll(call, params)
    return await ratelimit.guarding(
        call.db,
        enrollment_scopes(call.settings, call.client_address),
        ratelimit.Window(call.now_ms, call.settings.enroll_window_seconds * 1000),
        "too many wrong enrollment codes",
        devices.EnrollmentCodeInvalid,
        lambda: _enroll(call, params),
    )


async def _enroll(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    async with call.db.write() as session:
        issued = await devices.redeem(session, params["code"], params.get("deviceName"), call.now_ms)
        lists = await session.scalars(select(CheckInList).where(CheckInList.id.in_(issued.device.list_ids)))
        listed = [{"id": c.id, "name": c.name} for c in lists]
    return {
        "deviceId": issued.device.id,
        "credential": issued.credential,
        "environment": issued.device.environment,
        "eventId": issued.device.event_id,
        "checkInLists": listed,
        "serverTimeMs": call.now_ms,
    }


def _device_list(call: Call, list_id: str) -> None:
    if list_id not in call.caller.device_lists:
        raise devices.DeviceAuthRequired(f"this device is not enrolled for check-in list {list_id}")


@xrpc_method(NAMESPACE + "getScannerBundle", auth=device_auth)
async def get_scanner_bundle(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    _device_list(call, params["checkInListId"])
    async with call.db.read() as session:
        checklist = await find_list(session, call.caller.environment, params["checkInListId"])
        bundle = await build_bundle(
            session, call.services.keyring, checklist, params.get("since"), call.now_ms
        )
    return {"bundle": bundle, "serverTimeMs": call.now_ms}


@xrpc_method(NAMESPACE + "uploadCheckIns", auth=device_auth)
async def upload_check_ins(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """Store a batch of the desk's own records, each once by (device, record id); a record of any
    other device refuses the whole batch. One result per record, naming its key."""
    device_id = call.caller.device_id
    assert device_id is not None  # device_auth
    results: list[dict[str, Any]] = []
    parsed: list[Record] = []
    for raw in params["records"]:
        try:
            parsed.append(Record.from_wire(raw))
        except RecordFormatError as exc:
            results.append({"id": str(raw.get("id", ""))[:64], "status": "rejected", "error": str(exc)})
    try:
        async with call.db.write() as session:
            lists = await session.execute(
                select(CheckInList.id, CheckInList.event_id).where(
                    CheckInList.id.in_(call.caller.device_lists)
                )
            )
            resolved = await resolve_tickets(session, call.caller.environment, parsed)
            known = [record for record in resolved if record is not None]
            statuses = iter(
                await store_records(
                    session, call.caller.environment, device_id, known, dict(lists.all()), call.now_ms
                )
            )
            await _seen(session, call)
    except IntegrityError:
        # A concurrent upload of the same records won the race; a retry answers "duplicate".
        raise InvalidRequest("records were stored concurrently by another upload: retry") from None
    for record, ticket in zip(parsed, resolved, strict=True):
        status = "rejected" if ticket is None else next(statuses)
        result: dict[str, Any] = {"deviceId": record.device_id, "id": record.record_id, "status": status}
        if ticket is None:
            result["error"] = "the record names no ticket of this service"
        elif status == "rejected":
            result["error"] = f"check-in list {record.list_id} is not this device's"
        results.append(result)
    return {"results": results, "serverTimeMs": call.now_ms}


async def _seen(session: AsyncSession, call: Call) -> None:
    device = await session.get(Device, call.caller.device_id)
    if device is not None:
        device.last_seen_ms = call.now_ms


@xrpc_method(NAMESPACE + "pullCheckIns", auth=device_auth)
async def pull_check_ins(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """Every device's records for the list after ``cursor`` (arrival order at the server), each
    naming its ticket by reference: a desk keeps no ticket id."""
    _device_list(call, params["checkInListId"])
    since = decode_seq_cursor(params.get("cursor") or "0")
    limit = min(int(params.get("limit") or PULL_LIMIT), PULL_LIMIT)
    async with call.db.read() as session:
        rows = list(
            await session.scalars(
                select(CheckInRecord)
                .where(CheckInRecord.list_id == params["checkInListId"], CheckInRecord.seq > since)
                .order_by(CheckInRecord.seq)
                .limit(limit)
            )
        )
    cursor = since
    for row in rows:  # the cursor stops before the first record that may not have settled yet
        if row.server_ms > call.now_ms - SETTLE_MS:
            break
        cursor = row.seq
    return {
        "records": [record_of(r).with_ticket_ref().to_wire() for r in rows],
        "cursor": str(cursor),
        "more": len(rows) == limit,
        "serverTimeMs": call.now_ms,
    }


SEARCH_LIMIT = 20


@xrpc_method(NAMESPACE + "searchTickets", auth=device_auth)
async def search_tickets(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """Manual search at a desk (online only: the offline index opens only with a pass): tickets the
    list admits whose number starts with, or attendee name contains, the query. No match carries a
    pass (whoever holds a desk's credential must not be able to collect passes): the desk admits a
    match with ``checkInSearchedTicket``. Every search is logged for the device, without the
    query."""
    _device_list(call, params["checkInListId"])
    query = params["q"].strip()
    async with call.db.read() as session:
        checklist = await find_list(session, call.caller.environment, params["checkInListId"])
        found = await search(session, checklist, query, SEARCH_LIMIT)
        tiers = await session.scalars(select(Tier).where(Tier.event_id == checklist.event_id))
        titles = {tier.id: tier.title for tier in tiers}
    assert call.caller.device_id is not None
    async with call.db.write() as session:
        log_search(session, call.caller.device_id, checklist.id, query, len(found), call.now_ms)
    return {
        "tickets": [
            compact(
                {
                    "ticketId": t.id,
                    "ticketNumber": t.ticket_number,
                    "attendeeName": t.attendee_name,
                    "tierTitle": titles.get(t.tier_id),
                    "status": t.status,
                }
            )
            for t in found
        ]
    }


@xrpc_method(NAMESPACE + "checkInSearchedTicket", auth=device_auth)
async def check_in_searched_ticket(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """A ticket a desk found with ``searchTickets``, checked in by hand: decided and logged exactly
    like a scan of its current pass, which the server renders for the decision and never answers."""
    _device_list(call, params["checkInListId"])
    async with call.db.read() as session:
        checklist = await find_list(session, call.caller.environment, params["checkInListId"])
        ticket = await session.get(Ticket, params["ticketId"])
        if ticket is None or ticket.event_id != checklist.event_id:
            raise TicketNotFound("no ticket with this id belongs to the check-in list's event")
        token = (await pass_signer(session, call.services.keyring, ticket.event_id)).token(ticket)
    if token is None:
        raise TicketNotFound("no check-in list admits this ticket")
    scan = {k: v for k, v in params.items() if k != "ticketId"}
    answer: dict[str, Any] = await check_in_ticket(call, {**scan, "ticketToken": token})
    return answer
