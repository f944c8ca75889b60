"""Catalog methods: ticketed events, capacity groups, tiers and availability."""

from __future__ import annotations

from functools import partial
from typing import Any

import msgspec

from server.atproto.datetimes import parse_optional_datetime
from server.domain.catalog import service as catalog
from server.domain.catalog.service import UNSET, EventInput, Ticketing, TierInput
from server.domain.offers import service as offers
from server.errors import InvalidRequest
from server.xrpc.codes import guarding_codes
from server.xrpc.framework import NAMESPACE, Call, xrpc_method
from server.xrpc.views import availability_view, event_view, group_view, tier_view


def event_input(data: dict[str, Any], metadata: Any = None) -> EventInput:
    return EventInput(
        uri=data["uri"],
        title=data.get("title"),
        cid=data.get("cid"),
        starts_ms=parse_optional_datetime(data.get("startsAt"), "event.startsAt"),
        ends_ms=parse_optional_datetime(data.get("endsAt"), "event.endsAt"),
        timezone=data.get("timezone"),
        url=data.get("url"),
        image_url=data.get("imageUrl"),
        metadata=metadata,
    )


def ticketing(call: Call, params: dict[str, Any], metadata: Any = None) -> Ticketing:
    """The event ``params["event"]`` names, to ticket for ``params["organizerDid"]``."""
    return Ticketing(
        call.db,
        call.services.event_graph,
        call.services.keyring,
        call.caller,
        params["organizerDid"],
        event_input(params["event"], metadata),
        call.now_ms,
    )


def checked_metadata(call: Call, value: Any) -> Any:
    """Free-form metadata is stored as given, up to the configured size."""
    if value is not None and len(msgspec.json.encode(value)) > call.settings.max_metadata_bytes:
        raise InvalidRequest(f"metadata must encode to at most {call.settings.max_metadata_bytes} bytes")
    return value


def changes_from(
    call: Call, params: dict[str, Any], fields: dict[str, str], times: dict[str, str]
) -> dict[str, Any]:
    """Column changes for the input fields present (``null`` clears); absent fields stay as they are.
    ``metadata`` (column ``metadata_``) is checked for size."""
    changes = {column: params[name] for name, column in fields.items() if name in params}
    for name, column in times.items():
        if name in params:
            changes[column] = parse_optional_datetime(params[name], name)
    if "metadata_" in changes:
        changes["metadata_"] = checked_metadata(call, changes["metadata_"])
    return changes


@xrpc_method(NAMESPACE + "createTicketEvent")
async def create_ticket_event(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    event = await catalog.create_ticketed_event(
        ticketing(call, params, checked_metadata(call, params.get("metadata"))), params.get("status")
    )
    return {"event": event_view(event)}


@xrpc_method(NAMESPACE + "updateTicketEvent")
async def update_ticket_event(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    changes = changes_from(
        call,
        params,
        {
            "title": "title",
            "eventCid": "cid",
            "imageUrl": "image_url",
            "status": "status",
            "metadata": "metadata_",
        },
        {"startsAt": "starts_ms"},
    )
    # Changing only the ticketing status does not read the event record again; any other update does.
    event = await catalog.update_ticketed_event(
        call.db,
        call.services.event_graph,
        call.caller,
        params["eventId"],
        changes,
        call.now_ms,
        read_record="status" not in params
        or bool(params.keys() - {"eventId", "status", "metadata", "environment"}),
    )
    return {"event": event_view(event)}


@xrpc_method(NAMESPACE + "createCapacityGroup")
async def create_capacity_group(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    event, state = await catalog.create_event_group(
        ticketing(call, params),
        params["name"],
        params["totalCapacity"],
        checked_metadata(call, params.get("metadata")),
    )
    return {"event": event_view(event), "capacityGroup": group_view(state)}


@xrpc_method(NAMESPACE + "updateCapacityGroup")
async def update_capacity_group(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    changes = changes_from(
        call,
        params,
        {"name": "name", "totalCapacity": "total_capacity", "status": "status", "metadata": "metadata_"},
        {},
    )
    state = await catalog.update_event_group(
        call.db, call.caller, params["capacityGroupId"], changes, call.now_ms
    )
    return {"capacityGroup": group_view(state)}


@xrpc_method(NAMESPACE + "createTicketTier")
async def create_ticket_tier(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    given = TierInput(
        title=params["title"],
        currency=params["currency"],
        unit_amount=params["unitAmount"],
        quantity_total=params["quantityTotal"],
        description=params.get("description"),
        max_per_order=params.get("maxPerOrder"),
        sale_starts_ms=parse_optional_datetime(params.get("saleStartsAt"), "saleStartsAt"),
        sale_ends_ms=parse_optional_datetime(params.get("saleEndsAt"), "saleEndsAt"),
        tier_ref=params.get("tierRef"),
        product_ref=params.get("productRef"),
        price_ref=params.get("priceRef"),
        metadata=checked_metadata(call, params.get("metadata")),
        visibility=params.get("visibility", "public"),
    )
    event, state = await catalog.create_event_tier(
        ticketing(call, params), given, params.get("capacityGroupId")
    )
    return {"event": event_view(event), "capacityGroup": group_view(state.group), "tier": tier_view(state)}


TIER_FIELDS = {
    "title": "title",
    "description": "description",
    "currency": "currency",
    "unitAmount": "unit_amount",
    "quantityTotal": "quantity_total",
    "maxPerOrder": "max_per_order",
    "tierRef": "tier_ref",
    "productRef": "product_ref",
    "priceRef": "price_ref",
    "metadata": "metadata_",
    "status": "status",
    "visibility": "visibility",
}


async def _update_tier(call: Call, tier_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    return {"tier": tier_view(await catalog.change_tier(call.db, call.caller, tier_id, changes, call.now_ms))}


@xrpc_method(NAMESPACE + "updateTicketTier")
async def update_ticket_tier(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    changes = changes_from(
        call, params, TIER_FIELDS, {"saleStartsAt": "sale_starts_ms", "saleEndsAt": "sale_ends_ms"}
    )
    for column in ("unit_amount", "quantity_total", "max_per_order", "status", "visibility"):
        if changes.get(column, UNSET) is None:
            raise InvalidRequest(f"{column} cannot be cleared")
    return await _update_tier(call, params["tierId"], changes)


@xrpc_method(NAMESPACE + "archiveTicketTier")
async def archive_ticket_tier(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    return await _update_tier(call, params["tierId"], {"status": "archived"})


@xrpc_method(NAMESPACE + "getTicketAvailability")
async def get_ticket_availability(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The event's tiers as buyers may see them; an access code (``offerCode``) also shows the
    hidden and unlisted tiers it opens, on sale as the code allows."""

    found = partial(
        offers.available_tiers,
        call.db,
        call.caller,
        params.get("eventId"),
        params.get("eventUri"),
        params.get("offerCode"),
        call.now_ms,
    )
    return availability_view(await guarding_codes(call, params, found), call.now_ms)
