"""What a rate-limited burst must show: the calls within the limit answered, then 429 with
``Retry-After``."""

from __future__ import annotations

import httpx


def assert_cut(response: httpx.Response, longest_s: int) -> None:
    """A 429 ``RateLimitExceeded`` whose ``Retry-After`` is within the limit's window."""
    assert response.status_code == 429, response.text
    assert response.json()["error"] == "RateLimitExceeded"
    assert 1 <= int(response.headers["retry-after"]) <= longest_s


def assert_cut_after(responses: list[httpx.Response], allowed: int, longest_s: int) -> None:
    """The first ``allowed`` calls of a burst went through and a later one was cut. (A burst a little
    longer than the limit: a window edge falling in it may let one more call through.)"""
    statuses = [response.status_code for response in responses]
    assert 429 not in statuses[:allowed], statuses
    assert 429 in statuses[allowed:], statuses
    assert_cut(responses[statuses.index(429)], longest_s)
