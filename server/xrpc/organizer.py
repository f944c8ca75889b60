"""Organizer methods: an event's back office (summary, conflicts, payments needing attention, a
ticket's history, desks, lifecycle event deliveries), for the app the event belongs to, with its
organizer's standing consent. The console renders the same answers (``server/web/console``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from server.domain.organizer import service as organizer
from server.domain.organizer.access import Viewer, app_viewer
from server.domain.organizer.service import Viewed
from server.xrpc.framework import NAMESPACE, Call, xrpc_method
from server.xrpc.views import (
    conflict_history_view,
    delivery_view,
    device_view,
    payment_issue_view,
    summary_view,
    ticket_history_view,
)

if TYPE_CHECKING:
    from server.db.engine import Database


Row = TypeVar("Row")


async def _rows_of_event(
    call: Call,
    params: dict[str, Any],
    rows_of: Callable[[Database, Viewer, str], Awaitable[Viewed[list[Row]]]],
    key: str,
    view: Callable[[Row], dict[str, Any]],
) -> dict[str, Any]:
    """The event's rows of one kind (``rows_of``), each shown by ``view``, under ``key``."""
    found = await rows_of(call.db, app_viewer(call.caller), params["eventId"])
    return {key: [view(row) for row in found.value]}


async def _act_on_item(
    call: Call,
    params: dict[str, Any],
    act: Callable[[Database, Viewer, str, str, int], Awaitable[Row]],
    id_param: str,
    key: str,
    view: Callable[[Row], dict[str, Any]],
) -> dict[str, Any]:
    """``act`` on the event's item ``params[id_param]``; the item, shown by ``view``, under ``key``."""
    item = await act(call.db, app_viewer(call.caller), params["eventId"], params[id_param], call.now_ms)
    return {key: view(item)}


@xrpc_method(NAMESPACE + "getEventSummary")
async def get_event_summary(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    found = await organizer.summary_of(call.db, app_viewer(call.caller), params["eventId"], call.now_ms)
    return summary_view(found.value)


@xrpc_method(NAMESPACE + "listConflicts")
async def list_conflicts(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    found = await organizer.conflicts_of(
        call.db, app_viewer(call.caller), params["eventId"], params.get("status", "open")
    )
    return {"conflicts": [conflict_history_view(c) for c in found.value]}


@xrpc_method(NAMESPACE + "resolveConflict")
async def resolve_conflict(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    resolved = await organizer.resolve_event_conflict(
        call.db,
        app_viewer(call.caller),
        params["eventId"],
        params["conflictId"],
        params["outcome"],
        params["reason"],
        call.now_ms,
    )
    return {"conflict": conflict_history_view(resolved)}


@xrpc_method(NAMESPACE + "listPaymentIssues")
async def list_payment_issues(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    return await _rows_of_event(call, params, organizer.payment_issues_of, "payments", payment_issue_view)


@xrpc_method(NAMESPACE + "getTicketHistory")
async def get_ticket_history(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    found = await organizer.history_of(
        call.db, app_viewer(call.caller), params["eventId"], params["ticketId"]
    )
    return ticket_history_view(found.value)


@xrpc_method(NAMESPACE + "listDevices")
async def list_devices(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    return await _rows_of_event(call, params, organizer.devices_of, "devices", device_view)


@xrpc_method(NAMESPACE + "revokeDevice")
async def revoke_device(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    return await _act_on_item(call, params, organizer.revoke_event_device, "deviceId", "device", device_view)


@xrpc_method(NAMESPACE + "listWebhookDeliveries")
async def list_webhook_deliveries(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    found = await organizer.deliveries_of(
        call.db, app_viewer(call.caller), params["eventId"], int(params.get("limit", 50))
    )
    return {"deliveries": [delivery_view(d) for d in found.value]}


@xrpc_method(NAMESPACE + "redriveWebhookDelivery")
async def redrive_webhook_delivery(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    return await _act_on_item(
        call, params, organizer.redrive_event_delivery, "deliveryId", "delivery", delivery_view
    )
