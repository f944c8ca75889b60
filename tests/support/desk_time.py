"""The desk's screens show local times: tests that read or snapshot them run in UTC."""

from __future__ import annotations

import time

import pytest


def in_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    """Local time is UTC for the rest of the test (undone by ``monkeypatch``, then :func:`time.tzset`
    again by the caller's fixture)."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
