"""The pricing rules, against exact rational arithmetic: every amount a non-negative integer, the
total the sum of its parts, and each rounding the documented half-up rounding of the exact value."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from server.domain.offers.pricing import Fees, Line, Quote, Terms, price, round_half_up

TIERS = ("tier_a", "tier_b", "tier_c")

lines = st.lists(
    st.builds(
        Line,
        tier_id=st.sampled_from(TIERS),
        quantity=st.integers(1, 50),
        unit_amount=st.one_of(st.just(0), st.integers(1, 2_000_000)),
    ),
    min_size=1,
    max_size=5,
    unique_by=lambda line: line.tier_id,
)
scopes = st.one_of(st.none(), st.frozensets(st.sampled_from(TIERS), min_size=1))
offers = st.one_of(
    st.none(),
    st.builds(Terms, percent=st.integers(0, 100), tier_ids=scopes),
    st.builds(Terms, amount=st.integers(0, 3_000_000), tier_ids=scopes),
    st.builds(Terms, tier_ids=scopes),  # tracks or unlocks, no discount
)
fees = st.builds(Fees, bps=st.integers(0, 10_000), flat=st.integers(0, 10_000), to_buyer=st.booleans())


def nearest_half_up(value: Fraction) -> int:
    """The integer nearest to ``value``, ties upwards, from exact arithmetic."""
    floor = value.numerator // value.denominator
    return floor + 1 if value - floor >= Fraction(1, 2) else floor


@given(st.integers(0, 10**15), st.integers(1, 10**6))
def test_round_half_up_is_the_nearest_integer_ties_upwards(numerator: int, denominator: int) -> None:
    assert round_half_up(numerator, denominator) == nearest_half_up(Fraction(numerator, denominator))


@given(lines, offers, fees)
def test_a_quote_follows_the_rules_exactly(order: list[Line], offer: Terms | None, fee: Fees) -> None:
    quote = price(order, offer, fee)
    amounts = (quote.subtotal, quote.discount, quote.app_fee, quote.buyer_fee, quote.total)
    assert all(isinstance(a, int) and a >= 0 for a in amounts), quote
    assert quote.subtotal == sum(line.quantity * line.unit_amount for line in order)
    scoped = [line for line in order if offer is not None and offer.covers(line.tier_id)]
    assert quote.offer_places == sum(line.quantity for line in scoped)
    assert quote.discount == expected_discount(scoped, offer)
    assert quote.discount <= sum(line.quantity * line.unit_amount for line in scoped)
    net = quote.subtotal - quote.discount
    tickets = sum(line.quantity for line in order)
    exact_fee = nearest_half_up(Fraction(net * fee.bps, 10_000)) + fee.flat * tickets
    assert quote.app_fee == (exact_fee if net > 0 else 0)
    assert quote.buyer_fee == (quote.app_fee if fee.to_buyer else 0)
    assert quote.total == net + quote.buyer_fee


def expected_discount(scoped: list[Line], offer: Terms | None) -> int:
    if offer is None:
        return 0
    if offer.percent is not None:
        base = sum(line.quantity * line.unit_amount for line in scoped)
        return nearest_half_up(Fraction(base * offer.percent, 100))
    if offer.amount is not None:
        return sum(line.quantity * min(offer.amount, line.unit_amount) for line in scoped)
    return 0


@given(lines, fees)
def test_without_an_offer_nothing_is_taken_off(order: list[Line], fee: Fees) -> None:
    quote: Quote = price(order, None, fee)
    assert (quote.discount, quote.offer_places) == (0, 0)


def test_worked_examples() -> None:
    """The examples of docs/offers.md."""
    ga = Line("tier_a", 3, 2_500)
    assert price([ga], Terms(percent=15), Fees(bps=250, flat=30, to_buyer=True)) == Quote(
        subtotal=7_500, discount=1_125, app_fee=249, buyer_fee=249, total=6_624, offer_places=3
    )
    assert price([ga], Terms(amount=3_000), Fees(bps=250, flat=30, to_buyer=True)) == Quote(
        subtotal=7_500, discount=7_500, app_fee=0, buyer_fee=0, total=0, offer_places=3
    )
    assert price([Line("tier_a", 1, 999)], Terms(percent=50), Fees(bps=0)) == Quote(
        subtotal=999, discount=500, app_fee=0, buyer_fee=0, total=499, offer_places=1
    )
