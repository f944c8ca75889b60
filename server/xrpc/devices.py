"""Desk scanner methods: enrollment (by code), offline bundles, and the check-in record sync
(upload and pull), authenticated by the device credential instead of an app's JWT."""

from __future__ import annotations

from functools import partial
from typing import Any

from server.domain import ratelimit
from server.domain.common import decode_seq_cursor
from server.domain.devices import service as devices
from server.domain.ratewindows import Window
from server.errors import EnrollmentCodeInvalid
from server.xrpc.checkin import check_in_ticket
from server.xrpc.framework import NAMESPACE, Call, xrpc_method
from server.xrpc.principals import code_auth, device_auth
from server.xrpc.ratelimits import enrollment_scopes
from server.xrpc.views import enrollment_view, found_view, pulled_view, upload_view
from sync.records import Record, RecordFormatError

PULL_LIMIT = 1000
SEARCH_LIMIT = 20


@xrpc_method(NAMESPACE + "enrollDevice", auth=code_auth)
async def enroll_device(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """Redeem a code; while the caller's address, or everyone together, has sent too many wrong
    codes lately, every code is refused (429)."""
    enroll = partial(devices.enroll, call.db, params["code"], params.get("deviceName"), call.now_ms)
    if not call.settings.rate_limits_enabled:
        return enrollment_view(await enroll(), call.now_ms)
    enrolled = await ratelimit.guarding(
        call.db,
        enrollment_scopes(call.settings, call.client_address),
        Window(call.now_ms, call.settings.enroll_window_seconds * 1000),
        "too many wrong enrollment codes",
        EnrollmentCodeInvalid,
        enroll,
    )
    return enrollment_view(enrolled, call.now_ms)


@xrpc_method(NAMESPACE + "getScannerBundle", auth=device_auth)
async def get_scanner_bundle(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    bundle = await devices.scanner_bundle(
        call.db, call.services.keyring, call.caller, params["checkInListId"], params.get("since"), call.now_ms
    )
    return {"bundle": bundle, "serverTimeMs": call.now_ms}


@xrpc_method(NAMESPACE + "uploadCheckIns", auth=device_auth)
async def upload_check_ins(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """Store a batch of the desk's own records, each once by (device, record id); a record of any
    other device refuses the whole batch. One result per record, naming its key."""
    malformed: list[tuple[dict[str, Any], RecordFormatError]] = []
    parsed: list[Record] = []
    for raw in params["records"]:
        try:
            parsed.append(Record.from_wire(raw))
        except RecordFormatError as exc:
            malformed.append((raw, exc))
    statuses = await devices.upload_records(call.db, call.caller, parsed, call.now_ms)
    return upload_view(malformed, parsed, statuses, call.now_ms)


@xrpc_method(NAMESPACE + "pullCheckIns", auth=device_auth)
async def pull_check_ins(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """Every device's records for the list after ``cursor`` (arrival order at the server), each
    naming its ticket by reference: a desk keeps no ticket id."""
    since = decode_seq_cursor(params.get("cursor") or "0")
    limit = min(int(params.get("limit") or PULL_LIMIT), PULL_LIMIT)
    pulled = await devices.pull_records(
        call.db, call.caller, params["checkInListId"], since, limit, call.now_ms
    )
    return pulled_view(pulled, call.now_ms)


@xrpc_method(NAMESPACE + "searchTickets", auth=device_auth)
async def search_tickets(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """Manual search at a desk (online only: the offline index opens only with a pass): tickets the
    list admits whose number starts with, or attendee name contains, the query. No match carries a
    pass (whoever holds a desk's credential must not be able to collect passes): the desk admits a
    match with ``checkInSearchedTicket``. Every search is logged for the device, without the
    query."""
    found = await devices.search_list(
        call.db, call.caller, params["checkInListId"], params["q"].strip(), SEARCH_LIMIT, call.now_ms
    )
    return found_view(found)


@xrpc_method(NAMESPACE + "checkInSearchedTicket", auth=device_auth)
async def check_in_searched_ticket(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """A ticket a desk found with ``searchTickets``, checked in by hand: decided and logged exactly
    like a scan of its current pass, which the server renders for the decision and never answers."""
    token = await devices.searched_ticket_pass(
        call.db, call.services.keyring, call.caller, params["checkInListId"], params["ticketId"]
    )
    scan = {k: v for k, v in params.items() if k != "ticketId"}
    answer: dict[str, Any] = await check_in_ticket(call, {**scan, "ticketToken": token})
    return answer
