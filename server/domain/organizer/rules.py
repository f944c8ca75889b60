"""Pure arithmetic of the organizer's summary: an order's discount and fee shared among its lines,
what a tier nets, and admitted entries counted per time bucket."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def shares(total: int, weights: Sequence[int]) -> list[int]:
    """``total`` split in proportion to ``weights`` (integers; the last share takes the rest)."""
    whole = sum(weights)
    if whole == 0:
        return [0] * len(weights)
    parts = [total * w // whole for w in weights[:-1]]
    return [*parts, total - sum(parts)]


@dataclass(slots=True)
class TierMoney:
    """A tier's money over its completed orders, in minor units of its currency."""

    gross: int = 0
    discounts: int = 0
    fees: int = 0
    refunds: int = 0

    @property
    def net(self) -> int:
        return self.gross - self.discounts - self.fees - self.refunds


@dataclass(frozen=True, slots=True)
class OrderLine:
    tier_id: str
    quantity: int
    unit_amount: int


def add_order(money: dict[str, TierMoney], lines: Sequence[OrderLine], discount: int, app_fee: int) -> None:
    """Add one completed order to ``money`` (per tier): each line's amount, and its share of the
    order's discount and app fee in proportion to the lines' amounts."""
    amounts = [line.quantity * line.unit_amount for line in lines]
    discounts, fees = shares(discount, amounts), shares(app_fee, amounts)
    for line, amount, line_discount, fee in zip(lines, amounts, discounts, fees, strict=True):
        tier = money.setdefault(line.tier_id, TierMoney())
        tier.gross += amount
        tier.discounts += line_discount
        tier.fees += fee


def entry_buckets(times_ms: Sequence[int], bucket_ms: int) -> list[tuple[int, int]]:
    """Entries per ``bucket_ms`` (each bucket's start, its count) from the bucket of the first time to
    that of the last, empty buckets included; ``times_ms`` in ascending order."""
    if not times_ms:
        return []
    first = times_ms[0] // bucket_ms
    buckets = [0] * (times_ms[-1] // bucket_ms - first + 1)
    for at in times_ms:
        buckets[at // bucket_ms - first] += 1
    return [((first + n) * bucket_ms, count) for n, count in enumerate(buckets)]
