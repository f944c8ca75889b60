"""Pure inventory rules: counters, availability, whether a tier is on sale and to whom it is shown,
sale windows, per-order limits and how far a capacity may shrink."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from server.errors import CapacityBelowCommitted, InvalidRequest

EVENT_STATUSES = ("active", "paused", "archived")
TIER_STATUSES = ("active", "paused", "archived")
GROUP_STATUSES = ("active", "archived")
TIER_VISIBILITIES = ("public", "unlisted", "hidden")
# A tier created without a per-order limit sells at most this many tickets to one order.
DEFAULT_MAX_PER_ORDER = 10


@dataclass(frozen=True, slots=True)
class Pool:
    """Counters of one tier or capacity group. ``held`` counts only holds that have not expired."""

    capacity: int
    sold: int
    held: int

    @property
    def committed(self) -> int:
        return self.sold + self.held

    @property
    def available(self) -> int:
        return max(0, self.capacity - self.committed)


def tier_available(tier: Pool, group: Pool) -> int:
    """A tier can sell no more than its own quantity nor what its shared group has left."""
    return min(tier.available, group.available)


class SaleState(StrEnum):
    AVAILABLE = "available"
    SOLD_OUT = "sold-out"
    NOT_ON_SALE = "not-on-sale"
    UNAVAILABLE = "unavailable"
    HIDDEN = "hidden"


@dataclass(frozen=True, slots=True)
class SaleFacts:
    event_status: str
    tier_status: str
    group_status: str
    sale_starts_ms: int | None
    sale_ends_ms: int | None
    visibility: str = "public"
    # An access code of the order opens this tier: hidden or not, and before its sales open.
    unlocked: bool = False


def sale_state(facts: SaleFacts, available: int, now_ms: int) -> SaleState:
    """Why (or whether) a tier can be bought right now. The sale window is ``[starts, ends)``; an
    unlocking code lifts the hiding and the start of the window, never the end."""
    if facts.event_status != "active" or facts.tier_status != "active" or facts.group_status != "active":
        return SaleState.UNAVAILABLE
    if facts.visibility == "hidden" and not facts.unlocked:
        return SaleState.HIDDEN
    if facts.sale_starts_ms is not None and now_ms < facts.sale_starts_ms and not facts.unlocked:
        return SaleState.NOT_ON_SALE
    if facts.sale_ends_ms is not None and now_ms >= facts.sale_ends_ms:
        return SaleState.NOT_ON_SALE
    if available <= 0:
        return SaleState.SOLD_OUT
    return SaleState.AVAILABLE


def check_status(value: str | None, allowed: tuple[str, ...], field: str) -> str | None:
    """Statuses are open ``knownValues`` on the wire but a closed set here."""
    if value is not None and value not in allowed:
        raise InvalidRequest(f"{field} must be one of {', '.join(allowed)}")
    return value


def is_listed(visibility: str, unlocked: bool) -> bool:
    """Buyers see public tiers, and the tiers an access code of their request opens."""
    return visibility == "public" or unlocked


def order_limit(max_per_order: int | None) -> int:
    """A new tier's per-order limit: the one given, else the default."""
    return max_per_order or DEFAULT_MAX_PER_ORDER


def check_sale_window(starts_ms: int | None, ends_ms: int | None) -> None:
    """A sale window that has both ends ends after it starts."""
    if starts_ms is not None and ends_ms is not None and ends_ms <= starts_ms:
        raise InvalidRequest("saleEndsAt must be after saleStartsAt")


def check_not_below_committed(new_total: int, committed: int, subject: str, measure: str) -> None:
    """A capacity (``measure`` of ``subject``) never goes below the places sold or held in it."""
    if new_total < committed:
        raise CapacityBelowCommitted(
            f"{subject} has {committed} places sold or held; {measure} cannot go below that"
        )
