"""Door methods: verification, online check-in, check-in lists and their exports."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server import metrics
from server.db.models import CheckInList, Event, Ticket, Tier
from server.domain.catalog.service import ensure_can_manage, find_event
from server.domain.checkin import lists
from server.domain.checkin.service import Outcome, Scan, check_in, door_access, evaluate
from server.domain.common import format_datetime, format_optional_datetime, parse_optional_datetime
from server.domain.devices.service import DeviceAuthRequired
from server.domain.errors import InvalidRequest, NotOwner
from server.domain.exports.service import export_list
from server.domain.idempotency import check_key
from server.domain.issuance.service import TicketNotFound
from server.xrpc.framework import NAMESPACE, Call, RawOutput, write_once, xrpc_method
from server.xrpc.principals import app_or_device_auth
from server.xrpc.views import compact, event_summary, presentation_view, tier_summary
from sync.checkin import Direction, OnlineStatus, Reason, Verdict, online_status
from sync.passes import PassRejected, decode_pass

# Our reason codes, mapped onto the published verificationResult reasons (pretix's vocabulary).
PUBLISHED_REASONS = {
    Reason.INVALID: "invalid",
    Reason.UNSUPPORTED_VERSION: "invalid",
    Reason.UNKNOWN_TICKET: "invalid",
    Reason.WRONG_LIST: "wrong_list",
    Reason.VOIDED: "voided",
    Reason.REFUNDED: "refunded",
    Reason.REVOKED: "revoked",
    Reason.NOT_YET_VALID: "invalid_time",
    Reason.EXPIRED: "invalid_time",
    Reason.ALREADY_CHECKED_IN: "already_redeemed",
    Reason.NOT_INSIDE: "not_inside",
    Reason.LIST_CLOSED: "blocked",
}

NOT_VALID = {"ok": False, "status": OnlineStatus.NOT_VALID.value, "reason": Reason.INVALID.value}

LIST_FIELDS = {
    "name": "name",
    "description": "description",
    "tierIds": "tier_ids",
    "allowMultipleEntries": "allow_multiple_entries",
    "allowReentry": "allow_reentry",
    "gates": "gates",
    "status": "status",
}
LIST_TIMES = {"validFrom": "valid_from_ms", "validUntil": "valid_until_ms"}


def ensure_door_access(call: Call, event: Event, ticket: Ticket | None) -> None:
    if not door_access(call.caller, event, ticket):
        raise NotOwner("the calling app may not check in tickets of this event")


def desk_scan_identity(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """A desk names its list, and its idempotency key is the id of the desk's own record of the
    scan: a later upload of that record is then a duplicate, not a second scan."""
    device_id = call.caller.device_id
    if device_id is None:
        return {}
    list_id = params.get("checkInListId")
    if list_id is None or list_id not in call.caller.device_lists:
        raise DeviceAuthRequired("a desk must name one of the check-in lists it is enrolled for")
    key = params.get("idempotencyKey")
    return {
        "device_id": device_id,
        "record_id": check_key(key) if key else None,
        "device_ms": params.get("deviceTimeMs"),
        "clock_offset_ms": params.get("clockOffsetMs", 0),
    }


def ticket_summary(ticket: Ticket, event: Event) -> dict[str, Any]:
    """``tickets.atmosphere.defs#issuedTicket`` — what a door may show; no pass, no payment."""
    return compact(
        {
            "id": ticket.id,
            "ticketId": ticket.id,
            "tierId": ticket.tier_id,
            "eventId": ticket.event_id,
            "eventUri": event.uri,
            "status": ticket.status,
            "ticketNumber": ticket.ticket_number,
            "attendeeName": ticket.attendee_name,
            "generation": ticket.generation,
            "createdAt": format_datetime(ticket.created_ms),
            "updatedAt": format_datetime(ticket.updated_ms),
        }
    )


def _context(call: Call, outcome: Outcome) -> tuple[Event | None, dict[str, Any]]:
    """The list's event and the ticket's summary: the evaluation leaves the ticket out of a scan
    whose pass is not genuine or whose ticket the caller may not see."""
    event, ticket = outcome.facts.event, outcome.ticket
    if event is None:
        return None, {}
    ensure_door_access(call, event, ticket)
    return event, {} if ticket is None else {"ticket": ticket_summary(ticket, event)}


