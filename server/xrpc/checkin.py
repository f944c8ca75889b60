"""Door methods: verification, online check-in, check-in lists and their exports."""

from __future__ import annotations

from functools import partial
from typing import Any

from server import metrics
from server.atproto.datetimes import parse_optional_datetime
from server.domain.checkin import lists
from server.domain.checkin.service import Scan, scan_once, verify
from server.domain.exports.service import export_managed_list
from server.domain.idempotency import check_key
from server.errors import DeviceAuthRequired, InvalidRequest
from server.xrpc.framework import NAMESPACE, Call, RawOutput, once, xrpc_method
from server.xrpc.principals import app_or_device_auth
from server.xrpc.views import check_in_view, list_view, not_valid_view, verification_view
from sync.checkin import Direction
from sync.passes import PassRejected, decode_pass

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


@xrpc_method(NAMESPACE + "verifyTicket")
async def verify_ticket(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """Would this pass be admitted now? Read-only: nothing is logged."""
    scan = Scan(params["ticketToken"], params.get("checkInListId"), Direction.ENTRY)
    return verification_view(await verify(call.db, call.services.keyring, call.caller, scan, call.now_ms))


def direction_of(params: dict[str, Any]) -> Direction:
    """``direction`` is open (``knownValues``) on the wire; a door only knows entry and exit."""
    try:
        return Direction(params.get("direction", Direction.ENTRY))
    except ValueError:
        known = "|".join(Direction)
        raise InvalidRequest(f"Input/direction must be one of ({known})") from None


@xrpc_method(NAMESPACE + "checkInTicket", auth=app_or_device_auth)
async def check_in_ticket(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """Admit (or refuse) and log one scan; with an ``idempotencyKey`` a retried scan answers the
    first result instead of ``already_checked_in``."""
    try:
        decode_pass(params["ticketToken"])
    except PassRejected:
        return not_valid_view()
    direction = direction_of(params)  # a caller's mistakes are refused before its key is claimed
    scan = Scan(
        params["ticketToken"],
        params.get("checkInListId"),
        direction,
        params.get("gate"),
        params.get("scannerDid"),
        params.get("metadata"),
        **desk_scan_identity(call, params),
    )
    output = await scan_once(
        call.db,
        call.services.keyring,
        call.caller,
        scan,
        call.now_ms,
        once=once(call, params),
        encode=partial(check_in_view, direction),
    )
    if not output.get("reused"):
        metrics.CHECKINS.labels(output["status"]).inc()
    return output


def list_changes(params: dict[str, Any]) -> dict[str, Any]:
    changes = {column: params[name] for name, column in LIST_FIELDS.items() if name in params}
    for name, column in LIST_TIMES.items():
        if name in params:
            changes[column] = parse_optional_datetime(params[name], name)
    return changes


@xrpc_method(NAMESPACE + "createCheckInList")
async def create_check_in_list(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    fields = {k: v for k, v in list_changes(params).items() if k != "status"}
    made = await lists.create(
        call.db, call.services.keyring, call.caller, params["eventId"], fields, call.now_ms
    )
    return {"checkInList": list_view(made)}


@xrpc_method(NAMESPACE + "updateCheckInList")
async def update_check_in_list(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    changed = await lists.update(
        call.db,
        call.services.keyring,
        call.caller,
        params["checkInListId"],
        list_changes(params),
        call.now_ms,
        rotate_key=bool(params.get("rotateKey")),
    )
    return {"checkInList": list_view(changed)}


@xrpc_method(NAMESPACE + "listCheckInLists")
async def list_check_in_lists(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    found = await lists.listed(call.db, call.caller, params["eventId"])
    return {"checkInLists": [list_view(facts) for facts in found]}


@xrpc_method(NAMESPACE + "exportCheckInList")
async def export_check_in_list(call: Call, params: dict[str, Any]) -> RawOutput:
    """The door list (CSV, XLSX, printable PDF) or check-in log, for the app managing the event."""
    body, media_type, filename = await export_managed_list(
        call.db, call.caller, params["checkInListId"], params.get("format", "csv"), call.now_ms
    )
    return RawOutput(body, media_type, filename)
