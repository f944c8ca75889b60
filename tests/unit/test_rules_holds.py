"""The holds' pure rules: what an order asks for, every shortage at once, the refusals of tiers not on
sale or over their per-order limit, a hold's status as time passes, and where a checkout may send
the buyer back to."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.catalog.rules import Pool, SaleState
from server.domain.holds.rules import (
    Shortage,
    check_on_sale,
    check_order_limits,
    check_redirect,
    find_shortages,
    hold_status,
    merge_items,
    redirect_problem,
    released_status,
    shortage_error,
)
from server.errors import (
    InsufficientAvailability,
    InvalidRequest,
    OrderLimitExceeded,
    SoldOut,
    TicketHoldUnavailable,
    TierSoldOut,
)

TIERS = ("t1", "t2", "t3")
GROUP_OF = {"t1": "g1", "t2": "g1", "t3": "g2"}
small = st.integers(0, 20)
pools = st.builds(Pool, capacity=small, sold=small, held=small)


def test_repeated_tiers_add_up_in_first_seen_order() -> None:
    merged = merge_items([("t2", 1), ("t1", 2), ("t2", 3)])
    assert merged == {"t2": 4, "t1": 2} and list(merged) == ["t2", "t1"]
    with pytest.raises(InvalidRequest, match="quantity for tier t1 must be at least 1"):
        merge_items([("t1", 0)])


@given(
    st.dictionaries(st.sampled_from(TIERS), st.integers(1, 25), min_size=1),
    st.fixed_dictionaries(dict.fromkeys(TIERS, pools)),
    st.fixed_dictionaries({"g1": pools, "g2": pools}),
)
def test_an_order_is_short_exactly_where_a_tier_or_a_group_cannot_cover_it(
    requested: dict[str, int], tier_pools: dict[str, Pool], group_pools: dict[str, Pool]
) -> None:
    shortages = find_shortages(requested, tier_pools, GROUP_OF, group_pools)
    short_tiers = {s.subject_id for s in shortages if s.subject == "tier"}
    assert short_tiers == {t for t, q in requested.items() if q > tier_pools[t].available}
    per_group: dict[str, int] = {}
    for tier_id, quantity in requested.items():
        per_group[GROUP_OF[tier_id]] = per_group.get(GROUP_OF[tier_id], 0) + quantity
    short_groups = [s for s in shortages if s.subject == "capacityGroup"]
    assert [s.subject_id for s in short_groups] == sorted(
        g for g, q in per_group.items() if q > group_pools[g].available
    )
    for shortage in shortages:
        assert shortage.requested > shortage.available >= 0


def test_the_refusal_names_every_shortage_and_says_how_short() -> None:
    gone_group = [Shortage("capacityGroup", "g1", 2, 0), Shortage("tier", "t1", 2, 0)]
    assert type(shortage_error(gone_group)) is SoldOut
    gone_tier = shortage_error([Shortage("tier", "t1", 2, 0)])
    assert type(gone_tier) is TierSoldOut
    assert gone_tier.message == "tier sold out (tier t1: requested 2, available 0)"
    some_left = shortage_error([Shortage("tier", "t1", 3, 0), Shortage("capacityGroup", "g1", 3, 1)])
    assert type(some_left) is InsufficientAvailability
    assert some_left.shortages == [
        {"subject": "tier", "id": "t1", "requested": 3, "available": 0},
        {"subject": "capacityGroup", "id": "g1", "requested": 3, "available": 1},
    ]


def test_tiers_not_on_sale_refuse_the_order_sold_out_ones_do_not() -> None:
    check_on_sale({"t1": SaleState.AVAILABLE, "t2": SaleState.SOLD_OUT})
    with pytest.raises(TicketHoldUnavailable) as refused:
        check_on_sale({"t1": SaleState.NOT_ON_SALE, "t2": SaleState.AVAILABLE, "t3": SaleState.HIDDEN})
    assert refused.value.message == "not on sale now: t1 (not-on-sale), t3 (hidden)"


def test_the_per_order_limit_names_every_tier_over_it() -> None:
    check_order_limits({"t1": 4, "t2": 1}, {"t1": 4, "t2": 1, "t3": 0})
    with pytest.raises(OrderLimitExceeded) as refused:
        check_order_limits({"t1": 5, "t2": 1, "t3": 2}, {"t1": 4, "t2": 1, "t3": 1})
    assert refused.value.message == "more than the per-order limit of t1 (at most 4), t3 (at most 1)"


def test_a_held_hold_expires_at_its_expiry_whether_swept_or_not() -> None:
    assert hold_status("held", 1_000, 999) == "held"
    assert hold_status("held", 1_000, 1_000) == "expired"
    for final in ("completed", "released", "failed", "expired"):
        assert hold_status(final, 1_000, 5_000) == final


@given(st.sampled_from(("held", "completed", "released", "failed", "expired")), st.integers(0, 10**6))
def test_time_only_ever_moves_a_hold_from_held_to_expired(status: str, expires: int) -> None:
    before, after = hold_status(status, expires, expires - 1), hold_status(status, expires, expires)
    assert before == status
    assert after == ("expired" if status == "held" else status)


def test_releasing_a_lapsed_hold_ends_it_expired() -> None:
    assert released_status("held", 1_000, 999) == "released"
    assert released_status("held", 1_000, 1_000) == "expired"


@pytest.mark.parametrize(
    ("url", "environment", "allowed"),
    [
        ("https://shop.example/done", "live", True),
        ("http://shop.example/done", "live", False),
        ("http://localhost:3000/done", "test", True),
        ("http://127.0.0.1/done", "test", True),
        ("http://localhost:3000/done", "live", False),
        ("http://shop.example/done", "test", False),
        ("https://user@shop.example/", "live", False),
        ("https:///nohost", "live", False),
        ("https://shop.example/a b", "live", False),
        ("https://shop.example/" + "a" * 2048, "live", False),
        ("javascript:alert(1)", "live", False),
    ],
)
def test_a_checkout_sends_the_buyer_only_to_https_or_local_http_in_test(
    url: str, environment: str, allowed: bool
) -> None:
    assert (redirect_problem(url, environment) is None) == allowed


def test_a_bad_redirect_is_refused_naming_its_field() -> None:
    assert check_redirect(None, "returnUrl", "live") is None
    assert check_redirect("https://shop.example/", "returnUrl", "live") == "https://shop.example/"
    with pytest.raises(InvalidRequest, match=r"^cancelUrl must be an https URL"):
        check_redirect("http://shop.example/", "cancelUrl", "live")
