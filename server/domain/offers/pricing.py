"""Pure pricing: what an order costs, in integer minor units of its currency.

One function prices both a preview and a hold, so the quote a buyer sees is exactly what the hold
charges. The rules, in order:

1. ``subtotal`` = the sum of quantity * unit amount.
2. The offer's ``discount`` applies to the lines in its scope (every line when it has none):
   a percentage is taken of the scoped subtotal and rounded half up to the minor unit; a fixed
   amount comes off each scoped ticket, never below that ticket's price.
3. ``app fee`` = the app's basis points of (subtotal - discount), rounded half up, plus its flat
   amount per ticket; a free order (nothing left to pay) carries no fee.
4. The buyer pays the fee on top when the app passes it on (``buyer fee``); otherwise the organizer
   bears it out of the proceeds and the buyer fee is zero.
5. ``total`` = subtotal - discount + buyer fee.

"Half up" means a half minor unit rounds away from zero: ``round_half_up(n, d)`` is the integer
nearest to n / d, ties upwards, for n ≥ 0 and d > 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

BASIS_POINTS = 10_000
PERCENT = 100


def round_half_up(numerator: int, denominator: int) -> int:
    """The integer nearest to ``numerator / denominator``, ties upwards (both non-negative)."""
    if numerator < 0 or denominator <= 0:
        raise ValueError("round_half_up takes a non-negative numerator and a positive denominator")
    return (2 * numerator + denominator) // (2 * denominator)


@dataclass(frozen=True, slots=True)
class Line:
    tier_id: str
    quantity: int
    unit_amount: int


@dataclass(frozen=True, slots=True)
class Terms:
    """What an offer does to a price: ``percent`` (0 to 100) or ``amount`` (minor units off each
    ticket) or neither (an offer that only unlocks or tracks), on the tiers of ``tier_ids``
    (``None``: every tier)."""

    percent: int | None = None
    amount: int | None = None
    tier_ids: frozenset[str] | None = None

    def covers(self, tier_id: str) -> bool:
        return self.tier_ids is None or tier_id in self.tier_ids


@dataclass(frozen=True, slots=True)
class Fees:
    """An app's fee: ``bps`` basis points of what is paid for the tickets, plus ``flat`` per ticket;
    ``to_buyer`` adds it to the buyer's total instead of taking it from the organizer's proceeds."""

    bps: int = 0
    flat: int = 0
    to_buyer: bool = False


NO_FEES = Fees()


@dataclass(frozen=True, slots=True)
class Quote:
    subtotal: int
    discount: int
    app_fee: int
    buyer_fee: int
    total: int
    # Tickets the offer applies to: what the order takes from the offer's redemption cap.
    offer_places: int


def price(lines: Sequence[Line], offer: Terms | None, fees: Fees) -> Quote:
    """The quote for ``lines`` (see the module docstring for the rules)."""
    if any(line.quantity < 1 or line.unit_amount < 0 for line in lines):
        raise ValueError("an order line has a positive quantity and a non-negative unit amount")
    subtotal = sum(line.quantity * line.unit_amount for line in lines)
    scoped = [line for line in lines if offer is not None and offer.covers(line.tier_id)]
    reduction = 0
    if offer is not None and offer.percent is not None:
        scoped_subtotal = sum(line.quantity * line.unit_amount for line in scoped)
        reduction = round_half_up(scoped_subtotal * offer.percent, PERCENT)
    elif offer is not None and offer.amount is not None:
        reduction = sum(line.quantity * min(offer.amount, line.unit_amount) for line in scoped)
    net = subtotal - reduction
    tickets = sum(line.quantity for line in lines)
    app_fee = round_half_up(net * fees.bps, BASIS_POINTS) + fees.flat * tickets if net > 0 else 0
    buyer_fee = app_fee if fees.to_buyer else 0
    return Quote(
        subtotal=subtotal,
        discount=reduction,
        app_fee=app_fee,
        buyer_fee=buyer_fee,
        total=net + buyer_fee,
        offer_places=sum(line.quantity for line in scoped),
    )
