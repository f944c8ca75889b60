"""Pure rules of the mail outbox: when a message that could not be sent is tried again, and when
it is given up. Retries back off exponentially, without jitter (one SMTP server, few messages)."""

from __future__ import annotations

from server.domain import backoff

# A message whose tickets are gone can never be composed: it is given up at once.
NO_SUCH_TICKETS = "no such tickets"


def retry_delay_ms(failed_before: int, base_s: float, cap_s: float) -> int:
    """``base * 2^failed_before`` seconds, at most ``cap_s``."""
    return int(backoff.ceiling(failed_before, base_s, cap_s) * 1000)


def given_up(attempts: int, max_attempts: int, error: str) -> bool:
    """A message that failed ``attempts`` times, the last with ``error``, is dead once that reaches
    ``max_attempts`` or when trying again cannot help."""
    return attempts >= max_attempts or error == NO_SUCH_TICKETS
