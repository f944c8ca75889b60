"""Encoders from rows to the lexicon output shapes (``tickets.atmosphere.defs#…``)."""

from __future__ import annotations

from typing import Any

from server.atproto.datetimes import format_datetime, format_optional_datetime
from server.db.models import Event, Hold, Offer, Tier
from server.domain import common
from server.domain.catalog.service import GroupState, Inventory, TierState
from server.domain.consents import Consent
from server.domain.holds.service import HoldResult
from server.domain.issuance.queries import TicketInContext
from server.domain.offers.service import OfferUsage

# Every method's encoder leaves optional properties out with it.
compact = common.compact


def event_view(event: Event) -> dict[str, Any]:
    return compact(
        {
            "id": event.id,
            "uri": event.uri,
            "cid": event.cid,
            "title": event.title,
            "startsAt": format_optional_datetime(event.starts_ms),
            "endsAt": format_optional_datetime(event.ends_ms),
            "timezone": event.timezone,
            "url": event.url,
            "imageUrl": event.image_url,
            "status": event.status,
            "organizerDid": event.organizer_did,
            "environment": event.environment,
            "metadata": event.metadata_,
            "createdAt": format_datetime(event.created_ms),
            "updatedAt": format_datetime(event.updated_ms),
        }
    )


def group_view(state: GroupState) -> dict[str, Any]:
    group, pool = state.group, state.pool
    return compact(
        {
            "id": group.id,
            "eventId": group.event_id,
            "name": group.name,
            "status": group.status,
            "totalCapacity": group.total_capacity,
            "soldQuantity": pool.sold,
            "heldQuantity": pool.held,
            "availableQuantity": pool.available,
            "implicit": group.implicit,
            "metadata": group.metadata_,
            "createdAt": format_datetime(group.created_ms),
            "updatedAt": format_datetime(group.updated_ms),
        }
    )


def tier_view(state: TierState) -> dict[str, Any]:
    tier = state.tier
    return compact(
        {
            "id": tier.id,
            "eventId": tier.event_id,
            "capacityGroupId": tier.capacity_group_id,
            "title": tier.title,
            "description": tier.description,
            "currency": tier.currency,
            "unitAmount": tier.unit_amount,
            "quantityTotal": tier.quantity_total,
            "quantitySold": state.pool.sold,
            "quantityHeld": state.pool.held,
            "availableQuantity": state.available,
            "maxPerOrder": tier.max_per_order,
            "saleStartsAt": format_optional_datetime(tier.sale_starts_ms),
            "saleEndsAt": format_optional_datetime(tier.sale_ends_ms),
            "status": tier.status,
            "visibility": tier.visibility,
            "tierRef": tier.tier_ref,
            "productRef": tier.product_ref,
            "priceRef": tier.price_ref,
            "metadata": tier.metadata_,
            "createdAt": format_datetime(tier.created_ms),
            "updatedAt": format_datetime(tier.updated_ms),
        }
    )


def availability_view(inventory: Inventory, now_ms: int) -> dict[str, Any]:
    event = inventory.event
    tiers = []
    for state in inventory.listed():
        tier = state.tier
        sale = inventory.sale_state(state, now_ms)
        tiers.append(
            compact(
                {
                    "tierId": tier.id,
                    "title": tier.title,
                    "description": tier.description,
                    "currency": tier.currency,
                    "unitAmount": tier.unit_amount,
                    "status": sale.value,
                    "availableQuantity": state.available if sale.value == "available" else 0,
                    "maxPerOrder": tier.max_per_order,
                    "saleStartsAt": format_optional_datetime(tier.sale_starts_ms),
                    "saleEndsAt": format_optional_datetime(tier.sale_ends_ms),
                    "capacityGroupId": tier.capacity_group_id,
                }
            )
        )
    return {
        "eventId": event.id,
        "eventUri": event.uri,
        "environment": event.environment,
        "available": any(t["status"] == "available" for t in tiers),
        "tiers": tiers,
    }


def hold_checkout_view(result: HoldResult, checkout_url: str) -> dict[str, Any]:
    hold: Hold = result.hold
    return {
        "holdId": hold.id,
        "token": hold.token,
        "url": checkout_url,
        "expiresAt": format_datetime(hold.expires_ms),
        "amountCents": hold.amount,
        "currency": hold.currency,
        "environment": hold.environment,
        **price_view(hold.subtotal_amount, hold.discount_amount, hold.buyer_fee_amount, result.offer),
        "items": [
            {
                "tierId": line.tier.id,
                "title": line.tier.title,
                "quantity": line.quantity,
                "unitAmount": line.tier.unit_amount,
                "currency": line.tier.currency,
            }
            for line in result.lines
        ],
    }


