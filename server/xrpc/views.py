"""Encoders from rows to the lexicon output shapes (``tickets.atmosphere.defs#…``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from server.atproto.datetimes import format_datetime, format_optional_datetime
from server.atproto.uri import RecordUri
from server.domain import common
from server.domain.catalog.service import GroupState, Inventory, TierState
from server.domain.checkin.door import record_of
from server.domain.checkin.lists import ListFacts
from server.domain.checkin.service import Outcome, Verification
from server.domain.consents import Consent
from server.domain.devices.conflicts import conflict_view
from server.domain.devices.service import Enrolled, Found, Pulled
from server.domain.holds.service import HeldLine, HoldResult, Priced, effective_status
from server.domain.issuance.queries import TicketInContext, pass_page_url
from server.domain.issuance.service import Claim
from server.domain.offers.service import OfferUsage
from server.domain.organizer.service import ConflictHistory, Summary, TicketHistory
from server.domain.payments.checkout import Checkout
from server.domain.payments.devpay import checkout_url
from server.domain.publishing.discovery import PublicRecord
from server.settings import Settings
from sync.checkin import Direction, OnlineStatus, Reason, Verdict, online_status
from sync.records import Record, RecordFormatError

if TYPE_CHECKING:
    from server.db.models import App, Device, Event, Hold, Offer, OutboxMessage, Payment, Ticket, Tier

# Every method's encoder leaves optional properties out with it.
compact = common.compact

# Our reason codes, mapped onto the published verificationResult reasons (pretix's vocabulary).
PUBLISHED_REASONS = {
    Reason.INVALID: "invalid",
    Reason.UNSUPPORTED_VERSION: "invalid",
    Reason.UNKNOWN_TICKET: "invalid",
    Reason.WRONG_LIST: "wrong_list",
    Reason.VOIDED: "voided",
    Reason.REFUNDED: "refunded",
    Reason.REVOKED: "revoked",
    Reason.NOT_YET_VALID: "invalid_time",
    Reason.EXPIRED: "invalid_time",
    Reason.ALREADY_CHECKED_IN: "already_redeemed",
    Reason.NOT_INSIDE: "not_inside",
    Reason.LIST_CLOSED: "blocked",
}

NOT_VALID = {"ok": False, "status": OnlineStatus.NOT_VALID.value, "reason": Reason.INVALID.value}


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


def line_view(line: HeldLine) -> dict[str, Any]:
    """One order line of a hold or a claim."""
    return {
        "tierId": line.tier.id,
        "title": line.tier.title,
        "quantity": line.quantity,
        "unitAmount": line.tier.unit_amount,
        "currency": line.tier.currency,
    }


def hold_checkout_view(settings: Settings, result: HoldResult) -> dict[str, Any]:
    """``createTicketHold``'s answer: the hold and where its buyer pays."""
    hold: Hold = result.hold
    return {
        "holdId": hold.id,
        "token": hold.token,
        "url": checkout_url(settings, hold.token),
        "expiresAt": format_datetime(hold.expires_ms),
        "amountCents": hold.amount,
        "currency": hold.currency,
        "environment": hold.environment,
        **price_view(hold.subtotal_amount, hold.discount_amount, hold.buyer_fee_amount, result.offer),
        "items": [line_view(line) for line in result.lines],
    }


def hold_status_view(hold: Hold, now_ms: int) -> dict[str, Any]:
    """``releaseTicketHold``'s answer."""
    return {"hold": {"id": hold.id, "status": effective_status(hold, now_ms)}}


