"""The organizer summary's pure arithmetic: an order's discount and fee shared among its lines, a
tier's net, and admitted entries per time bucket."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from server.domain.organizer.rules import OrderLine, TierMoney, add_order, entry_buckets, shares


def test_shares_follow_the_weights_and_the_last_takes_the_rest() -> None:
    assert shares(100, [1, 1, 1]) == [33, 33, 34]
    assert shares(10, [3, 1]) == [7, 3]
    assert shares(7, [0, 0]) == [0, 0]
    assert shares(0, [5]) == [0]


@given(st.integers(0, 10**9), st.lists(st.integers(0, 10**6), min_size=1, max_size=6))
def test_shares_add_up_to_the_total_and_are_never_negative(total: int, weights: list[int]) -> None:
    parts = shares(total, weights)
    assert len(parts) == len(weights)
    assert all(part >= 0 for part in parts)
    assert sum(parts) == (total if sum(weights) else 0)
    for part, weight in zip(parts[:-1], weights[:-1], strict=True):
        assert weight or part == 0


def test_an_order_adds_its_lines_and_shares_its_discount_and_fee() -> None:
    money: dict[str, TierMoney] = {"a": TierMoney(gross=100, refunds=40)}
    add_order(money, [OrderLine("a", 2, 300), OrderLine("b", 1, 200)], discount=80, app_fee=16)
    assert money["a"] == TierMoney(gross=700, discounts=60, fees=12, refunds=40)
    assert money["b"] == TierMoney(gross=200, discounts=20, fees=4)
    assert money["a"].net == 700 - 60 - 12 - 40


lines = st.lists(
    st.builds(OrderLine, st.sampled_from(("a", "b", "c")), st.integers(1, 10), st.integers(0, 10**5)),
    min_size=1,
    max_size=4,
)


@given(lines, st.data())
def test_an_order_s_money_is_conserved_over_its_tiers(order: list[OrderLine], data: st.DataObject) -> None:
    gross = sum(line.quantity * line.unit_amount for line in order)
    discount = data.draw(st.integers(0, gross))
    fee = data.draw(st.integers(0, 10**5))
    money: dict[str, TierMoney] = {}
    add_order(money, order, discount, fee)
    assert sum(m.gross for m in money.values()) == gross
    assert sum(m.discounts for m in money.values()) == (discount if gross else 0)
    assert sum(m.fees for m in money.values()) == (fee if gross else 0)


def test_entries_are_counted_per_bucket_empty_ones_included() -> None:
    assert entry_buckets([], 60_000) == []
    assert entry_buckets([61_000, 62_000, 185_000], 60_000) == [(60_000, 2), (120_000, 0), (180_000, 1)]


@given(st.lists(st.integers(0, 10**7), min_size=1, max_size=50), st.integers(1_000, 10**6))
def test_every_entry_falls_in_exactly_one_bucket(times: list[int], bucket: int) -> None:
    counted = entry_buckets(sorted(times), bucket)
    assert sum(count for _, count in counted) == len(times)
    starts = [start for start, _ in counted]
    assert starts == list(range(starts[0], starts[-1] + 1, bucket))
    assert starts[0] <= min(times) < starts[0] + bucket and starts[-1] <= max(times) < starts[-1] + bucket
