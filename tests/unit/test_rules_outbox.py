"""The outbox's pure delivery rules: exponential backoff with full jitter, monotonic and bounded,
and when a message is given up."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from server.domain.backoff import ceiling
from server.domain.outbox.rules import given_up, retry_delay_ms

failures = st.integers(0, 10_000)
bases = st.floats(0.001, 3_600)
caps = st.floats(0.001, 7 * 24 * 3_600)
jitters = st.floats(0, 1, exclude_max=True)


def test_the_ceiling_doubles_from_the_base_up_to_the_cap() -> None:
    assert [ceiling(n, 5.0, 60.0) for n in range(6)] == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0]
    assert ceiling(10**9, 5.0, 60.0) == 60.0  # no overflow however long the failures last


@given(failures, bases, caps, jitters)
def test_backoff_is_monotonic_and_bounded(failed: int, base: float, cap: float, jitter: float) -> None:
    assert ceiling(failed, base, cap) <= ceiling(failed + 1, base, cap) <= cap
    delay = retry_delay_ms(failed, base, cap, jitter)
    assert 0 <= delay <= cap * 1000
    assert delay <= retry_delay_ms(failed + 1, base, cap, jitter)


@given(failures, bases, caps)
def test_jitter_spreads_the_delay_over_the_whole_ceiling(failed: int, base: float, cap: float) -> None:
    assert retry_delay_ms(failed, base, cap, 0.0) == 0
    top = ceiling(failed, base, cap, doublings=63) * 1000
    assert abs(retry_delay_ms(failed, base, cap, 0.5) - top / 2) <= 1
    assert top * 0.99 - 1 <= retry_delay_ms(failed, base, cap, 0.99) <= top


def test_a_message_is_given_up_after_its_last_attempt() -> None:
    assert not given_up(11, 12)
    assert given_up(12, 12) and given_up(13, 12)