def price_view(subtotal: int, discount: int, buyer_fee: int, offer: Offer | None) -> dict[str, Any]:
    """The parts of a price, as ``previewTicketOrder`` names them."""
    return compact(
        {
            "subtotalAmount": subtotal,
            "discountAmount": discount,
            "buyerFeeAmount": buyer_fee,
            "offerCode": None if offer is None else offer.code,
            "offerLabel": None if offer is None else offer.name,
        }
    )


def offer_view(usage: OfferUsage) -> dict[str, Any]:
    offer = usage.offer
    return compact(
        {
            "id": offer.id,
            "eventId": offer.event_id,
            "name": offer.name,
            "description": offer.description,
            "kind": offer.kind,
            "code": offer.code,
            "public": offer.public,
            "discountPercent": offer.discount_percent,
            "discountAmount": None
            if offer.discount_amount is None
            else {"amount": offer.discount_amount, "currency": offer.currency},
            "tierIds": offer.tier_ids,
            "startsAt": format_optional_datetime(offer.starts_ms),
            "endsAt": format_optional_datetime(offer.ends_ms),
            "maxRedemptions": offer.max_redemptions,
            "maxPerBuyer": offer.max_per_buyer,
            "redeemedQuantity": usage.redeemed,
            "reservedQuantity": usage.reserved,
            "remainingQuantity": usage.remaining,
            "status": offer.status,
            "createdAt": format_datetime(offer.created_ms),
            "updatedAt": format_datetime(offer.updated_ms),
        }
    )


def scan_url(public_url: str, item: TicketInContext) -> str:
    return f"{public_url.rstrip('/')}/passes/{item.ticket.id}?k={item.access_key}"


def event_summary(event: Event) -> dict[str, Any]:
    """``tickets.atmosphere.defs#eventSummary`` as the SDK reads it: ``{id, uri, title, startsAt}``."""
    return compact(
        {
            "id": event.id,
            "uri": event.uri,
            "title": event.title,
            "startsAt": format_optional_datetime(event.starts_ms),
        }
    )


def tier_summary(tier: Tier) -> dict[str, Any]:
    """``tickets.atmosphere.defs#ticketTierSummary`` as the SDK reads it."""
    return {
        "id": tier.id,
        "title": tier.title,
        "status": tier.status,
        "currency": tier.currency,
        "unitAmount": tier.unit_amount,
        "quantityTotal": tier.quantity_total,
    }


def presentation_view(event: Event, tier: Tier) -> dict[str, Any]:
    """``tickets.atmosphere.defs#ticketPresentation``: what a wallet shows around a ticket."""
    return {
        "event": compact(
            {
                "uri": event.uri,
                "title": event.title,
                "startsAt": format_optional_datetime(event.starts_ms),
                "imageUrl": event.image_url,
            }
        ),
        "tier": {"title": tier.title},
        "organizer": {"did": event.organizer_did},
    }


def ticket_view(item: TicketInContext, public_url: str) -> dict[str, Any]:
    """``tickets.atmosphere.defs#issuedTicketWithContext``."""
    ticket, event, tier = item.ticket, item.event, item.tier
    active = ticket.status == "active" and item.pass_token is not None
    return compact(
        {
            "id": ticket.id,
            "ticketId": ticket.id,
            "tierId": ticket.tier_id,
            "eventId": ticket.event_id,
            "eventUri": event.uri,
            "status": ticket.status,
            "ticketNumber": ticket.ticket_number,
            "scanUrl": scan_url(public_url, item) if active else None,
            "createdAt": format_datetime(ticket.created_ms),
            "updatedAt": format_datetime(ticket.updated_ms),
            "paymentId": ticket.payment_id,
            "claimId": ticket.claim_id,
            "buyerDid": ticket.buyer_did,
            "attendeeName": ticket.attendee_name,
            "generation": ticket.generation,
            "passToken": item.pass_token if active else None,
            "unitAmount": ticket.unit_amount,
            "currency": ticket.currency,
            "event": event_summary(event),
            "tier": tier_summary(tier),
            "presentation": presentation_view(event, tier),
        }
    )


def consent_view(consent: Consent) -> dict[str, Any]:
    """``tickets.atmosphere.defs#organizerConsentView``."""
    row = consent.row
    return compact(
        {
            "appDid": consent.app_did,
            "organizerDid": row.organizer_did,
            "environment": row.environment,
            "status": "active" if consent.active else "revoked",
            "grantedAt": format_datetime(row.granted_ms),
            "revokedAt": format_optional_datetime(row.revoked_ms),
        }
    )
