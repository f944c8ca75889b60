"""The catalog's pure rules: counters and availability, a tier's sale state at a moment, sale
windows, per-order limits, how far a capacity may shrink and who sees a tier."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.catalog.rules import (
    DEFAULT_MAX_PER_ORDER,
    TIER_STATUSES,
    Pool,
    SaleFacts,
    SaleState,
    check_not_below_committed,
    check_sale_window,
    check_status,
    is_listed,
    order_limit,
    sale_state,
    tier_available,
)
from server.errors import CapacityBelowCommitted, InvalidRequest

counts = st.integers(0, 10_000)
pools = st.builds(Pool, capacity=counts, sold=counts, held=counts)
moments = st.integers(0, 10**13)
ON_SALE = SaleFacts("active", "active", "active", sale_starts_ms=1_000, sale_ends_ms=2_000)


@given(pools)
def test_a_pool_never_offers_less_than_nothing_nor_more_than_is_left(pool: Pool) -> None:
    assert pool.committed == pool.sold + pool.held
    assert 0 <= pool.available <= max(0, pool.capacity)
    assert pool.available == max(0, pool.capacity - pool.sold - pool.held)


@given(pools, pools)
def test_a_tier_sells_no_more_than_itself_nor_its_group(tier: Pool, group: Pool) -> None:
    available = tier_available(tier, group)
    assert available == min(tier.available, group.available)
    assert 0 <= available <= tier.available and available <= group.available


def test_the_sale_window_is_half_open() -> None:
    assert sale_state(ON_SALE, 5, 999) == SaleState.NOT_ON_SALE
    assert sale_state(ON_SALE, 5, 1_000) == SaleState.AVAILABLE
    assert sale_state(ON_SALE, 5, 1_999) == SaleState.AVAILABLE
    assert sale_state(ON_SALE, 5, 2_000) == SaleState.NOT_ON_SALE


def test_statuses_come_before_visibility_and_visibility_before_the_window() -> None:
    for paused in (
        SaleFacts("paused", "active", "active", None, None),
        SaleFacts("active", "archived", "active", None, None),
        SaleFacts("active", "active", "archived", None, None),
    ):
        assert sale_state(paused, 5, 0) == SaleState.UNAVAILABLE
    hidden = SaleFacts("active", "active", "active", 1_000, None, visibility="hidden")
    assert sale_state(hidden, 5, 0) == SaleState.HIDDEN
    assert sale_state(SaleFacts("active", "active", "active", None, None), 0, 0) == SaleState.SOLD_OUT


def test_an_unlocking_code_lifts_hiding_and_the_start_never_the_end() -> None:
    unlocked = SaleFacts("active", "active", "active", 1_000, 2_000, visibility="hidden", unlocked=True)
    assert sale_state(unlocked, 5, 0) == SaleState.AVAILABLE
    assert sale_state(unlocked, 5, 2_000) == SaleState.NOT_ON_SALE
    assert sale_state(unlocked, 0, 1_500) == SaleState.SOLD_OUT


@given(
    st.sampled_from(("active", "paused")),
    st.sampled_from(("public", "unlisted", "hidden")),
    st.one_of(st.none(), moments),
    st.one_of(st.none(), moments),
    st.integers(-5, 5),
    moments,
)
def test_unlocking_only_ever_opens(
    status: str, visibility: str, starts: int | None, ends: int | None, available: int, now: int
) -> None:
    facts = SaleFacts("active", status, "active", starts, ends, visibility)
    opened = SaleFacts("active", status, "active", starts, ends, visibility, unlocked=True)
    if sale_state(facts, available, now) == SaleState.AVAILABLE:
        assert sale_state(opened, available, now) == SaleState.AVAILABLE
    if ends is not None and now >= ends:
        assert sale_state(opened, available, now) in (SaleState.NOT_ON_SALE, SaleState.UNAVAILABLE)


def test_statuses_are_a_closed_set() -> None:
    assert check_status("paused", TIER_STATUSES, "status") == "paused"
    assert check_status(None, TIER_STATUSES, "status") is None
    with pytest.raises(InvalidRequest, match="status must be one of active, paused, archived"):
        check_status("deleted", TIER_STATUSES, "status")


def test_a_sale_window_ends_after_it_starts() -> None:
    check_sale_window(None, None)
    check_sale_window(1_000, None)
    check_sale_window(None, 1_000)
    check_sale_window(1_000, 1_001)
    for ends in (1_000, 999):
        with pytest.raises(InvalidRequest, match="saleEndsAt must be after saleStartsAt"):
            check_sale_window(1_000, ends)


def test_a_tier_without_a_limit_takes_the_default_one() -> None:
    assert order_limit(None) == DEFAULT_MAX_PER_ORDER == 10
    assert order_limit(3) == 3


def test_a_capacity_never_goes_below_what_is_sold_or_held() -> None:
    check_not_below_committed(7, 7, "tier t", "its quantity")
    with pytest.raises(CapacityBelowCommitted) as refused:
        check_not_below_committed(6, 7, "tier t", "its quantity")
    assert refused.value.message == "tier t has 7 places sold or held; its quantity cannot go below that"


def test_buyers_see_public_tiers_and_those_their_code_opens() -> None:
    assert is_listed("public", unlocked=False)
    assert not is_listed("unlisted", unlocked=False) and not is_listed("hidden", unlocked=False)
    assert is_listed("hidden", unlocked=True) and is_listed("unlisted", unlocked=True)
