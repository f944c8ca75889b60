"""What the screen needs of a desk: the part of :class:`scanner_app.core.desk.DeskCore` it uses,
and the manual search a desk may offer (:class:`Searching`).

The app is written against this protocol, so it runs on the real core and, for screenshots of the
key screens, on fixed sample data."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from scanner_app.core.config import ScannerSettings
from scanner_app.core.desk import Counters, DeskConflictRow, FoundTicket, ScanResult, Source, SyncStatus
from scanner_app.core.ports import DeskEnrollment, ListInfo
from sync.checkin import Direction


class Desk(Protocol):
    settings: ScannerSettings
    enrollment: DeskEnrollment | None

    @property
    def enrolled(self) -> bool: ...

    @property
    def lists(self) -> list[ListInfo]: ...

    @property
    def selected_list(self) -> ListInfo | None: ...

    @property
    def gate(self) -> str | None: ...

    @property
    def direction(self) -> Direction: ...

    def counters(self) -> Counters: ...

    def status(self) -> SyncStatus: ...

    def conflict_rows(self) -> list[DeskConflictRow]: ...

    async def enroll(self, server_url: str, code: str, device_name: str | None = None) -> None: ...

    async def select_list(self, list_id: str, gate: str | None = None) -> None: ...

    async def set_direction(self, direction: Direction) -> None: ...

    async def scan(self, text: str, direction: Direction = ..., source: Source = ...) -> ScanResult: ...

    async def undo_last(self) -> ScanResult | None: ...

    async def sync_once(self) -> None: ...

    async def run_sync_forever(self, stop: asyncio.Event) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class AdmittingByHand(Protocol):
    """A desk whose amber scans door staff may admit by hand."""

    @property
    def can_admit_by_hand(self) -> bool: ...

    async def admit_by_hand(self, why: str) -> ScanResult: ...


@runtime_checkable
class Searching(Protocol):
    """A desk that can search the server's tickets by name or number (online only)."""

    async def search(self, query: str) -> Sequence[FoundTicket]: ...

    async def check_in_searched(self, ticket_id: str, direction: Direction = ...) -> ScanResult: ...
