"""Organizer methods: an event's back office (summary, conflicts, payments needing attention, a
ticket's history, desks, lifecycle event deliveries), for the app the event belongs to, with its
organizer's standing consent. The console renders the same answers (``server/web/console``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Event
from server.domain.organizer import service as organizer
from server.domain.organizer.access import Viewer, app_viewer, viewed_event
from server.xrpc.framework import NAMESPACE, Call, xrpc_method

Work = Callable[[AsyncSession, Viewer, Event], Awaitable[dict[str, Any]]]


async def _read(call: Call, params: dict[str, Any], work: Work) -> dict[str, Any]:
    viewer = app_viewer(call.caller)
    async with call.db.read() as session:
        return await work(session, viewer, await viewed_event(session, viewer, params["eventId"]))


async def _write(call: Call, params: dict[str, Any], work: Work) -> dict[str, Any]:
    viewer = app_viewer(call.caller)
    async with call.db.write() as session:
        return await work(session, viewer, await viewed_event(session, viewer, params["eventId"]))


@xrpc_method(NAMESPACE + "getEventSummary")
async def get_event_summary(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    return await _read(call, params, lambda s, _, e: organizer.event_summary(s, e, call.now_ms))


@xrpc_method(NAMESPACE + "listConflicts")
async def list_conflicts(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    async def work(session: AsyncSession, _: Viewer, event: Event) -> dict[str, Any]:
        return {"conflicts": await organizer.list_conflicts(session, event, params.get("status", "open"))}

    return await _read(call, params, work)


@xrpc_method(NAMESPACE + "resolveConflict")
async def resolve_conflict(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    async def work(session: AsyncSession, viewer: Viewer, event: Event) -> dict[str, Any]:
        resolved = await organizer.resolve_conflict(
            session, viewer, event, params["conflictId"], params["outcome"], params["reason"], call.now_ms
        )
        return {"conflict": resolved}

    return await _write(call, params, work)


@xrpc_method(NAMESPACE + "listPaymentIssues")
async def list_payment_issues(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    async def work(session: AsyncSession, _: Viewer, event: Event) -> dict[str, Any]:
        return {"payments": await organizer.payment_issues(session, event)}

    return await _read(call, params, work)


@xrpc_method(NAMESPACE + "getTicketHistory")
async def get_ticket_history(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    return await _read(call, params, lambda s, _, e: organizer.ticket_history(s, e, params["ticketId"]))


@xrpc_method(NAMESPACE + "listDevices")
async def list_devices(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    async def work(session: AsyncSession, _: Viewer, event: Event) -> dict[str, Any]:
        return {"devices": [organizer.device_view(d) for d in await organizer.event_devices(session, event)]}

    return await _read(call, params, work)


@xrpc_method(NAMESPACE + "revokeDevice")
async def revoke_device(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    async def work(session: AsyncSession, viewer: Viewer, event: Event) -> dict[str, Any]:
        device = await organizer.revoke_device(session, viewer, event, params["deviceId"], call.now_ms)
        return {"device": organizer.device_view(device)}

    return await _write(call, params, work)


@xrpc_method(NAMESPACE + "listWebhookDeliveries")
async def list_webhook_deliveries(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    async def work(session: AsyncSession, _: Viewer, event: Event) -> dict[str, Any]:
        return {"deliveries": await organizer.deliveries(session, event, int(params.get("limit", 50)))}

    return await _read(call, params, work)


@xrpc_method(NAMESPACE + "redriveWebhookDelivery")
async def redrive_webhook_delivery(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    async def work(session: AsyncSession, viewer: Viewer, event: Event) -> dict[str, Any]:
        delivery = await organizer.redrive_delivery(session, viewer, event, params["deliveryId"], call.now_ms)
        return {"delivery": delivery}

    return await _write(call, params, work)
