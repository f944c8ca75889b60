"""Pure hold rules: what a hold asks for and, when it cannot have it, every shortage at once; which
tiers refuse an order outright (not on sale, over the per-order limit); a hold's status as time
passes; where its checkout may send the buyer back to."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from server.domain.catalog.rules import Pool, SaleState
from server.errors import (
    InsufficientAvailability,
    InvalidRequest,
    OrderLimitExceeded,
    SoldOut,
    TicketHoldUnavailable,
    TierSoldOut,
)


@dataclass(frozen=True, slots=True)
class Shortage:
    """``subject`` is ``tier`` or ``capacityGroup``; ``available`` is what is left right now."""

    subject: str
    subject_id: str
    requested: int
    available: int

    def describe(self) -> str:
        noun = "tier" if self.subject == "tier" else "capacity group"
        return f"{noun} {self.subject_id}: requested {self.requested}, available {self.available}"

    def as_dict(self) -> dict[str, object]:
        return {
            "subject": self.subject,
            "id": self.subject_id,
            "requested": self.requested,
            "available": self.available,
        }


def merge_items(items: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Quantities per tier, in first-seen order; repeated tiers add up."""
    merged: dict[str, int] = {}
    for tier_id, quantity in items:
        if quantity < 1:
            raise InvalidRequest(f"quantity for tier {tier_id} must be at least 1")
        merged[tier_id] = merged.get(tier_id, 0) + quantity
    return merged


def find_shortages(
    requested: Mapping[str, int],
    tier_pools: Mapping[str, Pool],
    tier_groups: Mapping[str, str],
    group_pools: Mapping[str, Pool],
) -> list[Shortage]:
    """Every tier and every group that cannot cover what the hold asks of it."""
    shortages = [
        Shortage("tier", tier_id, quantity, tier_pools[tier_id].available)
        for tier_id, quantity in requested.items()
        if quantity > tier_pools[tier_id].available
    ]
    per_group: dict[str, int] = {}
    for tier_id, quantity in requested.items():
        group_id = tier_groups[tier_id]
        per_group[group_id] = per_group.get(group_id, 0) + quantity
    shortages.extend(
        Shortage("capacityGroup", group_id, quantity, group_pools[group_id].available)
        for group_id, quantity in sorted(per_group.items())
        if quantity > group_pools[group_id].available
    )
    return shortages


def shortage_error(shortages: list[Shortage]) -> InsufficientAvailability:
    """``SoldOut`` when a capacity group asked of is exhausted, ``TierSoldOut`` when only tiers are,
    ``InsufficientAvailability`` when something is left but not enough; the message and the
    ``shortages`` list name every shortage."""
    details = "; ".join(s.describe() for s in shortages)
    listed = [s.as_dict() for s in shortages]
    if all(s.available == 0 for s in shortages):
        if any(s.subject == "capacityGroup" for s in shortages):
            return SoldOut(f"sold out ({details})", listed)
        return TierSoldOut(f"tier sold out ({details})", listed)
    return InsufficientAvailability(f"not enough places left ({details})", listed)


def check_on_sale(states: Mapping[str, SaleState]) -> None:
    """Every tier asked for is on sale now (a sold-out one is a shortage, told with the others)."""
    unavailable = [
        f"{tier_id} ({state})"
        for tier_id, state in states.items()
        if state not in (SaleState.AVAILABLE, SaleState.SOLD_OUT)
    ]
    if unavailable:
        raise TicketHoldUnavailable(f"not on sale now: {', '.join(unavailable)}")


def check_order_limits(requested: Mapping[str, int], limits: Mapping[str, int]) -> None:
    """No tier is asked for more than its per-order limit; the refusal names every tier over it."""
    over_limit = [
        f"{tier_id} (at most {limits[tier_id]})"
        for tier_id, quantity in requested.items()
        if quantity > limits[tier_id]
    ]
    if over_limit:
        raise OrderLimitExceeded(f"more than the per-order limit of {', '.join(over_limit)}")


def hold_status(status: str, expires_ms: int, now_ms: int) -> str:
    """A ``held`` hold past its expiry is expired, whether or not the sweeper has marked it yet."""
    if status == "held" and expires_ms <= now_ms:
        return "expired"
    return status


def released_status(status: str, expires_ms: int, now_ms: int) -> str:
    """What releasing a ``held`` hold ends it as: ``released``, or ``expired`` once it has lapsed."""
    final = hold_status(status, expires_ms, now_ms)
    return "released" if final == "held" else final


MAX_URL_CHARS = 2048


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def redirect_problem(url: str, environment: str) -> str | None:
    """Why the checkout may not send the buyer to ``url`` (``returnUrl``, ``cancelUrl``), or None: it
    must be an absolute ``https`` URL of printable ASCII with a host and no user name; ``http`` only
    to a loopback host, in the ``test`` environment."""
    if len(url) > MAX_URL_CHARS or not all("!" <= c <= "~" for c in url) or "\\" in url:
        return f"must be a URL of at most {MAX_URL_CHARS} printable ASCII characters"
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port
    except ValueError:
        return "is not a valid URL"
    if not host or parts.username is not None or parts.password is not None:
        return "must be an absolute URL with a host and no user name"
    if parts.scheme == "https" or (parts.scheme == "http" and environment == "test" and _loopback(host)):
        return None
    return "must be an https URL (http only to a loopback host, in the test environment)"


def check_redirect(url: str | None, field: str, environment: str) -> str | None:
    """``url`` if the checkout may send the buyer there, else ``InvalidRequest`` naming ``field``."""
    problem = None if url is None else redirect_problem(url, environment)
    if problem is not None:
        raise InvalidRequest(f"{field} {problem}")
    return url
