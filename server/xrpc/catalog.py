"""Catalog methods: ticketed events, capacity groups, tiers and availability."""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from server.atproto.datetimes import parse_optional_datetime
from server.db.models import Event
from server.domain import consents
from server.domain.catalog import service as catalog
from server.domain.catalog.service import UNSET, EventInput, EventRecord, TierInput
from server.domain.offers import service as offers
from server.errors import EventNotFound, InvalidRequest
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


async def consent_before_reading(call: Call, organizer_did: str, given: EventInput) -> None:
    """The organizer's authority over the event, and the app's consent unless the call carries the
    organizer's assertion, checked before the event record is read: an app without consent never
    makes this service reach a PDS. (``catalog.ensure_event`` checks both again as it writes.)"""
    consents.check_authority(given.uri, organizer_did)
    if call.caller.organizer_did is None:
        async with call.db.read() as session:
            await consents.require(session, call.caller.app_id, organizer_did)


async def record_of_new_event(call: Call, organizer_did: str, given: EventInput) -> EventRecord | None:
    """The event record, read only when ``given`` names an event not ticketed here yet."""
    await consent_before_reading(call, organizer_did, given)
    try:
        async with call.db.read() as session:
            await catalog.find_event(session, call.caller.environment, event_uri=given.uri)
    except EventNotFound:
        return await call.services.event_graph.resolve(given.uri)
    return None


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


async def event_for_call(
    call: Call,
    session: AsyncSession,
    organizer_did: str,
    given: EventInput,
    record: EventRecord | None,
    *,
    status: str | None = None,
    refresh: bool = False,
) -> Event:
    """``catalog.ensure_event`` for this call's caller, at its time, with the service's keyring."""
    return await catalog.ensure_event(
        session,
        call.caller,
        organizer_did,
        given,
        call.now_ms,
        keyring=call.services.keyring,
        status=status,
        refresh=refresh,
        record=record,
    )


@xrpc_method(NAMESPACE + "createTicketEvent")
async def create_ticket_event(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    given = event_input(params["event"], checked_metadata(call, params.get("metadata")))
    await consent_before_reading(call, params["organizerDid"], given)
    record = await call.services.event_graph.resolve(given.uri)
    async with call.db.write() as session:
        event = await event_for_call(
            call, session, params["organizerDid"], given, record, status=params.get("status"), refresh=True
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
    record = None
    if "status" not in params or params.keys() - {"eventId", "status", "metadata", "environment"}:
        async with call.db.read() as session:
            event = await catalog.find_event(session, call.caller.environment, event_id=params["eventId"])
        record = await call.services.event_graph.resolve(event.uri)
    async with call.db.write() as session:
        event = await catalog.update_event(
            session, call.caller, params["eventId"], changes, call.now_ms, record=record
        )
    return {"event": event_view(event)}


@xrpc_method(NAMESPACE + "createCapacityGroup")
async def create_capacity_group(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    given = event_input(params["event"])
    record = await record_of_new_event(call, params["organizerDid"], given)
    async with call.db.write() as session:
        event = await event_for_call(call, session, params["organizerDid"], given, record)
        group = await catalog.create_group(
            session,
            call.caller,
            event,
            params["name"],
            params["totalCapacity"],
            call.now_ms,
            metadata=checked_metadata(call, params.get("metadata")),
        )
        await session.flush()
        state = await catalog.group_state(session, group, call.now_ms)
    return {"event": event_view(event), "capacityGroup": group_view(state)}


@xrpc_method(NAMESPACE + "updateCapacityGroup")
async def update_capacity_group(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    changes = changes_from(
        call,
        params,
        {"name": "name", "totalCapacity": "total_capacity", "status": "status", "metadata": "metadata_"},
        {},
    )
    async with call.db.write() as session:
        group = await catalog.update_group(
            session, call.caller, params["capacityGroupId"], changes, call.now_ms
        )
        await session.flush()
        state = await catalog.group_state(session, group, call.now_ms)
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
    event_given = event_input(params["event"])
    record = await record_of_new_event(call, params["organizerDid"], event_given)
    async with call.db.write() as session:
        event = await event_for_call(call, session, params["organizerDid"], event_given, record)
        tier = await catalog.create_tier(
            session, call.caller, event, given, call.now_ms, group_id=params.get("capacityGroupId")
        )
        state = await catalog.tier_state(session, tier, call.now_ms)
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
    async with call.db.write() as session:
        tier = await catalog.update_tier(session, call.caller, tier_id, changes, call.now_ms)
        await session.flush()
        state = await catalog.tier_state(session, tier, call.now_ms)
    return {"tier": tier_view(state)}


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

    async def available() -> dict[str, Any]:
        async with call.db.read() as session:
            event = await catalog.find_event(
                session,
                call.caller.environment,
                event_id=params.get("eventId"),
                event_uri=params.get("eventUri"),
            )
            inventory = await catalog.inventory(session, event, call.now_ms)
            code = params.get("offerCode")
            if code is not None:
                offer = await offers.offer_for_code(session, event, code, call.now_ms)
                inventory.unlocked = offers.unlocked_tiers(offer, (s.tier.id for s in inventory.tiers))
        return availability_view(inventory, call.now_ms)

    return await guarding_codes(call, params, available)
