"""Checkout methods: order previews, holds and their release."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.domain.catalog import service as catalog
from server.domain.errors import InvalidRequest, OrderLimitExceeded, TicketHoldUnavailable
from server.domain.holds import service as holds
from server.domain.holds.rules import merge_items
from server.domain.holds.service import HoldRequest, effective_status
from server.xrpc.auth import verify_buyer
from server.xrpc.catalog import checked_metadata
from server.xrpc.framework import NAMESPACE, Call, write_once, xrpc_method
from server.xrpc.views import hold_checkout_view

CREATE_HOLD = NAMESPACE + "createTicketHold"
# A retried order carries the same key but a fresh buyer assertion token.
BUYER_RETRY_FIELDS = ("idempotencyKey", "buyerAssertionJwt")


def checkout_url(call: Call, token: str) -> str:
    """Where the buyer pays: the broker's checkout, or the built-in dev checkout without one."""
    base = call.settings.broker_url or call.settings.public_url
    return f"{base.rstrip('/')}/checkout/{token}"


def hold_request(call: Call, params: dict[str, Any]) -> HoldRequest:
    items = merge_items((item["tierId"], item["quantity"]) for item in params["items"])
    return HoldRequest(
        items=items,
        event_id=params.get("eventId"),
        event_uri=params.get("eventUri"),
        buyer_did=params.get("buyerDid"),
        customer_email=params.get("customerEmail"),
        return_url=params.get("returnUrl"),
        cancel_url=params.get("cancelUrl"),
        metadata=checked_metadata(call, params.get("metadata")),
        attendees=params.get("attendees"),
    )


async def _hold(call: Call, request: HoldRequest, session: AsyncSession) -> dict[str, Any]:
    ttl_ms = call.settings.hold_ttl_seconds * 1000
    checked = None
    if call.settings.test_unsafe_skip_locks:
        async with call.db.read() as unlocked:
            checked = await holds.check_hold(unlocked, call.caller, request, call.now_ms)
    result = await holds.create_hold(session, call.caller, request, call.now_ms, ttl_ms, checked=checked)
    await session.flush()
    return hold_checkout_view(result, checkout_url(call, result.hold.token))


@xrpc_method(CREATE_HOLD)
async def create_ticket_hold(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    buyer_did, assertion = params.get("buyerDid"), params.get("buyerAssertionJwt")
    if (buyer_did is None) != (assertion is None):
        raise InvalidRequest("buyerDid and buyerAssertionJwt go together: send both or neither")
    if buyer_did is not None and assertion is not None:
        await verify_buyer(call.services, call.nsid, buyer_did, assertion)
    request = hold_request(call, params)
    return await write_once(
        call, params, lambda session: _hold(call, request, session), unhashed=BUYER_RETRY_FIELDS
    )


@xrpc_method(NAMESPACE + "releaseTicketHold")
async def release_ticket_hold(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    async with call.db.write() as session:
        hold = await holds.release_hold(
            session, call.caller, params["holdId"], params.get("reason"), call.now_ms
        )
    return {"hold": {"id": hold.id, "status": effective_status(hold, call.now_ms)}}


@xrpc_method(NAMESPACE + "previewTicketOrder")
async def preview_ticket_order(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The exact price of an order; reserves nothing. Offers and app fees are not configured yet,
    so the discount and buyer fee are zero."""
    quantity = params["quantity"]
    async with call.db.read() as session:
        tier = await catalog.find_tier(session, call.caller.environment, params["tierId"])
        if params.get("eventId") or params.get("eventUri"):
            event = await catalog.find_event(
                session,
                call.caller.environment,
                event_id=params.get("eventId"),
                event_uri=params.get("eventUri"),
            )
            if event.id != tier.event_id:
                raise InvalidRequest("the tier does not belong to the event named")
        inventory = catalog.Inventory(
            await catalog.find_event(session, call.caller.environment, event_id=tier.event_id),
            [await catalog.tier_state(session, tier, call.now_ms)],
        )
    state = inventory.sale_state(inventory.tiers[0], call.now_ms)
    if state.value in ("unavailable", "not-on-sale", "hidden"):
        raise TicketHoldUnavailable(f"tier {tier.id} is not on sale now ({state.value})")
    if quantity > tier.max_per_order:
        raise OrderLimitExceeded(f"at most {tier.max_per_order} of tier {tier.id} per order")
    subtotal = tier.unit_amount * quantity
    return {
        "subtotalAmount": subtotal,
        "buyerFeeAmount": 0,
        "discountAmount": 0,
        "totalAmount": subtotal,
        "currency": tier.currency,
    }
