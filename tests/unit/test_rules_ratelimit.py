"""The rate limits' pure arithmetic: the sliding window read from two fixed windows, and the 429
answer's ``Retry-After``."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from server.domain.ratewindows import Window
from server.errors import RateLimitExceeded


def test_a_window_starts_on_a_multiple_of_its_length() -> None:
    window = Window(now_ms=125_000, length_ms=60_000)
    assert (window.start_ms, window.previous_ms) == (120_000, 60_000)


def test_the_previous_window_counts_for_the_share_still_inside_the_sliding_window() -> None:
    assert Window(120_000, 60_000).estimate(0, 10) == 10
    assert Window(150_000, 60_000).estimate(2, 10) == 2 + 5
    assert Window(179_999, 60_000).estimate(0, 10) == 1  # rounded up: never forgotten early


@given(st.integers(0, 10**13), st.integers(1, 10**7), st.integers(0, 1_000), st.integers(0, 1_000))
def test_the_sliding_count_lies_between_the_current_and_both_windows(
    now: int, length: int, current: int, previous: int
) -> None:
    estimate = Window(now, length).estimate(current, previous)
    assert current <= estimate <= current + previous
    later = Window(now + 1, length)
    if later.start_ms == Window(now, length).start_ms:
        assert later.estimate(current, previous) <= estimate


def test_a_refusal_says_when_the_current_window_ends() -> None:
    refusal = Window(now_ms=125_500, length_ms=60_000).refusal("too many calls")
    assert isinstance(refusal, RateLimitExceeded) and refusal.status == 429
    assert refusal.message == "too many calls; try again in 55 s"
    assert refusal.headers == {"Retry-After": "55"}
    assert Window(now_ms=179_999, length_ms=60_000).refusal("x").headers == {"Retry-After": "1"}