def preview_view(order: Priced, tier_id: str) -> dict[str, Any]:
    """``previewTicketOrder``'s answer: the order's price, in its parts."""
    quote = order.quote
    return {
        **price_view(quote.subtotal, quote.discount, quote.buyer_fee, order.offer),
        "totalAmount": quote.total,
        "currency": order.tiers[tier_id].currency,
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
            "scanUrl": pass_page_url(public_url, item) if active else None,
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


def ticket_page_view(items: list[TicketInContext], cursor: str | None, public_url: str) -> dict[str, Any]:
    """A page of tickets (``listBuyerTickets``, ``listOrganizerTickets``); no cursor on the last."""
    out: dict[str, Any] = {"tickets": [ticket_view(item, public_url) for item in items]}
    return {**out, "cursor": cursor} if cursor else out


def claim_view(public_url: str, claim: Claim) -> dict[str, Any]:
    """``claimFreeTicket``'s answer: the claim, its order lines and the tickets issued."""
    hold = claim.held.hold
    return {
        "claimId": claim.claim_id,
        "holdId": hold.id,
        "environment": hold.environment,
        "items": [line_view(line) for line in claim.held.lines],
        "tickets": [ticket_view(item, public_url) for item in claim.tickets],
    }


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


def ticket_summary(ticket: Ticket, event: Event) -> dict[str, Any]:
    """``tickets.atmosphere.defs#issuedTicket`` — what a door may show; no pass, no payment."""
    return compact(
        {
            "id": ticket.id,
            "ticketId": ticket.id,
            "tierId": ticket.tier_id,
            "eventId": ticket.event_id,
            "eventUri": event.uri,
            "status": ticket.status,
            "ticketNumber": ticket.ticket_number,
            "attendeeName": ticket.attendee_name,
            "generation": ticket.generation,
            "createdAt": format_datetime(ticket.created_ms),
            "updatedAt": format_datetime(ticket.updated_ms),
        }
    )


def _shown_ticket(outcome: Outcome) -> dict[str, Any]:
    """The ticket's summary, when the scan shows it: the evaluation leaves the ticket out of a scan
    whose pass is not genuine or whose ticket the caller may not see."""
    event, ticket = outcome.facts.event, outcome.ticket
    return {} if event is None or ticket is None else {"ticket": ticket_summary(ticket, event)}


def verification_view(verification: Verification) -> dict[str, Any]:
    """``verifyTicket``'s answer."""
    outcome = verification.outcome
    decision, event, tier = outcome.decision, outcome.facts.event, verification.tier
    result: dict[str, Any] = {
        "valid": decision.verdict is Verdict.ADMIT,
        "detail": decision.reason.value,
        **_shown_ticket(outcome),
    }
    if decision.reason is not Reason.OK:
        result["reason"] = PUBLISHED_REASONS[decision.reason]
    if outcome.checklist is not None:
        result["checkInListId"] = outcome.checklist.id
    if event is not None and tier is not None:
        result["event"] = event_summary(event)
        result["tier"] = tier_summary(tier)
        result["presentation"] = presentation_view(event, tier)
    return result


def not_valid_view() -> dict[str, Any]:
    """``checkInTicket``'s answer to a pass that is not genuine or not the caller's to see."""
    return dict(NOT_VALID)


def check_in_view(direction: Direction, outcome: Outcome) -> dict[str, Any]:
    """``checkInTicket``'s answer."""
    if outcome.checklist is None:
        return not_valid_view()
    answer: dict[str, Any] = {
        "ok": outcome.decision.admitted,
        "status": online_status(outcome.decision, direction).value,
        "reason": outcome.decision.reason.value,
        "checkInListId": outcome.checklist.id,
        "direction": direction.value,
        **_shown_ticket(outcome),
    }
    if outcome.record is not None:
        answer["checkInId"] = outcome.record.id
        if outcome.decision.admitted:
            answer["checkedInAt"] = format_datetime(outcome.record.server_ms)
    first = outcome.decision.first_entry
    if first is not None:
        answer["previous"] = compact(
            {
                "checkedInAt": format_datetime(first.at_ms),
                "checkInListId": outcome.checklist.id,
                "gate": first.gate,
                "deviceId": first.device_id,
            }
        )
    return answer


def list_view(facts: ListFacts) -> dict[str, Any]:
    """``tickets.atmosphere.defs#checkInListView``."""
    checklist, counts = facts.checklist, facts.counts
    return compact(
        {
            "id": checklist.id,
            "eventId": checklist.event_id,
            "name": checklist.name,
            "description": checklist.description,
            "status": checklist.status,
            "isDefault": checklist.is_default,
            "tierIds": checklist.tier_ids,
            "allowMultipleEntries": checklist.allow_multiple_entries,
            "allowReentry": checklist.allow_reentry,
            "validFrom": format_optional_datetime(checklist.valid_from_ms),
            "validUntil": format_optional_datetime(checklist.valid_until_ms),
            "gates": checklist.gates,
            "keyIds": facts.key_ids,
            "counts": {
                "checkedIn": counts.checked_in,
                "inside": counts.inside,
                "admissible": counts.admissible,
                "scans": counts.scans,
                "refused": counts.refused,
            },
            "createdAt": format_datetime(checklist.created_ms),
            "updatedAt": format_datetime(checklist.updated_ms),
        }
    )


def enrollment_view(enrolled: Enrolled, now_ms: int) -> dict[str, Any]:
    """``enrollDevice``'s answer: the desk's credential and its lists."""
    device = enrolled.credential.device
    return {
        "deviceId": device.id,
        "credential": enrolled.credential.credential,
        "environment": device.environment,
        "eventId": device.event_id,
        "checkInLists": [{"id": c.id, "name": c.name} for c in enrolled.lists],
        "serverTimeMs": now_ms,
    }


def upload_view(
    malformed: Sequence[tuple[dict[str, Any], RecordFormatError]],
    records: Sequence[Record],
    statuses: Sequence[str | None],
    now_ms: int,
) -> dict[str, Any]:
    """``uploadCheckIns``' answer: one result per record, naming its key; the records that could not
    be read first. A status of None: the record names no ticket of this service."""
    results: list[dict[str, Any]] = [
        {"id": str(raw.get("id", ""))[:64], "status": "rejected", "error": str(exc)} for raw, exc in malformed
    ]
    for record, status in zip(records, statuses, strict=True):
        result: dict[str, Any] = {
            "deviceId": record.device_id,
            "id": record.record_id,
            "status": "rejected" if status is None else status,
        }
        if status is None:
            result["error"] = "the record names no ticket of this service"
        elif status == "rejected":
            result["error"] = f"check-in list {record.list_id} is not this device's"
        results.append(result)
    return {"results": results, "serverTimeMs": now_ms}


def pulled_view(pulled: Pulled, now_ms: int) -> dict[str, Any]:
    """``pullCheckIns``' answer: each record naming its ticket by reference."""
    return {
        "records": [record_of(r).with_ticket_ref().to_wire() for r in pulled.rows],
        "cursor": str(pulled.cursor),
        "more": pulled.more,
        "serverTimeMs": now_ms,
    }


def found_view(found: Found) -> dict[str, Any]:
    """``searchTickets``' answer: no match carries a pass."""
    return {
        "tickets": [
            compact(
                {
                    "ticketId": t.id,
                    "ticketNumber": t.ticket_number,
                    "attendeeName": t.attendee_name,
                    "tierTitle": found.tier_titles.get(t.tier_id),
                    "status": t.status,
                }
            )
            for t in found.tickets
        ]
    }


def payment_status_view(token: str, found: Checkout, app_did: str) -> dict[str, Any]:
    """``network.attested.payment.status`` as the dev payments answer it."""
    answer: dict[str, Any] = {"token": token, "status": found.status}
    payment, hold = found.payment, found.hold
    if payment is not None:
        answer["payment"] = compact(
            {
                "id": payment.payment_id,
                "amount": payment.amount,
                "currency": payment.currency,
                "status": payment.status,
                "paymentType": "ticket",
                "payerDid": hold.buyer_did,
                "recipientDid": found.recipient_did,
                "appDid": app_did,
                "createdAt": format_datetime(payment.created_ms),
            }
        )
    return answer


def recipient_approval_view(
    approval_id: str, dashboard_url: str, payment_types: list[str], fee_share_bps: int
) -> dict[str, Any]:
    """``money.atmosphere.app.requestRecipientApproval`` as the dev payments answer it: approved at
    once (a real broker asks the organizer)."""
    return {
        "id": approval_id,
        "status": "approved",
        "dashboardUrl": dashboard_url,
        "onboardingUrl": dashboard_url,
        "paymentTypes": payment_types,
        "feeShareBps": fee_share_bps,
        "needsPaymentSetup": False,
    }


def app_config_view(app: App) -> dict[str, Any]:
    """``money.atmosphere.app.getConfig``: the app's registration, without its webhook secret."""
    configured = app.webhook_url is not None if app.delivery == "webhook" else True
    return {
        "appDid": app.did,
        "environment": app.environment,
        "status": app.status,
        "webhook": compact(
            {
                "configured": configured,
                "url": app.webhook_url if app.delivery == "webhook" else None,
                "paused": False,
                "delivery": app.delivery,
            }
        ),
        "appConfig": {
            "ticketFee": {"bps": app.fee_bps, "flatAmount": app.fee_flat, "passToBuyer": app.fee_to_buyer},
            "modules": {"tickets": app.status == "active"},
        },
    }


def device_view(device: Device) -> dict[str, Any]:
    return compact(
        {
            "deviceId": device.id,
            "name": device.name,
            "status": device.status,
            "checkInListIds": list(device.list_ids),
            "createdAt": format_datetime(device.created_ms),
            "enrolledAt": format_optional_datetime(device.enrolled_ms),
            "lastSeenAt": format_optional_datetime(device.last_seen_ms),
            "revokedAt": format_optional_datetime(device.revoked_ms),
        }
    )


def public_config_view(found: list[PublicRecord], cursor: str | None) -> dict[str, Any]:
    """``listPublicConfig``'s answer: the organizer's published records; no cursor on the last page."""
    records = [
        {
            "uri": str(RecordUri(item.record.repo, item.record.collection, item.record.rkey)),
            "cid": item.record.cid,
            "organizer": item.record.repo,
            "collection": item.record.collection,
            "rkey": item.record.rkey,
            "archived": False,
            "event": compact({"uri": item.event.uri, "cid": item.event.cid}),
        }
        for item in found
    ]
    return {"records": records, "cursor": cursor} if cursor else {"records": records}


# --- the organizer methods (and the console, which renders the same answers) ------------------


def summary_view(summary: Summary) -> dict[str, Any]:
    """``getEventSummary``'s answer."""
    event = summary.event
    return {
        "eventId": event.id,
        "title": event.title,
        "tiers": [
            {
                "tierId": t.tier.id,
                "title": t.tier.title,
                "currency": t.tier.currency,
                "quantityTotal": t.tier.quantity_total,
                "sold": t.tier.sold,
                "held": t.held,
                "available": t.available,
                "gross": t.money.gross,
                "discounts": t.money.discounts,
                "fees": t.money.fees,
                "refunds": t.money.refunds,
                "net": t.money.net,
            }
            for t in summary.tiers
        ],
        "checkInLists": [
            {
                "checkInListId": door.checklist.id,
                "name": door.checklist.name,
                "checkedIn": door.counts.checked_in,
                "inside": door.counts.inside,
                "refused": door.counts.refused,
                "admissible": door.counts.admissible,
                "byGate": [{"name": name, "admitted": n} for name, n in door.by_gate],
                "byDevice": [{"name": name, "admitted": n} for name, n in door.by_device],
            }
            for door in summary.lists
        ],
        "openConflicts": summary.open_conflicts,
        "paymentsNeedingAttention": summary.payments_needing_attention,
        "asOf": format_datetime(summary.as_of_ms),
    }


def conflict_history_view(history: ConflictHistory) -> dict[str, Any]:
    """A conflict with its status and every resolution (``listConflicts``, ``resolveConflict``)."""
    return {
        **conflict_view(history.conflict),
        "status": "resolved" if history.resolved else "open",
        "resolutions": [
            {
                "outcome": r.outcome,
                "reason": r.reason,
                "actor": r.actor,
                "resolvedAt": format_datetime(r.at_ms),
            }
            for r in history.resolutions
        ],
    }


def payment_issue_view(payment: Payment) -> dict[str, Any]:
    """A payment needing attention (``listPaymentIssues``)."""
    return compact(
        {
            "paymentId": payment.payment_id,
            "holdId": payment.hold_id,
            "status": payment.status,
            "amount": payment.amount,
            "refundedAmount": payment.refunded_amount,
            "currency": payment.currency,
            "reason": payment.reason,
            "updatedAt": format_datetime(payment.updated_ms),
        }
    )


def delivery_view(message: OutboxMessage) -> dict[str, Any]:
    """A lifecycle event's delivery to the event's app (``listWebhookDeliveries``)."""
    return compact(
        {
            "deliveryId": message.delivery_id,
            "type": message.event_type,
            "state": message.state,
            "attempts": message.attempts,
            "lastStatus": message.last_status,
            "lastError": message.last_error,
            "createdAt": format_datetime(message.created_ms),
            "deliveredAt": format_optional_datetime(message.delivered_ms),
        }
    )


def ticket_history_view(history: TicketHistory) -> dict[str, Any]:
    """``getTicketHistory``'s answer."""
    ticket = history.ticket
    return {
        "ticketId": ticket.id,
        "ticketNumber": ticket.ticket_number,
        "status": ticket.status,
        "changes": [
            compact(
                {
                    "action": c.action,
                    "status": c.status,
                    "generation": c.generation,
                    "actor": c.actor,
                    "reason": c.reason,
                    "at": format_datetime(c.at_ms),
                }
            )
            for c in history.changes
        ],
        "checkIns": [
            compact(
                {
                    "checkInListId": s.list_id,
                    "deviceId": s.device_id,
                    "direction": s.direction,
                    "decision": s.decision,
                    "reason": s.reason,
                    "gate": s.gate,
                    "at": format_datetime(s.server_ms),
                }
            )
            for s in history.scans
        ],
        "deliveries": [delivery_view(m) for m in history.sent],
    }
