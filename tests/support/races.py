"""The negative controls of the concurrency tests: the classic check-then-act race put back into the
test servers started after the call. Holds check availability, and check-ins decide, in a separate
unlocked read transaction before writing, instead of under the locks that make them decide one after
the other; uploads judge their tickets' conflicts without locking the tickets. The concurrency
tests prove they would catch a missing lock by catching this race."""

from __future__ import annotations

import functools
from typing import Any

import pytest

import server.app
from server.db.engine import Database
from server.domain.caller import Caller
from server.domain.checkin import service as checkin
from server.domain.devices import conflicts, records
from server.domain.holds import service as holds
from server.domain.issuance.list_keys import Keyring


def _server_databases(monkeypatch: pytest.MonkeyPatch) -> list[Database]:
    """The databases of the servers started from now on (the latest last)."""
    made: list[Database] = []

    class Recorded(Database):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(server.app, "Database", Recorded)
    return made


def without_hold_locks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Holds check their places (and their offer's redemptions) unlocked."""
    databases = _server_databases(monkeypatch)

    async def checked_unlocked(
        _session: object, caller: Caller, request: holds.HoldRequest, now_ms: int
    ) -> holds.Priced:
        async with databases[-1].read() as unlocked:
            return await holds.check_hold(unlocked, caller, request, now_ms)

    monkeypatch.setattr(holds, "checked_under_locks", checked_unlocked)


def without_ticket_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Check-ins decide their scans unlocked."""
    databases = _server_databases(monkeypatch)

    async def decided_unlocked(
        _session: object, keyring: Keyring, caller: Caller, scan: checkin.Scan, now_ms: int
    ) -> checkin.Outcome:
        async with databases[-1].read() as unlocked:
            return await checkin.evaluate(unlocked, keyring, caller, scan, now_ms, lock=False)

    monkeypatch.setattr(checkin, "decided_under_lock", decided_unlocked)


def without_upload_ticket_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Uploads judge their tickets' conflicts without locking the tickets."""

    monkeypatch.setattr(records, "lock_tickets", functools.partial(conflicts.lock_tickets, lock=False))
