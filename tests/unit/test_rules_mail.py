"""The mail outbox's pure rules: backoff without jitter, monotonic and bounded, and when a message
is given up."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from server.domain.mail.rules import NO_SUCH_TICKETS, given_up, retry_delay_ms


def test_the_delay_doubles_from_the_base_up_to_the_cap() -> None:
    assert [retry_delay_ms(n, 30.0, 300.0) for n in range(5)] == [30_000, 60_000, 120_000, 240_000, 300_000]
    assert retry_delay_ms(10**6, 30.0, 300.0) == 300_000


@given(st.integers(0, 10_000), st.floats(0.001, 3_600), st.floats(0.001, 7 * 24 * 3_600))
def test_backoff_is_monotonic_and_bounded(failed: int, base: float, cap: float) -> None:
    delay = retry_delay_ms(failed, base, cap)
    assert 0 <= delay <= retry_delay_ms(failed + 1, base, cap) <= int(cap * 1000)
    assert delay >= int(min(base, cap) * 1000)


def test_a_message_is_given_up_after_its_last_attempt_or_when_retrying_cannot_help() -> None:
    assert not given_up(9, 10, "SMTPServerDisconnected")
    assert given_up(10, 10, "SMTPServerDisconnected")
    assert given_up(1, 10, NO_SUCH_TICKETS)
