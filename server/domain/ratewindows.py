"""Pure rate-limit arithmetic: what is counted (a scope and its limit) and the sliding window read
from two fixed windows (see :mod:`server.domain.ratelimit`, which counts in the database).

A scope's count at a moment is the current window's count plus the previous window's, weighted by
the share of the previous window still inside the sliding window that ends now.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from server.errors import RateLimitExceeded


@dataclass(frozen=True, slots=True)
class Scope:
    """What is counted (``key``, unique per kind of limit) and how many events a window allows."""

    key: str
    limit: int


@dataclass(frozen=True, slots=True)
class Window:
    now_ms: int
    length_ms: int

    @property
    def start_ms(self) -> int:
        return self.now_ms - self.now_ms % self.length_ms

    @property
    def previous_ms(self) -> int:
        return self.start_ms - self.length_ms

    def estimate(self, current: int, previous: int) -> int:
        """The count in the sliding window ending now (rounded up: an event is never forgotten
        early)."""
        return current + math.ceil(previous * (1 - (self.now_ms - self.start_ms) / self.length_ms))

    def refusal(self, what: str) -> RateLimitExceeded:
        """The 429 answer, with the seconds until the current window ends as ``Retry-After``."""
        retry_after_s = max(1, -(-(self.start_ms + self.length_ms - self.now_ms) // 1000))
        return RateLimitExceeded(
            f"{what}; try again in {retry_after_s} s", headers={"Retry-After": str(retry_after_s)}
        )
