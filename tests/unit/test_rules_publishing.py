"""Publishing's pure decisions: the records a scope names, the records a pass deletes, and when a
failed publication is tried again."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from server.domain.publishing.rules import refs_in_scope, retry_delay_ms, unwanted

REFS = {"tier_a": "ref-a", "tier_b": "ref-b"}


def test_a_scope_names_the_records_of_its_public_tiers_in_its_order() -> None:
    assert refs_in_scope(None, REFS) is None
    assert refs_in_scope(["tier_b", "tier_hidden", "tier_a"], REFS) == ["ref-b", "ref-a"]
    # A scope of hidden tiers only names none: never "every tier".
    assert refs_in_scope(["tier_hidden"], REFS) == []


def test_a_pass_deletes_in_order_the_records_it_did_not_write_again() -> None:
    published = [("t.tier", "3"), ("t.event", "1"), ("t.tier", "2")]
    assert unwanted(published, {("t.tier", "3")}) == [("t.event", "1"), ("t.tier", "2")]
    assert unwanted(published, set(published)) == []


keys = st.tuples(st.sampled_from(("t.event", "t.tier", "t.list")), st.text("abc", min_size=1, max_size=3))


@given(st.sets(keys), st.sets(keys))
def test_every_published_record_is_written_again_or_deleted_never_both(
    published: set[tuple[str, str]], wanted: set[tuple[str, str]]
) -> None:
    deleted = unwanted(published, wanted)
    assert deleted == sorted(deleted)
    assert set(deleted) == published - wanted


def test_a_failed_publication_waits_twice_as_long_each_time_up_to_the_cap() -> None:
    assert [retry_delay_ms(n, 10_000, 3_600_000) for n in (0, 1, 2, 8, 9, 500)] == [
        10_000,
        20_000,
        40_000,
        2_560_000,
        3_600_000,
        3_600_000,
    ]


@given(st.integers(0, 10_000), st.integers(1, 10**6), st.integers(1, 10**8))
def test_the_publication_backoff_is_monotonic_and_bounded(failed: int, base: int, cap: int) -> None:
    delay = retry_delay_ms(failed, base, cap)
    assert min(base, cap) <= delay <= retry_delay_ms(failed + 1, base, cap) <= cap
