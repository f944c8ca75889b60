"""Pure delivery rules of the outbox: when a failed message is tried again, and when it is given up.

Retries back off exponentially with full jitter: the delay after ``n`` failures in a row is uniform
in ``[0, min(cap, base * 2^n)]`` (``jitter`` in ``[0, 1)`` picks the point), so a receiver that was
down is not hit by every waiting message at once when it comes back."""

from __future__ import annotations

from server.domain import backoff


def retry_delay_ms(failed_before: int, base_s: float, cap_s: float, jitter: float) -> int:
    """The delay before the next attempt: ``jitter`` of the ceiling after ``failed_before`` failures."""
    return int(backoff.ceiling(failed_before, base_s, cap_s, doublings=63) * jitter * 1000)


def given_up(attempts: int, max_attempts: int) -> bool:
    """A message that failed ``attempts`` times is dead once that reaches ``max_attempts``."""
    return attempts >= max_attempts
