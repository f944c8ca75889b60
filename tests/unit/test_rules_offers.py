"""The offers' pure rules: codes, what every offer keeps, its window, the tiers it opens, the room an
order finds under its caps, who a per-buyer cap counts, and what an order costs with it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.offers.pricing import Fees, Line, Terms, price, round_half_up
from server.domain.offers.rules import (
    buyer_key,
    check_applies,
    check_buyer_room,
    check_cap,
    check_new_offer,
    check_offer,
    check_room,
    code_key,
    in_window,
    remaining,
    unlocked_tiers,
)
from server.errors import CapacityBelowCommitted, InvalidOfferCode, InvalidRequest, OfferCodeExhausted


def test_codes_match_whatever_their_case_and_surrounding_blanks() -> None:
    assert code_key("  Early-Bird ") == code_key("EARLY-BIRD") == "EARLY-BIRD"


def test_a_new_offer_has_a_known_kind_and_a_well_formed_code() -> None:
    check_new_offer("presale", " VIP_2026 ")
    with pytest.raises(InvalidRequest, match="kind must be one of"):
        check_new_offer("giveaway", "VIP2026")
    for code in ("ab", "-VIP", "_VIP", "VIP 2026", "a" * 101, "VIPé"):
        with pytest.raises(InvalidRequest, match="a code is 3 to 100"):
            check_new_offer("discount", code)


@pytest.mark.parametrize(
    ("kind", "percent", "amount", "currency", "starts", "ends", "problem"),
    [
        ("discount", 10, 500, "eur", None, None, "not both"),
        ("discount", None, 500, None, None, None, "needs the currency"),
        ("presale", None, None, None, 2_000, 2_000, "endsAt must be after startsAt"),
        ("discount", None, None, None, None, None, "needs discountPercent or discountAmount"),
    ],
)
def test_every_offer_keeps_its_rules(
    kind: str,
    percent: int | None,
    amount: int | None,
    currency: str | None,
    starts: int | None,
    ends: int | None,
    problem: str,
) -> None:
    with pytest.raises(InvalidRequest, match=problem):
        check_offer(kind, percent, amount, currency, starts, ends)


def test_offers_that_keep_their_rules_pass() -> None:
    check_offer("discount", 10, None, None, 1_000, 2_000)
    check_offer("discount", None, 500, "eur", None, None)
    check_offer("affiliate", None, None, None, None, None)


def test_a_code_works_inside_its_half_open_window() -> None:
    assert in_window(None, None, 0)
    assert not in_window(1_000, 2_000, 999)
    assert in_window(1_000, 2_000, 1_000) and in_window(1_000, 2_000, 1_999)
    assert not in_window(1_000, 2_000, 2_000)


def test_only_unlocking_kinds_open_tiers_and_only_in_their_scope() -> None:
    tiers = ["t1", "t2", "t3"]
    scoped = Terms(tier_ids=frozenset({"t2"}))
    assert unlocked_tiers("presale", Terms(), tiers) == frozenset(tiers)
    assert unlocked_tiers("access-window", scoped, tiers) == frozenset({"t2"})
    assert unlocked_tiers("discount", Terms(percent=10), tiers) == frozenset()
    assert unlocked_tiers(None, Terms(), tiers) == frozenset()


def test_a_code_applies_to_an_order_with_its_tiers_in_its_currency() -> None:
    check_applies(2, None, None, "eur")
    check_applies(2, 500, "eur", "eur")
    for places, amount, currency in ((0, None, None), (2, 500, "usd")):
        with pytest.raises(InvalidOfferCode):
            check_applies(places, amount, currency, "eur")


@given(
    st.one_of(st.none(), st.integers(0, 100)), st.integers(0, 100), st.integers(0, 100), st.integers(1, 50)
)
def test_an_order_finds_room_exactly_when_the_cap_covers_it(
    cap: int | None, redeemed: int, reserved: int, places: int
) -> None:
    left = remaining(cap, redeemed, reserved)
    fits = cap is None or redeemed + reserved + places <= cap
    if cap is None:
        assert left is None
    else:
        assert left is not None and 0 <= left <= cap
    if fits:
        check_room(places, left)
    else:
        with pytest.raises(OfferCodeExhausted):
            check_room(places, left)


def test_a_buyer_takes_no_more_than_the_per_buyer_cap() -> None:
    check_buyer_room(2, 1, 3)
    with pytest.raises(OfferCodeExhausted, match="this buyer has used this code"):
        check_buyer_room(2, 2, 3)


def test_a_cap_never_goes_below_the_redemptions_used_or_reserved() -> None:
    check_cap("offer_1", 5, 3, 2)
    with pytest.raises(CapacityBelowCommitted, match="offer offer_1 has 5 redemptions used or reserved"):
        check_cap("offer_1", 4, 3, 2)


def test_a_per_buyer_cap_counts_the_did_else_the_address_in_any_case() -> None:
    assert buyer_key("did:plc:buyer", "A@B.example") == "did:plc:buyer"
    assert (
        buyer_key(None, " Ann@Example.ORG ") == buyer_key("", "ann@example.org") == "mailto:ann@example.org"
    )
    assert buyer_key(None, None) is None


def test_half_up_rounding() -> None:
    assert [round_half_up(n, 4) for n in (1, 2, 3, 5, 6)] == [0, 1, 1, 1, 2]
    with pytest.raises(ValueError, match="non-negative numerator"):
        round_half_up(-1, 4)


orders = st.lists(
    st.builds(
        Line,
        tier_id=st.sampled_from(("a", "b")),
        quantity=st.integers(1, 20),
        unit_amount=st.integers(0, 10**6),
    ),
    min_size=1,
    max_size=3,
)
terms = st.one_of(
    st.none(),
    st.builds(Terms, percent=st.integers(0, 100)),
    st.builds(
        Terms, amount=st.integers(0, 2 * 10**6), tier_ids=st.one_of(st.none(), st.just(frozenset({"a"})))
    ),
)
fees = st.builds(Fees, bps=st.integers(0, 10_000), flat=st.integers(0, 1_000), to_buyer=st.booleans())


@given(orders, terms, fees)
def test_discounts_never_make_a_total_negative_nor_exceed_the_order(
    lines: list[Line], offer: Terms | None, fee: Fees
) -> None:
    quote = price(lines, offer, fee)
    assert 0 <= quote.discount <= quote.subtotal
    assert quote.total >= 0
    assert quote.total == quote.subtotal - quote.discount + quote.buyer_fee
    assert quote.buyer_fee in (0, quote.app_fee)
    if quote.subtotal == quote.discount:
        assert quote.app_fee == 0