@xrpc_method(NAMESPACE + "verifyTicket")
async def verify_ticket(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """Would this pass be admitted now? Read-only: nothing is logged."""
    scan = Scan(params["ticketToken"], params.get("checkInListId"), Direction.ENTRY)
    async with call.db.read() as session:
        outcome = await evaluate(session, call.services.keyring, call.caller, scan, call.now_ms, lock=False)
        event, extra = _context(call, outcome)
        tier = await session.get(Tier, outcome.ticket.tier_id) if extra and outcome.ticket else None
    decision = outcome.decision
    result: dict[str, Any] = {
        "valid": decision.verdict is Verdict.ADMIT,
        "detail": decision.reason.value,
        **extra,
    }
    if decision.reason is not Reason.OK:
        result["reason"] = PUBLISHED_REASONS[decision.reason]
    if outcome.checklist is not None:
        result["checkInListId"] = outcome.checklist.id
    if event is not None and tier is not None:
        result["event"] = event_summary(event)
        result["tier"] = tier_summary(tier)
        result["presentation"] = presentation_view(event, tier)
    return result


def direction_of(params: dict[str, Any]) -> Direction:
    """``direction`` is open (``knownValues``) on the wire; a door only knows entry and exit."""
    try:
        return Direction(params.get("direction", Direction.ENTRY))
    except ValueError:
        known = "|".join(Direction)
        raise InvalidRequest(f"Input/direction must be one of ({known})") from None


async def _check_in(call: Call, params: dict[str, Any], session: AsyncSession) -> dict[str, Any]:
    direction = direction_of(params)
    scan = Scan(
        params["ticketToken"],
        params.get("checkInListId"),
        direction,
        params.get("gate"),
        params.get("scannerDid"),
        params.get("metadata"),
        **desk_scan_identity(call, params),
    )
    keyring, caller = call.services.keyring, call.caller
    decided = None
    if call.settings.test_unsafe_skip_locks:
        async with call.db.read() as unlocked:
            decided = await evaluate(unlocked, keyring, caller, scan, call.now_ms, lock=False)
    outcome = await check_in(session, keyring, caller, scan, call.now_ms, decided=decided)
    if outcome.checklist is None:
        if outcome.token_ticket_id is None:  # not a genuine pass the caller may see: nothing logged
            return dict(NOT_VALID)
        raise TicketNotFound("this pass names no ticket of an event ticketed here")
    _, extra = _context(call, outcome)
    answer: dict[str, Any] = {
        "ok": outcome.decision.admitted,
        "status": online_status(outcome.decision, direction).value,
        "reason": outcome.decision.reason.value,
        "checkInListId": outcome.checklist.id,
        "direction": direction.value,
        **extra,
    }
    if outcome.record is not None:
        answer["checkInId"] = outcome.record.id
        if outcome.decision.admitted:
            answer["checkedInAt"] = format_datetime(outcome.record.server_ms)
    first = outcome.decision.first_entry
    if first is not None:
        answer["previous"] = compact(
            {
                "checkedInAt": format_datetime(first.at_ms),
                "checkInListId": outcome.checklist.id,
                "gate": first.gate,
                "deviceId": first.device_id,
            }
        )
    return answer


@xrpc_method(NAMESPACE + "checkInTicket", auth=app_or_device_auth)
async def check_in_ticket(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """Admit (or refuse) and log one scan; with an ``idempotencyKey`` a retried scan answers the
    first result instead of ``already_checked_in``."""
    try:
        decode_pass(params["ticketToken"])
    except PassRejected:
        return dict(NOT_VALID)
    direction_of(params)  # a caller's mistakes are refused before its key is claimed
    desk_scan_identity(call, params)
    output = await write_once(call, params, lambda session: _check_in(call, params, session))
    if not output.get("reused"):
        metrics.CHECKINS.labels(output["status"]).inc()
    return output


async def list_view(session: AsyncSession, checklist: CheckInList) -> dict[str, Any]:
    counts = await lists.counts(session, checklist)
    return compact(
        {
            "id": checklist.id,
            "eventId": checklist.event_id,
            "name": checklist.name,
            "description": checklist.description,
            "status": checklist.status,
            "isDefault": checklist.is_default,
            "tierIds": checklist.tier_ids,
            "allowMultipleEntries": checklist.allow_multiple_entries,
            "allowReentry": checklist.allow_reentry,
            "validFrom": format_optional_datetime(checklist.valid_from_ms),
            "validUntil": format_optional_datetime(checklist.valid_until_ms),
            "gates": checklist.gates,
            "keyIds": await lists.key_ids(session, checklist.id),
            "counts": {
                "checkedIn": counts.checked_in,
                "inside": counts.inside,
                "admissible": counts.admissible,
                "scans": counts.scans,
                "refused": counts.refused,
            },
            "createdAt": format_datetime(checklist.created_ms),
            "updatedAt": format_datetime(checklist.updated_ms),
        }
    )


def list_changes(params: dict[str, Any]) -> dict[str, Any]:
    changes = {column: params[name] for name, column in LIST_FIELDS.items() if name in params}
    for name, column in LIST_TIMES.items():
        if name in params:
            changes[column] = parse_optional_datetime(params[name], name)
    return changes


@xrpc_method(NAMESPACE + "createCheckInList")
async def create_check_in_list(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    fields = {k: v for k, v in list_changes(params).items() if k != "status"}
    async with call.db.write() as session:
        made = await lists.create_list(
            session, call.services.keyring, call.caller, params["eventId"], fields, call.now_ms
        )
        return {"checkInList": await list_view(session, made)}


@xrpc_method(NAMESPACE + "updateCheckInList")
async def update_check_in_list(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    async with call.db.write() as session:
        changed = await lists.update_list(
            session,
            call.services.keyring,
            call.caller,
            params["checkInListId"],
            list_changes(params),
            call.now_ms,
            rotate_key=bool(params.get("rotateKey")),
        )
        return {"checkInList": await list_view(session, changed)}


@xrpc_method(NAMESPACE + "listCheckInLists")
async def list_check_in_lists(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    async with call.db.read() as session:
        found = await lists.event_lists(session, call.caller, params["eventId"])
        return {"checkInLists": [await list_view(session, checklist) for checklist in found]}


@xrpc_method(NAMESPACE + "exportCheckInList")
async def export_check_in_list(call: Call, params: dict[str, Any]) -> RawOutput:
    """The door list (CSV, XLSX, printable PDF) or check-in log, for the app managing the event."""
    async with call.db.read() as session:
        checklist = await lists.find_list(session, call.caller.environment, params["checkInListId"])
        event = await find_event(session, call.caller.environment, event_id=checklist.event_id)
        await ensure_can_manage(session, event, call.caller)
        body, media_type, filename = await export_list(
            session, call.caller.environment, checklist.id, params.get("format", "csv"), now_ms=call.now_ms
        )
    return RawOutput(body, media_type, filename)
