"""Checkout methods: order previews, holds and their release."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server import metrics
from server.domain.holds import service as holds
from server.domain.holds.rules import check_redirect, merge_items
from server.domain.holds.service import HoldRequest, effective_status
from server.domain.payments.devpay import check_payments_ready, checkout_url
from server.errors import InvalidRequest
from server.xrpc.auth import verify_buyer
from server.xrpc.catalog import checked_metadata
from server.xrpc.codes import guarding_codes
from server.xrpc.framework import NAMESPACE, Call, write_once, xrpc_method
from server.xrpc.views import hold_checkout_view, price_view

CREATE_HOLD = NAMESPACE + "createTicketHold"
# A paid hold's buyer assertion: minted for the hold itself, or (as the pilot app mints it) for the
# payment's payer assertion.
HOLD_BUYER_LXMS = (CREATE_HOLD, "money.atmosphere.payment.assertPayer")
# A retried order carries the same key but a fresh buyer assertion token.
BUYER_RETRY_FIELDS = ("idempotencyKey", "buyerAssertionJwt")


def hold_request(call: Call, params: dict[str, Any]) -> HoldRequest:
    items = merge_items((item["tierId"], item["quantity"]) for item in params["items"])
    return HoldRequest(
        items=items,
        event_id=params.get("eventId"),
        event_uri=params.get("eventUri"),
        buyer_did=params.get("buyerDid"),
        customer_email=params.get("customerEmail"),
        return_url=check_redirect(params.get("returnUrl"), "returnUrl", call.caller.environment),
        cancel_url=check_redirect(params.get("cancelUrl"), "cancelUrl", call.caller.environment),
        metadata=checked_metadata(call, params.get("metadata")),
        attendees=params.get("attendees"),
        offer_code=params.get("offerCode"),
    )


async def _hold(call: Call, request: HoldRequest, session: AsyncSession) -> dict[str, Any]:
    ttl_ms = call.settings.hold_ttl_seconds * 1000
    checked = None
    if call.settings.test_unsafe_skip_locks:
        async with call.db.read() as unlocked:
            checked = await holds.check_hold(unlocked, call.caller, request, call.now_ms)
    result = await holds.create_hold(session, call.caller, request, call.now_ms, ttl_ms, checked=checked)
    await session.flush()
    return hold_checkout_view(result, checkout_url(call.settings, result.hold.token))


@xrpc_method(CREATE_HOLD)
async def create_ticket_hold(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    check_payments_ready(call.settings, call.caller.environment)
    buyer_did, assertion = params.get("buyerDid"), params.get("buyerAssertionJwt")
    if (buyer_did is None) != (assertion is None):
        raise InvalidRequest("buyerDid and buyerAssertionJwt go together: send both or neither")
    if buyer_did is not None and assertion is not None:
        await verify_buyer(call.services, HOLD_BUYER_LXMS, buyer_did, assertion)
    request = hold_request(call, params)
    output = await guarding_codes(
        call,
        params,
        lambda: write_once(
            call, params, lambda session: _hold(call, request, session), unhashed=BUYER_RETRY_FIELDS
        ),
    )
    if not output.get("reused"):
        metrics.HOLDS_CREATED.inc()
    return output


@xrpc_method(NAMESPACE + "releaseTicketHold")
async def release_ticket_hold(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    async with call.db.write() as session:
        hold = await holds.release_hold(
            session, call.caller, params["holdId"], params.get("reason"), call.now_ms
        )
    return {"hold": {"id": hold.id, "status": effective_status(hold, call.now_ms)}}


@xrpc_method(NAMESPACE + "previewTicketOrder")
async def preview_ticket_order(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The exact price of an order of one tier, by the very rules a hold charges; reserves nothing.
    Places left are not checked (the hold says), an offer's redemptions left are."""
    request = HoldRequest(
        items={params["tierId"]: params["quantity"]},
        event_id=params.get("eventId"),
        event_uri=params.get("eventUri"),
        offer_code=params.get("offerCode"),
    )

    async def priced() -> dict[str, Any]:
        async with call.db.read() as session:
            order = await holds.price_order(session, call.caller, request, call.now_ms, sale=False)
        quote = order.quote
        return {
            **price_view(quote.subtotal, quote.discount, quote.buyer_fee, order.offer),
            "totalAmount": quote.total,
            "currency": order.tiers[params["tierId"]].currency,
        }

    return await guarding_codes(call, params, priced)
