"""The desk's screens show local times: tests that read or snapshot them run in UTC."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest


def in_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time is UTC while the caller's fixture waits (``yield from`` this), the zone the
    process had put back after it."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
