"""Pure offer rules: how codes are written and matched, what every offer keeps, when its code works,
which tiers it opens, and how many redemptions are left for an order (what the order costs is
:mod:`server.domain.offers.pricing`)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from server.domain.offers.pricing import Terms
from server.errors import CapacityBelowCommitted, InvalidOfferCode, InvalidRequest, OfferCodeExhausted

KINDS = ("discount", "presale", "affiliate", "access-window")
# Offers of these kinds let their code's holders see and buy hidden tiers, and buy before sales open.
UNLOCKING = frozenset({"presale", "access-window"})
OFFER_STATUSES = ("active", "archived")
CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{2,99}")


def code_key(code: str) -> str:
    """How codes are matched: blanks around them and letter case do not count."""
    return code.strip().upper()


def check_new_offer(kind: str, code: str) -> None:
    """A new offer's kind is a known one and its code is well formed."""
    if kind not in KINDS:
        raise InvalidRequest(f"kind must be one of {', '.join(KINDS)}")
    if not CODE.fullmatch(code.strip()):
        raise InvalidRequest("a code is 3 to 100 letters, digits, '-' or '_', starting with no '-' or '_'")


def check_offer(
    kind: str,
    discount_percent: int | None,
    discount_amount: int | None,
    currency: str | None,
    starts_ms: int | None,
    ends_ms: int | None,
) -> None:
    """Rules every offer keeps, checked on creation and after every change."""
    if discount_percent is not None and discount_amount is not None:
        raise InvalidRequest("give discountPercent or discountAmount, not both")
    if discount_amount is not None and not currency:
        raise InvalidRequest("a discountAmount needs the currency it is in")
    if starts_ms is not None and ends_ms is not None and ends_ms <= starts_ms:
        raise InvalidRequest("endsAt must be after startsAt")
    if kind == "discount" and discount_percent is None and discount_amount is None:
        raise InvalidRequest("a discount offer needs discountPercent or discountAmount")


def in_window(starts_ms: int | None, ends_ms: int | None, now_ms: int) -> bool:
    """Whether a code works at ``now_ms``: its window is ``[starts, ends)``, open where unset."""
    return (starts_ms is None or starts_ms <= now_ms) and (ends_ms is None or now_ms < ends_ms)


def unlocked_tiers(kind: str | None, terms: Terms, tier_ids: Iterable[str]) -> frozenset[str]:
    """The tiers among ``tier_ids`` that an offer of ``kind`` (None: no offer) opens (hidden, or not
    on sale yet): those in its scope, when its kind unlocks."""
    if kind not in UNLOCKING:
        return frozenset()
    return frozenset(t for t in tier_ids if terms.covers(t))


def check_applies(
    places: int, discount_amount: int | None, offer_currency: str | None, currency: str
) -> None:
    """The order has tickets the offer is for (``places``), in the currency of a fixed discount."""
    if places == 0 or (discount_amount is not None and offer_currency != currency):
        raise InvalidOfferCode("this code cannot be used for this order")


def remaining(cap: int | None, redeemed: int, reserved: int) -> int | None:
    """Redemptions left under ``cap`` (None: no cap) once the redeemed and reserved ones are taken."""
    return None if cap is None else max(0, cap - redeemed - reserved)


def check_room(places: int, left: int | None) -> None:
    """A capped offer has ``places`` redemptions left (``left``: see :func:`remaining`)."""
    if left is not None and places > left:
        raise OfferCodeExhausted("this code has no redemptions left for this many tickets")


def check_buyer_room(places: int, used: int, max_per_buyer: int) -> None:
    """The buyer, who used ``used`` redemptions already, may take ``places`` more."""
    if used + places > max_per_buyer:
        raise OfferCodeExhausted("this buyer has used this code as often as it allows")


def check_cap(offer_id: str, cap: int, redeemed: int, reserved: int) -> None:
    """A new cap never goes below the redemptions used or reserved."""
    if cap < redeemed + reserved:
        raise CapacityBelowCommitted(
            f"offer {offer_id} has {redeemed + reserved} redemptions used or reserved; "
            "its cap cannot go below that"
        )


def buyer_key(buyer_did: str | None, customer_email: str | None) -> str | None:
    """Who a per-buyer cap counts: the buyer's DID, else their e-mail address (case-insensitive)."""
    if buyer_did:
        return buyer_did
    return f"mailto:{customer_email.strip().lower()}" if customer_email else None
