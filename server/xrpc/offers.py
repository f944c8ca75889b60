"""Offer methods (our extensions): create, change and list an event's offers."""

from __future__ import annotations

from typing import Any

from server.atproto.datetimes import parse_optional_datetime
from server.domain.offers import service as offers
from server.domain.offers.service import OfferInput
from server.xrpc.catalog import changes_from
from server.xrpc.framework import NAMESPACE, Call, xrpc_method
from server.xrpc.views import offer_view


def _discount(params: dict[str, Any]) -> dict[str, Any]:
    """``discountAmount`` is a ``priceAmount`` (amount and currency) on the wire."""
    amount = params.get("discountAmount")
    if amount is None:
        return {}
    return {"discount_amount": amount["amount"], "currency": amount["currency"]}


@xrpc_method(NAMESPACE + "createOffer")
async def create_offer(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    given = OfferInput(
        name=params["name"],
        kind=params["kind"],
        code=params["code"],
        public=params.get("public", False),
        description=params.get("description"),
        discount_percent=params.get("discountPercent"),
        tier_ids=params.get("tierIds"),
        starts_ms=parse_optional_datetime(params.get("startsAt"), "startsAt"),
        ends_ms=parse_optional_datetime(params.get("endsAt"), "endsAt"),
        max_redemptions=params.get("maxRedemptions"),
        max_per_buyer=params.get("maxPerBuyer"),
        **_discount(params),
    )
    return {
        "offer": offer_view(
            await offers.make_offer(call.db, call.caller, params["eventId"], given, call.now_ms)
        )
    }


OFFER_FIELDS = {
    "name": "name",
    "description": "description",
    "public": "public",
    "discountPercent": "discount_percent",
    "tierIds": "tier_ids",
    "maxRedemptions": "max_redemptions",
    "maxPerBuyer": "max_per_buyer",
    "status": "status",
}


@xrpc_method(NAMESPACE + "updateOffer")
async def update_offer(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    changes = changes_from(call, params, OFFER_FIELDS, {"startsAt": "starts_ms", "endsAt": "ends_ms"})
    if "discountAmount" in params:
        changes.update(_discount(params) or {"discount_amount": None})
    return {
        "offer": offer_view(
            await offers.change_offer(call.db, call.caller, params["offerId"], changes, call.now_ms)
        )
    }


@xrpc_method(NAMESPACE + "listOffers")
async def list_offers(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    found, cursor = await offers.offers_page(
        call.db,
        call.caller,
        params["eventId"],
        call.now_ms,
        cursor=params.get("cursor"),
        limit=int(params.get("limit", 50)),
    )
    out: dict[str, Any] = {"offers": [offer_view(usage) for usage in found]}
    return {**out, "cursor": cursor} if cursor else out
