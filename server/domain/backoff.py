"""Exponential backoff, the one schedule of every worker that tries again (webhook deliveries, mail,
publication of public records); each worker picks its base, cap and jitter."""

from __future__ import annotations


def ceiling(failed_before: int, base: float, cap: float, doublings: int = 32) -> float:
    """``base * 2^failed_before``, at most ``cap``: the wait after ``failed_before`` failures in a
    row (``doublings`` bounds the exponent, so the power of two stays a small number)."""
    doubled: float = base * 2 ** min(failed_before, doublings)
    return min(cap, doubled)
