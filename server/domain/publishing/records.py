"""The public records of a ticketed event, built from its rows by pure functions.

Each builder reads only the fields the record's lexicon publishes, named here one by one: counters,
capacities, holds, tickets, buyers, check-ins, metadata, keys and secrets are never read, so they
cannot reach a record. Record keys are derived from our ids and never change, so writing a record
again replaces it instead of adding another.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from server.atproto.datetimes import format_datetime, format_optional_datetime
from server.db.models import CapacityGroup, CheckInList, Event, Offer, Tier

TICKETED_EVENT = "tickets.atmosphere.ticketedEvent"
CAPACITY_GROUP = "tickets.atmosphere.capacityGroup"
TICKET_TIER = "tickets.atmosphere.ticketTier"
CHECK_IN_LIST = "tickets.atmosphere.checkInList"
PUBLIC_OFFER = "tickets.atmosphere.publicOffer"

_SORTABLE_BASE32 = "234567abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True, slots=True)
class StrongRef:
    uri: str
    cid: str

    def as_json(self) -> dict[str, str]:
        return {"uri": self.uri, "cid": self.cid}

    @classmethod
    def stored(cls, value: dict[str, Any] | None) -> StrongRef | None:
        """A strongRef an app gave us (validated on input), reduced to its two fields: anything
        else the app sent along stays here."""
        return None if value is None else cls(str(value["uri"]), str(value["cid"]))


def _ref_json(ref: StrongRef | None) -> dict[str, str] | None:
    return None if ref is None else ref.as_json()


def record_key(our_id: str, created_ms: int) -> str:
    """A TID for the record of the row ``our_id``: its creation time in microseconds (the
    sub-millisecond part and the 10-bit clock id taken from a hash of the id), so keys sort by
    creation like our ids do and are the same every time they are derived."""
    spread = int.from_bytes(hashlib.sha256(our_id.encode()).digest()[:8], "big")
    micros = created_ms * 1000 + spread % 1000
    value = (micros << 10 | (spread >> 10) & 0x3FF) & (2**63 - 1)
    chars = []
    for _ in range(13):
        chars.append(_SORTABLE_BASE32[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def _compact(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if value is not None}


def ticketed_event_record(event: Event, event_ref: StrongRef, service_did: str) -> dict[str, Any]:
    return {
        "$type": TICKETED_EVENT,
        "event": event_ref.as_json(),
        "service": service_did,
        "createdAt": format_datetime(event.created_ms),
    }


def capacity_group_record(group: CapacityGroup, event_ref: StrongRef) -> dict[str, Any]:
    return {
        "$type": CAPACITY_GROUP,
        "event": event_ref.as_json(),
        "name": group.name,
        "visibility": "public",
        "createdAt": format_datetime(group.created_ms),
    }


def ticket_tier_record(tier: Tier, event_ref: StrongRef, group_ref: StrongRef | None) -> dict[str, Any]:
    return _compact(
        {
            "$type": TICKET_TIER,
            "event": event_ref.as_json(),
            "title": tier.title,
            "description": tier.description,
            "priceAmount": {"amount": tier.unit_amount, "currency": tier.currency},
            "productRef": _ref_json(StrongRef.stored(tier.product_ref)),
            "priceRef": _ref_json(StrongRef.stored(tier.price_ref)),
            "capacityGroup": _ref_json(group_ref),
            "saleStartsAt": format_optional_datetime(tier.sale_starts_ms),
            "saleEndsAt": format_optional_datetime(tier.sale_ends_ms),
            "maxPerOrder": tier.max_per_order,
            "visibility": tier.visibility,
            "createdAt": format_datetime(tier.created_ms),
        }
    )


def check_in_list_record(
    checklist: CheckInList, event_ref: StrongRef, tier_refs: list[StrongRef] | None
) -> dict[str, Any]:
    """``tier_refs`` None: the list admits every tier of the event."""
    return _compact(
        {
            "$type": CHECK_IN_LIST,
            "event": event_ref.as_json(),
            "name": checklist.name,
            "description": checklist.description,
            "tiers": None if tier_refs is None else [ref.as_json() for ref in tier_refs],
            "createdAt": format_datetime(checklist.created_ms),
        }
    )


def public_offer_record(
    offer: Offer, event_ref: StrongRef, tier_refs: list[StrongRef] | None
) -> dict[str, Any]:
    """A public offer as buyers may see it: never its caps, its redemptions or who used it.
    ``tier_refs`` None: the offer applies to every tier."""
    amount = offer.discount_amount
    return _compact(
        {
            "$type": PUBLIC_OFFER,
            "event": event_ref.as_json(),
            "name": offer.name,
            "kind": offer.kind,
            "description": offer.description,
            "tiers": None if tier_refs is None else [ref.as_json() for ref in tier_refs],
            "discountPercent": offer.discount_percent,
            "discountAmount": None if amount is None else {"amount": amount, "currency": offer.currency},
            "startsAt": format_optional_datetime(offer.starts_ms),
            "endsAt": format_optional_datetime(offer.ends_ms),
            "code": offer.code,
            "createdAt": format_datetime(offer.created_ms),
        }
    )
