"""Checkout methods: order previews, holds and their release."""

from __future__ import annotations

from functools import partial
from typing import Any

from server import metrics
from server.domain.holds import service as holds
from server.domain.holds.rules import check_redirect, merge_items
from server.domain.holds.service import HoldRequest
from server.domain.payments.devpay import check_payments_ready
from server.errors import InvalidRequest
from server.xrpc.auth import verify_buyer
from server.xrpc.catalog import checked_metadata
from server.xrpc.codes import code_limits, guarding_codes
from server.xrpc.framework import NAMESPACE, Call, once, xrpc_method
from server.xrpc.views import hold_checkout_view, hold_status_view, preview_view

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


@xrpc_method(CREATE_HOLD)
async def create_ticket_hold(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    check_payments_ready(call.settings, call.caller.environment)
    buyer_did, assertion = params.get("buyerDid"), params.get("buyerAssertionJwt")
    if (buyer_did is None) != (assertion is None):
        raise InvalidRequest("buyerDid and buyerAssertionJwt go together: send both or neither")
    if buyer_did is not None and assertion is not None:
        await verify_buyer(call.services, HOLD_BUYER_LXMS, buyer_did, assertion)
    output = await holds.place_hold(
        call.db,
        call.caller,
        hold_request(call, params),
        call.now_ms,
        call.settings.hold_ttl_seconds * 1000,
        codes=code_limits(call.settings),
        once=once(call, params, unhashed=BUYER_RETRY_FIELDS),
        encode=partial(hold_checkout_view, call.settings),
    )
    if not output.get("reused"):
        metrics.HOLDS_CREATED.inc()
    return output


@xrpc_method(NAMESPACE + "releaseTicketHold")
async def release_ticket_hold(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    hold = await holds.release_app_hold(
        call.db, call.caller, params["holdId"], params.get("reason"), call.now_ms
    )
    return hold_status_view(hold, call.now_ms)


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
    order = await guarding_codes(
        call, params, partial(holds.preview_order, call.db, call.caller, request, call.now_ms)
    )
    return preview_view(order, params["tierId"])
