"""Pure delivery rules of the outbox: when a failed message is tried again, and when it is given up.

Retries back off exponentially with full jitter: the delay after the ``n``-th failure in a row is
uniform in ``[0, min(cap, base * 2^n)]`` (``jitter`` in ``[0, 1)`` picks the point), so a receiver
that was down is not hit by every waiting message at once when it comes back."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """``base_s``: the first ceiling; it doubles with each failure up to ``cap_s`` (seconds)."""

    base_s: float
    cap_s: float

    def ceiling_s(self, failed_before: int) -> float:
        """The longest delay after ``failed_before`` earlier failures in a row."""
        return min(self.cap_s, self.base_s * 2 ** min(failed_before, 63))


def retry_delay_ms(failed_before: int, backoff: Backoff, jitter: float) -> int:
    """The delay before the next attempt: ``jitter`` (uniform in ``[0, 1)``) of the ceiling."""
    return int(backoff.ceiling_s(failed_before) * jitter * 1000)


def given_up(attempts: int, max_attempts: int) -> bool:
    """A message that failed ``attempts`` times is dead once that reaches ``max_attempts``."""
    return attempts >= max_attempts
